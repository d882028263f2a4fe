"""The rule book (积分规则): versioned rules defined on a node, inherited and overridden below."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from .. import sql
from ..audit.actions import service as action_log
from ..common import as_utc, utcnow
from ..errors import Conflict, DomainError, NotFound, ValidationFailed
from ..extensions import db
from ..orgs.service import node_facts
from .models import Rule

EDITABLE = (
    "title_zh",
    "title_en",
    "category",
    "points",
    "unit",
    "cap_day",
    "cap_week",
    "cap_month",
    "approval_required",
    "active_from",
    "active_until",
    "retired",
)


def get_rule(*, rule_id: int) -> Rule:
    """One version of a rule, or 404."""
    rule = db.session.get(Rule, rule_id)
    if rule is None:
        raise NotFound("not_found", f"rule {rule_id} does not exist")
    return rule


def _check_window(values: dict[str, Any]) -> None:
    # Stored as UTC: SQLite keeps no offset, so a "+08:00" instant would come back 8 h off.
    for name in ("active_from", "active_until"):
        if values.get(name) is not None:
            values[name] = as_utc(values[name])
    start, end = values.get("active_from"), values.get("active_until")
    if start and end and end <= start:
        raise ValidationFailed(errors={"active_until": ["Must be after active_from."]})


def create_rule(*, org_node_id: int, actor_user_id: int, values: dict[str, Any]) -> Rule:
    """Version 1 of a new rule code on a node (409 if the node already defines the code)."""
    _check_window(values)
    exists = db.session.scalar(
        select(Rule.id).where(Rule.org_node_id == org_node_id, Rule.code == values["code"])
    )
    if exists:
        raise Conflict("conflict", "this node already defines the code; edit it instead")
    rule = Rule(
        org_node_id=org_node_id, version=1, is_current=True, created_by=actor_user_id, **values
    )
    db.session.add(rule)
    db.session.flush()
    action_log.record_event(
        actor_user_id=actor_user_id, action="rule.created", target_type="rule",
        target_id=rule.id, community_id=org_node_id, before=None,
        after={"code": rule.code, "version": 1, **{name: getattr(rule, name) for name in EDITABLE}})
    db.session.commit()
    return rule


def edit_rule(*, rule_id: int, actor_user_id: int, changes: dict[str, Any]) -> Rule:
    """Make the next version of a rule; the old version stays readable and referenced."""
    current = get_rule(rule_id=rule_id)
    if not current.is_current:
        raise Conflict("invalid_state", "only the current version of a rule can be edited")
    values = {name: getattr(current, name) for name in EDITABLE}
    values.update(changes)
    _check_window(values)
    claimed = db.session.execute(
        update(Rule).where(Rule.id == current.id, Rule.is_current.is_(True)).values(
            is_current=False
        )
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        raise Conflict("conflict", "the rule was edited concurrently; reload and retry")
    successor = Rule(
        org_node_id=current.org_node_id,
        code=current.code,
        version=current.version + 1,
        is_current=True,
        created_by=actor_user_id,
        **values,
    )
    db.session.add(successor)
    db.session.flush()
    before, after = action_log.changes({name: getattr(current, name) for name in EDITABLE}, values)
    action_log.record_event(
        actor_user_id=actor_user_id, action="rule.edited", target_type="rule",
        target_id=successor.id, community_id=current.org_node_id,
        detail={"code": current.code, "previous_rule_id": current.id},
        before={"version": current.version, **before},
        after={"version": successor.version, **after})
    db.session.commit()
    return successor


def versions_of(*, rule_id: int) -> list[Rule]:
    """Every version of the rule's code on its node, newest first."""
    rule = get_rule(rule_id=rule_id)
    return list(
        db.session.scalars(
            select(Rule)
            .where(Rule.org_node_id == rule.org_node_id, Rule.code == rule.code)
            .order_by(Rule.version.desc())
        )
    )


