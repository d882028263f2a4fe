"""Redemption tables: offers, pay codes, redemptions (and holds), refunds, settlements.

Points never live here: every movement is a ledger posting (kind redemption, refund,
settlement) and these rows only point at the ledger transaction that made it. The counters
and the stock column are moved by conditional updates, never read-then-write.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..common import utcnow
from ..extensions import BigId, db

LIMIT_PERIODS = ("day", "week", "month")
OFFER_STATUSES = ("active", "withdrawn")
REDEMPTION_STATUSES = ("held", "captured", "voided", "expired")
CHANNELS = ("paycode", "merchant_code")


class Offer(db.Model):
    """An item a merchant sells for points, offered to the residents under one org node."""

    __tablename__ = "offers"
    __table_args__ = (
        CheckConstraint("points_price > 0", name="price_positive"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_nonnegative"),
        CheckConstraint(
            "(per_resident_limit IS NULL AND limit_period IS NULL) OR "
            "(per_resident_limit > 0 AND limit_period IN ('day', 'week', 'month'))",
            name="limit_shape",
        ),
        CheckConstraint("status IN ('active', 'withdrawn')", name="status"),
        Index("ix_offers_org_node_id_id", "org_node_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    org_node_id: Mapped[int] = mapped_column(ForeignKey("org_nodes.id"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(2000))
    points_price: Mapped[int] = mapped_column(BigInteger)
    # NULL: unlimited. Decremented with `stock = stock - q WHERE stock >= q`.
    stock: Mapped[int | None] = mapped_column(BigInteger)
    per_resident_limit: Mapped[int | None] = mapped_column(Integer)
    limit_period: Mapped[str | None] = mapped_column(String(8))
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PayCode(db.Model):
    """One issued pay code; `used_at` is set once, by the first attempt that reads it."""

    __tablename__ = "paycodes"

    # 6 random bytes as 12 hex digits: the code's nonce.
    nonce: Mapped[str] = mapped_column(String(12), primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    step: Mapped[int] = mapped_column(BigInteger)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    used_by_user_id: Mapped[int | None] = mapped_column(BigInteger)


class MerchantCode(db.Model):
    """The current version of a merchant's printed code; older versions are revoked."""

    __tablename__ = "merchant_codes"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    reissued_by: Mapped[int | None] = mapped_column(BigInteger)
    reissued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Redemption(db.Model):
    """A spend at a merchant: held (points reserved) or captured (points posted)."""

    __tablename__ = "redemptions"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("captured_points >= 0", name="captured_nonnegative"),
        CheckConstraint(
            "refunded_points >= 0 AND refunded_points <= captured_points", name="refund_bounds"
        ),
        CheckConstraint("status IN ('held', 'captured', 'voided', 'expired')", name="status"),
        CheckConstraint("channel IN ('paycode', 'merchant_code')", name="channel"),
        Index("ix_redemptions_merchant_id_id", "merchant_id", "id"),
        Index("ix_redemptions_resident_id_id", "resident_id", "id"),
        Index("ix_redemptions_status_hold_expires_at", "status", "hold_expires_at"),
        # The anomaly report's merchant volumes: one merchant's captures over a window.
        Index("ix_redemptions_merchant_id_captured_at", "merchant_id", "captured_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    community_id: Mapped[int] = mapped_column(BigInteger)
    district_id: Mapped[int] = mapped_column(BigInteger)
    offer_id: Mapped[int | None] = mapped_column(ForeignKey("offers.id"), index=True)
    quantity: Mapped[int | None] = mapped_column(Integer)
    unit_points: Mapped[int | None] = mapped_column(BigInteger)
    # Asked for (and held, for a hold); captured may be less; refunded never exceeds captured.
    points: Mapped[int] = mapped_column(BigInteger)
    captured_points: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_points: Mapped[int] = mapped_column(BigInteger, default=0)
    restocked: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    order_ref: Mapped[str | None] = mapped_column(String(64))
    resident_account_id: Mapped[int] = mapped_column(BigInteger)
    merchant_account_id: Mapped[int] = mapped_column(BigInteger)
    # Period keys the counters were taken under, so a void or refund gives back the same room.
    spend_period: Mapped[str] = mapped_column(String(16))
    offer_period: Mapped[str | None] = mapped_column(String(16))
    transaction_id: Mapped[int | None] = mapped_column(BigInteger)
    hold_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    captured_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Refund(db.Model):
    __tablename__ = "redemption_refunds"
    __table_args__ = (CheckConstraint("points > 0", name="points_positive"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    redemption_id: Mapped[int] = mapped_column(ForeignKey("redemptions.id"), index=True)
    points: Mapped[int] = mapped_column(BigInteger)
    restocked: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(500))
    transaction_id: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Settlement(db.Model):
    """Points paid out to a merchant: its balance moved to the district's settlement account."""

    __tablename__ = "merchant_settlements"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        Index("ix_merchant_settlements_merchant_id_id", "merchant_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    payment_reference: Mapped[str] = mapped_column(String(64))
    transaction_id: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SpendCounter(db.Model):
    """Points or units a resident used per counter and period (daily limit, offer limits)."""

    __tablename__ = "redemption_counters"
    __table_args__ = (CheckConstraint("amount >= 0", name="amount_nonnegative"),)

    resident_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # "spend" for the community's daily limit, "offer:<id>" for an offer's per-resident limit.
    counter: Mapped[str] = mapped_column(String(32), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)


class RedemptionPolicy(db.Model):
    """A community's spending settings (absent: the defaults)."""

    __tablename__ = "redemption_policies"

    community_id: Mapped[int] = mapped_column(ForeignKey("org_nodes.id"), primary_key=True)
    daily_limit: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
