"""The one place that decides who may do what.

Every API view is wrapped by `policy(action)`. An action names the roles that may perform
it; staff roles are granted on an organisation node and cover its subtree, so a view also
calls `require_scope(action, node_id)` (or filters lists by `scope_paths(action)`) for the
objects it touches. Nothing else in the code base checks roles.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import current_app, g, has_app_context, request
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..errors import Forbidden, Unauthorized

PUBLIC = "public"
AUTHENTICATED = "authenticated"

# action -> roles allowed. Staff roles are scoped to a subtree; "resident" and
# "merchant_operator" act only on their own things (the service narrows that further).
ACTIONS: dict[str, frozenset[str]] = {
    PUBLIC: frozenset(),
    AUTHENTICATED: frozenset({"admin", "organizer", "auditor", "resident", "merchant_operator"}),
    "resident.self": frozenset({"resident"}),
    "merchant.self": frozenset({"merchant_operator"}),
    "orgs.read": frozenset({"admin", "organizer", "auditor"}),
    "orgs.manage": frozenset({"admin"}),
    "roles.manage": frozenset({"admin"}),
    "people.read": frozenset({"admin", "organizer", "auditor"}),
    "people.manage": frozenset({"admin", "organizer"}),
    "people.phone": frozenset({"admin"}),
    "merchants.read": frozenset({"admin", "organizer", "auditor"}),
    "merchants.manage": frozenset({"admin", "organizer"}),
    # Staff in scope, or the merchant's own operator (the merchants service narrows it).
    "merchants.view": frozenset({"admin", "organizer", "auditor", "merchant_operator"}),
    "merchants.phone": frozenset({"admin"}),
    "rules.read": frozenset({"admin", "organizer", "auditor"}),
    "rules.manage": frozenset({"admin", "organizer"}),
    "ledger.read": frozenset({"admin", "organizer", "auditor"}),
    "awards.create": frozenset({"admin", "organizer"}),
    "awards.approve": frozenset({"admin", "organizer"}),
    "ledger.reverse": frozenset({"admin", "organizer"}),
    "ledger.policy": frozenset({"admin"}),
    # Redemption: an operator takes payments for its own merchant (the service narrows it);
    # offers and the merchant's code are managed by its operators or staff in scope.
    "merchant.redeem": frozenset({"merchant_operator"}),
    "offers.manage": frozenset({"admin", "organizer", "merchant_operator"}),
    "merchants.settle": frozenset({"admin"}),
    # Leaderboards and honours: boards of one's own branch; one's own honours or staff's
    # in scope (the views narrow both); badges and designations by staff in scope.
    "leaderboards.read": frozenset({"admin", "organizer", "auditor", "resident"}),
    "honours.read": frozenset({"admin", "organizer", "auditor", "resident"}),
    "honours.manage": frozenset({"admin", "organizer"}),
    # Events: staff in scope organise, scan cards, close and approve; auditors read.
    "events.read": frozenset({"admin", "organizer", "auditor"}),
    "events.manage": frozenset({"admin", "organizer"}),
    "events.scan": frozenset({"admin", "organizer"}),
    "events.approve": frozenset({"admin", "organizer"}),
    # Audit: auditors and admins read, search and export everything in their subtree;
    # organisers see the anomalies of their area; reviewers decide appeals (never their
    # own decision: the service checks); residents appeal and export their own data.
    "audit.search": frozenset({"admin", "auditor"}),
    "audit.export": frozenset({"admin", "auditor"}),
    "audit.actions": frozenset({"admin", "auditor"}),
    "audit.anomalies": frozenset({"admin", "organizer", "auditor"}),
    "appeals.create": frozenset({"resident"}),
    "appeals.read": frozenset({"admin", "organizer", "auditor"}),
    "appeals.decide": frozenset({"admin", "organizer"}),
    "privacy.erase": frozenset({"admin"}),
}

STAFF = frozenset({"admin", "organizer", "auditor"})
PRINCIPAL_CACHE = "pointsvc.principals"
PRINCIPAL_CACHE_LIMIT = 50_000


@dataclass(frozen=True)
class Grant:
    role: str
    node_id: int
    node_path: str


@dataclass
class Principal:
    """Who is calling: their grants, and what they are (resident, merchant operator)."""

    user_id: int
    grants: list[Grant] = field(default_factory=list)
    resident_id: int | None = None
    community_id: int | None = None
    community_path: str | None = None
    household_id: int | None = None
    merchant_id: int | None = None

    @property
    def roles(self) -> set[str]:
        roles = {grant.role for grant in self.grants}
        if self.resident_id is not None:
            roles.add("resident")
        if self.merchant_id is not None:
            roles.add("merchant_operator")
        return roles

    def may(self, action: str) -> bool:
        return bool(self.roles & ACTIONS[action])

    def scope_paths(self, action: str) -> list[str]:
        """Paths of the nodes on which this principal may perform a staff action."""
        allowed = ACTIONS[action]
        return [grant.node_path for grant in self.grants if grant.role in allowed]

    def covers(self, action: str, node_path: str) -> bool:
        return any(node_path.startswith(path) for path in self.scope_paths(action))


def load_principal(user_id: int, *, issued_at: int | None = None) -> Principal:
    """The caller's account, memberships and grants (from the worker's cache when fresh)."""
    cache = _principal_cache()
    entry = cache.get(user_id) if cache is not None else None
    if entry is None or entry[0] < time.monotonic():
        principal, changed_at = _read_principal(user_id)
        entry = (time.monotonic() + current_app.config["PRINCIPAL_CACHE_SECONDS"], principal,
                 changed_at)
        if cache is not None:
            if len(cache) >= PRINCIPAL_CACHE_LIMIT:
                cache.clear()
            cache[user_id] = entry
    _, principal, changed_at = entry
    # A password change ends every session, access tokens included. `iat` has whole seconds,
    # so compare with the change's second (a token of that same second still passes).
    if issued_at is not None and changed_at is not None and issued_at < changed_at:
        raise Unauthorized("invalid_token", "the password changed after this token was issued")
    return principal


# One round trip: the account with its memberships, one row per grant (or one without).
_PRINCIPAL_SQL = """
SELECT u.is_active, u.password_changed_at, r.id, r.community_id, n.path, r.household_id,
       o.merchant_id, g.role, g.org_node_id, gn.path
