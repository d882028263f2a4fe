"""flask redemption expire-holds | purge-paycodes."""

from __future__ import annotations

import click
from flask.cli import AppGroup

redemption_cli = AppGroup("redemption", help="Holds and pay codes.")


@redemption_cli.command("expire-holds")
def expire_holds_command() -> None:
    """Release every hold past its expiry (points, stock and limits come back)."""
    from .service import expire_holds

    click.echo(f"expired {expire_holds()} holds")


@redemption_cli.command("purge-paycodes")
def purge_paycodes_command() -> None:
    """Delete pay codes that expired more than a day ago."""
    from .service import purge_paycodes

    click.echo(f"deleted {purge_paycodes()} pay codes")
