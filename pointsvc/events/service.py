"""Events: lifecycle, sign-ups and wait-list, check-in codes, scans, cards, closing and hours.

Points move only at close (or at approval), through ledger post_many(): one award per
resident referencing `event_attendance:<event>:<resident>`. Everything that can be raced —
places, the wait-list, a resident's state at an event, a scan's nonce, the close itself —
is decided by a unique constraint or a conditional statement whose row count decides, never
by read-then-write.

Functions that run inside idempotency.run_once (close_event, approve_attendance) write
without committing; the others commit. Every function that depends on the time takes `now`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import (
    BigInteger,
    DateTime,
    and_,
    bindparam,
    case,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import aliased

from ..codes import CARD, CHECKIN, CodeError, code_link, issue_code, parse_code
from ..common import as_utc, decode_cursor, encode_cursor, mask_name, utcnow
from ..errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from ..extensions import db
from ..ledger import rules as rulebook
from ..ledger.awards import record_event, staff_households
from ..ledger.caps import CapWant, take_caps
from ..ledger.models import Rule
from ..ledger.service import (
    Leg,
    Transfer,
    _insert,
    district_of,
    ensure_accounts,
    issuance_account,
    post_many,
)
from ..orgs.models import OrgNode
from ..orgs.service import node_facts
from ..people.models import Resident, User
from ..people.schemas import MAX_ID
from .models import (
    AttendanceLine,
    Attendee,
    Event,
    KioskLink,
    ResidentCard,
    Scan,
    Signup,
)

STEP_SECONDS = 30
DIRECTIONS = {"in": 0, "out": 1}
DIRECTION_NAMES = {0: "in", 1: "out"}
MAX_CARD_SERIAL = 2**32 - 1
# Volunteer star levels by recorded service hours (志愿服务记录办法, 2012).
STAR_HOURS = (100, 300, 600, 1000, 1500)

# Reason code -> HTTP status for a scan that cannot be accepted.
REASON_STATUS = {
    "invalid": 422, "expired": 410, "not_yet_valid": 422, "wrong_event": 422,
    "wrong_type": 422, "revoked": 410, "not_checked_in": 409, "outside_geofence": 422,
    "event_closed": 409, "not_signed_up": 403, "overlapping_event": 409, "rate_limited": 429,
    "nonce_reused": 409,
}
REASONS = tuple(REASON_STATUS)


class ScanRefused(DomainError):
    """A scan that cannot be accepted; `code` is the reason."""

    def __init__(self, reason: str, detail: str | None = None) -> None:
        headers = {"Retry-After": "60"} if reason == "rate_limited" else None
        super().__init__(reason, detail or reason, status=REASON_STATUS[reason],
                         headers=headers, reason=reason)


def clock(now: datetime | None) -> datetime:
    """The instant to act at: the caller's clock (tests), else the server's, in UTC."""
    return (now or utcnow()).astimezone(UTC)


def step_of(at: datetime) -> int:
    return int(at.timestamp()) // STEP_SECONDS


def _iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def _setting(name: str) -> Any:
    return current_app.config[name]


def _path(node_id: int) -> str:
    facts = node_facts(node_id=node_id)
    if facts is None:
        raise ValidationFailed(errors={"org_node_id": [f"No organisation node with id {node_id}."]})
    return facts.path


# -- events --------------------------------------------------------------------------------

EDITABLE = ("title", "description", "category", "rule_code", "starts_at", "ends_at", "place",
            "latitude", "longitude", "radius_m", "capacity", "signup_required",
            "approval_required", "points_cap", "credit_granularity_minutes", "close_policy")


def get_event(*, event_id: int) -> Event:
    """The event, or 404."""
    event = db.session.get(Event, event_id) if 0 < event_id <= MAX_ID else None
    if event is None:
        raise NotFound("not_found", f"event {event_id} does not exist")
    return event


def event_path(event: Event) -> str:
    return _path(event.org_node_id)


def _check_values(values: dict[str, Any], *, node_id: int) -> None:
    """Times in UTC and in order, a geofence whole or absent, a rule that pays points here."""
    for key in ("starts_at", "ends_at"):
        if values.get(key) is not None:
            values[key] = as_utc(values[key])
    if values["ends_at"] <= values["starts_at"]:
        raise ValidationFailed(errors={"ends_at": ["Must be after starts_at."]})
    fence = [values.get(key) for key in ("latitude", "longitude", "radius_m")]
    if any(v is not None for v in fence) and any(v is None for v in fence):
        raise ValidationFailed(errors={"radius_m": [
            "latitude, longitude and radius_m go together (a geofence) or not at all."]})
    rule = rulebook.resolve(community_id=node_id, code=values["rule_code"])
    if rule.points <= 0:
        raise ValidationFailed(errors={"rule_code": ["An event's rule must award points."]})


def create_event(*, org_node_id: int, values: dict[str, Any], actor_user_id: int) -> Event:
    """A draft event on an org node (its community or above), paid by a rule in force there."""
    values = dict(values)
    values.setdefault("close_policy", _setting("EVENT_CLOSE_POLICY"))
    values.setdefault("credit_granularity_minutes",
                      int(_setting("EVENT_CREDIT_GRANULARITY_MINUTES")))
    _path(org_node_id)
    _check_values(values, node_id=org_node_id)
    now = utcnow()
    event = Event(org_node_id=org_node_id, district_id=district_of(community_id=org_node_id),
                  status="draft", settlement="none", confirmed_count=0, queue_seq=0,
                  created_by=actor_user_id, created_at=now, updated_at=now, **values)
    db.session.add(event)
    db.session.commit()
    return event


def update_event(*, event_id: int, changes: dict[str, Any], actor_user_id: int,
                 now: datetime | None = None) -> Event:
    """Edit a draft or published event; more capacity promotes from the wait-list."""
    if not changes:
        raise ValidationFailed(errors={"_schema": ["Nothing to change."]})
    event = get_event(event_id=event_id)
    if event.status not in ("draft", "published"):
        raise Conflict("invalid_state", f"a {event.status} event cannot be edited")
    merged = {key: getattr(event, key) for key in EDITABLE}
    merged.update(changes)
    _check_values(merged, node_id=event.org_node_id)
    if "capacity" in changes:
        _set_capacity(event_id=event_id, capacity=changes["capacity"], now=clock(now))
        db.session.refresh(event)
    for key in EDITABLE:
        if key in changes and key != "capacity":
            setattr(event, key, merged[key])
    event.updated_at = utcnow()
    record_event(actor_user_id=actor_user_id, action="event.updated", target_type="event",
                 target_id=event_id, community_id=event.org_node_id,
                 detail={"fields": sorted(changes)})
    db.session.commit()
    return event


def _set_capacity(*, event_id: int, capacity: int | None, now: datetime) -> None:
    locked = _lock_event(event_id)
    if capacity is not None and capacity < locked.confirmed_count:
        db.session.rollback()
        raise ValidationFailed(errors={"capacity": [
            f"{locked.confirmed_count} places are already taken."]})
    db.session.execute(update(Event).where(Event.id == event_id).values(capacity=capacity))
    free = None if capacity is None else capacity - locked.confirmed_count
    while free is None or free > 0:
        if not _promote_next(event_id=event_id, now=now):
            break
        free = None if free is None else free - 1


def _transition(*, event_id: int, from_statuses: tuple[str, ...], values: dict[str, Any],
                action: str, actor_user_id: int) -> Event:
    claimed = db.session.execute(
        update(Event).where(Event.id == event_id, Event.status.in_(from_statuses))
        .values(**values).execution_options(synchronize_session=False)
    ).rowcount
    event = get_event(event_id=event_id)
    if claimed != 1:
        db.session.rollback()
        raise Conflict("invalid_state", f"the event is {event.status}",
                       current_status=event.status)
    record_event(actor_user_id=actor_user_id, action=action, target_type="event",
                 target_id=event_id, community_id=event.org_node_id)
    db.session.commit()
    db.session.refresh(event)
    return event


def publish_event(*, event_id: int, actor_user_id: int) -> Event:
    """Open a draft event for sign-up and check-in."""
    now = utcnow()
    return _transition(event_id=event_id, from_statuses=("draft",),
                       values={"status": "published", "published_at": now, "updated_at": now},
                       action="event.published", actor_user_id=actor_user_id)


def cancel_event(*, event_id: int, actor_user_id: int) -> Event:
    """Call off a draft or published event (nothing is posted)."""
    return _transition(event_id=event_id, from_statuses=("draft", "published"),
                       values={"status": "cancelled", "updated_at": utcnow()},
                       action="event.cancelled", actor_user_id=actor_user_id)


def event_json(event: Event, *, signup: dict[str, Any] | None = None,
               inside: int | None = None) -> dict[str, Any]:
    body = {
        "id": event.id, "org_node_id": event.org_node_id, "title": event.title,
        "description": event.description, "category": event.category,
        "rule_code": event.rule_code, "starts_at": _iso(event.starts_at),
        "ends_at": _iso(event.ends_at), "place": event.place, "latitude": event.latitude,
        "longitude": event.longitude, "radius_m": event.radius_m, "capacity": event.capacity,
        "confirmed_count": event.confirmed_count, "signup_required": event.signup_required,
        "approval_required": event.approval_required, "points_cap": event.points_cap,
        "credit_granularity_minutes": event.credit_granularity_minutes,
        "close_policy": event.close_policy, "status": event.status,
        "settlement": event.settlement, "created_at": _iso(event.created_at),
        "published_at": _iso(event.published_at), "closed_at": _iso(event.closed_at),
    }
    if signup is not None:
        body["my_signup"] = signup
    if inside is not None:
        body["inside_count"] = inside
    return body


def _page(query, *, limit: int, cursor: str | None):  # type: ignore[no-untyped-def]
    """Keyset page over (starts_at, id)."""
    if cursor:
        starts, last_id = decode_cursor(cursor, 2)
        try:
            starts_at = datetime.fromisoformat(str(starts)).astimezone(UTC)
        except ValueError as exc:
            raise ValidationFailed(errors={"cursor": ["Invalid cursor."]}) from exc
        if not isinstance(last_id, int) or isinstance(last_id, bool):
            raise ValidationFailed(errors={"cursor": ["Invalid cursor."]})
        query = query.where(or_(Event.starts_at > starts_at,
                                and_(Event.starts_at == starts_at, Event.id > last_id)))
    rows = list(db.session.scalars(query.order_by(Event.starts_at, Event.id).limit(limit + 1)))
    items = [event_json(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([_iso(last.starts_at), last.id])
    return items, next_cursor


def events_for_resident(*, community_path: str, limit: int, cursor: str | None,
                        upcoming_only: bool, now: datetime | None = None
                        ) -> tuple[list[dict[str, Any]], str | None]:
    """Published events on the resident's community or any node above it."""
    ancestors = [int(part) for part in community_path.strip("/").split("/") if part]
    query = select(Event).where(Event.org_node_id.in_(ancestors), Event.status == "published")
    if upcoming_only:
        query = query.where(Event.ends_at > clock(now))
    return _page(query, limit=limit, cursor=cursor)


