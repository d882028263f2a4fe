"""Event tables: events, sign-ups, scans, live attendee state, attendance lines, cards, kiosks.

Points never live here: closing an event posts one ledger transaction per resident through
ledger post_many(), referencing `event_attendance:<event>:<resident>`. Accepted scans are the
source of truth for attendance; `event_attendees` is only the latest state (inside or not)
that the check-in path and the kiosk's live count read.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..common import utcnow
from ..extensions import BigId, db

EVENT_STATUSES = ("draft", "published", "closed", "cancelled")
SETTLEMENTS = ("none", "awaiting_approval", "posted")
CLOSE_POLICIES = ("credit_to_end", "no_credit")
SIGNUP_STATUSES = ("confirmed", "waitlisted", "cancelled")
LINE_STATUSES = ("pending", "rejected", "posted", "no_points")
CATEGORIES = ("volunteer", "environment", "conduct", "other")


class Event(db.Model):
    """A community event residents attend; its rule pays per hour or per attendance."""

    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'published', 'closed', 'cancelled')",
                        name="status"),
        CheckConstraint("settlement IN ('none', 'awaiting_approval', 'posted')",
                        name="settlement"),
        CheckConstraint("close_policy IN ('credit_to_end', 'no_credit')", name="close_policy"),
        CheckConstraint("category IN ('volunteer', 'environment', 'conduct', 'other')",
                        name="category"),
        CheckConstraint("capacity IS NULL OR capacity > 0", name="capacity_positive"),
        CheckConstraint("confirmed_count >= 0 AND (capacity IS NULL OR confirmed_count <= "
                        "capacity)", name="confirmed_within_capacity"),
        CheckConstraint("points_cap IS NULL OR points_cap >= 0", name="points_cap_nonnegative"),
        CheckConstraint("credit_granularity_minutes > 0", name="granularity_positive"),
        Index("ix_events_org_node_id_id", "org_node_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_node_id: Mapped[int] = mapped_column(ForeignKey("org_nodes.id"))
    district_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(4000))
    category: Mapped[str] = mapped_column(String(16))
    rule_code: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    place: Mapped[str] = mapped_column(String(300))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    radius_m: Mapped[int | None] = mapped_column(Integer)
    capacity: Mapped[int | None] = mapped_column(Integer)
    signup_required: Mapped[bool] = mapped_column(Boolean, default=False)
    approval_required: Mapped[bool] = mapped_column(Boolean, default=False)
    points_cap: Mapped[int | None] = mapped_column(Integer)
    credit_granularity_minutes: Mapped[int] = mapped_column(Integer, default=15)
    close_policy: Mapped[str] = mapped_column(String(16), default="credit_to_end")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    settlement: Mapped[str] = mapped_column(String(24), default="none")
    # Moved only by conditional updates under the event row's lock (see service.signup).
    confirmed_count: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped by every sign-up and cancellation: the row lock, and the wait-list's order.
    queue_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[int | None] = mapped_column(BigInteger)


class Signup(db.Model):
    """A resident's place (or wait-list position, by queue_seq) at an event."""

    __tablename__ = "event_signups"
    __table_args__ = (
        UniqueConstraint("event_id", "resident_id"),
        CheckConstraint("status IN ('confirmed', 'waitlisted', 'cancelled')", name="status"),
        Index("ix_event_signups_event_id_status_queue_seq", "event_id", "status", "queue_seq"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    queue_seq: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    promoted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Scan(db.Model):
    """One accepted scan (resident scanning the event code, or staff scanning a card)."""

    __tablename__ = "event_scans"
    __table_args__ = (
        # DESIGN §4: unique (resident, event, direction, step) and the client's nonce.
        UniqueConstraint("event_id", "resident_id", "direction", "step"),
        UniqueConstraint("nonce_scope", "nonce"),
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        CheckConstraint("source IN ('code', 'card')", name="source"),
        Index("ix_event_scans_event_id_resident_id_at", "event_id", "resident_id", "at"),
        Index("ix_event_scans_resident_id_received_at", "resident_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    direction: Mapped[str] = mapped_column(String(3))
    source: Mapped[str] = mapped_column(String(8))
    step: Mapped[int | None] = mapped_column(BigInteger)
    # When the scan counts: the server's clock online, the (corrected) device clock offline.
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    scanned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    nonce_scope: Mapped[str] = mapped_column(String(24))
    nonce: Mapped[str] = mapped_column(String(64))
    actor_user_id: Mapped[int] = mapped_column(BigInteger)
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)


class Attendee(db.Model):
    """Latest state of a resident at an event (moved only by scans at or after last_at)."""

    __tablename__ = "event_attendees"
    __table_args__ = (Index("ix_event_attendees_resident_id_inside", "resident_id", "inside"),
                      Index("ix_event_attendees_event_id_inside", "event_id", "inside"))

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), primary_key=True,
                                          autoincrement=False)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), primary_key=True,
                                             autoincrement=False)
    inside: Mapped[bool] = mapped_column(Boolean)
    first_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AttendanceLine(db.Model):
    """A resident's attendance at a closed event: minutes credited, points, ledger link."""

    __tablename__ = "event_attendance"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'rejected', 'posted', 'no_points')",
                        name="status"),
        CheckConstraint("minutes >= 0 AND points >= 0", name="nonnegative"),
        Index("ix_event_attendance_resident_id", "resident_id"),
    )

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), primary_key=True,
                                          autoincrement=False)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), primary_key=True,
                                             autoincrement=False)
    community_id: Mapped[int] = mapped_column(BigInteger)
    stays: Mapped[int] = mapped_column(Integer)
    first_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    raw_minutes: Mapped[int] = mapped_column(Integer)
    minutes: Mapped[int] = mapped_column(Integer)
    # Points before the caps, and what was (or will be) posted after the event and rule caps.
    computed_points: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    adjusted_by: Mapped[int | None] = mapped_column(BigInteger)
    adjust_reason: Mapped[str | None] = mapped_column(String(500))
    transaction_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ResidentCard(db.Model):
    """The current serial of a resident's printed card; older serials are revoked."""

    __tablename__ = "resident_cards"

    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), primary_key=True,
                                             autoincrement=False)
    serial: Mapped[int] = mapped_column(Integer, default=1)
    reissued_by: Mapped[int | None] = mapped_column(BigInteger)
    reissued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class KioskLink(db.Model):
    """A link that opens one event's kiosk page; only the token's hash is stored."""

    __tablename__ = "event_kiosk_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
