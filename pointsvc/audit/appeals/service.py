"""Appeals: filing within the window, deciding once by someone else, the remedy via the ledger.

Points move only through the ledger's own services: an upheld deduction is reversed by
ledger.awards.reverse(), an upheld attendance is credited by events.service. No appeal text
goes into the ledger or the audit log (both only ever see the appeal's id and status).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ...common import as_utc, decode_id_cursor, page_of, utcnow
from ...errors import Conflict, DomainError, Forbidden, NotFound
from ...events import service as events
from ...events.models import AttendanceLine, Event
from ...extensions import db
from ...ledger import awards
from ...ledger.models import Entry, LedgerTransaction, PendingAward
from ...orgs.models import OrgNode
from ...people.models import Resident
from .models import Appeal


class AppealWindowClosed(DomainError):
    status = 409
    code = "appeal_window_closed"


def window_days() -> int:
    return int(current_app.config["APPEAL_WINDOW_DAYS"])


def _subject_of_deduction(*, transaction_id: int, resident_id: int) -> tuple[str, datetime, int]:
    """(subject key, decision time, community) of the resident's own unreversed deduction."""
    tx = db.session.get(LedgerTransaction, transaction_id)
    # Someone else's transaction looks exactly like a missing one: no probing of ids.
    if tx is None or tx.subject_resident_id != resident_id:
        raise NotFound("not_found", f"transaction {transaction_id} does not exist")
    if tx.kind != "deduction":
        raise DomainError("not_appealable", f"a {tx.kind} cannot be appealed; only deductions "
                          "and rejected attendance", status=422, kind=tx.kind)
    reversed_by = db.session.scalar(
        select(LedgerTransaction.id).where(LedgerTransaction.reverses_id == tx.id))
    if reversed_by is not None:
        raise Conflict("already_reversed", "this deduction was already reversed",
                       reversal_id=reversed_by)
    return f"{tx.id}", as_utc(tx.created_at), tx.community_id


def _subject_of_attendance(*, event_id: int, resident_id: int) -> tuple[str, datetime, int]:
    """(subject key, decision time, community) of the resident's rejected attendance line."""
    line = db.session.get(AttendanceLine, (event_id, resident_id))
    if line is None:
        raise NotFound("not_found", f"no attendance of yours at event {event_id}")
    if line.status != "rejected":
        raise DomainError("not_appealable", f"the attendance is {line.status}, not rejected",
                          status=422, attendance_status=line.status)
    event = db.session.get(Event, event_id)
    # While the event awaits approval the rejection can still be undone by staff; it is a
    # decision only once the attendance is approved (settlement posted, at updated_at).
    if event is None or event.settlement != "posted":
        raise Conflict("invalid_state", "the attendance is still under review")
    return f"{event_id}:{resident_id}", as_utc(event.updated_at), line.community_id


