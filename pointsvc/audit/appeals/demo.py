"""Demo appeals: two residents contest recent deductions; one is dismissed, one waits.

Importing this module appends `seed_appeals` to pointsvc.demo.EXTRA_SEEDERS; it runs after
the ledger's seeder (the deductions must exist).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ...demo import EXTRA_SEEDERS
from ...extensions import db
from ...ledger import demo as _ledger_demo  # noqa: F401  (registers the ledger's seeder first)
from ...ledger.models import Entry, LedgerTransaction
from ...people.models import Resident
from . import service

REASONS = ["那天我在外地出差，不可能在小区乱扔垃圾，可以提供车票。",
           "电动车是邻居的，不是我的，请核实监控。"]


def seed_appeals(context: dict[str, Any]) -> None:
    """The newest deductions that took points: one appeal dismissed by the admin, one open."""
    deductions = db.session.execute(
        select(LedgerTransaction.id, LedgerTransaction.subject_resident_id)
        .where(LedgerTransaction.kind == "deduction",
               LedgerTransaction.id.in_(select(Entry.transaction_id)))
        .order_by(LedgerTransaction.created_at.desc())).all()
    seen: set[int] = set()
    picked = []
    for tx_id, resident_id in deductions:
        if resident_id not in seen:
            seen.add(resident_id)
            picked.append((tx_id, resident_id))
        if len(picked) == 2:
            break
    for n, (tx_id, resident_id) in enumerate(picked):
        resident = db.session.get(Resident, resident_id)
        _, appeal = service.file_appeal(resident_id=resident_id, user_id=resident.user_id,
                                        kind="deduction", transaction_id=tx_id, event_id=None,
                                        reason=REASONS[n % len(REASONS)])
        db.session.commit()
        if n == 1 and context.get("admin_user_id"):
            service.decide(appeal_id=appeal["id"], actor_user_id=context["admin_user_id"],
                           outcome="dismissed", reason="网格员现场照片显示为本人，维持扣分。")


EXTRA_SEEDERS.append(seed_appeals)
