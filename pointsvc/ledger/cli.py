"""flask ledger check | verify | seal | purge-idempotency."""

from __future__ import annotations

import sys
import time

import click
from flask.cli import AppGroup

ledger_cli = AppGroup("ledger", help="Check, verify and seal the ledger.")


@ledger_cli.command("check")
def check_command() -> None:
    """Check every invariant of the ledger; exit 1 naming each violation."""
    from .checks import check_invariants

    violations = check_invariants()
    for line in violations:
        click.echo(f"VIOLATION {line}", err=True)
    if violations:
        sys.exit(1)
    click.echo("ledger check: all invariants hold")


@ledger_cli.command("verify")
@click.option("--independent", is_flag=True,
              help="Rehash every transaction in Python instead of letting PostgreSQL "
                   "recompute the hashes first (slower; trusts only this code).")
def verify_command(independent: bool) -> None:
    """Recompute every content hash and seal; exit 1 naming the first that fails."""
    from sqlalchemy import func, select

    from ..extensions import db
    from .checks import verify_ledger
    from .models import LedgerTransaction

    started = time.perf_counter()
    count = db.session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0
    problems = verify_ledger(independent=independent)
    elapsed = time.perf_counter() - started
    for line in problems:
        click.echo(f"MISMATCH {line}", err=True)
    if problems:
        sys.exit(1)
    rate = count / elapsed if elapsed > 0 else 0
    click.echo(f"ledger verify: {count} transactions and every seal verify "
               f"({elapsed:.2f} s, {rate:,.0f} tx/s)")


@ledger_cli.command("seal")
def seal_command() -> None:
    """Seal committed transactions not yet in the transparency log."""
    from .seals import seal

    total = 0
    while True:
        made = seal()
        if made is None:
            break
        total += 1
        click.echo(f"seal {made.seq}: tree size {made.tree_size}, root {made.root_hash}")
    if total == 0:
        click.echo("nothing to seal")


@ledger_cli.command("purge-idempotency")
def purge_command() -> None:
    """Delete idempotency keys past their retention (48 hours)."""
    from .idempotency import purge_expired

    click.echo(f"purged {purge_expired()} idempotency keys")
