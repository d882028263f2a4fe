"""Page sessions: a signed, HttpOnly cookie naming the user and their refresh token.

Signing in goes through security.service.sign_in (password check, failure counting,
lock-out) and keeps the refresh token it issues in the session cookie. Every page request
then checks that this refresh token is still alive (not revoked, not rotated, not expired)
and loads the principal through authz.load_principal, so signing out anywhere, a password
change or a disabled account ends the page session too — a stolen cookie is not good
forever. The cookie is signed, not encrypted: it holds no personal data, only ids and the
random token, and it is HttpOnly so page scripts cannot read it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, g, redirect, request, session, url_for
from sqlalchemy import select

from ..common import as_utc, utcnow
from ..errors import Forbidden, Unauthorized
from ..extensions import db
from ..people.models import User
from ..security import service as security
from ..security.authz import Principal, load_principal
from ..security.models import RefreshToken
from ..security.tokens import hash_refresh_token

AUTH_KEYS = ("uid", "rt", "iat")
_WRONG_ACCOUNT = {"resident.self": "residents_only", "merchant.redeem": "merchants_only"}


def sign_in(*, identifier: str, password: str) -> Principal:
    """Check the password (security.service) and open a page session; the principal."""
    pair = security.sign_in(identifier=identifier, password=password)
    user_id = db.session.scalar(
        select(RefreshToken.user_id).where(
            RefreshToken.token_hash == hash_refresh_token(pair["refresh_token"]))
    )
    # A new session id on sign-in: whatever was in the cookie before (a planted CSRF
    # token, another user's keys) does not carry over, except the visitor's preferences.
    keep = {key: session[key] for key in ("lang", "large") if key in session}
    session.clear()
    session.update(keep)
    session.permanent = True
    session["uid"] = int(user_id)
    session["rt"] = pair["refresh_token"]
    session["iat"] = int(time.time())
    g.principal = load_principal(int(user_id))
    return g.principal


def sign_out() -> None:
    """Revoke the session's refresh token family and forget the user in the cookie."""
    user_id, token = session.get("uid"), session.get("rt")
    if isinstance(user_id, int) and isinstance(token, str):
        security.sign_out(user_id=user_id, refresh_token=token)
    for key in AUTH_KEYS:
        session.pop(key, None)
    g.pop("principal", None)


def page_principal() -> Principal | None:
    """The signed-in principal of this page request, or None (and the cookie forgotten)."""
    if "principal" in g:
        return g.principal
    user_id, token, issued = (session.get(key) for key in AUTH_KEYS)
    if not (isinstance(user_id, int) and isinstance(token, str) and isinstance(issued, int)):
        return None
    if time.time() - issued > current_app.config["WEB_SESSION_HOURS"] * 3600 or not _alive(
            user_id, token):
        for key in AUTH_KEYS:
            session.pop(key, None)
        return None
    try:
        g.principal = load_principal(user_id, issued_at=issued)
    except Unauthorized:
        for key in AUTH_KEYS:
            session.pop(key, None)
        return None
    return g.principal


def _alive(user_id: int, token: str) -> bool:
    row = db.session.execute(
        select(RefreshToken.revoked_at, RefreshToken.rotated_at, RefreshToken.expires_at)
        .where(RefreshToken.token_hash == hash_refresh_token(token),
               RefreshToken.user_id == user_id)
    ).first()
    return bool(row and row.revoked_at is None and row.rotated_at is None
                and as_utc(row.expires_at) > utcnow())


def display_name() -> str | None:
    principal = g.get("principal")
    if principal is None:
        return None
    return db.session.scalar(select(User.display_name).where(User.id == principal.user_id))


def safe_next(target: str | None, default: str) -> str:
    """Only a path on this site: no scheme, no host, no '//' or backslash tricks."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def login_required(action: str, *, login_endpoint: str = "web.login") -> Callable[..., Any]:
    """Sign in first (then come back here), then hold the authz action, else a 403 page."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = page_principal()
            if principal is None:
                # Back to this page after signing in; a POST cannot be replayed by a redirect.
                target = request.full_path.rstrip("?") if request.method == "GET" else None
                return redirect(url_for(login_endpoint, next=target))
            if not principal.may(action):
                # Say which kind of account the page is for (a merchant opening a resident's
                # link, a resident at the till).
                raise Forbidden(_WRONG_ACCOUNT.get(action, "forbidden"), action)
            return view(*args, **kwargs)

        return wrapper

    return decorate