def events_in_scope(*, scope_paths: list[str], status: str | None, limit: int,
                    cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Every event (any status) on nodes in the caller's scope."""
    if not scope_paths:
        return [], None
    query = select(Event).join(OrgNode, OrgNode.id == Event.org_node_id).where(
        or_(*[OrgNode.path.startswith(path, autoescape=True) for path in scope_paths]))
    if status:
        query = query.where(Event.status == status)
    return _page(query, limit=limit, cursor=cursor)


def on_branch(*, event: Event, community_path: str | None) -> bool:
    """Whether a resident's community lies under the event's node."""
    return community_path is not None and community_path.startswith(event_path(event))


def inside_count(*, event_id: int) -> int:
    """People checked in right now (latest scan is an entry)."""
    return int(db.session.scalar(
        select(func.count()).select_from(Attendee)
        .where(Attendee.event_id == event_id, Attendee.inside.is_(True))) or 0)


# -- sign-ups and the wait-list ---------------------------------------------------------------


def _lock_event(event_id: int):  # type: ignore[no-untyped-def]
    """Take the event row's lock by bumping queue_seq; returns the row as it is now.

    Every sign-up and cancellation of one event passes here, so they serialise on one row
    (PostgreSQL row lock; SQLite's write lock) and queue_seq orders the wait-list.
    """
    row = db.session.execute(
        update(Event).where(Event.id == event_id).values(queue_seq=Event.queue_seq + 1)
        .returning(Event.queue_seq, Event.capacity, Event.confirmed_count, Event.status,
                   Event.ends_at)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        raise NotFound("not_found", f"event {event_id} does not exist")
    return row


def _position(*, event_id: int, queue_seq: int) -> int:
    return int(db.session.scalar(
        select(func.count()).select_from(Signup)
        .where(Signup.event_id == event_id, Signup.status == "waitlisted",
               Signup.queue_seq <= queue_seq)) or 0)


def signup_json(row: Signup | None) -> dict[str, Any] | None:
    if row is None:
        return None
    body = {"event_id": row.event_id, "resident_id": row.resident_id, "status": row.status,
            "created_at": _iso(row.created_at), "promoted_at": _iso(row.promoted_at),
            "cancelled_at": _iso(row.cancelled_at), "position": None}
    if row.status == "waitlisted":
        body["position"] = _position(event_id=row.event_id, queue_seq=row.queue_seq)
    return body


def signup_of(*, event_id: int, resident_id: int) -> Signup | None:
    return db.session.scalar(
        select(Signup).where(Signup.event_id == event_id, Signup.resident_id == resident_id))


def signup(*, event_id: int, resident_id: int, actor_user_id: int,
           now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    """A place if one is free, else the end of the wait-list; a repeat returns the same."""
    now = clock(now)
    existing = signup_of(event_id=event_id, resident_id=resident_id)
    if existing is not None and existing.status != "cancelled":
        return 200, signup_json(existing)
    db.session.rollback()
    locked = _lock_event(event_id)
    if locked.status != "published" or as_utc(locked.ends_at) <= now:
        db.session.rollback()
        raise Conflict("event_closed", "this event does not take sign-ups now")
    status = "waitlisted"
    if locked.capacity is None or locked.confirmed_count < locked.capacity:
        taken = db.session.execute(
            update(Event).where(Event.id == event_id,
                                or_(Event.capacity.is_(None),
                                    Event.confirmed_count < Event.capacity))
            .values(confirmed_count=Event.confirmed_count + 1)
            .execution_options(synchronize_session=False)
        ).rowcount
        status = "confirmed" if taken == 1 else "waitlisted"
    values = {"status": status, "queue_seq": locked.queue_seq, "created_by": actor_user_id,
              "created_at": now, "promoted_at": None, "cancelled_at": None}
    db.session.execute(
        _insert(Signup.__table__).values(event_id=event_id, resident_id=resident_id, **values)
        .on_conflict_do_update(index_elements=["event_id", "resident_id"], set_=values)
    )
    db.session.commit()
    return 201, signup_json(signup_of(event_id=event_id, resident_id=resident_id))


def _promote_next(*, event_id: int, now: datetime) -> bool:
    """Give a free place to the first on the wait-list (the caller holds the event lock)."""
    first = db.session.scalar(
        select(Signup.id).where(Signup.event_id == event_id, Signup.status == "waitlisted")
        .order_by(Signup.queue_seq).limit(1))
    if first is None:
        return False
    db.session.execute(update(Signup).where(Signup.id == first)
                       .values(status="confirmed", promoted_at=now)
                       .execution_options(synchronize_session=False))
    db.session.execute(update(Event).where(Event.id == event_id)
                       .values(confirmed_count=Event.confirmed_count + 1)
                       .execution_options(synchronize_session=False))
    return True


def cancel_signup(*, event_id: int, resident_id: int, actor_user_id: int,
                  now: datetime | None = None) -> dict[str, Any]:
    """Give up a place (the first on the wait-list gets it) or leave the wait-list."""
    now = clock(now)
    locked = _lock_event(event_id)
    if locked.status not in ("draft", "published"):
        db.session.rollback()
        raise Conflict("event_closed", "this event is over")
    previous = db.session.scalar(
        select(Signup.status).where(Signup.event_id == event_id,
                                    Signup.resident_id == resident_id))
    if previous is None or previous == "cancelled":
        db.session.rollback()
        raise NotFound("not_found", "no sign-up to cancel")
    db.session.execute(
        update(Signup).where(Signup.event_id == event_id, Signup.resident_id == resident_id)
        .values(status="cancelled", cancelled_at=now, created_by=actor_user_id)
        .execution_options(synchronize_session=False))
    if previous == "confirmed":
        db.session.execute(update(Event).where(Event.id == event_id)
                           .values(confirmed_count=Event.confirmed_count - 1)
                           .execution_options(synchronize_session=False))
        _promote_next(event_id=event_id, now=now)
    db.session.commit()
    return signup_json(signup_of(event_id=event_id, resident_id=resident_id))


def roster(*, event_id: int) -> list[dict[str, Any]]:
    """Every sign-up with the resident's name, places first, then the wait-list in order."""
    rows = db.session.execute(
        select(Signup, User.display_name)
        .join(Resident, Resident.id == Signup.resident_id)
        .join(User, User.id == Resident.user_id)
        .where(Signup.event_id == event_id)
        .order_by(case((Signup.status == "confirmed", 0), (Signup.status == "waitlisted", 1),
                       else_=2), Signup.queue_seq)
    ).all()
    items, position = [], 0
    for row, name in rows:
        body = {"event_id": row.event_id, "resident_id": row.resident_id, "name": name,
                "status": row.status, "position": None, "created_at": _iso(row.created_at),
                "promoted_at": _iso(row.promoted_at), "cancelled_at": _iso(row.cancelled_at)}
        if row.status == "waitlisted":
            position += 1
            body["position"] = position
        items.append(body)
    return items


# -- check-in codes ------------------------------------------------------------------------


def checkin_code(*, event_id: int, direction: str, now: datetime | None = None
                 ) -> dict[str, Any]:
    """The event's code for this 30-s step: token, upper-case link, validity."""
    now = clock(now)
    step = step_of(now)
    token = issue_code(CHECKIN, event_id=event_id, direction=DIRECTIONS[direction], step=step)
    # Accepted while the server is at step-1 .. step+1: shown now, it stays good until
    # the end of the next step.
    expires = datetime.fromtimestamp((step + 2) * STEP_SECONDS, UTC)
    return {"event_id": event_id, "direction": direction, "step": step, "code": token,
            "url": code_link(CHECKIN, token), "expires_at": _iso(expires),
            "refresh_after": _iso(datetime.fromtimestamp((step + 1) * STEP_SECONDS, UTC))}


def _parse(text: str, expected) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    try:
        return parse_code(text, expected=expected)
    except CodeError as err:
        raise ScanRefused(err.reason, err.detail) from None


# -- cards ---------------------------------------------------------------------------------


def card_serial(*, resident_id: int) -> int:
    serial = db.session.scalar(
        select(ResidentCard.serial).where(ResidentCard.resident_id == resident_id))
    return int(serial or 1)


def card_for(*, resident_id: int) -> dict[str, Any]:
    """The resident's printable card: a bare Ed25519-signed token (checkable offline)."""
    serial = card_serial(resident_id=resident_id)
    return {"resident_id": resident_id, "serial": serial,
            "code": issue_code(CARD, resident_id=resident_id, serial=serial)}


def reissue_card(*, resident_id: int, actor_user_id: int) -> dict[str, Any]:
    """A new card: the serial goes up and every older card answers `revoked`."""
    resident = db.session.get(Resident, resident_id) if 0 < resident_id <= MAX_ID else None
    if resident is None:
        raise NotFound("not_found", f"resident {resident_id} does not exist")
    previous = card_serial(resident_id=resident_id)
    if previous >= MAX_CARD_SERIAL:
        raise Conflict("invalid_state", "this card cannot be reissued again")
    now = utcnow()
    db.session.execute(
        _insert(ResidentCard.__table__)
        .values(resident_id=resident_id, serial=2, reissued_by=actor_user_id, reissued_at=now)
        .on_conflict_do_update(index_elements=["resident_id"],
                               set_={"serial": ResidentCard.__table__.c.serial + 1,
                                     "reissued_by": actor_user_id, "reissued_at": now}))
    record_event(actor_user_id=actor_user_id, action="resident.card_reissued",
                 target_type="resident", target_id=resident_id,
                 community_id=resident.community_id,
                 before={"serial": previous},
                 after={"serial": card_serial(resident_id=resident_id)})
    db.session.commit()
    return card_for(resident_id=resident_id)


def read_card(*, text: str) -> int:
    """The resident a card names, or invalid / revoked / wrong_type."""
    fields = _parse(text, CARD)
    resident_id = int(fields["resident_id"])
    current = card_serial(resident_id=resident_id)
    if fields["serial"] < current:
        raise ScanRefused("revoked", "this card was replaced by a newer one")
    if fields["serial"] > current:
        raise ScanRefused("invalid", "this card was never issued")
    return resident_id


# -- scans -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanInput:
    """One scan to record: who, where, which way, when it counts, and its nonce."""

    event_id: int
    resident_id: int
    direction: str
    source: str  # "code" (resident scanned the screen) or "card" (staff scanned a card)
    step: int | None
    at: datetime
    scanned_at: datetime | None
    received_at: datetime
    nonce_scope: str
    nonce: str
    actor_user_id: int
    offline: bool = False
    latitude: float | None = None
    longitude: float | None = None
    community_path: str | None = None
    claimed_event_id: int | None = None


@dataclass
class ScanOutcome:
    duplicate: bool
    scan_id: int | None
    body: dict[str, Any] = field(default_factory=dict)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(min(1.0, math.sqrt(h)))


# The check-in path's statements are built once per dialect and run with bound parameters:
# building them per request cost more Python time than the database spent running them.
_STATEMENTS: dict[tuple[str, str], Any] = {}
WHEN = DateTime(timezone=True)


def _statement(name: str, build):  # type: ignore[no-untyped-def]
    key = (db.engine.dialect.name, name)
    if key not in _STATEMENTS:
        _STATEMENTS[key] = build()
    return _STATEMENTS[key]


def _build_facts():  # type: ignore[no-untyped-def]
    resident = bindparam("resident_id", type_=BigInteger)
    other = aliased(Attendee)
    other_event = aliased(Event)
    signup_status = (select(Signup.status)
                     .where(Signup.event_id == Event.id, Signup.resident_id == resident)
                     .scalar_subquery())
    same_nonce = (select(Scan.id).where(Scan.nonce_scope == bindparam("nonce_scope"),
                                        Scan.nonce == bindparam("nonce")).scalar_subquery())
    overlapping = exists(
        select(other.event_id).join(other_event, other_event.id == other.event_id)
        .where(other.resident_id == resident, other.inside.is_(True),
               other.event_id != Event.id, other_event.status == "published",
               other_event.starts_at < Event.ends_at, other_event.ends_at > Event.starts_at))
    recent = (select(func.count()).select_from(Scan)
              .where(Scan.resident_id == resident,
                     Scan.received_at > bindparam("since", type_=WHEN))
              .scalar_subquery())
    return (
        select(Event.status, Event.starts_at, Event.ends_at, Event.latitude, Event.longitude,
               Event.radius_m, Event.signup_required, OrgNode.path, Attendee.inside,
               Attendee.first_in_at, Attendee.last_at, signup_status.label("signup"),
               same_nonce.label("same_nonce"), overlapping.label("overlapping"),
               recent.label("recent"))
        .join(OrgNode, OrgNode.id == Event.org_node_id)
        .outerjoin(Attendee, and_(Attendee.event_id == Event.id,
                                  Attendee.resident_id == resident))
        .where(Event.id == bindparam("event_id", type_=BigInteger))
    )


def _facts(scan: ScanInput):  # type: ignore[no-untyped-def]
    """Everything the checks need, in ONE statement: the event, its node's path, the
    resident's state here, their sign-up, an earlier scan with this nonce, an overlapping
    stay elsewhere and their scans in the last minute."""
    return db.session.execute(_statement("facts", _build_facts), {
        "resident_id": scan.resident_id, "event_id": scan.event_id,
        "nonce_scope": scan.nonce_scope, "nonce": scan.nonce,
        "since": scan.received_at - timedelta(minutes=1)}).first()


def _refusal(scan: ScanInput, facts) -> str | None:  # type: ignore[no-untyped-def]
    """The reason the scan cannot count, checked in a fixed order; None if it can."""
    if scan.claimed_event_id is not None and scan.claimed_event_id != scan.event_id:
        return "wrong_event"
    if facts.status != "published":
        return "event_closed"
    early = timedelta(minutes=int(_setting("EVENT_CHECKIN_EARLY_MINUTES")))
    grace = timedelta(minutes=int(_setting("EVENT_CHECKOUT_GRACE_MINUTES")))
    if scan.at < as_utc(facts.starts_at) - early:
        return "not_yet_valid"
    closes = as_utc(facts.ends_at) + (grace if scan.direction == "out" else timedelta(0))
    if scan.at > closes:
        return "event_closed"
    if scan.community_path is None or not scan.community_path.startswith(facts.path):
        return "wrong_event"
    if facts.signup_required and facts.signup != "confirmed":
        return "not_signed_up"
    if scan.source == "code" and facts.radius_m is not None:
        if scan.latitude is None or scan.longitude is None:
            return "outside_geofence"
        slack = int(_setting("EVENT_GEOFENCE_SLACK_METERS"))
        if distance_m(facts.latitude, facts.longitude, scan.latitude,
                      scan.longitude) > facts.radius_m + slack:
            return "outside_geofence"
    if not scan.offline and facts.recent >= int(_setting("EVENT_SCANS_PER_MINUTE")):
        return "rate_limited"
    if scan.direction == "in" and facts.overlapping:
        return "overlapping_event"
    if scan.direction == "out" and (facts.first_in_at is None
                                    or as_utc(facts.first_in_at) > scan.at):
        return "not_checked_in"
    return None


def _scan_body(scan: ScanInput, *, duplicate: bool, scan_id: int | None) -> dict[str, Any]:
    return {"event_id": scan.event_id, "resident_id": scan.resident_id,
            "direction": scan.direction, "source": scan.source, "at": _iso(scan.at),
            "offline": scan.offline, "duplicate": duplicate, "scan_id": scan_id}


def _same_scan(scan: ScanInput, scan_id: int) -> bool:
    """Whether the stored scan with this nonce is this very scan (a retry) or another."""
    row = db.session.execute(
        select(Scan.event_id, Scan.resident_id, Scan.direction, Scan.step)
        .where(Scan.id == scan_id)).first()
    return row is not None and tuple(row) == (scan.event_id, scan.resident_id, scan.direction,
                                              scan.step)


def _build_entry():  # type: ignore[no-untyped-def]
    table = Attendee.__table__
    current, at = table.c, bindparam("b_at", type_=WHEN)
    return _insert(table).values(
        event_id=bindparam("b_event"), resident_id=bindparam("b_resident"), inside=True,
        first_in_at=at, last_at=at,
    ).on_conflict_do_update(
        index_elements=["event_id", "resident_id"],
        set_={
            "inside": case((current.last_at <= at, True), else_=current.inside),
            "first_in_at": case((or_(current.first_in_at.is_(None), current.first_in_at > at),
                                 at), else_=current.first_in_at),
            "last_at": case((current.last_at < at, at), else_=current.last_at),
        },
        where=~and_(current.inside.is_(True), current.last_at <= at),
    ).returning(current.inside)


def _build_exit():  # type: ignore[no-untyped-def]
    at = bindparam("b_at", type_=WHEN)
    return (
        update(Attendee)
        .where(Attendee.event_id == bindparam("b_event"),
               Attendee.resident_id == bindparam("b_resident"),
               Attendee.first_in_at <= at,
               ~and_(Attendee.inside.is_(False), Attendee.last_at <= at))
        .values(inside=case((Attendee.last_at <= at, False), else_=Attendee.inside),
                last_at=case((Attendee.last_at < at, at), else_=Attendee.last_at))
        .execution_options(synchronize_session=False)
    )


def _build_scan_insert():  # type: ignore[no-untyped-def]
    return _insert(Scan.__table__).on_conflict_do_nothing().returning(Scan.__table__.c.id)


def _move_attendee(scan: ScanInput) -> bool:
    """Apply the scan to the resident's latest state; False if it changes nothing (already
    inside for an entry, already out for an exit). Only scans at or after the latest one
    move `inside`; older ones (offline uploads) just widen first_in_at."""
    params = {"b_event": scan.event_id, "b_resident": scan.resident_id, "b_at": scan.at}
    if scan.direction == "in":
        # RETURNING, not rowcount: the driver reports no row count for INSERT … ON CONFLICT.
        return db.session.execute(_statement("entry", _build_entry), params).first() is not None
    return db.session.execute(_statement("exit", _build_exit), params).rowcount == 1


def record_scan(scan: ScanInput) -> ScanOutcome:
    """Check and record one scan in its own database transaction (commits).

    The lean path: one SELECT of every fact, one INSERT of the scan (its unique constraints
    catch a replayed nonce or the same code step twice), one conditional upsert of the
    resident's state, COMMIT.
    """
    facts = _facts(scan)
    if facts is None:
        db.session.rollback()
        raise ScanRefused("invalid", "no such event")
    if facts.same_nonce is not None:
        db.session.rollback()
        if _same_scan(scan, facts.same_nonce):
            return ScanOutcome(True, facts.same_nonce, _scan_body(
                scan, duplicate=True, scan_id=facts.same_nonce))
        raise ScanRefused("nonce_reused", "this nonce was already used for another scan")
    reason = _refusal(scan, facts)
    if reason is not None:
        db.session.rollback()
        if reason == "outside_geofence":  # kept (distance only) for the anomaly report
            from ..audit.anomalies.service import record_geofence_refusal

            record_geofence_refusal(
                event_id=scan.event_id, resident_id=scan.resident_id, direction=scan.direction,
                step=scan.step, at=scan.at, radius_m=facts.radius_m,
                distance_m=None if scan.latitude is None or scan.longitude is None else
                distance_m(facts.latitude, facts.longitude, scan.latitude, scan.longitude))
        raise ScanRefused(reason)
    params = {
        "event_id": scan.event_id, "resident_id": scan.resident_id,
        "direction": scan.direction, "source": scan.source, "step": scan.step, "at": scan.at,
        "scanned_at": scan.scanned_at, "received_at": scan.received_at,
        "nonce_scope": scan.nonce_scope, "nonce": scan.nonce,
        "actor_user_id": scan.actor_user_id, "offline": scan.offline,
        "latitude": scan.latitude, "longitude": scan.longitude}
    if db.engine.dialect.name == "postgresql":
        # One round trip: the scan and the state change in one statement (data-modifying
        # CTEs); no row back from the state means "no change", so the scan is rolled back.
        scan_id, moved = db.session.execute(
            PG_ENTRY if scan.direction == "in" else PG_EXIT, params).one()
    else:
        scan_id = db.session.execute(_statement("scan", _build_scan_insert), params).scalar()
        moved = scan_id is not None and _move_attendee(scan)
    if scan_id is None or not moved:
        # The same code step twice, a concurrent twin, or no change of state: a repeat.
        db.session.rollback()
        return ScanOutcome(True, None, _scan_body(scan, duplicate=True, scan_id=None))
    db.session.commit()
    return ScanOutcome(False, scan_id, _scan_body(scan, duplicate=False, scan_id=scan_id))


_PG_SCAN = """
WITH s AS (
  INSERT INTO event_scans (event_id, resident_id, direction, source, step, at, scanned_at,
                           received_at, nonce_scope, nonce, actor_user_id, offline, latitude,
                           longitude)
  VALUES (:event_id, :resident_id, :direction, :source, :step, :at, :scanned_at, :received_at,
          :nonce_scope, :nonce, :actor_user_id, :offline, :latitude, :longitude)
  ON CONFLICT DO NOTHING RETURNING id
), a AS ({state})
SELECT (SELECT id FROM s) AS scan_id, (SELECT count(*) FROM a) AS moved
"""
# The same conditions as _build_entry / _build_exit (only scans at or after the latest one
# move `inside`), and only when the scan itself was new.
PG_ENTRY = sql_text(_PG_SCAN.format(state="""
  INSERT INTO event_attendees AS t (event_id, resident_id, inside, first_in_at, last_at)
  SELECT :event_id, :resident_id, true, :at, :at FROM s
  ON CONFLICT (event_id, resident_id) DO UPDATE SET
    inside = CASE WHEN t.last_at <= EXCLUDED.last_at THEN true ELSE t.inside END,
    first_in_at = CASE WHEN t.first_in_at IS NULL OR t.first_in_at > EXCLUDED.first_in_at
                       THEN EXCLUDED.first_in_at ELSE t.first_in_at END,
    last_at = GREATEST(t.last_at, EXCLUDED.last_at)
  WHERE NOT (t.inside AND t.last_at <= EXCLUDED.last_at)
  RETURNING 1"""))
PG_EXIT = sql_text(_PG_SCAN.format(state="""
  UPDATE event_attendees AS t SET
    inside = CASE WHEN t.last_at <= :at THEN false ELSE t.inside END,
    last_at = GREATEST(t.last_at, :at)
  WHERE t.event_id = :event_id AND t.resident_id = :resident_id AND t.first_in_at <= :at
    AND NOT (NOT t.inside AND t.last_at <= :at) AND EXISTS (SELECT 1 FROM s)
  RETURNING 1"""))


def _code_scan(*, text: str, resident_id: int, community_path: str | None,
               user_id: int, nonce: str, at: datetime, scanned_at: datetime | None,
               received_at: datetime, offline: bool, latitude: float | None,
               longitude: float | None, claimed_event_id: int | None) -> ScanInput:
    fields = _parse(text, CHECKIN)
    if fields["direction"] not in DIRECTION_NAMES:
        raise ScanRefused("invalid", "unknown direction")
    step, current = int(fields["step"]), step_of(at)
    if step < current - 1:
        raise ScanRefused("expired", "this code has rotated away; scan the screen again")
    if step > current + 1:
        raise ScanRefused("not_yet_valid", "this code is from the future (check the clock)")
    return ScanInput(event_id=int(fields["event_id"]), resident_id=resident_id,
                     direction=DIRECTION_NAMES[fields["direction"]], source="code", step=step,
                     at=at, scanned_at=scanned_at, received_at=received_at,
                     nonce_scope=f"r:{resident_id}", nonce=nonce, actor_user_id=user_id,
                     offline=offline, latitude=latitude, longitude=longitude,
                     community_path=community_path, claimed_event_id=claimed_event_id)


def resident_checkin(*, resident_id: int, community_path: str | None, user_id: int,
                     item: dict[str, Any], now: datetime | None = None) -> ScanOutcome:
    """A resident scanned the event's screen (online): the server's clock decides the step."""
    now = clock(now)
    scan = _code_scan(text=item["code"], resident_id=resident_id,
                      community_path=community_path, user_id=user_id, nonce=item["nonce"],
                      at=now, scanned_at=as_utc(item.get("scanned_at")), received_at=now,
                      offline=False, latitude=item.get("latitude"),
                      longitude=item.get("longitude"), claimed_event_id=item.get("event_id"))
    return record_scan(scan)


def _offline_time(item: dict[str, Any], *, offset: timedelta, now: datetime) -> datetime:
    """When a queued scan happened, on the server's clock (device clock + measured skew)."""
    at = as_utc(item["scanned_at"]) + offset
    if at < now - timedelta(hours=int(_setting("EVENT_OFFLINE_MAX_HOURS"))):
        raise ScanRefused("expired", "queued scans are accepted for 24 hours")
    if at > now + timedelta(seconds=int(_setting("EVENT_CLOCK_SKEW_SECONDS"))):
        raise ScanRefused("not_yet_valid", "this scan is dated in the future")
    return at


def _skew(sent_at: datetime | None, now: datetime) -> timedelta:
    """Device clock error measured from the batch's own sent_at (zero without it)."""
    return timedelta(0) if sent_at is None else now - as_utc(sent_at)


def _batch(items: list[dict[str, Any]], build, *, offset: timedelta,  # type: ignore[no-untyped-def]
           now: datetime) -> list[dict[str, Any]]:
    """Apply queued scans oldest first (whatever order they came in); a result per item."""
    timed: list[tuple[datetime, int]] = []
    results: list[dict[str, Any] | None] = [None] * len(items)
    for index, item in enumerate(items):
        try:
            timed.append((_offline_time(item, offset=offset, now=now), index))
        except ScanRefused as refused:
            results[index] = _refused_item(index, item, refused)
    for at, index in sorted(timed):
        item = items[index]
        try:
            outcome = record_scan(build(item, at))
        except ScanRefused as refused:
            db.session.rollback()
            results[index] = _refused_item(index, item, refused)
            continue
        results[index] = {"index": index, "nonce": item["nonce"],
                          "status": "duplicate" if outcome.duplicate else "accepted",
                          "reason": None, **outcome.body}
    return [result for result in results if result is not None]


def _refused_item(index: int, item: dict[str, Any], refused: ScanRefused) -> dict[str, Any]:
    return {"index": index, "nonce": item["nonce"], "status": "rejected",
            "reason": refused.code, "detail": refused.detail, "duplicate": False}


def resident_batch(*, resident_id: int, community_path: str | None, user_id: int,
                   items: list[dict[str, Any]], sent_at: datetime | None,
                   now: datetime | None = None) -> list[dict[str, Any]]:
    """Scans a phone queued offline: each checked at the time it was made (≤ 24 h ago)."""
    now = clock(now)

    def build(item: dict[str, Any], at: datetime) -> ScanInput:
        return _code_scan(text=item["code"], resident_id=resident_id,
                          community_path=community_path, user_id=user_id,
                          nonce=item["nonce"], at=at, scanned_at=as_utc(item["scanned_at"]),
                          received_at=now, offline=True, latitude=item.get("latitude"),
                          longitude=item.get("longitude"), claimed_event_id=item.get("event_id"))

    return _batch(items, build, offset=_skew(sent_at, now), now=now)


def _resident_path(resident_id: int) -> str | None:
    return db.session.scalar(
        select(OrgNode.path).join(Resident, Resident.community_id == OrgNode.id)
        .where(Resident.id == resident_id))


def _card_scan(*, event_id: int, item: dict[str, Any], user_id: int, at: datetime,
               received_at: datetime, offline: bool) -> ScanInput:
    resident_id = read_card(text=item["card_code"])
    return ScanInput(event_id=event_id, resident_id=resident_id, direction=item["direction"],
                     source="card", step=None, at=at, scanned_at=as_utc(item.get("scanned_at")),
                     received_at=received_at, nonce_scope=f"u:{user_id}", nonce=item["nonce"],
                     actor_user_id=user_id, offline=offline,
                     community_path=_resident_path(resident_id))


def card_checkin(*, event_id: int, user_id: int, item: dict[str, Any],
                 now: datetime | None = None) -> ScanOutcome:
    """Staff at the event scanned a resident's card (online: the server's clock)."""
    now = clock(now)
    return record_scan(_card_scan(event_id=event_id, item=item, user_id=user_id, at=now,
                                  received_at=now, offline=False))


def card_batch(*, event_id: int, user_id: int, items: list[dict[str, Any]],
               sent_at: datetime | None, now: datetime | None = None) -> list[dict[str, Any]]:
    """Card scans a staff device queued offline."""
    now = clock(now)

    def build(item: dict[str, Any], at: datetime) -> ScanInput:
        return _card_scan(event_id=event_id, item=item, user_id=user_id, at=at,
                          received_at=now, offline=True)

    return _batch(items, build, offset=_skew(sent_at, now), now=now)


# -- attendance and closing ------------------------------------------------------------------


@dataclass
class Line:
    resident_id: int
    stays: int = 0
    first_in_at: datetime | None = None
    last_out_at: datetime | None = None
    raw_minutes: int = 0
    minutes: int = 0
    computed_points: int = 0
    points: int = 0


def _stays(scans: list[tuple[str, datetime]], *, end: datetime, policy: str
           ) -> list[tuple[datetime, datetime]]:
    """Entry/exit pairs from scans in time order; a repeated entry or a stray exit changes
    nothing; a stay still open at the end is closed at the end or dropped (the policy)."""
    stays, opened = [], None
    for direction, at in scans:
        if direction == "in" and opened is None:
            opened = at
        elif direction == "out" and opened is not None:
            stays.append((opened, at))
            opened = None
    if opened is not None and policy == "credit_to_end" and opened < end:
        stays.append((opened, end))
    return stays


def _points(*, rule: Rule, minutes: int, cap: int | None) -> int:
    if minutes <= 0:
        return 0
    points = rulebook.points_for(rule=rule, quantity=minutes) if rule.unit == "hour" else (
        rule.points)
    return points if cap is None else min(points, cap)


def compute_lines(*, event: Event, rule: Rule, now: datetime) -> list[Line]:
    """Minutes per resident: overlap of their stays with the event's window, summed,
    rounded down to the event's granularity; then points (rule × hours, event cap)."""
    start, end = as_utc(event.starts_at), as_utc(event.ends_at)
    # A stay still open is closed at the end, or now if the event is closed early.
    open_until = min(end, now)
    per_resident: dict[int, list[tuple[str, datetime]]] = defaultdict(list)
    for resident_id, direction, at in db.session.execute(
            select(Scan.resident_id, Scan.direction, Scan.at).where(Scan.event_id == event.id)
            .order_by(Scan.resident_id, Scan.at, Scan.id)):
        per_resident[resident_id].append((direction, as_utc(at)))
    lines = []
    granularity = event.credit_granularity_minutes
    for resident_id, scans in per_resident.items():
        stays = _stays(scans, end=open_until, policy=event.close_policy)
        seconds = sum(max(0.0, (min(out, end) - max(entry, start)).total_seconds())
                      for entry, out in stays)
        raw = int(seconds // 60)
        line = Line(resident_id=resident_id, stays=len(stays), raw_minutes=raw,
                    minutes=raw // granularity * granularity,
                    first_in_at=stays[0][0] if stays else None,
                    last_out_at=stays[-1][1] if stays else None)
        line.computed_points = _points(rule=rule, minutes=line.minutes, cap=None)
        line.points = _points(rule=rule, minutes=line.minutes, cap=event.points_cap)
        lines.append(line)
    return lines


def _event_rule(event: Event) -> Rule:
    return rulebook.resolve(community_id=event.org_node_id, code=event.rule_code)


def _communities(resident_ids: list[int]) -> dict[int, int]:
    found: dict[int, int] = {}
    for start in range(0, len(resident_ids), 5000):
        found.update(db.session.execute(
            select(Resident.id, Resident.community_id)
            .where(Resident.id.in_(resident_ids[start:start + 5000]))).all())
    return found


def _post_lines(*, event: Event, rule: Rule, lines: list[tuple[int, int, int, int]],
                actor_user_id: int) -> dict[int, tuple[int | None, int]]:
    """Award each (resident, community, points, minutes) through post_many, after the
    rule's caps; returns resident -> (transaction id or None, points posted)."""
    result: dict[int, tuple[int | None, int]] = {}
    granted = take_caps(rule=rule, wants=[
        CapWant(resident_id, points, _timezone_of(community_id, event))
        for resident_id, community_id, points, _ in lines if points > 0])
    todo = []
    for resident_id, community_id, points, minutes in lines:
        points = granted.get(resident_id, points)
        if points <= 0:
            result[resident_id] = (None, 0)
        else:
            todo.append((resident_id, community_id, points, minutes))
    if not todo:
        return result
    accounts = ensure_accounts(kind="resident", owners=[(r, c) for r, c, _, _ in todo],
                               district_id=event.district_id)
    issuance = {c: issuance_account(community_id=c) for c in {c for _, c, _, _ in todo}}
    transfers = [Transfer(
        kind="award", community_id=community_id, district_id=event.district_id,
        legs=(Leg(issuance[community_id], -points), Leg(accounts[resident_id], points)),
        actor_user_id=actor_user_id, rule_id=rule.id, rule_code=rule.code,
        rule_version=rule.version, category=rule.category,
        # The quantity is the minutes credited for an hourly rule, else one attendance.
        quantity=minutes if rule.unit == "hour" else 1,
        reference_type="event_attendance", reference_id=f"{event.id}:{resident_id}",
        subject_resident_id=resident_id)
        for resident_id, community_id, points, minutes in todo]
    for (resident_id, _, points, _), tx_id in zip(todo, post_many(transfers=transfers),
                                               strict=True):
        result[resident_id] = (tx_id, points)
    return result


def _timezone_of(community_id: int, event: Event) -> str:
    return (node_facts(node_id=community_id) or node_facts(node_id=event.org_node_id)).timezone


def _self_and_family(actor_user_id: int) -> tuple[set[int], set[int]]:
    """Resident ids of the staff member and the households they belong to."""
    own = set(db.session.scalars(select(Resident.id).where(Resident.user_id == actor_user_id)))
    return own, staff_households(user_id=actor_user_id)


def _blocked(actor_user_id: int, resident_ids: list[int]) -> set[int]:
    """Residents among these that the staff member may not award (themselves, family)."""
    own, households = _self_and_family(actor_user_id)
    blocked = set(own) & set(resident_ids)
    if households and resident_ids:
        blocked |= set(db.session.scalars(
            select(Resident.id).where(Resident.id.in_(resident_ids),
                                      Resident.household_id.in_(households))))
    return blocked


def close_event(*, event_id: int, actor_user_id: int, now: datetime | None = None
                ) -> tuple[int, dict[str, Any]]:
    """Close a published event: compute attendance and post points (or wait for approval).

    Runs inside idempotency.run_once (writes without committing). The conditional status
    update claims the close once, so a second close — concurrent or later, any key — posts
    nothing and answers with what the first one did.
    """
    now = clock(now)
    event = get_event(event_id=event_id)
    rule = _event_rule(event) if event.status == "published" else None
    claimed = db.session.execute(
        update(Event).where(Event.id == event_id, Event.status == "published")
        .values(status="closed", closed_at=now, closed_by=actor_user_id, updated_at=now,
                settlement="awaiting_approval" if event.approval_required else "posted")
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(event)
    if claimed != 1:
        if event.status == "closed":
            return 200, attendance_summary(event=event)
        raise Conflict("invalid_state", f"a {event.status} event cannot be closed",
                       current_status=event.status)
    lines = compute_lines(event=event, rule=rule, now=now)
    communities = _communities([line.resident_id for line in lines])
    blocked = _blocked(actor_user_id, [line.resident_id for line in lines])
    posted: dict[int, tuple[int | None, int]] = {}
    if not event.approval_required:
        posted = _post_lines(event=event, rule=rule, actor_user_id=actor_user_id, lines=[
            (line.resident_id, communities[line.resident_id], line.points, line.minutes)
            for line in lines if line.resident_id not in blocked])
    rows = []
    for line in lines:
        tx_id, points = posted.get(line.resident_id, (None, line.points))
        if event.approval_required or line.resident_id in blocked:
            status = "pending"
        else:
            status = "posted" if tx_id is not None else "no_points"
        rows.append({"event_id": event.id, "resident_id": line.resident_id,
                     "community_id": communities[line.resident_id], "stays": line.stays,
                     "first_in_at": line.first_in_at, "last_out_at": line.last_out_at,
                     "raw_minutes": line.raw_minutes, "minutes": line.minutes,
                     "computed_points": line.computed_points, "points": points,
                     "status": status, "transaction_id": tx_id, "created_at": now,
                     "decided_at": None if status == "pending" else now,
                     "adjusted_by": None, "adjust_reason": None})
    if rows:
        db.session.execute(AttendanceLine.__table__.insert(), rows)
    if blocked and not event.approval_required:
        # Staff may not award themselves or their family: those lines wait for another.
        db.session.execute(update(Event).where(Event.id == event_id)
                           .values(settlement="awaiting_approval")
                           .execution_options(synchronize_session=False))
    record_event(actor_user_id=actor_user_id, action="event.closed", target_type="event",
                 target_id=event_id, community_id=event.org_node_id,
                 detail={"attendees": len(rows), "posted": sum(
                     1 for row in rows if row["status"] == "posted")})
    db.session.flush()
    db.session.refresh(event)
    return 200, attendance_summary(event=event)


def adjust_line(*, event_id: int, resident_id: int, minutes: int | None, reject: bool,
                reason: str, actor_user_id: int) -> dict[str, Any]:
    """Before approval: change a line's minutes or reject it, with a reason (logged)."""
    event = get_event(event_id=event_id)
    if event.settlement != "awaiting_approval":
        raise Conflict("invalid_state", "this event's attendance is not awaiting approval")
    line = db.session.get(AttendanceLine, (event_id, resident_id))
    if line is None:
        raise NotFound("not_found", "no attendance line for this resident")
    if line.status not in ("pending", "rejected"):
        raise Conflict("invalid_state", f"the line is already {line.status}")
    before = {"minutes": line.minutes, "points": line.points, "status": line.status}
    window = int((as_utc(event.ends_at) - as_utc(event.starts_at)).total_seconds() // 60)
    if minutes is not None and minutes > window:
        raise ValidationFailed(errors={"minutes": [
            f"At most the event's {window} minutes."]})
    if minutes is not None:
        rule = _event_rule(event)
        line.minutes = minutes
        line.computed_points = _points(rule=rule, minutes=minutes, cap=None)
        line.points = _points(rule=rule, minutes=minutes, cap=event.points_cap)
    line.status = "rejected" if reject else "pending"
    line.adjusted_by = actor_user_id
    line.adjust_reason = reason
    record_event(actor_user_id=actor_user_id,
                 action="event.attendance_rejected" if reject else "event.attendance_adjusted",
                 target_type="event", target_id=event_id, community_id=event.org_node_id,
                 # The reason is free text: it stays on the line, not in the log.
                 detail={"resident_id": resident_id, "reason": "given" if reason else None},
                 before=before, after={"minutes": line.minutes, "points": line.points,
                                       "status": line.status})
    db.session.commit()
    return line_json(line)


def approve_attendance(*, event_id: int, actor_user_id: int, now: datetime | None = None
                       ) -> tuple[int, dict[str, Any]]:
    """Post every pending line of a closed event awaiting approval; once (claimed)."""
    now = clock(now)
    event = get_event(event_id=event_id)
    pending = list(db.session.scalars(
        select(AttendanceLine).where(AttendanceLine.event_id == event_id,
                                     AttendanceLine.status == "pending")))
    blocked = _blocked(actor_user_id, [line.resident_id for line in pending])
    if blocked:
        raise Forbidden("self_dealing", "staff may not approve points for themselves or their "
                        "own household; ask another organiser", resident_ids=sorted(blocked))
    rule = _event_rule(event) if event.settlement == "awaiting_approval" else None
    claimed = db.session.execute(
        update(Event).where(Event.id == event_id, Event.settlement == "awaiting_approval")
        .values(settlement="posted", updated_at=now)
        .execution_options(synchronize_session=False)).rowcount
    db.session.refresh(event)
    if claimed != 1:
        if event.settlement == "posted":
            return 200, attendance_summary(event=event)
        raise Conflict("invalid_state", "this event's attendance is not awaiting approval")
    posted = _post_lines(event=event, rule=rule, actor_user_id=actor_user_id, lines=[
        (line.resident_id, line.community_id, line.points, line.minutes) for line in pending])
    for line in pending:
        tx_id, points = posted[line.resident_id]
        line.transaction_id = tx_id
        line.points = points
        line.status = "posted" if tx_id is not None else "no_points"
        line.decided_at = now
    record_event(actor_user_id=actor_user_id, action="event.attendance_approved",
                 target_type="event", target_id=event_id, community_id=event.org_node_id,
                 detail={"posted": sum(1 for v in posted.values() if v[0] is not None)})
    db.session.flush()
    return 200, attendance_summary(event=event)


def credit_rejected_line(*, event_id: int, resident_id: int, actor_user_id: int,
                         now: datetime | None = None) -> int | None:
    """Credit a rejected line after all (an upheld appeal); the award's id. Caller commits."""
    now = clock(now)
    event = get_event(event_id=event_id)
    if _blocked(actor_user_id, [resident_id]):
        raise Forbidden("self_dealing", "staff may not credit points to themselves or their "
                        "own household")
    # Claimed once: only a line still rejected moves, so a repeat credits nothing.
    claimed = db.session.execute(
        update(AttendanceLine).where(AttendanceLine.event_id == event_id,
                                     AttendanceLine.resident_id == resident_id,
                                     AttendanceLine.status == "rejected")
        .values(status="pending").execution_options(synchronize_session=False)).rowcount
    if claimed != 1:
        raise Conflict("invalid_state", "the attendance line is not rejected")
    line = db.session.get(AttendanceLine, (event_id, resident_id))
    db.session.refresh(line)
    posted = _post_lines(event=event, rule=_event_rule(event), actor_user_id=actor_user_id,
                         lines=[(resident_id, line.community_id, line.points, line.minutes)])
    tx_id, points = posted[resident_id]
    line.transaction_id = tx_id
    line.points = points
    line.status = "posted" if tx_id is not None else "no_points"
    line.decided_at = now
    record_event(actor_user_id=actor_user_id, action="event.attendance_credited",
                 target_type="event", target_id=event_id, community_id=event.org_node_id,
                 detail={"resident_id": resident_id}, before={"status": "rejected"},
                 after={"status": line.status, "points": points, "transaction_id": tx_id})
    db.session.flush()
    return tx_id


def line_json(line: AttendanceLine, name: str | None = None) -> dict[str, Any]:
    body = {"event_id": line.event_id, "resident_id": line.resident_id, "stays": line.stays,
            "first_in_at": _iso(line.first_in_at), "last_out_at": _iso(line.last_out_at),
            "raw_minutes": line.raw_minutes, "minutes": line.minutes,
            "computed_points": line.computed_points, "points": line.points,
            "status": line.status, "transaction_id": line.transaction_id,
            "adjust_reason": line.adjust_reason}
    if name is not None:
        body["name"] = name
    return body


def attendance_lines(*, event: Event, now: datetime | None = None) -> list[dict[str, Any]]:
    """The lines of a closed event, or a preview computed from the scans so far."""
    names = dict(db.session.execute(
        select(Resident.id, User.display_name).join(User, User.id == Resident.user_id)
        .where(Resident.id.in_(select(Scan.resident_id).where(Scan.event_id == event.id)
                               .distinct()))).all())
    if event.status == "closed":
        return [line_json(line, names.get(line.resident_id)) for line in db.session.scalars(
            select(AttendanceLine).where(AttendanceLine.event_id == event.id)
            .order_by(AttendanceLine.resident_id))]
    if event.status != "published":
        return []
    rule = _event_rule(event)
    return [{"event_id": event.id, "resident_id": line.resident_id,
             "name": names.get(line.resident_id), "stays": line.stays,
             "first_in_at": _iso(line.first_in_at), "last_out_at": _iso(line.last_out_at),
             "raw_minutes": line.raw_minutes, "minutes": line.minutes,
             "computed_points": line.computed_points, "points": line.points,
             "status": "preview", "transaction_id": None, "adjust_reason": None}
            for line in sorted(compute_lines(event=event, rule=rule, now=clock(now)),
                               key=lambda line: line.resident_id)]


def attendance_summary(*, event: Event) -> dict[str, Any]:
    totals = db.session.execute(
        select(AttendanceLine.status, func.count(), func.coalesce(func.sum(AttendanceLine.points),
                                                                   0),
               func.coalesce(func.sum(AttendanceLine.minutes), 0))
        .where(AttendanceLine.event_id == event.id).group_by(AttendanceLine.status)).all()
    by_status = {status: {"lines": int(n), "points": int(points), "minutes": int(minutes)}
                 for status, n, points, minutes in totals}
    return {"event_id": event.id, "status": event.status, "settlement": event.settlement,
            "closed_at": _iso(event.closed_at), "attendees": sum(
                v["lines"] for v in by_status.values()),
            "points_posted": by_status.get("posted", {}).get("points", 0),
            "by_status": by_status}


# -- service record ------------------------------------------------------------------------


def star_level(hours: float) -> int:
    """National volunteer star level (0-5) for cumulative recorded hours."""
    return sum(1 for threshold in STAR_HOURS if hours >= threshold)


def service_record(*, resident_id: int) -> dict[str, Any]:
    """The resident's recorded service: each attended event, minutes, points; totals."""
    rows = db.session.execute(
        select(AttendanceLine, Event.title, Event.category, Event.starts_at, Event.ends_at)
        .join(Event, Event.id == AttendanceLine.event_id)
        .where(AttendanceLine.resident_id == resident_id)
        .order_by(Event.starts_at.desc(), Event.id.desc())).all()
    events, minutes, points, counted = [], 0, 0, 0
    for line, title, category, starts_at, ends_at in rows:
        recorded = line.status in ("posted", "no_points")
        events.append({"event_id": line.event_id, "title": title, "category": category,
                       "starts_at": _iso(starts_at), "ends_at": _iso(ends_at),
                       "minutes": line.minutes, "hours": round(line.minutes / 60, 2),
                       "points": line.points if line.status == "posted" else 0,
                       "status": line.status, "transaction_id": line.transaction_id})
        if recorded:
            counted += 1
            minutes += line.minutes
            points += line.points if line.status == "posted" else 0
    hours = round(minutes / 60, 2)
    return {"resident_id": resident_id, "events": events,
            "totals": {"events": counted, "minutes": minutes, "hours": hours,
                       "points": points, "star_level": star_level(minutes / 60)}}


# -- kiosk ---------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_kiosk_link(*, event_id: int, actor_user_id: int, now: datetime | None = None
                      ) -> dict[str, Any]:
    """A secret link that opens this event's kiosk page (and nothing else) for a while."""
    now = clock(now)
    event = get_event(event_id=event_id)
    token = secrets.token_urlsafe(24)
    expires = now + timedelta(hours=int(_setting("EVENT_KIOSK_LINK_HOURS")))
    link = KioskLink(event_id=event.id, token_hash=_token_hash(token), created_by=actor_user_id,
                     created_at=now, expires_at=expires)
    db.session.add(link)
    record_event(actor_user_id=actor_user_id, action="event.kiosk_link_created",
                 target_type="event", target_id=event_id, community_id=event.org_node_id)
    db.session.commit()
    return {"id": link.id, "event_id": event.id, "token": token,
            "path": f"/events/{event.id}/kiosk?k={token}", "expires_at": _iso(expires)}


def revoke_kiosk_link(*, event_id: int, link_id: int, actor_user_id: int) -> None:
    """Stop a kiosk link working (a screen was lost, the link was shared)."""
    claimed = db.session.execute(
        update(KioskLink).where(KioskLink.id == link_id, KioskLink.event_id == event_id,
                                KioskLink.revoked_at.is_(None))
        .values(revoked_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    if claimed != 1:
        db.session.rollback()
        raise NotFound("not_found", "no such active kiosk link for this event")
    event = get_event(event_id=event_id)
    record_event(actor_user_id=actor_user_id, action="event.kiosk_link_revoked",
                 target_type="event", target_id=event_id, community_id=event.org_node_id,
                 detail={"link_id": link_id})
    db.session.commit()


def check_kiosk(*, event_id: int, token: str | None, now: datetime | None = None) -> Event:
    """The event, if the kiosk token is live and was made for this very event; else 403."""
    now = clock(now)
    if not token or len(token) > 100:
        raise Forbidden("forbidden", "open the kiosk through the link the organiser created")
    row = db.session.execute(
        select(KioskLink.event_id, KioskLink.expires_at, KioskLink.revoked_at)
        .where(KioskLink.token_hash == _token_hash(token))).first()
    if (row is None or row.event_id != event_id or row.revoked_at is not None
            or as_utc(row.expires_at) <= now):
        raise Forbidden("forbidden", "this kiosk link is not valid for this event")
    return get_event(event_id=event_id)


def kiosk_state(*, event: Event, direction: str, now: datetime | None = None
                ) -> dict[str, Any]:
    """What the kiosk shows: the event, the current code's link and the live count."""
    code = checkin_code(event_id=event.id, direction=direction, now=now)
    return {"event_id": event.id, "title": event.title, "place": event.place,
            "status": event.status, "direction": direction, "url": code["url"],
            "step": code["step"], "refresh_after": code["refresh_after"],
            "expires_at": code["expires_at"], "inside_count": inside_count(event_id=event.id)}


# -- CSV -----------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in text cells (=, +, -, @ at the start)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    """UTF-8 with a BOM (so spreadsheet programs read the Chinese)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


ROSTER_COLUMNS = ["resident_id", "name", "status", "position", "created_at", "promoted_at",
                  "cancelled_at"]
ATTENDANCE_COLUMNS = ["resident_id", "name", "stays", "first_in_at", "last_out_at",
                      "raw_minutes", "minutes", "computed_points", "points", "status",
                      "transaction_id", "adjust_reason"]


def masked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with names masked (auditors read attendance, not who in full)."""
    return [{**row, "name": mask_name(row.get("name"))} for row in rows]
