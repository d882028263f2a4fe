"""Ledger tables: accounts, transactions, entries, rules, idempotency keys and seals.

Transactions and entries are append-only (triggers in the migration refuse UPDATE and
DELETE). Every row carries its community and district so the tables can be distributed
by district later. No personal data lives in hashed content: people appear only as ids,
free text lives in `ledger_memos`, outside the append-only rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..common import utcnow
from ..extensions import BigId, db

ACCOUNT_KINDS = ("resident", "merchant", "issuance", "expiry", "settlement")
TRANSACTION_KINDS = (
    "award",
    "deduction",
    "redemption",
    "refund",
    "reversal",
    "expiry",
    "settlement",
    "adjustment",
)
CATEGORIES = ("volunteer", "environment", "conduct", "other")
UNITS = ("action", "hour")
SHARDS_PER_SYSTEM_ACCOUNT = 16


class Account(db.Model):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint("NOT bounded OR balance >= 0", name="bounded_nonnegative"),
        CheckConstraint(
            "kind IN ('resident', 'merchant', 'issuance', 'expiry', 'settlement')", name="kind"
        ),
        UniqueConstraint("kind", "owner_id", "community_id", "district_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    # resident id for resident accounts, merchant id for merchant accounts, 0 for system ones.
    owner_id: Mapped[int] = mapped_column(BigInteger, default=0)
    community_id: Mapped[int] = mapped_column(BigInteger, default=0)
    district_id: Mapped[int] = mapped_column(BigInteger)
    bounded: Mapped[bool] = mapped_column(Boolean)
    # Exact for bounded accounts; unbounded (system) accounts keep theirs in account shards.
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    held: Mapped[int] = mapped_column(BigInteger, default=0)
    total_credited: Mapped[int] = mapped_column(BigInteger, default=0)
    total_debited: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AccountShard(db.Model):
    """Sub-balances of a system account: postings lock one random shard, never a single hot row."""

    __tablename__ = "ledger_account_shards"

    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)


class LedgerTransaction(db.Model):
    __tablename__ = "ledger_transactions"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('award', 'deduction', 'redemption', 'refund', 'reversal', 'expiry', "
            "'settlement', 'adjustment')",
            name="kind",
        ),
        CheckConstraint("shortfall >= 0", name="shortfall_nonnegative"),
        Index("ix_ledger_transactions_community_created", "community_id", "created_at"),
        Index("ix_ledger_transactions_reference", "reference_type", "reference_id"),
        # Audit search (migration 0012): rule-code searches in id order, and time windows
        # over a whole district (BRIN: tiny and cheap to keep on an append-only table).
        Index("ix_ledger_transactions_rule_code_id", "rule_code", "id"),
        Index("ix_ledger_transactions_created_at_brin", "created_at", postgresql_using="brin"),
        # Migration 0014: a community's postings newest first (audit pages of one community).
        Index("ix_ledger_transactions_community_id_id", "community_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    community_id: Mapped[int] = mapped_column(BigInteger)
    district_id: Mapped[int] = mapped_column(BigInteger)
    rule_id: Mapped[int | None] = mapped_column(BigInteger)
    rule_code: Mapped[str | None] = mapped_column(String(64))
    rule_version: Mapped[int | None] = mapped_column(Integer)
    category: Mapped[str | None] = mapped_column(String(16))
    quantity: Mapped[int | None] = mapped_column(BigInteger)
    reference_type: Mapped[str | None] = mapped_column(String(32))
    reference_id: Mapped[str | None] = mapped_column(String(64))
    subject_resident_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    reverses_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), unique=True
    )
    shortfall: Mapped[int] = mapped_column(BigInteger, default=0)
    # Derived, not hashed: the sum of the positive entries (ledger/service.moved_points).
    amount: Mapped[int] = mapped_column(BigInteger)
    memo_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    content_hash: Mapped[str] = mapped_column(String(64))


class Entry(db.Model):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        Index("ix_ledger_entries_account_id_id", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int | None] = mapped_column(BigInteger)
    community_id: Mapped[int] = mapped_column(BigInteger)
    district_id: Mapped[int] = mapped_column(BigInteger)


class Memo(db.Model):
    """Free text about a transaction, outside the hashed rows so it can be erased."""

    __tablename__ = "ledger_memos"

    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("ledger_transactions.id"), primary_key=True
    )
    salt: Mapped[str] = mapped_column(String(32))
    memo: Mapped[str | None] = mapped_column(Text)
    evidence_ref: Mapped[str | None] = mapped_column(String(500))
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Rule(db.Model):
    """One version of a rule; editing inserts the next version, old ones stay readable."""

    __tablename__ = "ledger_rules"
    __table_args__ = (
        UniqueConstraint("org_node_id", "code", "version"),
        CheckConstraint(
            "category IN ('volunteer', 'environment', 'conduct', 'other')", name="category"
        ),
        CheckConstraint("unit IN ('action', 'hour')", name="unit"),
        CheckConstraint("points <> 0", name="points_nonzero"),
        Index("ix_ledger_rules_code", "code"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_node_id: Mapped[int] = mapped_column(ForeignKey("org_nodes.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(300))
    category: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(8))
    cap_day: Mapped[int | None] = mapped_column(Integer)
    cap_week: Mapped[int | None] = mapped_column(Integer)
    cap_month: Mapped[int | None] = mapped_column(Integer)
    approval_required: Mapped[bool] = mapped_column(Boolean, default=False)
    active_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    active_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CapCounter(db.Model):
    """Points a resident earned under one rule code in one period (day/week/month)."""

    __tablename__ = "ledger_cap_counters"

    resident_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    rule_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)  # d:2026-11-22, w:..., m:..
    points: Mapped[int] = mapped_column(BigInteger, default=0)


class CommunityPolicy(db.Model):
    __tablename__ = "ledger_community_policies"

    community_id: Mapped[int] = mapped_column(ForeignKey("org_nodes.id"), primary_key=True)
    approval_threshold: Mapped[int] = mapped_column(Integer, default=200)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PendingAward(db.Model):
    """Maker-checker: an award or adjustment waiting for a second staff member."""

    __tablename__ = "ledger_pending_awards"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"),
        Index("ix_ledger_pending_awards_community_status", "community_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("org_nodes.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_rules.id"))
    quantity: Mapped[int | None] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    memo: Mapped[str | None] = mapped_column(Text)
    evidence_ref: Mapped[str | None] = mapped_column(String(500))
    reason_required: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_reason: Mapped[str | None] = mapped_column(String(500))
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IdempotencyKey(db.Model):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class Seal(db.Model):
    """A signed Merkle tree head over every sealed transaction (RFC 9162 style)."""

    __tablename__ = "ledger_seals"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tree_size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[str] = mapped_column(String(64))
    previous_root_hash: Mapped[str] = mapped_column(String(64))
    sealed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(128))
    # The perfect-subtree roots after this seal ([[size, hex], ...]): the next seal extends
    # the tree from here without rereading every leaf.
    frontier: Mapped[str] = mapped_column(Text)


class SealLeaf(db.Model):
    """Leaf i of the transparency tree; append-only, so transaction rows are never updated."""

    __tablename__ = "ledger_seal_leaves"

    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("ledger_transactions.id"), unique=True
    )
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    seal_seq: Mapped[int] = mapped_column(Integer, index=True)


class AuditEvent(db.Model):
    """Staff actions and refused attempts (the audit issue builds search on top of it)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_community_created", "community_id", "created_at"),
                      Index("ix_audit_events_target", "target_type", "target_id"),
                      Index("ix_audit_events_action", "action"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    community_id: Mapped[int | None] = mapped_column(BigInteger)
    client_address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    # JSON of the changed fields before and after (ids and non-personal values only).
    before_values: Mapped[str | None] = mapped_column(Text)
    after_values: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
