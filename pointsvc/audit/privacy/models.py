"""The record of every erasure (PIPL): who was erased, under which pseudonym, by whom, why.

Append-only (triggers in migration 0011) and free of personal data: ids, the pseudonym,
a reason code and counts of what was blanked — never a name, phone or free text.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ...common import utcnow
from ...extensions import BigId, db

# Why a resident was erased. A code, not free text: the record must not describe the person.
REASON_CODES = ("resident_request", "account_closed", "deceased", "moved_away",
                "legal_order", "retention_expired")


class Erasure(db.Model):
    __tablename__ = "privacy_erasures"
    __table_args__ = (
        CheckConstraint(
            "reason_code IN ('resident_request', 'account_closed', 'deceased', 'moved_away', "
            "'legal_order', 'retention_expired')", name="reason_code"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Unique: a resident is erased once; a second request finds this row (idempotent).
    resident_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    community_id: Mapped[int] = mapped_column(BigInteger, index=True)
    pseudonym: Mapped[str] = mapped_column(String(32))
    # None when run from the command line without --admin.
    erased_by: Mapped[int | None] = mapped_column(BigInteger)
    reason_code: Mapped[str] = mapped_column(String(32))
    # JSON {table: rows changed} — numbers only.
    summary: Mapped[str] = mapped_column(Text)
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
