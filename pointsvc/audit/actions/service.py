"""The staff action log (audit_events): append, search, export.

Rows are append-only (database triggers refuse UPDATE and DELETE, migration 0004), so they
can never be blanked when a resident's personal data is erased. Everything written here is
therefore ids, codes, counts and other non-personal values: a personal or free-text field
that changed is recorded as "changed" (or "given"), never by its value; the text itself
stays in the domain table, where the privacy work can pseudonymise it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import g, has_request_context

from ... import sql
from ...common import encode_cursor, utcnow
from ...extensions import client_address, db

# Keys whose values are (or may be) personal data or free text about a person: whatever
# a caller passes under them is replaced by a marker before the row is written. A safety
# net behind the callers, which already pass ids and codes only.
PERSONAL_KEYS = frozenset({
    "name", "display_name", "username", "phone", "contact_name", "contact_phone", "address",
    "memo", "note", "notes", "comment", "text", "title", "citation", "evidence_note",
    "decision_reason", "status_reason", "label", "email", "id_number",
    "password", "identifier",
})
GIVEN = "given"
CHANGED = "changed"

_INSERT = (
    "INSERT INTO audit_events (actor_user_id, action, target_type, target_id, community_id, "
    "client_address, detail, before_values, after_values, created_at) VALUES (%(actor)s, "
    "%(action)s, %(target_type)s, %(target_id)s, %(community_id)s, %(address)s, %(detail)s, "
    "%(before)s, %(after)s, %(created_at)s)"
)

# Marker: take the actor from the authenticated caller of the current request.
CALLER: Any = object()


def scrub(values: dict[str, Any] | None, *, marker: str = GIVEN) -> dict[str, Any] | None:
    """The values with every personal key's non-empty value replaced by a marker."""
    if values is None:
        return None
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if key in PERSONAL_KEYS and value not in (None, ""):
            clean[key] = marker
        elif isinstance(value, dict):
            clean[key] = scrub(value, marker=marker)
        else:
            clean[key] = value
    return clean


def _dumps(values: dict[str, Any] | None) -> str | None:
    if values is None:
        return None
    return json.dumps(values, ensure_ascii=False, default=str, sort_keys=True)


def caller_user_id() -> int | None:
    """The authenticated caller of this request, if any."""
    if not has_request_context():
        return None
    principal = g.get("principal")
    return principal.user_id if principal is not None else None


def record_event(
    *, actor_user_id: int | None = CALLER, action: str, target_type: str | None,
    target_id: Any, community_id: int | None, detail: dict[str, Any] | None = None,
    before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
) -> None:
    """Append a staff action (or a refused attempt) to the audit log; the caller commits."""
    if actor_user_id is CALLER:
        actor_user_id = caller_user_id()
    sql.rows(_INSERT, {
        "actor": actor_user_id, "action": action, "target_type": target_type,
        "target_id": None if target_id is None else str(target_id),
        "community_id": community_id,
        "address": client_address() if has_request_context() else None,
        "detail": _dumps(scrub(detail) or {}),
        "before": _dumps(scrub(before, marker=CHANGED)),
        "after": _dumps(scrub(after, marker=CHANGED)),
        "created_at": sql.db_time(utcnow()),
    })


def changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any],
                                                                     dict[str, Any]]:
    """Only the keys whose value differs, as (before, after)."""
    keys = [key for key in after if before.get(key) != after.get(key)]
    return ({key: before.get(key) for key in keys}, {key: after.get(key) for key in keys})


# -- searching ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionFilter:
    """What an auditor asked for; None means any."""

    scope_paths: tuple[str, ...]
    root_scope: bool  # the caller covers a root of the tree: may see rows with no node
    actor_user_id: int | None = None
    action: str | None = None  # exact, or a prefix when it ends with "."
    target_type: str | None = None
    target_id: str | None = None
    node_path: str | None = None
    start: datetime | None = None
    end: datetime | None = None


COLUMNS = ("id", "created_at", "actor_user_id", "action", "target_type", "target_id",
           "community_id", "client_address", "detail", "before", "after")

_SELECT = (
    "SELECT e.id, e.created_at, e.actor_user_id, e.action, e.target_type, e.target_id, "
    "e.community_id, e.client_address, e.detail, e.before_values, e.after_values "
    "FROM audit_events e LEFT JOIN org_nodes n ON n.id = e.community_id"
)


