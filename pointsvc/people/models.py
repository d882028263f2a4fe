"""Users (anyone who signs in), role grants, residents, households, merchants."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..common import utcnow
from ..extensions import BigId, db

STAFF_ROLES = ("admin", "organizer", "auditor")
# Stored instead of a hash for accounts that have no usable password yet (bulk imports):
# argon2 rejects it as an invalid hash, so verify_password() returns False for any input.
UNUSABLE_PASSWORD = "!"
PRIVACY_CHOICES = ("public", "anonymous", "hidden")
MERCHANT_STATUSES = ("pending", "active", "suspended", "rejected")


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RoleGrant(db.Model):
    __tablename__ = "role_grants"
    __table_args__ = (
        UniqueConstraint("user_id", "role", "org_node_id"),
        CheckConstraint("role IN ('admin', 'organizer', 'auditor')", name="role"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    org_node_id: Mapped[int] = mapped_column(ForeignKey("org_nodes.id"), index=True)
    granted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Household(db.Model):
    __tablename__ = "households"
    # One label per community, so imports can find-or-create households idempotently.
    __table_args__ = (UniqueConstraint("community_id", "label"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("org_nodes.id"), index=True)
    label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Resident(db.Model):
    __tablename__ = "residents"
    __table_args__ = (
        CheckConstraint("privacy IN ('public', 'anonymous', 'hidden')", name="privacy"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("org_nodes.id"), index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("org_nodes.id"))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"), index=True)
    is_minor: Mapped[bool] = mapped_column(Boolean, default=False)
    privacy: Mapped[str] = mapped_column(String(16), default="public")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StaffHousehold(db.Model):
    """Which household a staff member belongs to (stops them awarding their own family)."""

    __tablename__ = "staff_households"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)


class Merchant(db.Model):
    __tablename__ = "merchants"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'active', 'suspended', 'rejected')", name="status"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300))
    category: Mapped[str] = mapped_column(String(64))
    org_node_id: Mapped[int] = mapped_column(ForeignKey("org_nodes.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    status_reason: Mapped[str | None] = mapped_column(String(500))
    contact_name: Mapped[str | None] = mapped_column(String(100))
    contact_phone: Mapped[str | None] = mapped_column(String(20))
    # Who put it on the books (None: a public application) and who last changed its status.
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status_changed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MerchantOperator(db.Model):
    __tablename__ = "merchant_operators"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
