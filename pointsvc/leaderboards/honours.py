"""Honours (荣誉激励): star levels, badges granted automatically once, designated honours."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text

from ..common import as_utc
from ..errors import Conflict, ValidationFailed
from ..extensions import db
from ..ledger.awards import get_resident, record_event
from ..ledger.service import _insert
from ..orgs.models import OrgNode
from .models import Badge, BadgeGrant, Designation, Tally
from .tallies import ALL, Places, RankedRow, period_bounds, period_key

# DESIGN.md §7 (志愿服务记录办法, 2012): cumulative recorded service hours per star.
STAR_HOURS = (100, 300, 600, 1000, 1500)


def star_level(*, minutes: int) -> int:
    """0..5 stars for cumulative service minutes."""
    return sum(1 for hours in STAR_HOURS if minutes >= hours * 60)


def next_star_hours(*, minutes: int) -> int | None:
    """Hours needed for the next star, None at five stars."""
    for hours in STAR_HOURS:
        if minutes < hours * 60:
            return hours
    return None


def service_minutes(*, resident_id: int) -> int:
    """Cumulative recorded service minutes (per-hour rules, net of reversals)."""
    value = db.session.scalar(
        select(Tally.minutes).where(Tally.resident_id == resident_id, Tally.period == ALL,
                                    Tally.category == ALL))
    return int(value or 0)


# -- badges -------------------------------------------------------------------------------


def create_badge(*, org_node_id: int, actor_user_id: int, values: dict[str, Any]) -> Badge:
    """Define a badge on a node (it applies to residents of the node's subtree)."""
    if not values.get("rule_code") and not values.get("category"):
        raise ValidationFailed(errors={"rule_code": ["Give a rule_code or a category."]})
    exists = db.session.scalar(select(Badge.id).where(Badge.org_node_id == org_node_id,
                                                      Badge.code == values["code"]))
    if exists:
        raise Conflict("conflict", "this node already defines a badge with this code")
    badge = Badge(org_node_id=org_node_id, created_by=actor_user_id, **values)
    db.session.add(badge)
    db.session.flush()
    record_event(actor_user_id=actor_user_id, action="badge.defined", target_type="badge",
                 target_id=badge.id, community_id=org_node_id,
                 detail={"org_node_id": org_node_id, **values})
    db.session.commit()
    return badge


def badges_on(*, paths: list[str], ancestors_of: str | None = None) -> list[Badge]:
    """Badges defined on or under the given nodes, or on a community and its ancestors."""
    found = []
    for badge, path in db.session.execute(
        select(Badge, OrgNode.path).join(OrgNode, OrgNode.id == Badge.org_node_id)
        .order_by(Badge.id)
    ):
        under = any(path.startswith(p) for p in paths)
        if under or (ancestors_of is not None and ancestors_of.startswith(path)):
            found.append(badge)
    return found


def _active_badges() -> list[tuple[Badge, str]]:
    return list(db.session.execute(
        select(Badge, OrgNode.path).join(OrgNode, OrgNode.id == Badge.org_node_id)
        .where(Badge.active.is_(True))
    ).all())


def _matches(badge: Badge, row: RankedRow) -> bool:
    if badge.rule_code is not None and badge.rule_code != row.rule_code:
        return False
    return badge.category is None or badge.category == row.category


_PROGRESS_SQL = """
SELECT COUNT(*), COALESCE(SUM(p.points), 0), COALESCE(SUM(p.minutes), 0) FROM (
  SELECT t.id,
         (SELECT COALESCE(SUM(e.amount), 0) FROM ledger_entries e
            JOIN ledger_accounts a ON a.id = e.account_id
           WHERE e.transaction_id = t.id AND a.kind = 'resident'
             AND a.owner_id = t.subject_resident_id) AS points,
         CASE WHEN r.unit = 'hour' AND t.kind = 'award' THEN COALESCE(t.quantity, 0)
              ELSE 0 END AS minutes
  FROM ledger_transactions t LEFT JOIN ledger_rules r ON r.id = t.rule_id
  WHERE t.subject_resident_id = :resident AND t.kind IN ('award', 'deduction', 'adjustment')
    AND NOT EXISTS (SELECT 1 FROM ledger_transactions x WHERE x.reverses_id = t.id)
    {conditions}
) p
"""


def badge_progress(*, badge: Badge, resident_id: int, start: datetime | None,
                   end: datetime | None) -> int:
    """The badge's metric for a resident over [start, end), net of reversed postings."""
    conditions, params = [], {"resident": resident_id}
    if badge.rule_code is not None:
        conditions.append("AND t.rule_code = :rule_code")
        params["rule_code"] = badge.rule_code
    if badge.category is not None:
        conditions.append("AND t.category = :category")
        params["category"] = badge.category
    if start is not None:
        conditions.append("AND t.created_at >= :start AND t.created_at < :end")
        params.update(start=start, end=end)
    actions, points, minutes = db.session.execute(
        text(_PROGRESS_SQL.format(conditions=" ".join(conditions))), params).one()
    return {"actions": int(actions), "points": int(points), "hours": int(minutes) // 60}[
        badge.metric]


def evaluate_badges(*, rows: Iterable[RankedRow], places: Places | None = None) -> int:
    """Grant every badge a batch of postings completed; each at most once per resident.

    Runs in the drainer's transaction. The unique (badge, resident) pair and
    INSERT … ON CONFLICT DO NOTHING keep it once even if two drainers ever raced.
    """
    rows = [row for row in rows if row.points > 0 or row.minutes > 0]
    badges = _active_badges() if rows else []
    if not badges:
        return 0
    places = places or Places()
    held = _held(badge_ids=[b.id for b, _ in badges], resident_ids={r.resident_id for r in rows})
    community_paths = dict(db.session.execute(
        select(OrgNode.id, OrgNode.path).where(
            OrgNode.id.in_(sorted({row.community_id for row in rows})))).all())
    granted = 0
    for row in rows:
        path = community_paths[row.community_id]
        for badge, badge_path in badges:
            if (badge.id, row.resident_id) in held or not path.startswith(badge_path):
                continue
            if not _matches(badge, row):
                continue
            timezone = places.community(row.community_id)[2]
            day = as_utc(row.earned_at).astimezone(ZoneInfo(timezone)).date()
            start, end = period_bounds(period=badge.period, day=day, timezone=timezone)
            if badge_progress(badge=badge, resident_id=row.resident_id, start=start,
                              end=end) < badge.threshold:
                continue
            # RETURNING, not rowcount: a conflicting insert that did nothing must say so.
            inserted = db.session.execute(
                _insert(BadgeGrant.__table__).values(
                    badge_id=badge.id, resident_id=row.resident_id,
                    period=period_key(period=badge.period, day=day),
                    transaction_id=row.transaction_id, granted_at=_now())
                .on_conflict_do_nothing()
                .returning(BadgeGrant.__table__.c.id)
            ).scalar()
            held.add((badge.id, row.resident_id))
            if inserted is not None:
                granted += 1
                record_event(actor_user_id=None, action="badge.granted",
                             target_type="resident", target_id=row.resident_id,
                             community_id=row.community_id,
                             detail={"badge_id": badge.id, "code": badge.code,
                                     "transaction_id": row.transaction_id})
    return granted


def _now() -> datetime:
    from ..common import utcnow

    return utcnow()


def _held(*, badge_ids: list[int], resident_ids: set[int]) -> set[tuple[int, int]]:
    return set(db.session.execute(
        select(BadgeGrant.badge_id, BadgeGrant.resident_id).where(
            BadgeGrant.badge_id.in_(badge_ids), BadgeGrant.resident_id.in_(sorted(resident_ids)))
    ).all())


# -- designated honours -------------------------------------------------------------------


def designate(*, resident_id: int, actor_user_id: int, title: str, citation: str,
              period_label: str | None) -> Designation:
    """Confer an honour by hand, with its citation; logged in audit_events."""
    resident = get_resident(resident_id=resident_id)
    honour = Designation(resident_id=resident.id, community_id=resident.community_id,
                         title=title, citation=citation, period_label=period_label,
                         designated_by=actor_user_id)
    db.session.add(honour)
    db.session.flush()
    record_event(actor_user_id=actor_user_id, action="honour.designated",
                 target_type="resident", target_id=resident.id,
                 community_id=resident.community_id,
                 detail={"designation_id": honour.id, "title": title,
                         "period_label": period_label})
    db.session.commit()
    return honour


# -- reading ------------------------------------------------------------------------------


def honours_of(*, resident_id: int, english: bool = False) -> dict[str, Any]:
    """Star level, service hours, badges and designated honours of a resident."""
    get_resident(resident_id=resident_id)  # 404 for an unknown resident
    minutes = service_minutes(resident_id=resident_id)
    badges = [
        {"badge_id": badge.id, "code": badge.code,
         "title": badge.title_en if english else badge.title_zh,
         "period": grant.period, "granted_at": as_utc(grant.granted_at).isoformat()}
        for grant, badge in db.session.execute(
            select(BadgeGrant, Badge).join(Badge, Badge.id == BadgeGrant.badge_id)
            .where(BadgeGrant.resident_id == resident_id).order_by(BadgeGrant.id))
    ]
    designations = [
        {"id": d.id, "title": d.title, "citation": d.citation, "period_label": d.period_label,
         "designated_at": as_utc(d.created_at).isoformat()}
        for d in db.session.scalars(
            select(Designation).where(Designation.resident_id == resident_id)
            .order_by(Designation.id))
    ]
    return {
        "resident_id": resident_id,
        "service_minutes": minutes,
        "service_hours": round(minutes / 60, 1),
        "star_level": star_level(minutes=minutes),
        "next_star_hours": next_star_hours(minutes=minutes),
        "badges": badges,
        "designations": designations,
    }
