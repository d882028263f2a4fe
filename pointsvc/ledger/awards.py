"""Awards and deductions under rules, maker-checker approvals, and reversals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from .. import sql
from ..audit.actions.service import record_event  # the action log; re-exported from here
from ..common import utcnow
from ..errors import Conflict, DomainError, Forbidden, NotFound
from ..extensions import db
from ..orgs.service import NodeFacts, node_facts
from ..people.models import Resident, StaffHousehold
from . import rules as rulebook
from .models import (
    Account,
    CapCounter,
    CommunityPolicy,
    Entry,
    LedgerTransaction,
    PendingAward,
    Rule,
)
from .rules import RuleFacts
from .service import (
    AccountFacts,
    InsufficientPoints,
    Leg,
    PostedTransaction,
    Transfer,
    _insert,
    award_accounts,
    district_of,
    post,
)

DEFAULT_APPROVAL_THRESHOLD = 200


@dataclass(frozen=True)
class AwardRequest:
    resident_id: int
    rule_code: str | None
    quantity: int | None
    points: int | None = None  # manual adjustment (no rule): always goes to approval
    memo: str | None = None
    evidence_ref: str | None = None


def get_resident(*, resident_id: int) -> Resident:
    """The resident, or 404."""
    resident = db.session.get(Resident, resident_id)
    if resident is None:
        raise NotFound("not_found", f"resident {resident_id} does not exist")
    return resident


@dataclass(frozen=True)
class AwardSubject:
    """The resident of an award with what the award path needs of their community.

    Read for an award (award_subject with a rule code and the actor), it also carries the
    deepest current version of the rule along the community's path (not yet checked to be
    active), the accounts already open for the posting and whether the actor is of the
    resident's household: everything an award reads, in one round trip.
    """

    id: int
    user_id: int | None
    community_id: int
    household_id: int | None
    community_path: str
    approval_threshold: int
    rule_code: str | None = None  # the code `rule` was read for
    rule: RuleFacts | None = None
    accounts: dict[int, AccountFacts] = field(default_factory=dict)
    actor_in_household: bool | None = None  # None: not read (refuse_self_dealing reads it)


_SUBJECT_COLUMNS = ("r.id, r.user_id, r.community_id, r.household_id, n.path, n.timezone, "
                    "n.level, p.approval_threshold")
_SUBJECT_FROM = ("FROM residents r JOIN org_nodes n ON n.id = r.community_id "
                 "LEFT JOIN ledger_community_policies p ON p.community_id = r.community_id ")
_SUBJECT_SQL = f"SELECT {_SUBJECT_COLUMNS} {_SUBJECT_FROM}WHERE r.id = %(id)s"
# A node's path is its ancestors' ids then its own ("/1/4/9/"), so a rule defined on node X
# applies here when X's path is a prefix of the community's; the longest prefix wins.
_AWARD_SQL = (
    f"SELECT {_SUBJECT_COLUMNS}, ra.id, ra.bounded, ra.district_id, ia.id, ia.bounded, "
    "ia.district_id, "
    "(SELECT COUNT(*) FROM staff_households sh WHERE sh.user_id = %(actor)s "
    " AND sh.household_id = r.household_id) + "
    "(SELECT COUNT(*) FROM residents me WHERE me.user_id = %(actor)s "
    " AND me.household_id = r.household_id), "
    f"{', '.join('lr.' + name for name in rulebook.RULE_COLUMNS)} {_SUBJECT_FROM}"
    "LEFT JOIN ledger_rules lr ON lr.id = ("
    " SELECT c.id FROM ledger_rules c JOIN org_nodes cn ON cn.id = c.org_node_id"
    " WHERE c.code = %(code)s AND c.is_current = %(yes)s"
    " AND substr(n.path, 1, length(cn.path)) = cn.path"
    " ORDER BY length(cn.path) DESC LIMIT 1) "
    "LEFT JOIN ledger_accounts ra ON ra.kind = 'resident' AND ra.owner_id = r.id "
    " AND ra.community_id = r.community_id "
    "LEFT JOIN ledger_accounts ia ON ia.kind = 'issuance' AND ia.owner_id = 0 "
    " AND ia.community_id = r.community_id "
    "WHERE r.id = %(id)s"
)


def award_subject(*, resident_id: int, rule_code: str | None = None,
                  actor_user_id: int | None = None) -> AwardSubject:
    """The resident, their community's facts and approval threshold in one query, or 404.

    With a rule code and the acting staff member: also the rule, the open accounts and the
    household check (see AwardSubject), in the same query.
    """
    for_award = rule_code is not None and actor_user_id is not None
    found = sql.rows(_AWARD_SQL if for_award else _SUBJECT_SQL,
                     {"id": resident_id, "code": rule_code, "yes": True,
                      "actor": actor_user_id})
    if not found:
        raise NotFound("not_found", f"resident {resident_id} does not exist")
    rid, user_id, community_id, household_id, path, timezone, level, threshold = found[0][:8]
    facts = NodeFacts(path, timezone, level)
    # Later look-ups of this community in the request (district, time zone) hit the cache.
    db.session.info.setdefault("node_facts", {})[community_id] = facts
    threshold = DEFAULT_APPROVAL_THRESHOLD if threshold is None else int(threshold)
    if not for_award:
        return AwardSubject(rid, user_id, community_id, household_id, path, threshold)
    first = found[0]
    rule = rulebook.rule_facts(first[15:]) if first[15] is not None else None
    # Accounts of another district (the community moved) are not this posting's.
    accounts: dict[int, AccountFacts] = {}
    for row in found:
        for kind, owner_id, (account_id, bounded, district_id) in (
                ("resident", rid, row[8:11]), ("issuance", 0, row[11:14])):
            if account_id is not None and district_id == facts.district_id:
                accounts[account_id] = AccountFacts(account_id, kind, owner_id, bool(bounded),
                                                    district_id)
    return AwardSubject(rid, user_id, community_id, household_id, path, threshold, rule_code,
                        rule, accounts, household_id is not None and int(first[14]) > 0)


def community_path(*, community_id: int) -> str:
    facts = node_facts(node_id=community_id)
    return facts.path if facts else "/"


def staff_households(*, user_id: int) -> set[int]:
    """Households a staff member belongs to: their own resident record and any staff link."""
    households = set(
        db.session.scalars(
            select(StaffHousehold.household_id).where(StaffHousehold.user_id == user_id)
        )
    )
    own = db.session.scalar(select(Resident.household_id).where(Resident.user_id == user_id))
    if own is not None:
        households.add(own)
    return households


def refuse_self_dealing(*, actor_user_id: int, resident: Resident | AwardSubject,
                        action: str) -> None:
    """403 self_dealing (and a logged attempt) when staff act on themselves or their family."""
    own = resident.user_id == actor_user_id
    known = getattr(resident, "actor_in_household", None)
    if known is not None:
        family = known  # read with the award's subject, for this actor
    else:
        family = resident.household_id is not None and resident.household_id in \
            staff_households(user_id=actor_user_id)
    if not (own or family):
        return
    db.session.rollback()
    record_event(
        actor_user_id=actor_user_id,
        action=f"{action}.blocked_self_dealing",
        target_type="resident",
        target_id=resident.id,
        community_id=resident.community_id,
        detail={"reason": "self" if own else "household"},
    )
    db.session.commit()
    raise Forbidden("self_dealing", "staff may not award or approve points for themselves "
                    "or their own household")


def approval_threshold(*, community_id: int) -> int:
    value = db.session.scalar(
        select(CommunityPolicy.approval_threshold).where(
            CommunityPolicy.community_id == community_id
        )
    )
    return DEFAULT_APPROVAL_THRESHOLD if value is None else value


def set_approval_threshold(*, community_id: int, threshold: int, actor_user_id: int) -> int:
    """Change the community's maker-checker threshold."""
    previous = approval_threshold(community_id=community_id)
    db.session.execute(
        _insert(CommunityPolicy.__table__)
        .values(community_id=community_id, approval_threshold=threshold,
                updated_by=actor_user_id, updated_at=utcnow())
        .on_conflict_do_update(
            index_elements=["community_id"],
            set_={"approval_threshold": threshold, "updated_by": actor_user_id,
                  "updated_at": utcnow()},
        )
    )
    record_event(actor_user_id=actor_user_id, action="ledger.threshold_changed",
                 target_type="community", target_id=community_id, community_id=community_id,
                 before={"approval_threshold": previous},
                 after={"approval_threshold": threshold})
    db.session.commit()
    return threshold


