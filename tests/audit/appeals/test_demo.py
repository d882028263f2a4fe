"""The demo seed leaves one dismissed and one open appeal on real deductions."""

from __future__ import annotations

from sqlalchemy import select

from pointsvc.audit.appeals.models import Appeal
from pointsvc.extensions import db
from pointsvc.ledger.models import LedgerTransaction


def test_demo_seeds_two_appeals(app):
    from pointsvc.audit.appeals.demo import seed_appeals
    from pointsvc.demo import EXTRA_SEEDERS, seed_demo
    from pointsvc.ledger.demo import seed_ledger

    with app.app_context():
        seed_demo()
        order = list(dict.fromkeys(EXTRA_SEEDERS))
        assert order.index(seed_appeals) > order.index(seed_ledger)
        appeals = list(db.session.scalars(select(Appeal).order_by(Appeal.id)))
        assert sorted(a.status for a in appeals) == ["dismissed", "open"]
        for appeal in appeals:
            tx = db.session.get(LedgerTransaction, appeal.transaction_id)
            assert tx.kind == "deduction" and tx.subject_resident_id == appeal.resident_id
        db.session.remove()