FROM users u
LEFT JOIN residents r ON r.user_id = u.id
LEFT JOIN org_nodes n ON n.id = r.community_id
LEFT JOIN merchant_operators o ON o.user_id = u.id
LEFT JOIN role_grants g ON g.user_id = u.id
LEFT JOIN org_nodes gn ON gn.id = g.org_node_id
WHERE u.id = %(id)s
"""


def _read_principal(user_id: int) -> tuple[Principal, int | None]:
    """Read the account, memberships and grants in one indexed query."""
    from .. import sql

    found = sql.rows(_PRINCIPAL_SQL, {"id": user_id})
    if not found or not found[0][0]:
        raise Unauthorized("invalid_token", "the account no longer exists or is disabled")
    _, changed, resident_id, community_id, community_path, household_id, merchant_id = (
        found[0][:7])
    grants = [Grant(role, node_id, path) for *_, role, node_id, path in found
              if role is not None]
    changed = sql.from_db_time(changed)
    principal = Principal(
        user_id=user_id,
        grants=grants,
        resident_id=resident_id,
        community_id=community_id,
        community_path=community_path,
        household_id=household_id,
        merchant_id=merchant_id,
    )
    return principal, int(changed.timestamp()) if changed is not None else None


def _principal_cache() -> dict[int, tuple[float, Principal, int | None]] | None:
    if current_app.config["PRINCIPAL_CACHE_SECONDS"] <= 0:
        return None
    return current_app.extensions.setdefault(PRINCIPAL_CACHE, {})


# Per-worker caches (keys of app.extensions) that depend on who someone is: emptied together
# by any committed identity change. Other packages add theirs (the leaderboards' pages).
IDENTITY_CACHES: list[str] = [PRINCIPAL_CACHE]


def forget_principals() -> None:
    """Drop this worker's cached principals, and the other identity caches (after a change
    to who someone is)."""
    for key in IDENTITY_CACHES:
        current_app.extensions.pop(key, None)


def _note_identity_changes(session: Session, _flush_context: Any) -> None:
    touched = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(obj, _identity_models()) for obj in touched):
        session.info["identity_changed"] = True


def _forget_after_commit(session: Session) -> None:
    if session.info.pop("identity_changed", False) and has_app_context():
        forget_principals()


def _forget_flag_on_rollback(session: Session, _previous: Any) -> None:
    if not session.in_transaction():
        session.info.pop("identity_changed", None)


def _identity_models() -> tuple[type, ...]:
    from ..orgs.models import OrgNode
    from ..people.models import MerchantOperator, Resident, RoleGrant, User

    return (User, Resident, RoleGrant, MerchantOperator, OrgNode)


# Any committed ORM change to accounts, memberships, grants or the org tree (whose paths
# the grants carry) empties this worker's cache, so such changes apply here at once.
event.listen(Session, "after_flush", _note_identity_changes)
event.listen(Session, "after_commit", _forget_after_commit)
event.listen(Session, "after_soft_rollback", _forget_flag_on_rollback)


def authenticate() -> Principal:
    """The principal of the bearer token on this request, or 401."""
    from .tokens import decode_access_token

    if "principal" in g:
        return g.principal
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("unauthorized", "send Authorization: Bearer <access token>")
    claims = decode_access_token(token.strip())
    g.principal = load_principal(int(claims["sub"]), issued_at=int(claims["iat"]))
    return g.principal


def current_principal() -> Principal:
    return g.principal


def policy(action: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare (and enforce) who may call a view. Every API view carries one."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if action != PUBLIC:
                principal = authenticate()
                # AUTHENTICATED means any valid token: an account with no role yet must
                # still be able to see itself, sign out and change its password.
                if action != AUTHENTICATED and not principal.may(action):
                    raise Forbidden("forbidden", f"requires one of: {sorted(ACTIONS[action])}")
            return view(*args, **kwargs)

        wrapper._policy = action  # type: ignore[attr-defined]
        if action != PUBLIC:
            apidoc = getattr(wrapper, "_apidoc", {})
            manual = dict(apidoc.get("manual_doc", {}))
            manual["security"] = [{"bearerAuth": []}]
            wrapper._apidoc = {**apidoc, "manual_doc": manual}  # type: ignore[attr-defined]
        return wrapper

    return decorate


def policy_of(endpoint: str | None, method: str) -> str | None:
    """The action a view method declared with @policy, or None if it declared none."""
    from flask import current_app

    view = current_app.view_functions.get(endpoint or "")
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return getattr(view, "_policy", None)
    handler = getattr(view_class, method.lower(), None)
    if handler is None and method == "HEAD":
        handler = getattr(view_class, "get", None)
    return getattr(handler, "_policy", None)


def enforce_policy_early() -> None:
    """before_request: authenticate and check the role before the body is even read.

    An anonymous caller then gets 401 (not a 422 describing the body) and a caller without
    the role gets 403, whatever they sent. The view's own @policy repeats the check on the
    cached principal; object scope is still checked by the view.
    """
    if request.url_rule is None or request.method == "OPTIONS":
        return
    action = policy_of(request.endpoint, request.method)
    if action is None or action == PUBLIC:
        return
    principal = authenticate()
    if action != AUTHENTICATED and not principal.may(action):
        raise Forbidden("forbidden", f"requires one of: {sorted(ACTIONS[action])}")


def require_scope(action: str, node_path: str) -> None:
    """403 not_in_scope unless the caller holds the action on an ancestor of this node."""
    principal = current_principal()
    if not principal.covers(action, node_path):
        raise Forbidden("not_in_scope", "this object belongs to another part of the organisation")


def node_path_of(node_id: int) -> str:
    from ..errors import NotFound
    from ..orgs.service import node_facts

    facts = node_facts(node_id=node_id)
    if facts is None:
        raise NotFound("not_found", f"organisation node {node_id} does not exist")
    return facts.path


def require_owner_or_scope(
    action: str, node_path: str, *, resident_id: int | None = None, merchant_id: int | None = None
) -> None:
    """Allow the owner (the resident or the merchant's operator) or staff covering the node."""
    principal = current_principal()
    if resident_id is not None and principal.resident_id == resident_id:
        return
    if merchant_id is not None and principal.merchant_id == merchant_id:
        return
    require_scope(action, node_path)


def require_member_or_scope(action: str, node_path: str) -> None:
    """Allow anyone whose community or staff node lies on the node's branch (above or below).

    Used for things that apply down a branch, such as rules defined on a district: staff of
    a community and its residents may read them, staff elsewhere may not.
    """
    principal = current_principal()
    homes = list(principal.scope_paths(action))
    if principal.community_path:
        homes.append(principal.community_path)
    for home in homes:
        if home.startswith(node_path) or node_path.startswith(home):
            return
    raise Forbidden("not_in_scope", "this object belongs to another part of the organisation")