def _timezone(community_id: int) -> str:
    facts = node_facts(node_id=community_id)
    return facts.timezone if facts else "Asia/Shanghai"


def take_cap(*, resident_id: int, rule: Rule | RuleFacts, points: int, timezone: str,
             clip: bool = False) -> int:
    """Reserve points under the rule's caps; returns what fits (all or, with clip, a part).

    Counters move with conditional updates (`points + n <= cap`), so concurrent awards
    cannot together pass a cap.
    """
    caps = {"day": rule.cap_day, "week": rule.cap_week, "month": rule.cap_month}
    keys = rulebook.period_keys(at=utcnow(), timezone=timezone)
    granted = points
    for name, cap in caps.items():
        if cap is None:
            continue
        period = keys[name]
        db.session.execute(
            _insert(CapCounter.__table__)
            .values(resident_id=resident_id, rule_code=rule.code, period=period, points=0)
            .on_conflict_do_nothing()
        )
        if clip:
            used = db.session.scalar(
                select(CapCounter.points)
                .where(CapCounter.resident_id == resident_id, CapCounter.rule_code == rule.code,
                       CapCounter.period == period)
                .with_for_update()
            )
            granted = max(0, min(granted, cap - int(used or 0)))
    if granted == 0:
        return 0
    for name, cap in caps.items():
        if cap is None:
            continue
        moved = db.session.execute(
            update(CapCounter)
            .where(
                CapCounter.resident_id == resident_id,
                CapCounter.rule_code == rule.code,
                CapCounter.period == keys[name],
                CapCounter.points + granted <= cap,
            )
            .values(points=CapCounter.points + granted)
        ).rowcount
        if moved != 1:
            used = db.session.scalar(
                select(CapCounter.points).where(
                    CapCounter.resident_id == resident_id,
                    CapCounter.rule_code == rule.code,
                    CapCounter.period == keys[name],
                )
            )
            raise DomainError(
                "cap_exceeded",
                f"the {name} cap of {cap} points for {rule.code} leaves {cap - int(used or 0)}",
                status=409,
                cap=cap,
                period=name,
                remaining=max(0, cap - int(used or 0)),
            )
    return granted


