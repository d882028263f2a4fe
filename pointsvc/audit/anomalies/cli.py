"""flask audit anomalies: the anomaly report from the shell (operator scope), as JSON lines."""

from __future__ import annotations

import json

import click
from marshmallow import ValidationError

from ...errors import ValidationFailed
from ...extensions import db
from ...orgs.models import OrgNode
from ..cli import audit_cli
from . import service
from .schemas import AnomalyArgs


@audit_cli.command("anomalies")
@click.option("--from", "start", help="ISO 8601 with offset (default: --to minus 30 days).")
@click.option("--to", "end", help="ISO 8601 with offset, exclusive (default: now).")
@click.option("--node", "node_id", type=int, help="Organisation node: its whole subtree.")
@click.option("--detector", "detectors", multiple=True, type=click.Choice(service.DETECTORS),
              help="Only this detector (repeatable).")
@click.option("--english", is_flag=True, help="Summaries in English (default Chinese).")
def anomalies_command(start: str | None, end: str | None, node_id: int | None,
                      detectors: tuple[str, ...], english: bool) -> None:
    """Print each anomaly as one JSON line (for cron jobs and mail-outs)."""
    raw = {"from": start, "to": end}
    try:
        args = AnomalyArgs().load({k: v for k, v in raw.items() if v is not None})
        window = service.resolve_window(start=args["start"], end=args["end"])
    except ValidationError as error:
        raise click.UsageError(str(error.messages)) from error
    except ValidationFailed as error:
        raise click.UsageError(str(error.errors)) from error
    # Someone with the shell runs as the operator: the whole tree, or the node's subtree.
    if node_id is not None:
        node = db.session.get(OrgNode, node_id)
        if node is None:
            raise click.UsageError(f"organisation node {node_id} does not exist")
        paths = [node.path]
    else:
        paths = ["/"]
    result = service.report(start=window[0], end=window[1], paths=paths, english=english,
                            detectors=detectors or service.DETECTORS)
    for item in result["items"]:
        click.echo(json.dumps(item, ensure_ascii=False))
    if result["truncated"]:
        click.echo(f"truncated: {', '.join(result['truncated'])}", err=True)
