"""Personal-data requests (PIPL): a resident's export of everything held about them, and
their erasure by an admin.

The export is built from READERS, one per table, so what it includes is a list to read.
The erasure pseudonymises the person's identifying fields and blanks the free text about
them in every mutable table; append-only rows (ledger transactions and entries, seals,
seal leaves, the action log) hold ids only, so every content hash, seal and proof still
verifies afterwards (DESIGN §3). The ledger balance stays on the books.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import delete, exists, func, or_, select, text, union, update
from sqlalchemy.exc import IntegrityError

from ...common import as_utc, mask_name, utcnow
from ...errors import NotFound
from ...extensions import db
from ...ledger.awards import record_event
from ...ledger.models import (
    Account,
    Entry,
    IdempotencyKey,
    LedgerTransaction,
    Memo,
    PendingAward,
)
from ...orgs.models import OrgNode
from ...people.models import UNUSABLE_PASSWORD, Household, Resident, StaffHousehold, User
from ...security.authz import forget_principals
from ...security.models import RefreshToken
from .models import Erasure

EXPORT_FORMAT = "pointsvc-personal-data-export-v1"
PSEUDONYM_PREFIX = "已注销用户"
HOUSEHOLD_PREFIX = "已注销住户"
# Crockford's base32 without the look-alikes: a pseudonym read aloud is not misheard.
_PSEUDONYM_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
FETCH_ROWS = 500

# The resident's ledger accounts and every transaction that names or touches them.
_ACCOUNTS = "SELECT id FROM ledger_accounts WHERE kind = 'resident' AND owner_id = :rid"
_TRANSACTIONS = ("SELECT id FROM ledger_transactions WHERE subject_resident_id = :rid "
                 "UNION SELECT transaction_id FROM ledger_entries "
                 f"WHERE account_id IN ({_ACCOUNTS})")


@dataclass(frozen=True)
class Reader:
    """One section of the export: the rows of one table that are about the resident."""

    section: str
    sql: str
    # The table this reader needs; the section is left out while that table does not exist
    # (areas still being built).
    table: str | None = None
    # Columns not to hand out (another person's data, such as a staff member's address).
    omit: tuple[str, ...] = ()


# Everything the service holds about a resident. Secrets are left out on purpose (password
# hash, refresh-token hashes, pay-code nonces, memo salts); a resident card holds no secret
# of its own (it is signed by the server's key), so its serial is all there is.
READERS: tuple[Reader, ...] = (
    Reader("user", "SELECT id, username, phone, display_name, is_active, created_at, "
                   "password_changed_at FROM users WHERE id = :uid"),
    Reader("resident", "SELECT id, community_id, grid_id, household_id, is_minor, privacy, "
                       "created_at FROM residents WHERE id = :rid"),
    Reader("household", "SELECT h.id, h.community_id, h.label, h.created_at FROM households h "
                        "JOIN residents r ON r.household_id = h.id WHERE r.id = :rid"),
    Reader("sessions", "SELECT id, issued_at, expires_at, rotated_at, revoked_at "
                       "FROM refresh_tokens WHERE user_id = :uid ORDER BY id"),
    Reader("accounts", "SELECT id, kind, community_id, district_id, balance, held, "
                       "total_credited, total_debited, created_at FROM ledger_accounts "
                       "WHERE kind = 'resident' AND owner_id = :rid ORDER BY id"),
    Reader("transactions",
           "SELECT t.id, t.kind, t.community_id, t.rule_code, t.rule_version, t.category, "
           "t.quantity, t.reference_type, t.reference_id, t.subject_resident_id, "
           "t.actor_user_id, t.reverses_id, t.shortfall, t.memo_hash, t.content_hash, "
           "t.created_at, m.memo, m.evidence_ref, m.erased_at AS memo_erased_at "
           "FROM ledger_transactions t LEFT JOIN ledger_memos m ON m.transaction_id = t.id "
           f"WHERE t.id IN ({_TRANSACTIONS}) ORDER BY t.id"),
    Reader("entries", "SELECT id, transaction_id, account_id, amount, balance_after "
                      f"FROM ledger_entries WHERE account_id IN ({_ACCOUNTS}) ORDER BY id"),
    Reader("pending_awards",
           "SELECT id, community_id, rule_id, quantity, points, memo, evidence_ref, "
           "reason_required, status, requested_by, decided_by, decided_at, decision_reason, "
           "transaction_id, created_at FROM ledger_pending_awards WHERE resident_id = :rid "
           "ORDER BY id"),
    Reader("cap_counters", "SELECT rule_code, period, points FROM ledger_cap_counters "
                           "WHERE resident_id = :rid ORDER BY rule_code, period"),
    Reader("event_signups", "SELECT id, event_id, status, queue_seq, created_by, created_at, "
                            "promoted_at, cancelled_at FROM event_signups "
                            "WHERE resident_id = :rid ORDER BY id"),
    Reader("event_scans", "SELECT id, event_id, direction, source, at, scanned_at, "
                          "received_at, actor_user_id, offline, latitude, longitude "
                          "FROM event_scans WHERE resident_id = :rid ORDER BY id"),
    Reader("event_presence", "SELECT event_id, inside, first_in_at, last_at FROM event_attendees "
                             "WHERE resident_id = :rid ORDER BY event_id"),
    Reader("event_attendance",
           "SELECT event_id, community_id, stays, first_in_at, last_out_at, raw_minutes, "
           "minutes, computed_points, points, status, adjusted_by, adjust_reason, "
           "transaction_id, created_at, decided_at FROM event_attendance "
           "WHERE resident_id = :rid ORDER BY event_id"),
    Reader("cards", "SELECT serial, reissued_by, reissued_at FROM resident_cards "
                    "WHERE resident_id = :rid"),
    Reader("paycodes", "SELECT issued_at, expires_at, used_at, used_by_user_id FROM paycodes "
                       "WHERE resident_id = :rid ORDER BY issued_at"),
    Reader("redemptions",
           "SELECT id, channel, merchant_id, offer_id, quantity, unit_points, points, "
           "captured_points, refunded_points, status, order_ref, transaction_id, created_at, "
           "captured_at, resolved_at FROM redemptions WHERE resident_id = :rid ORDER BY id"),
    Reader("refunds", "SELECT f.id, f.redemption_id, f.points, f.reason, f.transaction_id, "
                      "f.created_at FROM redemption_refunds f JOIN redemptions r "
                      "ON r.id = f.redemption_id WHERE r.resident_id = :rid ORDER BY f.id"),
    Reader("spend_counters", "SELECT counter, period, amount FROM redemption_counters "
                             "WHERE resident_id = :rid ORDER BY counter, period"),
    Reader("leaderboard_tallies", "SELECT period, category, points, minutes, listed "
                                  "FROM leaderboard_tallies WHERE resident_id = :rid "
                                  "ORDER BY period, category"),
    Reader("badges", "SELECT g.id, g.badge_id, b.code, b.title_zh, b.title_en, g.period, "
                     "g.transaction_id, g.granted_at FROM honour_badge_grants g "
                     "JOIN honour_badges b ON b.id = g.badge_id WHERE g.resident_id = :rid "
                     "ORDER BY g.id"),
    Reader("designations", "SELECT id, community_id, title, citation, period_label, "
                           "designated_by, created_at FROM honour_designations "
                           "WHERE resident_id = :rid ORDER BY id"),
    Reader("appeals", "SELECT id, community_id, subject_type, subject_key, transaction_id, "
                      "event_id, decided_originally_at, reason, status, created_at, "
                      "reviewer_user_id, decided_at, decision_reason, remedy_transaction_id, "
                      "erased_at FROM appeals WHERE resident_id = :rid ORDER BY id"),
    Reader("geofence_refusals", "SELECT id, event_id, direction, step, distance_m, radius_m, at "
                                "FROM anomaly_geofence_refusals WHERE resident_id = :rid "
                                "ORDER BY id", table="anomaly_geofence_refusals"),
    # The action-log rows whose target is the resident, their login, or one of their
    # transactions or pending awards (staff client addresses are the staff's, left out).
    Reader("action_log",
           "SELECT * FROM audit_events WHERE (target_type = 'resident' AND target_id = :rid_s) "
           "OR (target_type = 'user' AND target_id = :uid_s) "
           "OR (target_type = 'transaction' AND target_id IN "
           f"(SELECT CAST(x.id AS VARCHAR(64)) FROM ({_TRANSACTIONS}) x)) "
           "OR (target_type = 'pending_award' AND target_id IN "
           "(SELECT CAST(p.id AS VARCHAR(64)) FROM ledger_pending_awards p "
           "WHERE p.resident_id = :rid)) ORDER BY id", omit=("client_address",)),
)


# --------------------------------------------------------------------------- export

def _present(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    return value


def _table_exists(name: str) -> bool:
    from sqlalchemy import inspect

    return inspect(db.session.connection()).has_table(name)


def _section_rows(reader: Reader, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The reader's rows as dicts, fetched FETCH_ROWS at a time (a server-side cursor on
    PostgreSQL), so a long history never sits in memory whole."""
    result = db.session.execute(text(reader.sql), params,
                                execution_options={"yield_per": FETCH_ROWS})
    columns = list(result.keys())
    for row in result:
        yield {column: _present(value) for column, value in zip(columns, row, strict=True)
               if column not in reader.omit}


