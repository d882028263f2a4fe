"""Sign-in, refresh-token rotation, logout and password change."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import or_, select, update

from ..audit.actions.service import record_sign_in
from ..common import as_utc, utcnow
from ..errors import DomainError, Unauthorized, ValidationFailed
from ..extensions import db
from ..people.models import User
from .models import RefreshToken
from .passwords import burn_time, hash_password, verify_password
from .tokens import hash_refresh_token, issue_access_token, new_refresh_token


def _token_pair(*, user_id: int, family_id: str) -> dict[str, Any]:
    access, lifetime = issue_access_token(user_id=user_id)
    refresh, refresh_hash = new_refresh_token()
    db.session.add(
        RefreshToken(
            user_id=user_id,
            family_id=family_id,
            token_hash=refresh_hash,
            expires_at=utcnow() + timedelta(days=current_app.config["REFRESH_TOKEN_DAYS"]),
        )
    )
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "refresh_token": refresh,
    }


def sign_in(*, identifier: str, password: str) -> dict[str, Any]:
    """Check a password and issue a token pair; count failures and lock after too many."""
    user = db.session.scalar(
        select(User).where(or_(User.username == identifier, User.phone == identifier))
    )
    if user is None:
        burn_time(password)
        record_sign_in(user_id=None, action="login.failed", reason="unknown_account")
        db.session.commit()
        raise Unauthorized("invalid_credentials")
    now = utcnow()
    locked_until = as_utc(user.locked_until)
    if locked_until and locked_until > now:
        retry = int((locked_until - now).total_seconds()) + 1
        record_sign_in(user_id=user.id, action="login.failed", reason="account_locked")
        db.session.commit()
        raise DomainError("account_locked", status=429, headers={"Retry-After": str(retry)})
    if not verify_password(user.password_hash, password):
        record_sign_in(user_id=user.id, action="login.failed", reason="wrong_password")
        _record_failure(user)
        raise Unauthorized("invalid_credentials")
    if not user.is_active:
        record_sign_in(user_id=user.id, action="login.failed", reason="account_disabled")
        db.session.commit()
        raise Unauthorized("account_disabled")
    user.failed_logins = 0
    user.locked_until = None
    pair = _token_pair(user_id=user.id, family_id=secrets.token_hex(16))
    record_sign_in(user_id=user.id, action="login.succeeded")
    db.session.commit()
    return pair


def _record_failure(user: User) -> None:
    config = current_app.config
    user.failed_logins = (user.failed_logins or 0) + 1
    if user.failed_logins >= config["LOGIN_MAX_FAILURES"]:
        user.locked_until = utcnow() + timedelta(seconds=config["LOGIN_LOCK_SECONDS"])
        user.failed_logins = 0
    db.session.commit()


def rotate_refresh_token(*, refresh_token: str) -> dict[str, Any]:
    """Exchange a refresh token for a new pair; reuse of a rotated one revokes its family."""
    now = utcnow()
    stored = db.session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(refresh_token))
    )
    if stored is None:
        raise Unauthorized("invalid_token", "unknown refresh token")
    if stored.revoked_at is not None:
        raise Unauthorized("invalid_token", "refresh token revoked")
    if stored.rotated_at is not None:
        _revoke_family(stored.family_id)
        db.session.commit()
        raise Unauthorized("refresh_token_reused")
    if as_utc(stored.expires_at) <= now:
        raise Unauthorized("invalid_token", "refresh token expired")
    # Conditional update: two racing refreshes with the same token cannot both win.
    claimed = db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == stored.id, RefreshToken.rotated_at.is_(None))
        .values(rotated_at=now)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        _revoke_family(stored.family_id)
        db.session.commit()
        raise Unauthorized("refresh_token_reused")
    user = db.session.get(User, stored.user_id)
    if user is None or not user.is_active:
        db.session.rollback()
        raise Unauthorized("account_disabled")
    pair = _token_pair(user_id=stored.user_id, family_id=stored.family_id)
    db.session.commit()
    return pair


def _revoke_family(family_id: str) -> None:
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def sign_out(*, user_id: int, refresh_token: str | None) -> None:
    """Revoke the given refresh token's family, or every session of the user."""
    if refresh_token:
        stored = db.session.scalar(
            select(RefreshToken).where(
                RefreshToken.token_hash == hash_refresh_token(refresh_token),
                RefreshToken.user_id == user_id,
            )
        )
        if stored is not None:
            _revoke_family(stored.family_id)
    else:
        db.session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    db.session.commit()


def change_password(*, user_id: int, current_password: str, new_password: str) -> None:
    """Replace the password and end every session."""
    user = db.session.get(User, user_id)
    if user is None or not verify_password(user.password_hash, current_password):
        raise ValidationFailed(errors={"current_password": ["Wrong password."]})
    if current_password == new_password:
        raise ValidationFailed(errors={"new_password": ["Must differ from the current one."]})
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    db.session.commit()