def file_appeal(*, resident_id: int, user_id: int, kind: str, transaction_id: int | None,
                event_id: int | None, reason: str, now: datetime | None = None
                ) -> tuple[int, dict[str, Any]]:
    """Open an appeal of the resident's own decision; writes without committing."""
    now = now or utcnow()
    if kind == "deduction":
        key, decided_at, community_id = _subject_of_deduction(
            transaction_id=int(transaction_id or 0), resident_id=resident_id)
    else:
        key, decided_at, community_id = _subject_of_attendance(
            event_id=int(event_id or 0), resident_id=resident_id)
    deadline = decided_at + timedelta(days=window_days())
    if now > deadline:
        raise AppealWindowClosed("appeal_window_closed",
                                 f"appeals close {window_days()} days after the decision",
                                 deadline=deadline.isoformat())
    existing = db.session.scalar(
        select(Appeal.id).where(Appeal.subject_type == kind, Appeal.subject_key == key))
    if existing is not None:
        raise Conflict("already_appealed", "this decision has already been appealed",
                       appeal_id=existing)
    appeal = Appeal(community_id=community_id, resident_id=resident_id, subject_type=kind,
                    subject_key=key, transaction_id=transaction_id if kind == "deduction"
                    else None, event_id=event_id if kind == "attendance" else None,
                    decided_originally_at=decided_at, reason=reason.strip(), status="open",
                    filed_by=user_id, created_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(appeal)
    except IntegrityError as error:
        # A concurrent filing of the same decision won the unique (subject_type, subject_key).
        raise Conflict("already_appealed", "this decision has already been appealed") from error
    return 201, appeal_json(appeal)


def committed(work: Callable[[], tuple[int, dict[str, Any]]]) -> tuple[dict[str, Any], int]:
    """Run a non-committing service call and commit it (the path without Idempotency-Key)."""
    try:
        status, body = work()
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()
    return body, status


def get_appeal(*, appeal_id: int) -> Appeal:
    appeal = db.session.get(Appeal, appeal_id)
    if appeal is None:
        raise NotFound("not_found", f"appeal {appeal_id} does not exist")
    return appeal


def community_path(appeal: Appeal) -> str:
    return awards.community_path(community_id=appeal.community_id)


def original_deciders(appeal: Appeal) -> set[int]:
    """Staff who made the contested decision: they may not review it."""
    deciders: set[int] = set()
    if appeal.subject_type == "deduction":
        tx = db.session.get(LedgerTransaction, appeal.transaction_id)
        if tx is not None:
            deciders.add(tx.actor_user_id)
            if tx.reference_type == "approval" and tx.reference_id:
                pending = db.session.get(PendingAward, int(tx.reference_id))
                if pending is not None:
                    deciders |= {pending.requested_by, pending.decided_by}
    else:
        line = db.session.get(AttendanceLine, (appeal.event_id, appeal.resident_id))
        if line is not None:
            deciders.add(line.adjusted_by)
    deciders.discard(None)  # type: ignore[arg-type]
    return deciders


def _refuse(appeal: Appeal, *, actor_user_id: int, action: str, error: DomainError) -> None:
    """Log a refused decision attempt (committed on its own) and raise."""
    db.session.rollback()
    awards.record_event(actor_user_id=actor_user_id, action=action, target_type="appeal",
                        target_id=appeal.id, community_id=appeal.community_id,
                        detail={"subject_type": appeal.subject_type,
                                "resident_id": appeal.resident_id})
    db.session.commit()
    raise error


def decide(*, appeal_id: int, actor_user_id: int, outcome: str, reason: str,
           now: datetime | None = None) -> dict[str, Any]:
    """Uphold (posting the remedy through the ledger) or dismiss an open appeal, once."""
    now = now or utcnow()
    appeal = get_appeal(appeal_id=appeal_id)
    if appeal.status != "open":
        raise Conflict("invalid_state", f"the appeal is already {appeal.status}",
                       current_status=appeal.status)
    if actor_user_id in original_deciders(appeal):
        _refuse(appeal, actor_user_id=actor_user_id,
                action="appeal.decide.blocked_original_decider",
                error=Forbidden("original_decider", "a reviewer cannot decide an appeal "
                                "against their own decision; another reviewer must"))
    resident = db.session.get(Resident, appeal.resident_id)
    if resident is not None:
        awards.refuse_self_dealing(actor_user_id=actor_user_id, resident=resident,
                                   action="appeal.decide")
    # The claim: of two reviewers deciding at once exactly one moves the row out of "open"
    # (the other waits on the row lock, or SQLite's write lock, and then matches nothing).
    claimed = db.session.execute(
        update(Appeal).where(Appeal.id == appeal.id, Appeal.status == "open")
        .values(status=outcome, reviewer_user_id=actor_user_id, decided_at=now,
                decision_reason=reason.strip())
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        raise Conflict("invalid_state", "the appeal was decided concurrently")
    remedy = None
    if outcome == "upheld":
        try:
            remedy = _remedy(appeal, actor_user_id=actor_user_id, now=now)
        except BaseException:
            db.session.rollback()  # the claim goes too: the appeal stays open
            raise
        if remedy is not None:
            db.session.execute(update(Appeal).where(Appeal.id == appeal.id)
                               .values(remedy_transaction_id=remedy)
                               .execution_options(synchronize_session=False))
    awards.record_event(actor_user_id=actor_user_id, action=f"appeal.{outcome}",
                        target_type="appeal", target_id=appeal.id,
                        community_id=appeal.community_id,
                        detail={"subject_type": appeal.subject_type,
                                "resident_id": appeal.resident_id,
                                "transaction_id": appeal.transaction_id,
                                "event_id": appeal.event_id},
                        before={"status": "open"},
                        after={"status": outcome, "remedy_transaction_id": remedy})
    db.session.commit()
    db.session.refresh(appeal)
    return appeal_json(appeal)


def _remedy(appeal: Appeal, *, actor_user_id: int, now: datetime) -> int | None:
    """Undo the decision through the ledger's services; the id of the posting, if any."""
    if appeal.subject_type == "deduction":
        moved = db.session.scalar(
            select(Entry.id).where(Entry.transaction_id == appeal.transaction_id).limit(1))
        if moved is None:  # all shortfall: nothing was taken, so nothing to give back
            return None
        # A fixed memo: the reviewer's words stay on the appeal, where erasure can reach them.
        _, body = awards.reverse(transaction_id=appeal.transaction_id,
                                 actor_user_id=actor_user_id,
                                 reason=f"appeal {appeal.id} upheld")
        return int(body["id"])
    return events.credit_rejected_line(event_id=appeal.event_id,
                                       resident_id=appeal.resident_id,
                                       actor_user_id=actor_user_id, now=now)


def list_in_scope(*, scope_paths: list[str], status: str | None, community_id: int | None,
                  limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Appeals of the reviewer's subtree, oldest first (a queue), keyset-paginated."""
    if not scope_paths:
        return [], None
    query = (select(Appeal).join(OrgNode, OrgNode.id == Appeal.community_id)
             .where(db.or_(*[OrgNode.path.startswith(p, autoescape=True)
                             for p in scope_paths])))
    if status:
        query = query.where(Appeal.status == status)
    if community_id:
        query = query.where(Appeal.community_id == community_id)
    if cursor:
        query = query.where(Appeal.id > decode_id_cursor(cursor))
    rows = list(db.session.scalars(query.order_by(Appeal.id).limit(limit + 1)))
    page, next_cursor = page_of(rows, limit=limit, key=lambda a: [a.id])
    return [appeal_json(a) for a in page], next_cursor


def list_mine(*, resident_id: int, limit: int, cursor: str | None
              ) -> tuple[list[dict[str, Any]], str | None]:
    """The resident's own appeals, newest first."""
    query = select(Appeal).where(Appeal.resident_id == resident_id)
    if cursor:
        query = query.where(Appeal.id < decode_id_cursor(cursor))
    rows = list(db.session.scalars(query.order_by(Appeal.id.desc()).limit(limit + 1)))
    page, next_cursor = page_of(rows, limit=limit, key=lambda a: [a.id])
    return [appeal_json(a) for a in page], next_cursor


def erase_resident(*, resident_id: int) -> int:
    """Blank the free text of a resident's appeals (for the erasure); the caller commits."""
    return int(db.session.execute(
        update(Appeal).where(Appeal.resident_id == resident_id)
        .values(reason=None, decision_reason=None, erased_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount or 0)


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def appeal_json(appeal: Appeal) -> dict[str, Any]:
    remedy = appeal.remedy_transaction_id
    return {
        "id": appeal.id,
        "status": appeal.status,
        "kind": appeal.subject_type,
        "community_id": appeal.community_id,
        "resident_id": appeal.resident_id,
        "transaction_id": appeal.transaction_id,
        "event_id": appeal.event_id,
        "reason": appeal.reason,
        "created_at": _iso(appeal.created_at),
        "decided_originally_at": _iso(appeal.decided_originally_at),
        "reviewer_user_id": appeal.reviewer_user_id,
        "decided_at": _iso(appeal.decided_at),
        "decision_reason": appeal.decision_reason,
        "reversal_transaction_id": remedy if appeal.subject_type == "deduction" else None,
        "credit_transaction_id": remedy if appeal.subject_type == "attendance" else None,
    }
