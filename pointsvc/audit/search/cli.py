"""flask audit export: the same search as the API, written to a file with a progress bar."""

from __future__ import annotations

import sys

import click
from marshmallow import ValidationError

from ...extensions import db
from ...ledger.awards import record_event
from ...orgs.models import OrgNode
from .. import streaming
from ..cli import audit_cli
from . import service
from .schemas import ExportArgs


@audit_cli.command("export")
@click.option("--format", "export_format", type=click.Choice(sorted(streaming.FORMATS)),
              default="csv", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True),
              required=True, help="File to write ('-' for standard output).")
@click.option("--node", "node_id", type=int, help="Organisation node: its whole subtree.")
@click.option("--resident", "resident_id", type=int)
@click.option("--merchant", "merchant_id", type=int)
@click.option("--account", "account_id", type=int)
@click.option("--kind", "kinds", multiple=True, help="Transaction kind (repeatable).")
@click.option("--rule", help="Rule code.")
@click.option("--actor", "actor_id", type=int, help="User id of the acting staff member.")
@click.option("--min-amount", type=int, help="Amount = sum of positive entries (inclusive).")
@click.option("--max-amount", type=int)
@click.option("--from", "start", help="ISO 8601 (inclusive; no offset means UTC).")
@click.option("--to", "end", help="ISO 8601 (exclusive).")
@click.option("--reference-type")
@click.option("--reference-id")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def export_command(export_format: str, output: str, no_progress: bool, **options: object
                   ) -> None:
    """Export the ledger transactions matching the filters (operator scope: everything)."""
    query_args = {
        "format": export_format, "node_id": options["node_id"],
        "resident_id": options["resident_id"], "merchant_id": options["merchant_id"],
        "account_id": options["account_id"], "kind": list(options["kinds"]) or None,
        "rule": options["rule"], "actor_id": options["actor_id"],
        "min_amount": options["min_amount"], "max_amount": options["max_amount"],
        "from": options["start"], "to": options["end"],
        "reference_type": options["reference_type"], "reference_id": options["reference_id"],
    }
    try:
        args = ExportArgs().load({k: v for k, v in query_args.items() if v is not None})
    except ValidationError as error:
        raise click.UsageError(str(error.messages)) from error
    # Someone with the shell runs as the operator: the whole tree, or the node's subtree.
    if args.get("node_id") is not None:
        node = db.session.get(OrgNode, args["node_id"])
        if node is None:
            raise click.UsageError(f"organisation node {args['node_id']} does not exist")
        roots = [node.path]
    else:
        roots = [node.path for node in db.session.scalars(
            db.select(OrgNode).where(OrgNode.level == "district"))]
    filters = service.Filters.from_args(args)
    count = service.totals(filters=filters, roots=roots)["count"]
    query = service.prepare_export(filters=filters, roots=roots)
    record_event(actor_user_id=None, action="audit.export", target_type="transactions",
                 target_id=export_format, community_id=args.get("node_id"),
                 detail={"filters": filters.as_json(), "format": export_format,
                         "scope": roots, "via": "cli", "rows": count,
                         "output": output})
    db.session.commit()
    chunker = streaming.csv_chunks if export_format == "csv" else streaming.ndjson_chunks
    to_stdout = output == "-"
    show_progress = not no_progress and not to_stdout
    with click.open_file(output, "wb") as sink, click.progressbar(
        length=count, label=f"exporting {count:,} transactions", file=sys.stderr,
        hidden=not show_progress,
    ) as bar:
        rows = service.export_rows(query=query, export_format=export_format,
                                   on_batch=bar.update)
        for chunk in chunker(columns=service.EXPORT_COLUMNS, rows=rows):
            sink.write(chunk)
    if not to_stdout:
        click.echo(f"wrote {count:,} transactions to {output}", err=True)