def resident_of_user(*, user_id: int) -> tuple[int, int]:
    """(resident id, user id) of a signed-in resident, or 404."""
    row = db.session.execute(select(Resident.id, Resident.user_id)
                             .where(Resident.user_id == user_id)).first()
    if row is None:
        raise NotFound("not_found", "this account is not a resident")
    return row[0], row[1]


def export_chunks(*, resident_id: int, user_id: int) -> Iterator[bytes]:
    """The export as one JSON document, encoded section by section and row by row."""
    params = {"rid": resident_id, "uid": user_id, "rid_s": str(resident_id),
              "uid_s": str(user_id)}
    head = {"format": EXPORT_FORMAT, "generated_at": utcnow().isoformat(),
            "resident_id": resident_id}
    yield (json.dumps(head, ensure_ascii=False)[:-1] + ', "sections": {').encode()
    first_section = True
    for reader in READERS:
        if reader.table is not None and not _table_exists(reader.table):
            continue
        yield (("" if first_section else ", ") + json.dumps(reader.section) + ": [").encode()
        first_section = False
        buffer: list[str] = []
        count = 0
        for row in _section_rows(reader, params):
            buffer.append(json.dumps(row, ensure_ascii=False, default=str))
            count += 1
            if len(buffer) == FETCH_ROWS:
                yield ((", " if count > FETCH_ROWS else "") + ", ".join(buffer)).encode()
                buffer.clear()
        if buffer:
            yield ((", " if count > len(buffer) else "") + ", ".join(buffer)).encode()
        yield b"]"
    yield b"}}\n"
    db.session.rollback()