def effective_rules(*, node_path: str) -> list[Rule]:
    """The rule book in force at a node: current versions, the deepest definition of a code wins."""
    ancestor_ids = [int(part) for part in node_path.strip("/").split("/") if part]
    depth = {node_id: index for index, node_id in enumerate(ancestor_ids)}
    chosen: dict[str, Rule] = {}
    for rule in db.session.scalars(
        select(Rule).where(Rule.org_node_id.in_(ancestor_ids), Rule.is_current.is_(True))
    ):
        best = chosen.get(rule.code)
        if best is None or depth[rule.org_node_id] > depth[best.org_node_id]:
            chosen[rule.code] = rule
    return sorted(chosen.values(), key=lambda rule: rule.code)


def is_active(rule: Rule | RuleFacts, at: datetime | None = None) -> bool:
    """Current, not retired, and inside its active window."""
    at = at or utcnow()
    if rule.retired or not rule.is_current:
        return False
    if rule.active_from and as_utc(rule.active_from) > at:
        return False
    return not (rule.active_until and as_utc(rule.active_until) <= at)


@dataclass(frozen=True)
class RuleFacts:
    """A read-only snapshot of one rule version (what postings need; cheaper than the ORM)."""

    id: int
    org_node_id: int
    code: str
    version: int
    title_zh: str
    title_en: str
    category: str
    points: int
    unit: str
    cap_day: int | None
    cap_week: int | None
    cap_month: int | None
    approval_required: bool
    active_from: datetime | None
    active_until: datetime | None
    retired: bool
    is_current: bool


RULE_COLUMNS = tuple(field.name for field in fields(RuleFacts))
_RULE_COLUMNS = ", ".join(RULE_COLUMNS)


def resolve(*, community_id: int, code: str) -> RuleFacts:
    """The active rule with this code at a community, or 422 rule_not_found."""
    facts = node_facts(node_id=community_id)
    ancestor_ids = [int(part) for part in (facts.path if facts else "/").strip("/").split("/")
                    if part]
    depth = {node_id: index for index, node_id in enumerate(ancestor_ids)}
    marks = ", ".join(f"%(n{index})s" for index in range(len(ancestor_ids)))
    # Only this code's current versions along the path: the deepest definition wins.
    candidates = [rule_facts(row) for row in sql.rows(
        f"SELECT {_RULE_COLUMNS} FROM ledger_rules WHERE code = %(code)s AND is_current = "
        f"%(yes)s AND org_node_id IN ({marks or 'NULL'})",
        {"code": code, "yes": True, **{f"n{i}": node for i, node in enumerate(ancestor_ids)}},
    )]
    deepest = max(candidates, key=lambda rule: depth[rule.org_node_id]) if candidates else None
    return active_rule(deepest, code=code)


def active_rule(rule: RuleFacts | None, *, code: str) -> RuleFacts:
    """The rule in force (the deepest current version of the code), if active; else 422."""
    if rule is not None and is_active(rule):
        return rule
    raise DomainError("rule_not_found", f"no active rule {code!r} here", status=422)


def rule_facts(row: tuple | list) -> RuleFacts:
    """A RuleFacts from RULE_COLUMNS as read by sql.rows (either backend)."""
    values = list(row)
    values[12], values[15], values[16] = bool(values[12]), bool(values[15]), bool(values[16])
    values[13], values[14] = sql.from_db_time(values[13]), sql.from_db_time(values[14])
    return RuleFacts(*values)


def period_keys(*, at: datetime, timezone: str) -> dict[str, str]:
    """Cap period keys (day, ISO week, month) of an instant in the community's time zone."""
    local = at.astimezone(ZoneInfo(timezone))
    year, week, _ = local.isocalendar()
    return {
        "day": f"d:{local:%Y-%m-%d}",
        "week": f"w:{year}-W{week:02d}",
        "month": f"m:{local:%Y-%m}",
    }


def points_for(*, rule: Rule, quantity: int) -> int:
    """Points of a quantity: actions × points, or minutes × points-per-hour rounded down."""
    if rule.unit == "hour":
        magnitude = abs(rule.points) * quantity // 60
        return magnitude if rule.points > 0 else -magnitude
    return rule.points * quantity
