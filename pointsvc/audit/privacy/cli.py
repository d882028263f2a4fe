"""flask audit erase | export-personal (personal-data requests from the command line)."""

from __future__ import annotations

import json
import sys

import click

from ..cli import audit_cli
from .models import REASON_CODES


@audit_cli.command("erase")
@click.argument("resident_id", type=click.IntRange(min=1))
@click.option("--reason", "reason_code", type=click.Choice(REASON_CODES),
              default="resident_request", show_default=True, help="Why (a code, no free text).")
@click.option("--admin", "admin_user_id", type=click.IntRange(min=1), default=None,
              help="User id of the admin who ordered it (recorded).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase_command(resident_id: int, reason_code: str, admin_user_id: int | None,
                  yes: bool) -> None:
    """Erase a resident's personal data (pseudonymise; irreversible; idempotent)."""
    from ...errors import DomainError
    from . import service

    if not yes:
        click.confirm(f"Erase resident {resident_id}? This cannot be undone.", abort=True)
    try:
        result = service.erase(resident_id=resident_id, actor_user_id=admin_user_id,
                               reason_code=reason_code)
    except DomainError as error:
        click.echo(f"error: {error.detail or error.code}", err=True)
        sys.exit(1)
    out = service.erasure_json(result)
    state = "erased" if result.created else "already erased"
    click.echo(f"resident {resident_id} {state}: now shown as {out['pseudonym']} "
               f"(erasure {out['id']})")
    click.echo(json.dumps(out["summary"], ensure_ascii=False))
    if out["residual"]:
        click.echo(f"WARNING append-only rows still hold personal data: {out['residual']}",
                   err=True)
        sys.exit(2)