def _like_prefix(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _where(flt: ActionFilter, params: dict[str, Any]) -> str:
    clauses: list[str] = []
    scope = []
    for index, path in enumerate(flt.scope_paths):
        params[f"scope{index}"] = _like_prefix(path)
        scope.append(f"n.path LIKE %(scope{index})s ESCAPE '\\'")
    if flt.root_scope:
        # Rows with no node (logins of unknown accounts, cross-community bulk awards) or
        # whose node no longer exists belong to no subtree: only root-scope callers see them.
        scope.append("n.id IS NULL")
    clauses.append("(" + (" OR ".join(scope) or "1 = 0") + ")")
    if flt.actor_user_id is not None:
        params["actor"] = flt.actor_user_id
        clauses.append("e.actor_user_id = %(actor)s")
    if flt.action is not None:
        if flt.action.endswith("."):
            params["action"] = _like_prefix(flt.action)
            clauses.append("e.action LIKE %(action)s ESCAPE '\\'")
        else:
            params["action"] = flt.action
            clauses.append("e.action = %(action)s")
    if flt.target_type is not None:
        params["target_type"] = flt.target_type
        clauses.append("e.target_type = %(target_type)s")
    if flt.target_id is not None:
        params["target_id"] = flt.target_id
        clauses.append("e.target_id = %(target_id)s")
    if flt.node_path is not None:
        params["node_path"] = _like_prefix(flt.node_path)
        clauses.append("n.path LIKE %(node_path)s ESCAPE '\\'")
    if flt.start is not None:
        params["start"] = sql.db_time(flt.start)
        clauses.append("e.created_at >= %(start)s")
    if flt.end is not None:
        params["end"] = sql.db_time(flt.end)
        clauses.append("e.created_at < %(end)s")
    return " WHERE " + " AND ".join(clauses)


def _json(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def row_json(row: Sequence[Any]) -> dict[str, Any]:
    """One log row as the API shows it."""
    values = dict(zip(COLUMNS, row, strict=True))
    values["created_at"] = sql.from_db_time(values["created_at"])
    for key in ("detail", "before", "after"):
        values[key] = _json(values[key])
    return values


def search(*, flt: ActionFilter, limit: int, before_id: int | None
           ) -> tuple[list[dict[str, Any]], str | None]:
    """Matching rows, newest first (by id), keyset-paginated."""
    params: dict[str, Any] = {"limit": limit + 1}
    where = _where(flt, params)
    if before_id is not None:
        params["before_id"] = before_id
        where += " AND e.id < %(before_id)s"
    found = sql.rows(f"{_SELECT}{where} ORDER BY e.id DESC LIMIT %(limit)s", params)
    items = [row_json(row) for row in found[:limit]]
    next_cursor = encode_cursor([items[-1]["id"]]) if len(found) > limit else None
    return items, next_cursor


EXPORT_BATCH = 2000


def export_rows(*, flt: ActionFilter) -> Iterator[list[Any]]:
    """Every matching row, newest first, as plain values, read in keyset batches."""
    # Keyset batches rather than one open cursor: each batch is a short read, so a slow
    # client never holds a transaction (and its snapshot) open on the server.
    last_id: int | None = None
    while True:
        params: dict[str, Any] = {"limit": EXPORT_BATCH}
        where = _where(flt, params)
        if last_id is not None:
            params["before_id"] = last_id
            where += " AND e.id < %(before_id)s"
        batch = sql.rows(f"{_SELECT}{where} ORDER BY e.id DESC LIMIT %(limit)s", params)
        db.session.rollback()  # end the read transaction between batches
        for row in batch:
            values = list(row)
            created = sql.from_db_time(values[1])
            values[1] = created.isoformat() if created else None
            yield values
        if len(batch) < EXPORT_BATCH:
            return
        last_id = batch[-1][0]


def record_export(*, actor_user_id: int, flt: ActionFilter, export_format: str,
                  node_id: int | None) -> None:
    """Log an export of the action log itself, with its filters, and commit."""
    record_event(
        actor_user_id=actor_user_id, action="audit.export", target_type="audit_actions",
        target_id=None, community_id=node_id,
        detail={"source": "actions", "format": export_format, "filters": {
            "actor_user_id": flt.actor_user_id, "action": flt.action,
            "target_type": flt.target_type, "target_id": flt.target_id,
            "node_path": flt.node_path,
            "from": flt.start.isoformat() if flt.start else None,
            "to": flt.end.isoformat() if flt.end else None,
        }},
    )
    db.session.commit()


def node_id_of(path: str) -> int:
    """The id of the node a materialised path ends with."""
    return int(path.strip("/").split("/")[-1])


def is_root_scope(paths: Sequence[str]) -> bool:
    """True when one of the paths is a root of the tree ("/<id>/")."""
    return any(path.count("/") == 2 for path in paths)


# -- sign-ins -----------------------------------------------------------------------------

_STAFF_HOME = (
    "SELECT g.org_node_id FROM role_grants g JOIN org_nodes n ON n.id = g.org_node_id "
    "WHERE g.user_id = %(id)s ORDER BY length(n.path), g.id LIMIT 1"
)


def staff_home(*, user_id: int) -> int | None:
    """The highest node a user holds a staff role on, or None for a non-staff account."""
    row = sql.one(_STAFF_HOME, {"id": user_id})
    return None if row is None else int(row[0])


def record_sign_in(*, user_id: int | None, action: str, reason: str | None = None) -> None:
    """Log a sign-in (or a failed one) of a staff account or an unknown one; the caller commits.

    Residents' and merchant operators' sign-ins are not logged (they are not staff actions;
    the rate limiter and lockout guard them). The typed username or phone is never logged:
    an unknown account is recorded with no identifier at all, only the client address.
    """
    if user_id is None:
        record_event(actor_user_id=None, action=action, target_type="user", target_id=None,
                     community_id=None, detail={"account": "unknown", "reason": reason})
        return
    home = staff_home(user_id=user_id)
    if home is None:
        return
    record_event(actor_user_id=user_id, action=action, target_type="user", target_id=user_id,
                 community_id=home, detail={"reason": reason} if reason else None)


# -- role grants --------------------------------------------------------------------------


def record_grant(*, granted: bool, user_id: int, grant_id: int, role: str, node_id: int,
                 actor_user_id: int | None = CALLER) -> None:
    """Log a role granted to (or revoked from) a user on a node; the caller commits."""
    held = {"grant_id": grant_id, "role": role, "org_node_id": node_id}
    none = dict.fromkeys(held)
    record_event(actor_user_id=actor_user_id,
                 action="role.granted" if granted else "role.revoked",
                 target_type="user", target_id=user_id, community_id=node_id,
                 before=none if granted else held, after=held if granted else none)