def export_document(*, resident_id: int, user_id: int) -> dict[str, Any]:
    """The whole export parsed (the command line and tests; the API streams it)."""
    return json.loads(b"".join(export_chunks(resident_id=resident_id, user_id=user_id)))


# --------------------------------------------------------------------------- erasure

@dataclass(frozen=True)
class ErasureResult:
    erasure: Erasure
    created: bool
    # Append-only rows still carrying one of the person's identifying strings: cannot be
    # blanked (reported, never "fixed" by weakening the triggers).
    residual: dict[str, int]


def _new_pseudonym() -> str:
    return f"{PSEUDONYM_PREFIX} " + "".join(secrets.choice(_PSEUDONYM_ALPHABET)
                                            for _ in range(4))


def find_erasure(*, resident_id: int) -> Erasure | None:
    """The erasure of this resident, if they were erased."""
    return db.session.scalar(select(Erasure).where(Erasure.resident_id == resident_id))


def resident_community_path(*, resident_id: int) -> str:
    """The path of the resident's community (for the scope check), or 404."""
    path = db.session.scalar(
        select(OrgNode.path).join(Resident, Resident.community_id == OrgNode.id)
        .where(Resident.id == resident_id))
    if path is None:
        raise NotFound("not_found", f"resident {resident_id} does not exist")
    return path


def _transactions_of(resident_id: int) -> Any:
    """Ids of the transactions naming the resident or touching one of their accounts."""
    accounts = select(Account.id).where(Account.kind == "resident",
                                        Account.owner_id == resident_id)
    return union(
        select(LedgerTransaction.id).where(LedgerTransaction.subject_resident_id == resident_id),
        select(Entry.transaction_id).where(Entry.account_id.in_(accounts)),
    )