def release_cap(*, transaction: LedgerTransaction, points: int) -> None:
    """A reversed award frees its room under the caps of the period it was posted in."""
    if not transaction.rule_code or points <= 0 or transaction.subject_resident_id is None:
        return
    keys = rulebook.period_keys(at=transaction.created_at, timezone=_timezone(
        transaction.community_id))
    db.session.execute(
        update(CapCounter)
        .where(
            CapCounter.resident_id == transaction.subject_resident_id,
            CapCounter.rule_code == transaction.rule_code,
            CapCounter.period.in_(list(keys.values())),
        )
        .values(points=CapCounter.points - points)
    )


def _needs_approval(*, rule: Rule | RuleFacts | None, points: int, threshold: int) -> str | None:
    if rule is None:
        return "manual_adjustment"
    if rule.approval_required:
        return "rule_requires_approval"
    if abs(points) > threshold:
        return "above_threshold"
    return None


def submit_award(*, actor_user_id: int, request: AwardRequest,
                 resident: AwardSubject | None = None) -> tuple[int, dict[str, Any]]:
    """Post an award or deduction, or park it for approval; returns (status, body).

    Runs inside idempotency.run_once: it writes without committing.
    """
    resident = resident or award_subject(resident_id=request.resident_id)
    rule = None
    if request.rule_code is not None:
        if resident.rule_code == request.rule_code:  # read with the subject
            rule = rulebook.active_rule(resident.rule, code=request.rule_code)
        else:
            rule = rulebook.resolve(community_id=resident.community_id, code=request.rule_code)
        points = rulebook.points_for(rule=rule, quantity=request.quantity or 0)
        if points == 0:
            raise DomainError("validation_failed", "the quantity earns no points", status=422,
                              errors={"quantity": ["Too small to earn a point."]})
    else:
        points = int(request.points or 0)
    reason = _needs_approval(rule=rule, points=points,
                             threshold=resident.approval_threshold)
    if reason:
        pending = PendingAward(
            community_id=resident.community_id,
            resident_id=resident.id,
            rule_id=rule.id if rule else None,
            quantity=request.quantity,
            points=points,
            memo=request.memo,
            evidence_ref=request.evidence_ref,
            reason_required=reason,
            requested_by=actor_user_id,
        )
        db.session.add(pending)
        db.session.flush()
        record_event(actor_user_id=actor_user_id, action="award.requested",
                     target_type="pending_award", target_id=pending.id,
                     community_id=resident.community_id,
                     detail={"resident_id": resident.id, "points": points, "reason": reason})
        return 202, pending_json(pending)
    transaction = post_rule_award(
        actor_user_id=actor_user_id, resident=resident, rule=rule, quantity=request.quantity,
        points=points, memo=request.memo, evidence_ref=request.evidence_ref,
    )
    record_event(actor_user_id=actor_user_id, action=f"{transaction.kind}.posted",
                 target_type="transaction", target_id=transaction.id,
                 community_id=resident.community_id,
                 detail={"resident_id": resident.id, "rule_code": request.rule_code,
                         "quantity": request.quantity})
    return 201, transaction_json(transaction)


