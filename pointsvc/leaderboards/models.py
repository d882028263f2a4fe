"""Leaderboard tallies, their score histograms, the tally outbox, and honours.

Tallies are derived data: the ledger is the truth and `flask leaderboards rebuild` recomputes
them from it. A posting only appends its transaction id to `leaderboard_outbox` (inside the
posting's database transaction); the drainer (pointsvc/leaderboards/tallies.py) folds the
outbox into tallies and histograms in batches, so the posting path never touches the
many-indexed tally rows.
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
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..common import utcnow
from ..extensions import BigId, db

LEVELS = ("district", "street", "community", "grid")
# Scopes big enough to need a score histogram for their ranks (the others count directly).
HISTOGRAM_LEVELS = ("district", "street")
METRICS = ("points", "minutes")
BADGE_METRICS = ("actions", "points", "hours")
BADGE_PERIODS = ("week", "month", "year", "all")


def _board_indexes() -> tuple[Index, ...]:
    # One index per (scope level, metric): a board is one backward range scan of it. The
    # minutes indexes are partial (minutes > 0, the only rows an hours board lists), so the
    # many tally rows without service hours cost the drainer four index updates fewer.
    indexes = []
    for level in LEVELS:
        for metric in METRICS:
            partial = {"postgresql_where": text("minutes > 0"),
                       "sqlite_where": text("minutes > 0")} if metric == "minutes" else {}
            indexes.append(Index(f"ix_leaderboard_tallies_{level}_{metric}", f"{level}_id",
                                 "period", "category", "listed", metric, "resident_id",
                                 **partial))
    return tuple(indexes)


class Tally(db.Model):
    """Points and service minutes a resident earned in one period and category."""

    __tablename__ = "leaderboard_tallies"
    __table_args__ = _board_indexes()

    resident_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # "all", "y:2026", "m:2026-11", "w:2026-W48" (local dates of the community's time zone)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    # volunteer | environment | conduct | other | all
    category: Mapped[str] = mapped_column(String(16), primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    minutes: Mapped[int] = mapped_column(BigInteger, default=0)
    # False for minors and residents who chose "hidden": never on a board others see.
    listed: Mapped[bool] = mapped_column(Boolean, default=True)
    district_id: Mapped[int] = mapped_column(BigInteger)
    street_id: Mapped[int] = mapped_column(BigInteger)
    community_id: Mapped[int] = mapped_column(BigInteger)
    grid_id: Mapped[int] = mapped_column(BigInteger)  # 0: no grid
    # What others see: the masked name (张*明); NULL for anonymous residents (shown as
    # 匿名居民) and unlisted rows. Kept by the drainer, so a board joins no people tables.
    shown_name: Mapped[str | None] = mapped_column(String(100))


class ScoreCount(db.Model):
    """How many listed residents of a district or street hold each score: ranks in
    O(distinct scores) instead of O(residents)."""

    __tablename__ = "leaderboard_score_counts"

    node_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    category: Mapped[str] = mapped_column(String(16), primary_key=True)
    metric: Mapped[str] = mapped_column(String(8), primary_key=True)
    score: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    residents: Mapped[int] = mapped_column(BigInteger, default=0)


class TallyOutbox(db.Model):
    """Transactions posted but not yet folded into the tallies."""

    __tablename__ = "leaderboard_outbox"

    transaction_id: Mapped[int] = mapped_column(BigInteger, primary_key=True,
                                                autoincrement=False)


class RelistOutbox(db.Model):
    """Residents whose privacy, minor flag or place changed: their tally rows move."""

    __tablename__ = "leaderboard_relist"

    resident_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class Badge(db.Model):
    """A staff-defined badge: a condition on a resident's postings, granted once."""

    __tablename__ = "honour_badges"
    __table_args__ = (
        UniqueConstraint("org_node_id", "code"),
        CheckConstraint("metric IN ('actions', 'points', 'hours')", name="metric"),
        CheckConstraint("period IN ('week', 'month', 'year', 'all')", name="period"),
        CheckConstraint("threshold > 0", name="threshold_positive"),
        CheckConstraint("rule_code IS NOT NULL OR category IS NOT NULL", name="has_subject"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_node_id: Mapped[int] = mapped_column(ForeignKey("org_nodes.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    title_zh: Mapped[str] = mapped_column(String(100))
    title_en: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(500))
    rule_code: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(16))
    metric: Mapped[str] = mapped_column(String(8))
    threshold: Mapped[int] = mapped_column(BigInteger)
    period: Mapped[str] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BadgeGrant(db.Model):
    """A badge a resident earned; the unique pair makes "granted once" hold under any race."""

    __tablename__ = "honour_badge_grants"
    __table_args__ = (UniqueConstraint("badge_id", "resident_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    badge_id: Mapped[int] = mapped_column(ForeignKey("honour_badges.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    period: Mapped[str] = mapped_column(String(16))  # the period in which it was earned
    transaction_id: Mapped[int | None] = mapped_column(BigInteger)  # the posting that tipped it
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Designation(db.Model):
    """An honour staff confer by hand (最美志愿者 of the month), with its citation."""

    __tablename__ = "honour_designations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("org_nodes.id"))
    title: Mapped[str] = mapped_column(String(100))
    citation: Mapped[str] = mapped_column(Text)
    period_label: Mapped[str | None] = mapped_column(String(32))
    designated_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
