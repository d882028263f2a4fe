"""Bulk awards: up to 10,000 items, validated as a whole, posted all or nothing.

Validation reads everything it needs in a few set-based queries; posting goes through
post_many(), the bulk form of the ledger's one door.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from .. import sql
from ..common import gc_paused, utcnow
from ..errors import DomainError, ValidationFailed
from ..extensions import db
from ..orgs.models import OrgNode
from . import rules as rulebook
from .awards import (
    DEFAULT_APPROVAL_THRESHOLD,
    record_event,
    staff_households,
)
from .models import CapCounter, CommunityPolicy, Rule
from .service import Leg, Transfer, _insert, ensure_accounts, issuance_account, post_many

Planned = tuple["BulkResident", Rule, int, dict[str, Any]]


@dataclass(frozen=True)
class BulkResident:
    id: int
    user_id: int | None
    community_id: int
    household_id: int | None


def _load_residents(ids: list[int]) -> dict[int, BulkResident]:
    return {row[0]: BulkResident(*row) for row in sql.rows_for_ids(
        "SELECT id, user_id, community_id, household_id FROM residents WHERE {ids}", "id", ids)}


def _communities(community_ids: set[int]) -> dict[int, OrgNode]:
    return {node.id: node for node in db.session.scalars(
        select(OrgNode).where(OrgNode.id.in_(community_ids)))}


def _thresholds(community_ids: set[int]) -> dict[int, int]:
    found = dict(db.session.execute(
        select(CommunityPolicy.community_id, CommunityPolicy.approval_threshold)
        .where(CommunityPolicy.community_id.in_(community_ids))).all())
    return {cid: found.get(cid, DEFAULT_APPROVAL_THRESHOLD) for cid in community_ids}


def validate_items(
    *, actor_user_id: int, scope_paths: list[str], items: list[dict[str, Any]]
) -> tuple[dict[int, list[str]], list[Planned]]:
    """Check every item; returns (errors by index, the planned postings)."""
    residents = _load_residents([item["resident_id"] for item in items])
    communities = _communities({r.community_id for r in residents.values()})
    thresholds = _thresholds(set(communities))
    households = staff_households(user_id=actor_user_id)
    in_scope = {community_id: any(node.path.startswith(p) for p in scope_paths)
                for community_id, node in communities.items()}
    rule_cache: dict[tuple[int, str], Rule | DomainError] = {}
    errors: dict[int, list[str]] = {}
    plan: list[Planned] = []
    for index, item in enumerate(items):
        resident = residents.get(item["resident_id"])
        if resident is None:
            errors[index] = [f"not_found: resident {item['resident_id']} does not exist"]
            continue
        if not in_scope[resident.community_id]:
            errors[index] = ["not_in_scope: the resident is outside your area"]
            continue
        if resident.user_id == actor_user_id or (
            resident.household_id is not None and resident.household_id in households
        ):
            errors[index] = ["self_dealing: you may not award yourself or your household"]
            continue
        key = (resident.community_id, item["rule_code"])
        if key not in rule_cache:
            try:
                rule_cache[key] = rulebook.resolve(community_id=key[0], code=key[1])
            except DomainError as exc:
                rule_cache[key] = exc
        rule = rule_cache[key]
        if isinstance(rule, DomainError):
            errors[index] = [f"{rule.code}: {rule.detail}"]
            continue
        points = rulebook.points_for(rule=rule, quantity=item["quantity"])
        if points <= 0:
            errors[index] = ["validation_failed: bulk posts awards only; the quantity or rule "
                             "earns no points (post deductions one at a time)"]
            continue
        if rule.approval_required or points > thresholds[resident.community_id]:
            errors[index] = ["approval_required: submit it as a single award for approval"]
            continue
        plan.append((resident, rule, points, item))
    _check_caps(plan, communities, errors)
    return errors, plan


def _check_caps(plan: list[Planned], communities: dict[int, OrgNode],
                errors: dict[int, list[str]]) -> None:
    """Reserve cap room for the whole batch (row-locked counters; item order decides)."""
    now = utcnow()
    wanted: dict[tuple[int, str, str], int] = {}
    caps: dict[tuple[int, str, str], int] = {}
    item_keys: list[list[tuple[int, str, str]]] = []
    keys_by_zone: dict[str, dict[str, str]] = {}  # one instant: its periods per time zone
    for resident, rule, _points, _item in plan:
        zone = communities[resident.community_id].timezone
        if zone not in keys_by_zone:
            keys_by_zone[zone] = rulebook.period_keys(at=now, timezone=zone)
        keys = keys_by_zone[zone]
        mine = []
        for name, cap in (("day", rule.cap_day), ("week", rule.cap_week),
                          ("month", rule.cap_month)):
            if cap is not None:
                key = (resident.id, rule.code, keys[name])
                caps[key] = cap
                mine.append(key)
        item_keys.append(mine)
    if not caps:
        return
    rows = [{"resident_id": r, "rule_code": c, "period": p, "points": 0} for r, c, p in caps]
    for start in range(0, len(rows), 2000):
        db.session.execute(
            _insert(CapCounter.__table__).values(rows[start:start + 2000]).on_conflict_do_nothing()
        )
    used: dict[tuple[int, str, str], int] = {}
    resident_ids = sorted({key[0] for key in caps})
    for start in range(0, len(resident_ids), 2000):
        chunk = resident_ids[start:start + 2000]
        for counter in db.session.scalars(
            select(CapCounter).where(CapCounter.resident_id.in_(chunk))
            .order_by(CapCounter.resident_id, CapCounter.rule_code, CapCounter.period)
            .with_for_update()
        ):
            used[(counter.resident_id, counter.rule_code, counter.period)] = counter.points
    for position, (resident, rule, points, _item) in enumerate(plan):
        keys = item_keys[position]
        if all(used.get(k, 0) + wanted.get(k, 0) + points <= caps[k] for k in keys):
            for k in keys:
                wanted[k] = wanted.get(k, 0) + points
        else:
            index = _index_of(plan, position)
            errors[index] = [f"cap_exceeded: the caps of {rule.code} leave no room for "
                             f"{points} more points for resident {resident.id}"]
    for (resident_id, code, period), extra in wanted.items():
        counter = db.session.get(CapCounter, (resident_id, code, period))
        counter.points = counter.points + extra


def _index_of(plan: list[Planned], position: int) -> int:
    return plan[position][3]["_index"]


def bulk_award(
    *, actor_user_id: int, scope_paths: list[str], items: list[dict[str, Any]]
) -> tuple[int, dict[str, Any]]:
    """Validate all items, then post them in one database transaction (all or nothing)."""
    with gc_paused():
        return _bulk_award(actor_user_id, scope_paths, items)


def _bulk_award(actor_user_id: int, scope_paths: list[str], items: list[dict[str, Any]]
                ) -> tuple[int, dict[str, Any]]:
    for index, item in enumerate(items):
        item["_index"] = index
    errors, plan = validate_items(actor_user_id=actor_user_id, scope_paths=scope_paths,
                                  items=items)
    if errors:
        raise ValidationFailed("validation_failed", f"{len(errors)} item(s) are invalid; "
                               "nothing was posted", errors={"items": dict(sorted(errors.items()))})
    transfers = _transfers(actor_user_id, plan)
    transaction_ids = post_many(transfers=transfers)
    total = sum(points for _, _, points, _ in plan)
    record_event(actor_user_id=actor_user_id, action="award.bulk", target_type="bulk",
                 target_id=len(transaction_ids), community_id=None,
                 detail={"count": len(transaction_ids), "points": total,
                         "first_transaction_id": transaction_ids[0]})
    return 201, {"posted": len(transaction_ids), "points": total,
                 "transaction_ids": transaction_ids}


def _transfers(actor_user_id: int, plan: list[Planned]) -> list[Transfer]:
    by_district: dict[int, list[tuple[int, int]]] = {}
    district_of_community: dict[int, int] = {}
    issuance: dict[int, int] = {}
    for resident, _rule, _points, _item in plan:
        if resident.community_id not in district_of_community:
            path = db.session.scalar(select(OrgNode.path).where(
                OrgNode.id == resident.community_id))
            district_of_community[resident.community_id] = int(path.strip("/").split("/")[0])
            issuance[resident.community_id] = issuance_account(
                community_id=resident.community_id)
        district = district_of_community[resident.community_id]
        by_district.setdefault(district, []).append((resident.id, resident.community_id))
    accounts: dict[int, int] = {}
    for district, owners in by_district.items():
        accounts.update(ensure_accounts(kind="resident", owners=owners, district_id=district))
    return [
        Transfer(
            kind="award",
            community_id=resident.community_id,
            district_id=district_of_community[resident.community_id],
            legs=(Leg(issuance[resident.community_id], -points), Leg(accounts[resident.id],
                                                                      points)),
            actor_user_id=actor_user_id,
            rule_id=rule.id,
            rule_code=rule.code,
            rule_version=rule.version,
            category=rule.category,
            quantity=item["quantity"],
            subject_resident_id=resident.id,
            memo=item.get("memo"),
            evidence_ref=item.get("evidence_ref"),
        )
        for resident, rule, points, item in plan
    ]
