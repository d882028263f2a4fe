"""Spending points at merchants: pay codes, merchant codes, offers, holds, refunds, settlement.

Points move only through ledger post() (kinds redemption, refund, settlement); holds only
through place_hold/release_hold. Everything that can be raced — stock, per-resident
limits, the daily spending limit, a hold's status, the refunded total, a pay code's use —
moves with one conditional UPDATE whose row count decides, never read-then-write.

Functions that run inside idempotency.run_once (redeem, capture, void, refund, settle)
write without committing; the others commit. Every function that depends on the time takes
`now` so tests pass a clock instead of sleeping.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..codes import MERCHANT, PAYCODE, CodeError, code_link, issue_code, parse_code
from ..common import as_utc, decode_id_cursor, mask_name, page_of, utcnow
from ..errors import Conflict, DomainError, NotFound, ValidationFailed
from ..extensions import db
from ..ledger.awards import record_event
from ..ledger.models import Account, Entry, LedgerTransaction
from ..ledger.rules import period_keys
from ..ledger.service import (
    InsufficientPoints,
    Leg,
    PostedTransaction,
    Transfer,
    _insert,
    district_of,
    ensure_account,
    place_hold,
    post,
    release_hold,
    resident_account,
)
from ..merchants.service import ensure_active, get_merchant

try:  # post() takes the accounts' facts from a caller that just read them (one query fewer)
    from ..ledger.service import AccountFacts
except ImportError:  # pragma: no cover - a ledger without that parameter
    AccountFacts = None
from ..orgs.models import OrgNode
from ..people.models import Merchant, Resident, User
from ..people.schemas import MAX_ID
from . import lean
from .models import (
    MerchantCode,
    Offer,
    PayCode,
    Redemption,
    RedemptionPolicy,
    Refund,
    Settlement,
    SpendCounter,
)

PAYCODE_SECONDS = 60
STEP_SECONDS = 30
MAX_CODE_VERSION = 2**16 - 1  # the merchant code carries its version in two bytes
DEFAULT_TIMEZONE = "Asia/Shanghai"

# Reason code -> HTTP status for codes that cannot be accepted.
CODE_STATUS = {"invalid": 422, "wrong_type": 422, "expired": 410, "already_used": 409,
               "revoked": 410}


def clock(now: datetime | None) -> datetime:
    """The instant to act at: the caller's clock (tests), else the server's, always in UTC."""
    return (now or utcnow()).astimezone(UTC)


def code_failure(reason: str, detail: str | None = None) -> DomainError:
    """The problem for a code that cannot be accepted, named by its reason code."""
    return DomainError(reason, detail or reason, status=CODE_STATUS.get(reason, 422))


def _get(model: Any, object_id: int, what: str) -> Any:
    found = db.session.get(model, object_id) if 0 < object_id <= MAX_ID else None
    if found is None:
        raise NotFound("not_found", f"{what} {object_id} does not exist")
    return found


def _timezone(node_id: int) -> str:
    return db.session.scalar(select(OrgNode.timezone).where(OrgNode.id == node_id)) or (
        DEFAULT_TIMEZONE
    )


def _update(model: Any) -> Any:
    """A conditional UPDATE whose row count decides; the session's copies are refreshed
    explicitly where they are read again (evaluating the criteria in Python cannot compare
    SQLite's naive times with aware ones)."""
    return update(model).execution_options(synchronize_session=False)


def _iso(value: datetime | None) -> str | None:
    """Times in JSON bodies are ISO 8601 strings, so a stored replay equals the first answer."""
    return None if value is None else as_utc(value).isoformat()


def _path(node_id: int) -> str:
    return db.session.scalar(select(OrgNode.path).where(OrgNode.id == node_id)) or "/"


# -- accounts -------------------------------------------------------------------------------


def merchant_account_of(*, merchant_id: int) -> Account | None:
    """The merchant's points account, if it has been opened."""
    return db.session.scalar(
        select(Account).where(Account.kind == "merchant", Account.owner_id == merchant_id)
    )


def open_merchant_account(*, merchant: Merchant) -> int:
    """The merchant's bounded account, opened on first use under the node it serves.

    Found by owner first, so a merchant that later moves node keeps one account (its
    community_id stays the node it served when the account was opened).
    """
    existing = merchant_account_of(merchant_id=merchant.id)
    if existing is not None:
        return existing.id
    return ensure_account(kind="merchant", owner_id=merchant.id,
                          community_id=merchant.org_node_id,
                          district_id=district_of(community_id=merchant.org_node_id))


# -- community spending policy --------------------------------------------------------------


def daily_limit(*, community_id: int) -> int:
    """Points a resident of the community may spend per local day."""
    value = db.session.scalar(
        select(RedemptionPolicy.daily_limit).where(RedemptionPolicy.community_id == community_id)
    )
    return int(current_app.config["REDEMPTION_DAILY_LIMIT"]) if value is None else int(value)


def set_daily_limit(*, community_id: int, limit: int, actor_user_id: int) -> int:
    """Change the community's daily spending limit per resident."""
    previous = daily_limit(community_id=community_id)
    now = utcnow()
    db.session.execute(
        _insert(RedemptionPolicy.__table__)
        .values(community_id=community_id, daily_limit=limit, updated_by=actor_user_id,
                updated_at=now)
        .on_conflict_do_update(index_elements=["community_id"],
                               set_={"daily_limit": limit, "updated_by": actor_user_id,
                                     "updated_at": now})
    )
    record_event(actor_user_id=actor_user_id, action="redemption.daily_limit_changed",
                 target_type="community", target_id=community_id, community_id=community_id,
                 before={"daily_limit": previous}, after={"daily_limit": limit})
    db.session.commit()
    return limit


def _take(*, resident_id: int, counter: str, period: str, amount: int, limit: int,
          code: str) -> None:
    """Reserve room under a per-resident limit in one conditional upsert, or 409 `code`.

    `INSERT … ON CONFLICT DO UPDATE SET amount = amount + n WHERE amount + n <= limit
    RETURNING amount` (_TAKE_ROOM below): no row back means no room (PostgreSQL and SQLite
    alike).
    """
    taken = None
    if amount <= limit:
        taken = lean.one(_TAKE_ROOM, {"r": resident_id, "c": counter, "p": period,
                                      "n": amount, "limit": limit})
    if taken is None:
        used = db.session.scalar(
            select(SpendCounter.amount).where(
                SpendCounter.resident_id == resident_id, SpendCounter.counter == counter,
                SpendCounter.period == period)
        )
        raise Conflict(code, f"the limit of {limit} leaves {max(0, limit - int(used or 0))}",
                       limit=limit, remaining=max(0, limit - int(used or 0)))


def _give_back(*, resident_id: int, counter: str, period: str | None, amount: int) -> None:
    """Return room taken under a limit (a void, an expiry, a refund); never below zero."""
    if not period or amount <= 0:
        return
    db.session.execute(
        _update(SpendCounter)
        .where(SpendCounter.resident_id == resident_id, SpendCounter.counter == counter,
               SpendCounter.period == period)
        .values(amount=func.max(SpendCounter.amount - amount, 0)
                if db.engine.dialect.name == "sqlite"
                else func.greatest(SpendCounter.amount - amount, 0))
    )


# -- pay codes -----------------------------------------------------------------------------


def issue_paycode(*, resident_id: int, now: datetime | None = None) -> dict[str, Any]:
    """A one-time pay code for the resident, valid PAYCODE_SECONDS."""
    now = clock(now)
    step = int(now.timestamp()) // STEP_SECONDS
    for _ in range(5):
        nonce = secrets.token_bytes(6)
        db.session.add(PayCode(nonce=nonce.hex(), resident_id=resident_id, step=step,
                               issued_at=now,
                               expires_at=now + timedelta(seconds=PAYCODE_SECONDS)))
        try:
            db.session.commit()
            break
        except IntegrityError:  # pragma: no cover - a 48-bit nonce collided; draw again
            db.session.rollback()
    else:  # pragma: no cover
        raise DomainError("service_unavailable", "could not issue a pay code", status=503)
    token = issue_code(PAYCODE, resident_id=resident_id, nonce=nonce, step=step)
    return {"token": token, "issued_at": _iso(now),
            "expires_at": _iso(now + timedelta(seconds=PAYCODE_SECONDS)),
            "valid_seconds": PAYCODE_SECONDS}


def consume_paycode(*, text: str, actor_user_id: int, now: datetime | None = None) -> int:
    """Check a pay code and mark it used in its own committed transaction; the resident id.

    The code is spent by the first attempt that reads it, whatever happens to the payment
    afterwards: a code seen by a merchant's device is never good twice.
    """
    now = clock(now)
    try:
        fields = parse_code(text, expected=PAYCODE)
    except CodeError as err:
        raise code_failure(err.reason, err.detail) from None
    nonce = fields["nonce"].hex()
    row = db.session.execute(
        select(PayCode.resident_id, PayCode.step, PayCode.expires_at)
        .where(PayCode.nonce == nonce)
    ).first()
    if row is None or row.resident_id != fields["resident_id"] or row.step != fields["step"]:
        db.session.rollback()
        raise code_failure("invalid", "this pay code was never issued")
    if as_utc(row.expires_at) <= now:
        db.session.rollback()
        raise code_failure("expired", f"a pay code is valid for {PAYCODE_SECONDS} seconds")
    used = db.session.execute(
        _update(PayCode)
        .where(PayCode.nonce == nonce, PayCode.used_at.is_(None))
        .values(used_at=now, used_by_user_id=actor_user_id)
    ).rowcount
    db.session.commit()
    if used != 1:
        raise code_failure("already_used", "this pay code has already been used")
    return int(row.resident_id)


_TAKE_PAYCODE = (
    "UPDATE paycodes SET used_at = %(now)s, used_by_user_id = %(actor)s WHERE nonce = %(nonce)s"
    " AND resident_id = %(rid)s AND step = %(step)s AND used_at IS NULL"
    " AND expires_at > %(now)s")


def take_paycode(*, text: str, actor_user_id: int, now: datetime | None = None) -> int:
    """Check a pay code and mark it used in the CALLER's transaction; the resident id.

    One conditional `UPDATE paycodes SET used_at … WHERE nonce = ? AND resident_id = ? AND
    step = ? AND used_at IS NULL AND expires_at > now`; only when it matches nothing is the
    row read, to name the reason (invalid, expired, already_used).
    """
    now = clock(now)
    try:
        fields = parse_code(text, expected=PAYCODE)
    except CodeError as err:
        raise code_failure(err.reason, err.detail) from None
    nonce = fields["nonce"].hex()
    used = lean.count(_TAKE_PAYCODE, {"now": lean.stored_time(now), "actor": actor_user_id,
                                      "nonce": nonce, "rid": fields["resident_id"],
                                      "step": fields["step"]})
    if used == 1:
        return int(fields["resident_id"])
    row = db.session.execute(
        select(PayCode.resident_id, PayCode.step, PayCode.expires_at)
        .where(PayCode.nonce == nonce)
    ).first()
    if row is None or row.resident_id != fields["resident_id"] or row.step != fields["step"]:
        raise code_failure("invalid", "this pay code was never issued")
    if as_utc(row.expires_at) <= now:
        raise code_failure("expired", f"a pay code is valid for {PAYCODE_SECONDS} seconds")
    raise code_failure("already_used", "this pay code has already been used")


def burn_paycode(*, text: str, actor_user_id: int, now: datetime | None = None) -> None:
    """Mark a pay code used in its own transaction (after an attempt crashed); best effort."""
    try:
        take_paycode(text=text, actor_user_id=actor_user_id, now=now)
        db.session.commit()
    except Exception:  # the code was bad or already used: nothing to burn
        db.session.rollback()


def redeem_paycode(*, text: str, spend: SpendRequest,
                   now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    """A merchant's scan, whole: spend the pay code and redeem in ONE database transaction.

    Runs inside idempotency.run_once (which claimed the Idempotency-Key first, so a second
    request with the same key waits for this one and then replays its answer: one posting,
    the same receipt). The code is spent by the first attempt that reads it even if the
    payment fails: the payment runs in a savepoint, and a refusal (insufficient points, out
    of stock, ...) rolls back only the savepoint and is returned as the stored answer — the
    code's use and the refusal commit together, and a retry with the same key gets the same
    refusal. A code that cannot be read at all (invalid, expired, already used) raises, and
    nothing is stored. `spend.resident_id` is ignored: the code names the resident.
    """
    from dataclasses import replace

    from ..errors import problem_response

    now = clock(now)
    resident_id = take_paycode(text=text, actor_user_id=spend.actor_user_id, now=now)
    savepoint = db.session.begin_nested()
    try:
        result = redeem(request=replace(spend, resident_id=resident_id), now=now)
    except DomainError as err:
        savepoint.rollback()
        problem = problem_response(status=err.status, code=err.code, detail=err.detail,
                                   errors=err.errors, extra=err.extra)
        return err.status, problem.get_json()
    savepoint.commit()
    return result


def purge_paycodes(*, now: datetime | None = None, keep: timedelta = timedelta(days=1)) -> int:
    """Delete pay codes that expired more than `keep` ago."""
    result = db.session.execute(
        PayCode.__table__.delete().where(PayCode.expires_at < clock(now) - keep)
    )
    db.session.commit()
    return int(result.rowcount or 0)


# -- merchant codes ------------------------------------------------------------------------


def code_version(*, merchant_id: int) -> int:
    """The merchant's current code version (1 until the first reissue)."""
    version = db.session.scalar(
        select(MerchantCode.version).where(MerchantCode.merchant_id == merchant_id)
    )
    return int(version or 1)


def merchant_code(*, merchant_id: int) -> dict[str, Any]:
    """The merchant's printable code: token and the link a phone camera opens."""
    version = code_version(merchant_id=merchant_id)
    token = issue_code(MERCHANT, merchant_id=merchant_id, version=version)
    return {"merchant_id": merchant_id, "version": version, "token": token,
            "link": code_link(MERCHANT, token)}


def reissue_merchant_code(*, merchant_id: int, actor_user_id: int) -> dict[str, Any]:
    """Bump the code version: every sticker printed before is revoked."""
    merchant = get_merchant(merchant_id=merchant_id).merchant
    previous = code_version(merchant_id=merchant_id)
    if previous >= MAX_CODE_VERSION:
        raise Conflict("invalid_state", "this merchant's code cannot be reissued again")
    now = utcnow()
    db.session.execute(
        _insert(MerchantCode.__table__)
        .values(merchant_id=merchant_id, version=2, reissued_by=actor_user_id, reissued_at=now)
        .on_conflict_do_update(
            index_elements=["merchant_id"],
            set_={"version": MerchantCode.__table__.c.version + 1,
                  "reissued_by": actor_user_id, "reissued_at": now},
        )
    )
    record_event(actor_user_id=actor_user_id, action="merchant.code_reissued",
                 target_type="merchant", target_id=merchant_id,
                 community_id=merchant.org_node_id,
                 before={"version": previous},
                 after={"version": code_version(merchant_id=merchant_id)})
    db.session.commit()
    return merchant_code(merchant_id=merchant_id)


def read_merchant_code(*, text: str) -> int:
    """The merchant a scanned code (token or link) names, or invalid / revoked / wrong_type."""
    try:
        fields = parse_code(text, expected=MERCHANT)
    except CodeError as err:
        raise code_failure(err.reason, err.detail) from None
    merchant_id = int(fields["merchant_id"])
    current = code_version(merchant_id=merchant_id)
    if fields["version"] < current:
        raise code_failure("revoked", "this merchant code was replaced by a newer one")
    if fields["version"] > current:
        raise code_failure("invalid", "this merchant code was never issued")
    return merchant_id


# -- offers --------------------------------------------------------------------------------


def _check_offer_values(values: dict[str, Any]) -> None:
    # Stored in UTC: SQLite keeps no offset, and periods compare as text there.
    for key in ("starts_at", "ends_at"):
        if values.get(key) is not None:
            values[key] = as_utc(values[key])
    starts, ends = values.get("starts_at"), values.get("ends_at")
    if starts is not None and ends is not None and as_utc(ends) <= as_utc(starts):
        raise ValidationFailed(errors={"ends_at": ["Must be after starts_at."]})
    if (values.get("per_resident_limit") is None) != (values.get("limit_period") is None):
        raise ValidationFailed(errors={"limit_period": [
            "per_resident_limit and limit_period go together."]})


def _offer_node(*, node_id: int, merchant: Merchant) -> OrgNode:
    """The node an offer is made under: any node of the merchant's district (else 422)."""
    node = db.session.get(OrgNode, node_id) if 0 < node_id <= MAX_ID else None
    if node is None:
        raise ValidationFailed(errors={"org_node_id": [f"No organisation node with id {node_id}."]})
    if district_of(community_id=node.id) != district_of(community_id=merchant.org_node_id):
        raise ValidationFailed(errors={"org_node_id": [
            "Points stay inside one district: offer in the merchant's own district."]})
    return node


def create_offer(*, merchant_id: int, values: dict[str, Any], actor_user_id: int) -> Offer:
    """List an item for points at a merchant, offered under an org node."""
    merchant = get_merchant(merchant_id=merchant_id).merchant
    values = dict(values)
    node_id = values.pop("org_node_id", None) or merchant.org_node_id
    _offer_node(node_id=node_id, merchant=merchant)
    _check_offer_values(values)
    now = utcnow()
    offer = Offer(merchant_id=merchant.id, org_node_id=node_id, created_by=actor_user_id,
                  created_at=now, updated_at=now, status="active", **values)
    db.session.add(offer)
    db.session.commit()
    return offer


def get_offer(*, offer_id: int) -> Offer:
    """The offer, or 404."""
    return _get(Offer, offer_id, "offer")


def update_offer(*, offer_id: int, changes: dict[str, Any]) -> Offer:
    """Edit an offer (stock sets the count on the shelf; status withdraws or re-lists it)."""
    if not changes:
        raise ValidationFailed(errors={"_schema": ["Nothing to change."]})
    offer = get_offer(offer_id=offer_id)
    if "org_node_id" in changes:
        merchant = db.session.get(Merchant, offer.merchant_id)
        _offer_node(node_id=changes["org_node_id"], merchant=merchant)
    merged = {key: getattr(offer, key) for key in
              ("starts_at", "ends_at", "per_resident_limit", "limit_period")}
    merged.update({key: value for key, value in changes.items() if key in merged})
    _check_offer_values(merged)
    changes = {**changes, **{key: merged[key] for key in ("starts_at", "ends_at")
                             if key in changes}}
    for key, value in changes.items():
        setattr(offer, key, value)
    offer.updated_at = utcnow()
    db.session.commit()
    return offer


def _on_branch(offer_path: str, community_path: str) -> bool:
    return community_path.startswith(offer_path) or offer_path.startswith(community_path)


def on_branch(*, offer_node_id: int, community_path: str) -> bool:
    """Whether an offer's node lies on a community's branch (an ancestor, it, or below it)."""
    return _on_branch(_path(offer_node_id), community_path)


def _available(offer: Offer, now: datetime) -> bool:
    return (offer.status == "active"
            and (offer.starts_at is None or as_utc(offer.starts_at) <= now)
            and (offer.ends_at is None or now < as_utc(offer.ends_at)))


def offers_for_resident(*, community_path: str, limit: int, cursor: str | None,
                        now: datetime | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Offers a resident can redeem now: on their community's branch, active, merchant active."""
    now = clock(now)
    ancestors = [int(part) for part in community_path.strip("/").split("/") if part]
    query = (
        select(Offer, Merchant.name)
        .join(Merchant, Merchant.id == Offer.merchant_id)
        .join(OrgNode, OrgNode.id == Offer.org_node_id)
        .where(or_(OrgNode.id.in_(ancestors),
                   OrgNode.path.startswith(community_path, autoescape=True)),
               Offer.status == "active", Merchant.status == "active",
               or_(Offer.starts_at.is_(None), Offer.starts_at <= now),
               or_(Offer.ends_at.is_(None), Offer.ends_at > now))
    )
    if cursor:
        query = query.where(Offer.id > decode_id_cursor(cursor))
    rows = db.session.execute(query.order_by(Offer.id).limit(limit + 1)).all()
    items = [offer_json(offer, merchant_name=name) for offer, name in rows]
    return page_of(items, limit=limit, key=lambda item: [item["id"]])


def offers_of_merchant(*, merchant_id: int, limit: int, cursor: str | None
                       ) -> tuple[list[dict[str, Any]], str | None]:
    """Every offer of a merchant (withdrawn ones too), by id."""
    name = db.session.scalar(select(Merchant.name).where(Merchant.id == merchant_id))
    query = select(Offer).where(Offer.merchant_id == merchant_id)
    if cursor:
        query = query.where(Offer.id > decode_id_cursor(cursor))
    offers = list(db.session.scalars(query.order_by(Offer.id).limit(limit + 1)))
    items = [offer_json(offer, merchant_name=name) for offer in offers]
    return page_of(items, limit=limit, key=lambda item: [item["id"]])


def offer_json(offer: Offer, *, merchant_name: str | None = None) -> dict[str, Any]:
    return {
        "id": offer.id, "merchant_id": offer.merchant_id, "merchant_name": merchant_name,
        "org_node_id": offer.org_node_id, "title": offer.title,
        "description": offer.description, "points_price": offer.points_price,
        "stock": offer.stock, "per_resident_limit": offer.per_resident_limit,
        "limit_period": offer.limit_period, "starts_at": _iso(offer.starts_at),
        "ends_at": _iso(offer.ends_at), "status": offer.status,
        "created_at": _iso(offer.created_at), "updated_at": _iso(offer.updated_at),
    }


# -- redemptions and holds ------------------------------------------------------------------


@dataclass(frozen=True)
class SpendRequest:
    """One spend: by a merchant scanning a pay code, or a resident paying at a merchant code."""

    channel: str
    resident_id: int
    merchant_id: int
    actor_user_id: int
    offer_id: int | None = None
    quantity: int | None = None
    points: int | None = None
    order_ref: str | None = None
    capture: bool = True


class _Spender(NamedTuple):
    id: int
    community_id: int
    display_name: str | None
    path: str
    timezone: str | None
    daily_limit: int | None
    account_id: int | None
    held: int | None


class _Till(NamedTuple):
    id: int
    name: str
    status: str
    org_node_id: int
    account_id: int | None
    district_id: int | None


class _OfferFacts(NamedTuple):
    id: int
    merchant_id: int
    title: str
    points_price: int
    stock: int | None
    per_resident_limit: int | None
    limit_period: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    status: str
    path: str


# Everything a spend reads, in ONE statement: the merchant (share-locked on PostgreSQL, so a
# suspension waits for the spend) with its account; the resident with their name, community
# path and time zone, the community's daily limit and their account (id, held); the offer
# with its node's path. Resident and offer are outer-joined: a missing one is all NULLs.
_SPEND_FACTS = (
    "SELECT m.id, m.name, m.status, m.org_node_id, ma.id, ma.district_id,"
    " r.id, r.community_id, u.display_name, o.path, o.timezone, p.daily_limit, ra.id,"
    " ra.held,"
    " f.id, f.merchant_id, f.title, f.points_price, f.stock, f.per_resident_limit,"
    " f.limit_period, f.starts_at, f.ends_at, f.status, fo.path"
    " FROM merchants m"
    " LEFT JOIN ledger_accounts ma ON ma.kind = 'merchant' AND ma.owner_id = m.id"
    " LEFT JOIN residents r ON r.id = %(rid)s"
    " LEFT JOIN users u ON u.id = r.user_id"
    " LEFT JOIN org_nodes o ON o.id = r.community_id"
    " LEFT JOIN redemption_policies p ON p.community_id = r.community_id"
    " LEFT JOIN ledger_accounts ra ON ra.kind = 'resident' AND ra.owner_id = r.id"
    " AND ra.community_id = r.community_id"
    " LEFT JOIN offers f ON f.id = %(oid)s"
    " LEFT JOIN org_nodes fo ON fo.id = f.org_node_id"
    " WHERE m.id = %(mid)s")
_TAKE_STOCK = ("UPDATE offers SET stock = stock - %(q)s"
               " WHERE id = %(id)s AND stock >= %(q)s")
_TAKE_ROOM = (
    "INSERT INTO redemption_counters (resident_id, counter, period, amount)"
    " VALUES (%(r)s, %(c)s, %(p)s, %(n)s) ON CONFLICT (resident_id, counter, period)"
    " DO UPDATE SET amount = redemption_counters.amount + excluded.amount"
    " WHERE redemption_counters.amount + excluded.amount <= %(limit)s RETURNING amount")
_REDEMPTION_COLUMNS = (
    "channel", "merchant_id", "resident_id", "community_id", "district_id", "offer_id",
    "quantity", "unit_points", "points", "captured_points", "refunded_points", "restocked",
    "status", "order_ref", "resident_account_id", "merchant_account_id", "spend_period",
    "offer_period", "transaction_id", "hold_expires_at", "created_by", "created_at",
    "captured_at", "resolved_at")
_INSERT_REDEMPTION = (
    f"INSERT INTO redemptions ({', '.join(_REDEMPTION_COLUMNS)}) VALUES "
    f"({', '.join(f'%({name})s' for name in _REDEMPTION_COLUMNS)}) RETURNING id")
_TIMES = ("hold_expires_at", "created_at", "captured_at", "resolved_at")
_LINK_TRANSACTION = "UPDATE redemptions SET transaction_id = %(t)s WHERE id = %(id)s"


def _spend_facts(*, merchant_id: int, resident_id: int, offer_id: int | None
                 ) -> tuple[_Till, _Spender | None, _OfferFacts | None]:
    """The merchant (404 / 409 merchant_suspended / merchant_not_active), the resident and
    the offer (None when absent), read in one statement."""
    found = None
    if 0 < merchant_id <= MAX_ID:
        found = lean.one(_SPEND_FACTS + (" FOR SHARE OF m" if lean.postgresql() else ""), {
            "mid": merchant_id,
            "rid": resident_id if 0 < resident_id <= MAX_ID else None,
            "oid": offer_id if offer_id is not None and 0 < offer_id <= MAX_ID else None})
    if found is None:
        raise NotFound("not_found", f"merchant {merchant_id} does not exist")
    till = _Till(*found[:6])
    if till.status == "suspended":
        raise Conflict("merchant_suspended", f"merchant {merchant_id} is suspended")
    if till.status != "active":
        raise Conflict("merchant_not_active",
                       f"merchant {merchant_id} is {till.status}, not active")
    spender = _Spender(*found[6:14]) if found[6] is not None else None
    offer = None
    if found[14] is not None:
        offer = _OfferFacts(*found[14:])
        offer = offer._replace(starts_at=lean.read_time(offer.starts_at),
                               ends_at=lean.read_time(offer.ends_at))
    return till, spender, offer


def redeem(*, request: SpendRequest, now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    """Spend (or, with capture=False, hold) a resident's points at a merchant; the receipt.

    Runs inside idempotency.run_once: it writes without committing. Order of work (and of
    row locks, the same for every spend): merchant (share lock), offer stock, counters,
    then the accounts inside post(). Every fact is read once, with the columns it needs
    (no ORM entities), and the receipt is built from what was read and written.
    """
    now = clock(now)
    merchant, resident, offer_facts = _spend_facts(
        merchant_id=request.merchant_id, resident_id=request.resident_id,
        offer_id=request.offer_id)
    if resident is None:
        raise NotFound("not_found", f"resident {request.resident_id} does not exist")
    community_id = resident.community_id
    district_id = int(resident.path.strip("/").split("/")[0])
    merchant_acct, merchant_district = merchant.account_id, merchant.district_id
    if merchant_acct is None:  # first spend at this merchant
        merchant_acct = open_merchant_account(merchant=db.session.get(Merchant, merchant.id))
        merchant_district = district_of(community_id=merchant.org_node_id)
    if merchant_district != district_id:
        raise Conflict("cross_district",
                       "points are spent only at merchants of the resident's own district")
    resident_acct, held = resident.account_id, int(resident.held or 0)
    if resident_acct is None:
        resident_acct = resident_account(resident_id=resident.id, community_id=community_id)
    elif held:
        # Lazy expiry: holds past their time stop counting before this spend is checked.
        expired = _expire_holds_here(now=now, resident_id=resident.id)
        if expired:
            held = int(db.session.scalar(select(Account.held).where(
                Account.id == resident_acct)) or 0)
    keys = period_keys(at=now, timezone=resident.timezone or DEFAULT_TIMEZONE)

    offer, quantity, unit, offer_period = None, None, None, None
    if request.offer_id is not None:
        offer = offer_facts
        if offer is None or offer.merchant_id != merchant.id:
            raise ValidationFailed(errors={"offer_id": ["No such offer at this merchant."]})
        if not _available(offer, now) or not _on_branch(offer.path, resident.path):
            raise Conflict("offer_not_available", "this offer cannot be redeemed now")
        quantity = request.quantity or 1
        unit = offer.points_price
        points = unit * quantity
        if offer.stock is not None:
            taken = lean.count(_TAKE_STOCK, {"q": quantity, "id": offer.id})
            if taken != 1:
                raise Conflict("out_of_stock", "not enough stock left for this offer")
        if offer.per_resident_limit is not None:
            offer_period = keys[offer.limit_period]
            _take(resident_id=resident.id, counter=f"offer:{offer.id}", period=offer_period,
                  amount=quantity, limit=offer.per_resident_limit, code="offer_limit_reached")
    else:
        points = int(request.points or 0)
    limit = (int(current_app.config["REDEMPTION_DAILY_LIMIT"]) if resident.daily_limit is None
             else int(resident.daily_limit))
    _take(resident_id=resident.id, counter="spend", period=keys["day"], amount=points,
          limit=limit, code="daily_limit_reached")

    row: dict[str, Any] = {
        "channel": request.channel, "merchant_id": merchant.id, "resident_id": resident.id,
        "community_id": community_id, "district_id": district_id,
        "offer_id": offer.id if offer else None, "quantity": quantity, "unit_points": unit,
        "points": points, "captured_points": 0, "refunded_points": 0, "restocked": 0,
        "status": "held", "order_ref": request.order_ref,
        "resident_account_id": resident_acct, "merchant_account_id": merchant_acct,
        "spend_period": keys["day"], "offer_period": offer_period,
        "created_by": request.actor_user_id, "created_at": now, "transaction_id": None,
        "hold_expires_at": None, "captured_at": None, "resolved_at": None,
    }
    if request.capture:
        row.update(status="captured", captured_points=points, captured_at=now, resolved_at=now)
    else:
        row["hold_expires_at"] = now + timedelta(minutes=int(current_app.config["HOLD_MINUTES"]))
    row["id"] = int(lean.one(_INSERT_REDEMPTION, {
        **row, **{name: None if row[name] is None else lean.stored_time(row[name])
                  for name in _TIMES}})[0])
    if request.capture:
        known: dict[str, Any] = {}
        if AccountFacts is not None:
            known["accounts"] = {
                resident_acct: AccountFacts(resident_acct, "resident", resident.id, True,
                                            district_id),
                merchant_acct: AccountFacts(merchant_acct, "merchant", merchant.id, True,
                                            merchant_district)}
        transaction = post(transfer=_spend_transfer(row, points, request.actor_user_id),
                           **known)
        row["transaction_id"] = transaction.id
        lean.count(_LINK_TRANSACTION, {"t": transaction.id, "id": row["id"]})
        new_balance = next(entry[2] for entry in transaction.posted_entries  # type: ignore[attr-defined]
                           if entry[0] == resident_acct)
    else:
        held = place_hold(account_id=resident_acct, amount=points)
        new_balance = int(db.session.scalar(select(Account.balance).where(
            Account.id == resident_acct)))
    body = _receipt_of(row, resident_name=resident.display_name, merchant_name=merchant.name,
                       offer_title=offer.title if offer else None)
    # Spendable as of this payment: the balance it left minus what is held.
    body["balance"] = new_balance
    body["spendable"] = new_balance - held
    return 201, body


def _receipt_of(row: dict[str, Any], *, resident_name: str | None, merchant_name: str | None,
                offer_title: str | None) -> dict[str, Any]:
    """The receipt's fields from values at hand (the same shape receipt() reads back)."""
    return {
        "id": row["id"], "status": row["status"], "channel": row["channel"],
        "merchant": {"id": row["merchant_id"], "name": merchant_name},
        "resident": {"id": row["resident_id"], "name": mask_name(resident_name)},
        "offer": ({"id": row["offer_id"], "title": offer_title}
                  if row["offer_id"] is not None else None),
        "quantity": row["quantity"], "points": row["points"],
        "captured_points": row["captured_points"],
        "refunded_points": row["refunded_points"], "order_ref": row["order_ref"],
        "transaction_id": row["transaction_id"],
        "hold_expires_at": _iso(row["hold_expires_at"]),
        "created_at": _iso(row["created_at"]),
        "captured_at": _iso(row["captured_at"]),
        "resolved_at": _iso(row["resolved_at"]),
    }


def _spend_transfer(row: Any, points: int, actor_user_id: int) -> Transfer:
    """The ledger transfer of a spend: resident -> merchant, referencing the redemption."""
    get = row.__getitem__ if isinstance(row, dict) else row.__getattribute__
    return Transfer(
        kind="redemption", community_id=get("community_id"), district_id=get("district_id"),
        legs=(Leg(get("resident_account_id"), -points), Leg(get("merchant_account_id"), points)),
        actor_user_id=actor_user_id, quantity=get("quantity"),
        reference_type="redemption", reference_id=str(get("id")),
        subject_resident_id=get("resident_id"),
    )


def _post_spend(redemption: Redemption, points: int, actor_user_id: int) -> PostedTransaction:
    return post(transfer=_spend_transfer(redemption, points, actor_user_id))


def get_redemption(*, redemption_id: int) -> Redemption:
    """The redemption, or 404."""
    return _get(Redemption, redemption_id, "redemption")


def _not_active(redemption_id: int) -> DomainError:
    status = db.session.scalar(select(Redemption.status).where(Redemption.id == redemption_id))
    return Conflict("hold_not_active", f"the hold is {status}, not held", current_status=status)


def capture(*, redemption_id: int, points: int | None, actor_user_id: int,
            now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    """Spend up to the held points (the rest is released); each hold resolves once."""
    now = clock(now)
    redemption = get_redemption(redemption_id=redemption_id)
    ensure_active(redemption.merchant_id, lock=True)
    amount = redemption.points if points is None else points
    if amount > redemption.points:
        raise ValidationFailed(errors={"points": [
            f"At most the {redemption.points} held points."]})
    claimed = db.session.execute(
        _update(Redemption)
        .where(Redemption.id == redemption_id, Redemption.status == "held",
               Redemption.hold_expires_at > now)
        .values(status="captured", captured_points=amount, captured_at=now, resolved_at=now)
    ).rowcount
    if claimed != 1:
        raise _not_active(redemption_id)
    db.session.refresh(redemption)
    release_hold(account_id=redemption.resident_account_id, amount=redemption.points)
    transaction = _post_spend(redemption, amount, actor_user_id)
    redemption.transaction_id = transaction.id
    # What was held and not taken no longer counts against today's limit.
    _give_back(resident_id=redemption.resident_id, counter="spend",
               period=redemption.spend_period, amount=redemption.points - amount)
    db.session.flush()
    return 200, receipt(redemption)


def _unwind_hold(redemption: Redemption) -> None:
    """Give back everything a hold took: the points, the stock and the limits' room."""
    release_hold(account_id=redemption.resident_account_id, amount=redemption.points)
    _give_back(resident_id=redemption.resident_id, counter="spend",
               period=redemption.spend_period, amount=redemption.points)
    if redemption.offer_id is not None and redemption.quantity:
        db.session.execute(
            _update(Offer).where(Offer.id == redemption.offer_id, Offer.stock.is_not(None))
            .values(stock=Offer.stock + redemption.quantity)
        )
        _give_back(resident_id=redemption.resident_id, counter=f"offer:{redemption.offer_id}",
                   period=redemption.offer_period, amount=redemption.quantity)


def void(*, redemption_id: int, now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    """Cancel a hold: nothing is spent, everything it reserved comes back."""
    now = clock(now)
    redemption = get_redemption(redemption_id=redemption_id)
    claimed = db.session.execute(
        _update(Redemption)
        .where(Redemption.id == redemption_id, Redemption.status == "held")
        .values(status="voided", resolved_at=now)
    ).rowcount
    if claimed != 1:
        raise _not_active(redemption_id)
    db.session.refresh(redemption)
    _unwind_hold(redemption)
    db.session.flush()
    return 200, receipt(redemption)


def _expire_holds_here(*, now: datetime, resident_id: int | None = None,
                       redemption_id: int | None = None, limit: int | None = None) -> int:
    """Release expired holds in the caller's transaction (no commit); the count.

    Each hold is claimed with `UPDATE … SET status = 'expired' WHERE id = ? AND status =
    'held'`, so a capture, a void, a lazy expiry and the sweeper never both win.
    """
    query = select(Redemption.id).where(Redemption.status == "held",
                                        Redemption.hold_expires_at <= now)
    if resident_id is not None:
        query = query.where(Redemption.resident_id == resident_id)
    if redemption_id is not None:
        query = query.where(Redemption.id == redemption_id)
    query = query.order_by(Redemption.id)
    if limit is not None:
        query = query.limit(limit)
    expired = 0
    for hold_id in list(db.session.scalars(query)):
        claimed = db.session.execute(
            _update(Redemption)
            .where(Redemption.id == hold_id, Redemption.status == "held")
            .values(status="expired", resolved_at=now)
        ).rowcount
        if claimed == 1:
            _unwind_hold(db.session.get(Redemption, hold_id))
            expired += 1
    return expired


def expire_holds(*, now: datetime | None = None, resident_id: int | None = None,
                 redemption_id: int | None = None, batch: int = 500) -> int:
    """Release holds past their expiry (all, one resident's, or one); commits; the count."""
    now = clock(now)
    expired = 0
    while True:
        before = expired
        expired += _expire_holds_here(now=now, resident_id=resident_id,
                                      redemption_id=redemption_id, limit=batch)
        db.session.commit()
        if expired - before < batch:
            return expired


def refund(*, redemption_id: int, points: int, reason: str, actor_user_id: int,
           now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    """Give points back to the resident from the merchant; never more than was redeemed."""
    now = clock(now)
    redemption = get_redemption(redemption_id=redemption_id)
    if redemption.status != "captured":
        raise Conflict("invalid_state", f"a {redemption.status} redemption has nothing to refund")
    window = timedelta(days=int(current_app.config["REFUND_DAYS"]))
    if as_utc(redemption.captured_at) + window < now:
        raise Conflict("refund_window_closed",
                       f"refunds are accepted for {window.days} days after the payment")
    refunded = db.session.execute(
        _update(Redemption)
        .where(Redemption.id == redemption_id, Redemption.status == "captured",
               Redemption.refunded_points + points <= Redemption.captured_points)
        .values(refunded_points=Redemption.refunded_points + points)
        .returning(Redemption.refunded_points)
    ).scalar()
    if refunded is None:
        db.session.refresh(redemption)
        remaining = redemption.captured_points - redemption.refunded_points
        raise Conflict("refund_exceeds_redeemed",
                       f"at most {remaining} more points can be refunded", remaining=remaining)
    restocked = 0
    if redemption.offer_id is not None and redemption.unit_points:
        # Whole units refunded so far, minus those already restocked (partial refunds add up).
        before = (refunded - points) // redemption.unit_points
        restocked = min(refunded // redemption.unit_points, redemption.quantity or 0) - min(
            before, redemption.quantity or 0)
        if restocked > 0:
            db.session.execute(
                _update(Offer).where(Offer.id == redemption.offer_id, Offer.stock.is_not(None))
                .values(stock=Offer.stock + restocked)
            )
            db.session.execute(
                _update(Redemption).where(Redemption.id == redemption_id)
                .values(restocked=Redemption.restocked + restocked)
            )
            _give_back(resident_id=redemption.resident_id,
                       counter=f"offer:{redemption.offer_id}",
                       period=redemption.offer_period, amount=restocked)
    _give_back(resident_id=redemption.resident_id, counter="spend",
               period=redemption.spend_period, amount=points)
    transaction = post(transfer=Transfer(
        kind="refund", community_id=redemption.community_id,
        district_id=redemption.district_id,
        legs=(Leg(redemption.merchant_account_id, -points),
              Leg(redemption.resident_account_id, points)),
        actor_user_id=actor_user_id, reference_type="redemption",
        reference_id=str(redemption.id), subject_resident_id=redemption.resident_id,
        memo=reason,
    ))
    row = Refund(redemption_id=redemption.id, points=points, restocked=max(restocked, 0),
                 reason=reason, transaction_id=transaction.id, created_by=actor_user_id,
                 created_at=now)
    db.session.add(row)
    db.session.flush()
    db.session.refresh(redemption)
    return 201, {"refund": refund_json(row), "redemption": receipt(redemption)}


def refund_json(row: Refund) -> dict[str, Any]:
    return {"id": row.id, "redemption_id": row.redemption_id, "points": row.points,
            "restocked": row.restocked, "reason": row.reason,
            "transaction_id": row.transaction_id, "created_by": row.created_by,
            "created_at": _iso(row.created_at)}


def receipt(redemption: Redemption, *, with_balance: bool = True) -> dict[str, Any]:
    """What the till prints: masked resident name, merchant, offer, points, new balance."""
    name = db.session.scalar(
        select(User.display_name).join(Resident, Resident.user_id == User.id)
        .where(Resident.id == redemption.resident_id)
    )
    merchant_name = db.session.scalar(
        select(Merchant.name).where(Merchant.id == redemption.merchant_id))
    offer_title = None
    if redemption.offer_id is not None:
        offer_title = db.session.scalar(
            select(Offer.title).where(Offer.id == redemption.offer_id))
    body: dict[str, Any] = {
        "id": redemption.id, "status": redemption.status, "channel": redemption.channel,
        "merchant": {"id": redemption.merchant_id, "name": merchant_name},
        "resident": {"id": redemption.resident_id, "name": mask_name(name)},
        "offer": ({"id": redemption.offer_id, "title": offer_title}
                  if redemption.offer_id is not None else None),
        "quantity": redemption.quantity, "points": redemption.points,
        "captured_points": redemption.captured_points,
        "refunded_points": redemption.refunded_points, "order_ref": redemption.order_ref,
        "transaction_id": redemption.transaction_id,
        "hold_expires_at": _iso(redemption.hold_expires_at),
        "created_at": _iso(redemption.created_at),
        "captured_at": _iso(redemption.captured_at),
        "resolved_at": _iso(redemption.resolved_at),
    }
    if with_balance:
        account = db.session.get(Account, redemption.resident_account_id)
        db.session.refresh(account)
        body["balance"] = account.balance
        body["spendable"] = account.balance - account.held
    return body


def redemption_detail(*, redemption_id: int) -> dict[str, Any]:
    """A redemption with its refunds (no balance: that is the resident's business)."""
    redemption = get_redemption(redemption_id=redemption_id)
    body = receipt(redemption, with_balance=False)
    body["refunds"] = [refund_json(row) for row in db.session.scalars(
        select(Refund).where(Refund.redemption_id == redemption_id).order_by(Refund.id))]
    return body


def list_redemptions(*, limit: int, cursor: str | None, resident_id: int | None = None,
                     merchant_ids: list[int] | None = None, scope_paths: list[str] | None = None,
                     status: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Redemptions newest first: a resident's, some merchants', or those of merchants in scope."""
    query = select(Redemption)
    if resident_id is not None:
        query = query.where(Redemption.resident_id == resident_id)
    if merchant_ids is not None:
        query = query.where(Redemption.merchant_id.in_(merchant_ids))
    if scope_paths is not None:
        if not scope_paths:
            return [], None
        query = query.join(Merchant, Merchant.id == Redemption.merchant_id).join(
            OrgNode, OrgNode.id == Merchant.org_node_id
        ).where(or_(*[OrgNode.path.startswith(path, autoescape=True) for path in scope_paths]))
    if status is not None:
        query = query.where(Redemption.status == status)
    if cursor:
        query = query.where(Redemption.id < decode_id_cursor(cursor))
    rows = list(db.session.scalars(query.order_by(Redemption.id.desc()).limit(limit + 1)))
    items = [receipt(row, with_balance=False) for row in rows]
    return page_of(items, limit=limit, key=lambda item: [item["id"]])


# -- settlement and statements --------------------------------------------------------------


def settle(*, merchant_id: int, points: int | None, payment_reference: str,
           actor_user_id: int) -> tuple[int, dict[str, Any]]:
    """Pay a merchant out: move its points to the district's settlement account via post()."""
    merchant = get_merchant(merchant_id=merchant_id).merchant
    account = merchant_account_of(merchant_id=merchant.id)
    available = 0 if account is None else account.balance - account.held
    amount = available if points is None else points
    if account is None or amount <= 0 or amount > available:
        raise InsufficientPoints("insufficient_points",
                                 f"the merchant holds {available} points to settle",
                                 available=available, needed=amount)
    settlement_acct = ensure_account(kind="settlement", district_id=account.district_id)
    transaction = post(transfer=Transfer(
        kind="settlement", community_id=account.community_id, district_id=account.district_id,
        legs=(Leg(account.id, -amount), Leg(settlement_acct, amount)),
        actor_user_id=actor_user_id, reference_type="payment",
        reference_id=payment_reference,
    ))
    row = Settlement(merchant_id=merchant.id, points=amount, payment_reference=payment_reference,
                     transaction_id=transaction.id, created_by=actor_user_id, created_at=utcnow())
    db.session.add(row)
    db.session.flush()
    record_event(actor_user_id=actor_user_id, action="merchant.settled",
                 target_type="merchant", target_id=merchant.id,
                 community_id=merchant.org_node_id,
                 detail={"points": amount, "payment_reference": payment_reference,
                         "transaction_id": transaction.id},
                 before={"available": available}, after={"available": available - amount})
    return 201, settlement_json(row)


def settlement_json(row: Settlement) -> dict[str, Any]:
    return {"id": row.id, "merchant_id": row.merchant_id, "points": row.points,
            "payment_reference": row.payment_reference, "transaction_id": row.transaction_id,
            "created_by": row.created_by, "created_at": _iso(row.created_at)}


def list_settlements(*, merchant_id: int, limit: int, cursor: str | None
                     ) -> tuple[list[dict[str, Any]], str | None]:
    """A merchant's settlements, newest first."""
    query = select(Settlement).where(Settlement.merchant_id == merchant_id)
    if cursor:
        query = query.where(Settlement.id < decode_id_cursor(cursor))
    rows = list(db.session.scalars(query.order_by(Settlement.id.desc()).limit(limit + 1)))
    return page_of([settlement_json(row) for row in rows], limit=limit,
                   key=lambda item: [item["id"]])


MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def month_bounds(*, month: str, timezone: str) -> tuple[datetime, datetime]:
    """The UTC instants a local calendar month starts and ends at."""
    match = MONTH.match(month or "")
    if not match:
        raise ValidationFailed(errors={"month": ["Use YYYY-MM."]})
    year, number = int(match[1]), int(match[2])
    zone = ZoneInfo(timezone)
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


STATEMENT_GROUPS = {"redemption": "redemptions", "refund": "refunds",
                    "settlement": "settlements"}


def statement(*, merchant_id: int, month: str) -> dict[str, Any]:
    """A merchant's month, from the ledger entries of its account, in its node's time zone."""
    merchant = get_merchant(merchant_id=merchant_id).merchant
    timezone = _timezone(merchant.org_node_id)
    start, end = month_bounds(month=month, timezone=timezone)
    account = merchant_account_of(merchant_id=merchant.id)
    totals = {name: {"count": 0, "points": 0} for name in
              (*STATEMENT_GROUPS.values(), "other")}
    lines: list[dict[str, Any]] = []
    opening = 0
    if account is not None:
        opening = int(db.session.scalar(
            select(func.coalesce(func.sum(Entry.amount), 0))
            .join(LedgerTransaction, LedgerTransaction.id == Entry.transaction_id)
            .where(Entry.account_id == account.id, LedgerTransaction.created_at < start)
        ))
        rows = db.session.execute(
            select(LedgerTransaction.id, LedgerTransaction.kind, LedgerTransaction.created_at,
                   LedgerTransaction.reference_type, LedgerTransaction.reference_id,
                   Entry.amount, Entry.balance_after)
            .join(Entry, Entry.transaction_id == LedgerTransaction.id)
            .where(Entry.account_id == account.id, LedgerTransaction.created_at >= start,
                   LedgerTransaction.created_at < end)
            .order_by(Entry.id)
        ).all()
        zone = ZoneInfo(timezone)
        for tx_id, kind, created_at, ref_type, ref_id, amount, balance_after in rows:
            group = STATEMENT_GROUPS.get(kind, "other")
            totals[group]["count"] += 1
            totals[group]["points"] += int(amount)
            lines.append({"transaction_id": tx_id, "kind": kind,
                          "time": as_utc(created_at).astimezone(zone).isoformat(),
                          "reference_type": ref_type, "reference_id": ref_id,
                          "amount": int(amount), "balance_after": balance_after})
    closing = opening + sum(group["points"] for group in totals.values())
    return {"merchant_id": merchant.id, "merchant_name": merchant.name, "month": month,
            "timezone": timezone, "opening_balance": opening, **totals,
            "closing_balance": closing, "lines": lines}


def statement_csv(body: dict[str, Any]) -> bytes:
    """The statement as CSV (UTF-8 with BOM, so spreadsheet programs read the Chinese)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["merchant_id", "merchant_name", "month", "timezone"])
    writer.writerow([body["merchant_id"], _cell(body["merchant_name"]), body["month"],
                     body["timezone"]])
    writer.writerow([])
    writer.writerow(["item", "count", "points"])
    writer.writerow(["opening_balance", "", body["opening_balance"]])
    for name in ("redemptions", "refunds", "settlements", "other"):
        writer.writerow([name, body[name]["count"], body[name]["points"]])
    writer.writerow(["closing_balance", "", body["closing_balance"]])
    writer.writerow([])
    writer.writerow(["time", "kind", "transaction_id", "reference_type", "reference_id",
                     "amount", "balance_after"])
    for line in body["lines"]:
        writer.writerow([line["time"], line["kind"], line["transaction_id"],
                         _cell(line["reference_type"]), _cell(line["reference_id"]),
                         line["amount"], line["balance_after"]])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in text cells (=, +, -, @ at the start)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


