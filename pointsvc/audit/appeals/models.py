"""Appeals: a resident contests a deduction or a rejected attendance; a reviewer decides.

Not append-only on purpose: `reason` (the resident's words) and `decision_reason` are free
text about a person, so an erasure must be able to blank them. The ledger and the audit
log only ever hold the appeal's id and status, never its text.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ...common import utcnow
from ...extensions import BigId, db

SUBJECTS = ("deduction", "attendance")
STATUSES = ("open", "upheld", "dismissed")
OUTCOMES = ("upheld", "dismissed")
REASON_MAX = 1000


class Appeal(db.Model):
    __tablename__ = "appeals"
    __table_args__ = (
        CheckConstraint("subject_type IN ('deduction', 'attendance')", name="subject_type"),
        CheckConstraint("status IN ('open', 'upheld', 'dismissed')", name="status"),
        # A decision is appealed once: `deduction:<transaction>` or `attendance:<event>:<res>`.
        UniqueConstraint("subject_type", "subject_key"),
        Index("ix_appeals_community_id_status_id", "community_id", "status", "id"),
        Index("ix_appeals_resident_id_id", "resident_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("org_nodes.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    subject_type: Mapped[str] = mapped_column(String(16))
    subject_key: Mapped[str] = mapped_column(String(64))
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))
    # When the contested decision was made: the appeal window counts from here.
    decided_originally_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    filed_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reviewer_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    # Upheld: the reversal of the deduction, or the award crediting the attendance.
    remedy_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id"))
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