def _free_texts(resident_id: int) -> set[str]:
    """Every free text about the resident held in mutable rows (before it is blanked)."""
    params = {"rid": resident_id}
    queries = [
        f"SELECT memo, evidence_ref FROM ledger_memos WHERE transaction_id IN ({_TRANSACTIONS})",
        "SELECT memo, evidence_ref, decision_reason FROM ledger_pending_awards "
        "WHERE resident_id = :rid",
        "SELECT adjust_reason FROM event_attendance WHERE resident_id = :rid",
        "SELECT f.reason FROM redemption_refunds f JOIN redemptions r ON r.id = f.redemption_id "
        "WHERE r.resident_id = :rid",
        "SELECT citation FROM honour_designations WHERE resident_id = :rid",
        "SELECT reason, decision_reason FROM appeals WHERE resident_id = :rid",
    ]
    found: set[str] = set()
    for sql_text in queries:
        for row in db.session.execute(text(sql_text), params):
            found.update(value for value in row if isinstance(value, str) and value.strip())
    return found


def erase(*, resident_id: int, actor_user_id: int | None, reason_code: str) -> ErasureResult:
    """Pseudonymise a resident and blank the free text about them; idempotent, irreversible."""
    existing = find_erasure(resident_id=resident_id)
    if existing is not None:
        return ErasureResult(existing, False, {})
    resident = db.session.get(Resident, resident_id)
    if resident is None:
        raise NotFound("not_found", f"resident {resident_id} does not exist")
    user = db.session.get(User, resident.user_id)
    now = utcnow()
    pseudonym = _new_pseudonym()
    identifiers = {value for value in (user.display_name, user.phone, user.username)
                   if value and value.strip()}
    free_texts = _free_texts(resident_id)
    counts: dict[str, int] = {}

    def changed(table: str, result: Any) -> None:
        rows = result if isinstance(result, int) else (result.rowcount or 0)
        counts[table] = counts.get(table, 0) + rows

    household_label = _erase_household(resident, user.display_name, pseudonym, counts)
    if household_label:
        identifiers.add(household_label)
    # Identity: the login disappears (no username or phone to sign in with, a password hash
    # that matches nothing, the account disabled) and the name becomes the pseudonym.
    old_name = user.display_name
    user.display_name = pseudonym
    user.username = None
    user.phone = None
    user.password_hash = UNUSABLE_PASSWORD
    user.is_active = False
    user.failed_logins = 0
    user.locked_until = None
    user.password_changed_at = now  # every access token issued before now is refused
    counts["users"] = 1
    # Off every board (the tallies re-list through the leaderboards' privacy hook) and out of
    # their household; community and grid stay (the accounts and scope checks need them).
    resident.privacy = "hidden"
    resident.household_id = None
    counts["residents"] = 1
    db.session.flush()
    changed("refresh_tokens", db.session.execute(
        update(RefreshToken).where(RefreshToken.user_id == user.id,
                                   RefreshToken.revoked_at.is_(None)).values(revoked_at=now)))
    # Free text outside the hashed rows. A new salt as well: the memo hash left in the
    # transaction can no longer confirm a guess of the text.
    changed("ledger_memos", db.session.execute(
        update(Memo).where(Memo.transaction_id.in_(_transactions_of(resident_id)))
        .values(memo=None, evidence_ref=None, salt=secrets.token_hex(16), erased_at=now)))
    changed("ledger_pending_awards", db.session.execute(
        update(PendingAward).where(PendingAward.resident_id == resident_id)
        .values(memo=None, evidence_ref=None, decision_reason=None)))
    _erase_activity(resident_id, now, changed)
    _erase_idempotency(user_id=user.id, resident_id=resident_id,
                       secrets_=identifiers | free_texts | {old_name}, pseudonym=pseudonym,
                       counts=counts)
    _erase_other_areas(resident_id, changed)
    erasure = Erasure(resident_id=resident_id, user_id=user.id,
                      community_id=resident.community_id, pseudonym=pseudonym,
                      erased_by=actor_user_id, reason_code=reason_code,
                      summary=json.dumps(dict(sorted(counts.items()))), erased_at=now)
    db.session.add(erasure)
    try:
        db.session.flush()
    except IntegrityError:
        # A concurrent erasure of the same resident won: theirs is the result.
        db.session.rollback()
        found = find_erasure(resident_id=resident_id)
        if found is None:  # pragma: no cover - the winner rolled back too
            raise
        return ErasureResult(found, False, {})
    record_event(actor_user_id=actor_user_id, action="privacy.erased", target_type="resident",
                 target_id=resident_id, community_id=resident.community_id,
                 detail={"erasure_id": erasure.id, "reason_code": reason_code})
    residual = _residual(community_id=resident.community_id, user_id=user.id,
                         values=identifiers | free_texts | {old_name})
    db.session.commit()
    forget_principals()
    if residual:
        current_app.logger.warning("erasure %s: append-only rows still hold personal data: %s",
                                   erasure.id, residual)
    return ErasureResult(erasure, True, residual)