def post_rule_award(
    *, actor_user_id: int, resident: Resident | AwardSubject, rule: Rule | RuleFacts | None,
    quantity: int | None, points: int, memo: str | None, evidence_ref: str | None,
    reference: tuple[str, str] | None = None, clip_caps: bool = False,
) -> PostedTransaction:
    """Move the points of an approved or approval-free award/deduction through post()."""
    community_id = resident.community_id
    district_id = district_of(community_id=community_id)
    resident_acct, issuance_acct, accounts = award_accounts(
        resident_id=resident.id, community_id=community_id, district_id=district_id,
        known=getattr(resident, "accounts", None))
    shortfall = 0
    if points > 0:
        if rule is not None:
            points = take_cap(resident_id=resident.id, rule=rule, points=points,
                              timezone=_timezone(community_id), clip=clip_caps)
        if points == 0:
            raise DomainError("cap_exceeded", "the rule's caps leave nothing to award",
                              status=409, remaining=0)
        legs = (Leg(issuance_acct, -points), Leg(resident_acct, points))
        kind = "award" if rule is not None else "adjustment"
    else:
        wanted = -points
        # A deduction takes what is there and records the rest as shortfall; the row lock
        # (PostgreSQL) or the write lock (SQLite) makes the read exact, and post()'s guarded
        # update would refuse anyway if it were not.
        balance = db.session.scalar(
            select(Account.balance - Account.held).where(Account.id == resident_acct)
            .with_for_update()
        )
        taken = min(wanted, max(0, int(balance or 0)))
        shortfall = wanted - taken
        legs = (Leg(resident_acct, -taken), Leg(issuance_acct, taken)) if taken else ()
        kind = "deduction" if rule is not None else "adjustment"
        if kind == "adjustment" and not taken:
            raise InsufficientPoints("insufficient_points", "nothing to deduct", available=0,
                                     needed=wanted)
    return post(
        transfer=Transfer(
            kind=kind,
            community_id=community_id,
            district_id=district_id,
            legs=legs,
            actor_user_id=actor_user_id,
            rule_id=rule.id if rule else None,
            rule_code=rule.code if rule else None,
            rule_version=rule.version if rule else None,
            category=rule.category if rule else "other",
            quantity=quantity,
            reference_type=reference[0] if reference else None,
            reference_id=reference[1] if reference else None,
            subject_resident_id=resident.id,
            shortfall=shortfall,
            memo=memo,
            evidence_ref=evidence_ref,
        ),
        accounts=accounts,
    )


