"""flask leaderboards rebuild | drain | check."""

from __future__ import annotations

import sys
import time

import click
from flask.cli import AppGroup

leaderboards_cli = AppGroup("leaderboards", help="Leaderboard tallies.")


@leaderboards_cli.command("rebuild")
def rebuild_command() -> None:
    """Recompute every tally and score histogram from the ledger."""
    from .tallies import rebuild

    started = time.perf_counter()
    result = rebuild()
    click.echo(f"rebuilt {result['tallies']} tallies in {time.perf_counter() - started:.1f} s")


@leaderboards_cli.command("drain")
def drain_command() -> None:
    """Fold every queued posting into the tallies now (serving processes do it every second)."""
    from .tallies import drain_all

    click.echo(f"drained {drain_all()} queued postings")


@leaderboards_cli.command("check")
def check_command() -> None:
    """Check that tallies agree with the ledger (also part of `flask ledger check`)."""
    from .tallies import check_tallies

    problems = check_tallies()
    for line in problems:
        click.echo(line)
    if problems:
        sys.exit(1)
    click.echo("tallies agree with the ledger")