def _erase_household(resident: Resident, name: str, pseudonym: str,
                     counts: dict[str, int]) -> str | None:
    """Relabel the household when its label names the person or it was theirs alone;
    returns the old label when it was changed (it may name them)."""
    if resident.household_id is None:
        return None
    household = db.session.get(Household, resident.household_id)
    others = db.session.scalar(select(func.count()).select_from(Resident).where(
        Resident.household_id == household.id, Resident.id != resident.id))
    staff = db.session.scalar(select(exists().where(
        StaffHousehold.household_id == household.id)))
    old = household.label
    if not others and not staff:
        household.label = f"{HOUSEHOLD_PREFIX} {pseudonym.rsplit(' ', 1)[-1]}"
    elif name and name in old:
        household.label = old.replace(name, pseudonym)[:200]
    else:
        return None
    counts["households"] = 1
    return old


def _erase_activity(resident_id: int, now: datetime, changed: Any) -> None:
    """Events, cards, pay codes, redemptions, honours: blank free text and coordinates."""
    from ...events.models import AttendanceLine, ResidentCard, Scan
    from ...leaderboards.models import Designation
    from ...redemption.models import PayCode, Redemption, Refund

    changed("event_scans", db.session.execute(
        update(Scan).where(Scan.resident_id == resident_id,
                           or_(Scan.latitude.is_not(None), Scan.longitude.is_not(None)))
        .values(latitude=None, longitude=None)))
    changed("event_attendance", db.session.execute(
        update(AttendanceLine).where(AttendanceLine.resident_id == resident_id,
                                     AttendanceLine.adjust_reason.is_not(None))
        .values(adjust_reason=None)))
    # A printed card of theirs stops scanning (serial bumped); an unused pay code dies.
    changed("resident_cards", db.session.execute(
        update(ResidentCard).where(ResidentCard.resident_id == resident_id)
        .values(serial=ResidentCard.serial + 1, reissued_at=now, reissued_by=None)))
    changed("paycodes", db.session.execute(
        update(PayCode).where(PayCode.resident_id == resident_id, PayCode.used_at.is_(None))
        .values(used_at=now)))
    changed("redemption_refunds", db.session.execute(
        update(Refund).where(Refund.redemption_id.in_(
            select(Redemption.id).where(Redemption.resident_id == resident_id)),
            Refund.reason != "").values(reason="")))
    changed("honour_designations", db.session.execute(
        update(Designation).where(Designation.resident_id == resident_id,
                                  Designation.citation != "").values(citation="")))


def _erase_other_areas(resident_id: int, changed: Any) -> None:
    """Appeals (their texts blanked), geofence refusals (deleted: where the person was) and
    the boards' copy of the masked name (blanked now, not at the next drain)."""
    from ..appeals.service import erase_resident as erase_appeals

    changed("appeals", erase_appeals(resident_id=resident_id))
    changed("leaderboard_tallies", db.session.execute(
        text("UPDATE leaderboard_tallies SET shown_name = NULL WHERE resident_id = :rid"),
        {"rid": resident_id}))
    for table in _geofence_tables():
        changed(table, db.session.execute(text(f"DELETE FROM {table} WHERE resident_id = :rid"),
                                          {"rid": resident_id}))


def _geofence_tables() -> list[str]:
    """Geofence refusal records (anomalies work): the resident's rows are deleted."""
    from sqlalchemy import inspect

    inspector = inspect(db.session.connection())
    return [name for name in inspector.get_table_names()
            if "geofence" in name and any(c["name"] == "resident_id"
                                          for c in inspector.get_columns(name))]