def get_pending(*, pending_id: int) -> PendingAward:
    pending = db.session.get(PendingAward, pending_id)
    if pending is None:
        raise NotFound("not_found", f"approval request {pending_id} does not exist")
    return pending


def decide(*, pending_id: int, actor_user_id: int, approve: bool, reason: str | None
           ) -> dict[str, Any]:
    """A second staff member approves (posting it) or rejects a pending award."""
    pending = get_pending(pending_id=pending_id)
    if pending.status != "pending":
        raise Conflict("invalid_state", f"the request is already {pending.status}")
    if pending.requested_by == actor_user_id:
        raise Forbidden("forbidden", "a request must be decided by a different staff member")
    resident = get_resident(resident_id=pending.resident_id)
    refuse_self_dealing(actor_user_id=actor_user_id, resident=resident, action="award.approve")
    claimed = db.session.execute(
        update(PendingAward)
        .where(PendingAward.id == pending.id, PendingAward.status == "pending")
        .values(status="approved" if approve else "rejected", decided_by=actor_user_id,
                decided_at=utcnow(), decision_reason=reason)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        raise Conflict("invalid_state", "the request was decided concurrently")
    transaction_id = None
    if approve:
        rule = db.session.get(Rule, pending.rule_id) if pending.rule_id else None
        transaction = post_rule_award(
            actor_user_id=pending.requested_by, resident=resident, rule=rule,
            quantity=pending.quantity, points=pending.points, memo=pending.memo,
            evidence_ref=pending.evidence_ref, reference=("approval", str(pending.id)),
        )
        transaction_id = transaction.id
        db.session.execute(
            update(PendingAward).where(PendingAward.id == pending.id)
            .values(transaction_id=transaction_id)
        )
    record_event(actor_user_id=actor_user_id,
                 action="award.approved" if approve else "award.rejected",
                 target_type="pending_award", target_id=pending.id,
                 community_id=pending.community_id,
                 # The reason is free text: it stays on the request row, not in the log.
                 detail={"reason": "given" if reason else None,
                         "transaction_id": transaction_id},
                 before={"status": "pending"},
                 after={"status": "approved" if approve else "rejected"})
    db.session.commit()
    return pending_json(get_pending(pending_id=pending_id))


def reverse(*, transaction_id: int, actor_user_id: int, reason: str) -> tuple[int, dict[str, Any]]:
    """Post the exact opposite of a transaction, at most once; a repeat returns the first."""
    original = get_transaction(transaction_id=transaction_id)
    # Serialise reversals of one transaction on its row (a lock, not an update: the row
    # stays append-only); the loser then finds the winner's reversal below.
    db.session.execute(
        select(LedgerTransaction.id).where(LedgerTransaction.id == original.id).with_for_update()
    )
    existing = db.session.scalar(
        select(LedgerTransaction).where(LedgerTransaction.reverses_id == original.id)
    )
    if existing is not None:
        return 200, transaction_json(existing)
    if original.kind == "reversal":
        raise DomainError("not_reversible", "a reversal cannot itself be reversed", status=422)
    entries = list(db.session.scalars(select(Entry).where(Entry.transaction_id == original.id)))
    if not entries:
        raise DomainError("not_reversible", "the transaction moved no points", status=422)
    if original.subject_resident_id is not None:
        resident = db.session.get(Resident, original.subject_resident_id)
        if resident is not None:
            refuse_self_dealing(actor_user_id=actor_user_id, resident=resident,
                                action="transaction.reverse")
    try:
        with db.session.begin_nested():
            reversal = post(
                transfer=Transfer(
                    kind="reversal",
                    community_id=original.community_id,
                    district_id=original.district_id,
                    legs=tuple(Leg(entry.account_id, -entry.amount) for entry in entries),
                    actor_user_id=actor_user_id,
                    rule_id=original.rule_id,
                    rule_code=original.rule_code,
                    rule_version=original.rule_version,
                    category=original.category,
                    quantity=original.quantity,
                    reference_type="transaction",
                    reference_id=str(original.id),
                    subject_resident_id=original.subject_resident_id,
                    reverses_id=original.id,
                    memo=reason,
                )
            )
    except IntegrityError:
        # Someone reversed it first (unique reverses_id): answer with their reversal.
        existing = db.session.scalar(
            select(LedgerTransaction).where(LedgerTransaction.reverses_id == original.id)
        )
        if existing is None:
            raise
        return 200, transaction_json(existing)
    if original.kind == "award":
        credited = sum(e.amount for e in entries if e.amount > 0 and e.balance_after is not None)
        release_cap(transaction=original, points=credited)
    record_event(actor_user_id=actor_user_id, action="transaction.reversed",
                 target_type="transaction", target_id=original.id,
                 community_id=original.community_id,
                 detail={"reason": "given" if reason else None, "reversal_id": reversal.id},
                 before={"reversed_by": None}, after={"reversed_by": reversal.id})
    return 201, transaction_json(reversal)


def get_transaction(*, transaction_id: int) -> LedgerTransaction:
    transaction = db.session.get(LedgerTransaction, transaction_id)
    if transaction is None:
        raise NotFound("not_found", f"transaction {transaction_id} does not exist")
    return transaction


def transaction_json(transaction: LedgerTransaction | PostedTransaction) -> dict[str, Any]:
    """The public shape of a transaction (ids and amounts; memo text is served separately)."""
    entries = getattr(transaction, "posted_entries", None) or db.session.execute(
        select(Entry.account_id, Entry.amount, Entry.balance_after, Account.kind,
               Account.owner_id)
        .join(Account, Account.id == Entry.account_id)
        .where(Entry.transaction_id == transaction.id)
        .order_by(Entry.id)
    ).all()
    resident_amount = sum(
        amount for _, amount, _, kind, owner in entries
        if kind == "resident" and owner == transaction.subject_resident_id
    )
    return {
        "id": transaction.id,
        "kind": transaction.kind,
        "community_id": transaction.community_id,
        "resident_id": transaction.subject_resident_id,
        "rule_code": transaction.rule_code,
        "rule_version": transaction.rule_version,
        "category": transaction.category,
        "quantity": transaction.quantity,
        "points": resident_amount,
        "shortfall": transaction.shortfall,
        "reverses_id": transaction.reverses_id,
        "reference_type": transaction.reference_type,
        "reference_id": transaction.reference_id,
        "actor_user_id": transaction.actor_user_id,
        "created_at": transaction.created_at.isoformat() if transaction.created_at else None,
        "content_hash": transaction.content_hash,
        "entries": [
            {"account_id": account_id, "account_kind": kind, "amount": amount,
             "balance_after": balance_after}
            for account_id, amount, balance_after, kind, _ in entries
        ],
    }


def pending_json(pending: PendingAward) -> dict[str, Any]:
    return {
        "id": pending.id,
        "status": pending.status,
        "community_id": pending.community_id,
        "resident_id": pending.resident_id,
        "rule_id": pending.rule_id,
        "quantity": pending.quantity,
        "points": pending.points,
        "reason_required": pending.reason_required,
        "requested_by": pending.requested_by,
        "decided_by": pending.decided_by,
        "decision_reason": pending.decision_reason,
        "transaction_id": pending.transaction_id,
        "created_at": pending.created_at.isoformat() if pending.created_at else None,
    }
