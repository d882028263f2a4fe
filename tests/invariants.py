"""The invariants of DESIGN.md §3, asserted after every database test."""

from __future__ import annotations

from flask import Flask


def assert_invariants(app: Flask) -> None:
    """Fail the test if the ledger's invariants do not hold (see `flask ledger check`)."""
    try:
        from pointsvc.ledger.checks import check_invariants
    except ImportError:  # the ledger package has not landed yet
        return
    with app.app_context():
        violations = check_invariants()
    assert not violations, "ledger invariants violated:\n" + "\n".join(violations)
