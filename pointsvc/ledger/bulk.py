"""Bulk awards: up to 10,000 items, validated as a whole, posted all or nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..errors import DomainError, ValidationFailed
from ..extensions import db
from ..orgs.models import OrgNode
from ..people.models import Resident
from . import rules as rulebook
from .awards import (
    _needs_approval,
    post_rule_award,
    record_event,
    staff_households,
)
from .models import Rule


def _load_residents(ids: list[int]) -> dict[int, Resident]:
    found: dict[int, Resident] = {}
    unique = sorted(set(ids))
    for start in range(0, len(unique), 1000):
        chunk = unique[start:start + 1000]
        found.update({r.id: r for r in db.session.scalars(select(Resident).where(
            Resident.id.in_(chunk)))})
    return found


def _paths(community_ids: set[int]) -> dict[int, str]:
    return dict(db.session.execute(
        select(OrgNode.id, OrgNode.path).where(OrgNode.id.in_(community_ids))).all())


def validate_items(
    *, actor_user_id: int, scope_paths: list[str], items: list[dict[str, Any]]
) -> tuple[dict[int, list[str]], list[tuple[Resident, Rule, int, dict[str, Any]]]]:
    """Check every item; returns (errors by index, the planned postings)."""
    residents = _load_residents([item["resident_id"] for item in items])
    paths = _paths({r.community_id for r in residents.values()})
    households = staff_households(user_id=actor_user_id)
    rule_cache: dict[tuple[int, str], Rule | DomainError] = {}
    errors: dict[int, list[str]] = {}
    plan: list[tuple[Resident, Rule, int, dict[str, Any]]] = []
    for index, item in enumerate(items):
        resident = residents.get(item["resident_id"])
        if resident is None:
            errors[index] = [f"not_found: resident {item['resident_id']} does not exist"]
            continue
        if not any(paths[resident.community_id].startswith(p) for p in scope_paths):
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
        if points == 0:
            errors[index] = ["validation_failed: the quantity earns no points"]
            continue
        reason = _needs_approval(rule=rule, points=points, community_id=resident.community_id)
        if reason:
            errors[index] = [f"approval_required: {reason}; submit it as a single award"]
            continue
        plan.append((resident, rule, points, item))
    return errors, plan


def bulk_award(
    *, actor_user_id: int, scope_paths: list[str], items: list[dict[str, Any]]
) -> tuple[int, dict[str, Any]]:
    """Validate all items, then post them in one database transaction (all or nothing)."""
    errors, plan = validate_items(actor_user_id=actor_user_id, scope_paths=scope_paths,
                                  items=items)
    if errors:
        raise ValidationFailed("validation_failed", f"{len(errors)} item(s) are invalid; "
                               "nothing was posted", errors={"items": errors})
    transaction_ids: list[int] = []
    total = 0
    post_errors: dict[int, list[str]] = {}
    for index, (resident, rule, points, item) in enumerate(plan):
        try:
            with db.session.begin_nested():
                transaction = post_rule_award(
                    actor_user_id=actor_user_id, resident=resident, rule=rule,
                    quantity=item["quantity"], points=points, memo=item.get("memo"),
                    evidence_ref=item.get("evidence_ref"),
                )
        except DomainError as exc:
            post_errors[index] = [f"{exc.code}: {exc.detail}"]
            continue
        transaction_ids.append(transaction.id)
        total += points if points > 0 else 0
    if post_errors:
        raise ValidationFailed("validation_failed", f"{len(post_errors)} item(s) failed; "
                               "nothing was posted", errors={"items": post_errors})
    record_event(actor_user_id=actor_user_id, action="award.bulk", target_type="bulk",
                 target_id=len(transaction_ids), community_id=None,
                 detail={"count": len(transaction_ids), "points": total})
    return 201, {"posted": len(transaction_ids), "points": total,
                 "transaction_ids": transaction_ids}