def _json_form(value: str) -> str:
    """How a string appears inside a stored JSON document (ensure_ascii=False)."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


def _erase_idempotency(*, user_id: int, resident_id: int, secrets_: set[str], pseudonym: str,
                       counts: dict[str, int]) -> None:
    """Delete the resident's own stored responses; scrub their name and texts from others'.

    Others' rows are scrubbed, not deleted: a deleted key would let a retry run twice.
    """
    result = db.session.execute(delete(IdempotencyKey).where(
        IdempotencyKey.scope == f"user:{user_id}"))
    counts["idempotency_keys_deleted"] = result.rowcount or 0
    masked = {mask_name(value) for value in secrets_ if value} - {None}
    patterns = {_json_form(value) for value in secrets_ | masked if len(value) >= 2}
    if not patterns:
        return
    candidates = db.session.execute(select(IdempotencyKey.id, IdempotencyKey.response_body).where(
        or_(*(IdempotencyKey.response_body.contains(p, autoescape=True) for p in patterns))
    )).all()
    scrubbed = 0
    for key_id, body in candidates:
        document = json.loads(body)
        cleaned = _scrub(document, resident_id=resident_id, secrets_=secrets_,
                         pseudonym=pseudonym)
        if cleaned != document:
            db.session.execute(update(IdempotencyKey).where(IdempotencyKey.id == key_id)
                               .values(response_body=json.dumps(cleaned, ensure_ascii=False)))
            scrubbed += 1
    counts["idempotency_keys_scrubbed"] = scrubbed


def _about_resident(node: dict[str, Any], resident_id: int) -> bool:
    if node.get("resident_id") == resident_id:
        return True
    inner = node.get("resident")
    return isinstance(inner, dict) and inner.get("id") == resident_id


def _scrub(node: Any, *, resident_id: int, secrets_: set[str], pseudonym: str,
           about: bool = False) -> Any:
    """A JSON value with the person's strings replaced: full values anywhere; masked names
    only inside an object about this resident (a masked name alone matches many people)."""
    if isinstance(node, dict):
        here = about or _about_resident(node, resident_id)
        return {key: _scrub(value, resident_id=resident_id, secrets_=secrets_,
                            pseudonym=pseudonym, about=here or (key == "resident" and about))
                for key, value in node.items()}
    if isinstance(node, list):
        return [_scrub(value, resident_id=resident_id, secrets_=secrets_, pseudonym=pseudonym,
                       about=about) for value in node]
    if isinstance(node, str):
        for value in sorted(secrets_, key=len, reverse=True):
            if value and value in node:
                node = node.replace(value, pseudonym)
        if about:
            for value in secrets_:
                masked = mask_name(value)
                if masked and masked == node:
                    node = mask_name(pseudonym)
        return node
    return node


def _residual(*, community_id: int, user_id: int, values: Iterable[str]) -> dict[str, int]:
    """Action-log rows still carrying one of the person's values, or the client address of
    an action they took themselves. The log is append-only, so these cannot be blanked: the
    erasure reports them instead of claiming a clean result."""
    from sqlalchemy import column, inspect, table

    found: dict[str, int] = {}
    patterns = [_json_form(value) for value in values if value and len(value) >= 2]
    present = {c["name"] for c in inspect(db.session.connection()).get_columns("audit_events")}
    names = [name for name in ("detail", "before_values", "after_values") if name in present]
    log = table("audit_events", column("community_id"), column("actor_user_id"),
                column("client_address"), *(column(name) for name in names))
    if patterns and names:
        count = db.session.scalar(select(func.count()).select_from(log).where(
            or_(log.c.community_id == community_id, log.c.community_id.is_(None)),
            or_(*(log.c[name].contains(p, autoescape=True) for name in names
                  for p in patterns))))
        if count:
            found["audit_events"] = count
    addresses = db.session.scalar(select(func.count()).select_from(log).where(
        log.c.actor_user_id == user_id, log.c.client_address.is_not(None)))
    if addresses:
        found["audit_events_client_address"] = addresses
    return found


def erasure_json(result: ErasureResult) -> dict[str, Any]:
    """The erasure as the API and the command show it."""
    erasure = result.erasure
    return {
        "id": erasure.id,
        "resident_id": erasure.resident_id,
        "pseudonym": erasure.pseudonym,
        "reason_code": erasure.reason_code,
        "erased_by": erasure.erased_by,
        "erased_at": as_utc(erasure.erased_at),
        "summary": json.loads(erasure.summary),
        "residual": result.residual,
    }


__all__ = ["READERS", "Reader", "erase", "erasure_json", "export_chunks", "export_document",
           "find_erasure"]
