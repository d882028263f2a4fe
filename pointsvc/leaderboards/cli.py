"""flask leaderboards rebuild | drain | check."""

from __future__ import annotations

import os
import sys
import time

import click
from flask import current_app
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
@click.option("--follow", is_flag=True,
              help="Keep draining every POINTSVC_LEADERBOARD_DRAIN_SECONDS until stopped.")
@click.option("--parent", type=int, default=None,
              help="With --follow: stop once process PARENT is no longer this one's parent "
                   "(gunicorn's master passes its own pid).")
def drain_command(follow: bool, parent: int | None) -> None:
    """Fold every queued posting into the tallies now (serving processes do it every second)."""
    from .tallies import drain_all, run_drainer

    if not follow:
        click.echo(f"drained {drain_all()} queued postings")
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    interval = float(app.config["LEADERBOARD_DRAIN_SECONDS"]) or 1.0
    click.echo(f"draining every {interval:g} s")
    # The parent's pid comes from the parent itself: read here with getppid(), a master that
    # died while this process started would already have been replaced by init, and this
    # process would then drain forever on its own.
    run_drainer(app, interval=interval,
                keep_going=lambda: parent is None or os.getppid() == parent)


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
