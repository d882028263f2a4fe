"""JWT access tokens (PyJWT, HS256 pinned) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from datetime import timedelta
from typing import Any

import jwt
from flask import current_app

from ..common import utcnow
from ..errors import Unauthorized

ALGORITHM = "HS256"
VERIFIED_TOKENS = "pointsvc.verified_tokens"
VERIFIED_TOKENS_LIMIT = 20_000
SUBJECT = re.compile(r"[1-9][0-9]{0,17}")


def key_id() -> str:
    """A stable id of the signing key (a hash prefix; never the key itself)."""
    return hashlib.sha256(b"kid:" + current_app.config["JWT_SECRET_BYTES"]).hexdigest()[:16]


def issue_access_token(*, user_id: int) -> tuple[str, int]:
    """Signed access token for a user and its lifetime in seconds."""
    config = current_app.config
    lifetime = min(int(config["ACCESS_TOKEN_SECONDS"]), 900)
    now = utcnow()
    claims = {
        "sub": str(user_id),
        "iss": config["JWT_ISSUER"],
        "aud": config["JWT_AUDIENCE"],
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(seconds=lifetime),
        "jti": secrets.token_hex(8),
    }
    token = jwt.encode(
        claims, config["JWT_SECRET_BYTES"], algorithm=ALGORITHM, headers={"kid": key_id()}
    )
    return token, lifetime


def decode_access_token(token: str) -> dict[str, Any]:
    """Verify signature, algorithm, kid, iss, aud and exp; raise 401 invalid_token otherwise.

    A client sends the same token for many requests, so each worker keeps the claims of the
    tokens it verified (keyed by the whole token and the signing key): a hit skips the HMAC
    and the JSON, and only the expiry is checked again.
    """
    cache = current_app.extensions.setdefault(VERIFIED_TOKENS, {})
    cache_key = (token, key_id())
    claims = cache.get(cache_key)
    if claims is None:
        claims = _verify(token)
        if len(cache) >= VERIFIED_TOKENS_LIMIT:
            cache.clear()
        cache[cache_key] = claims
    # PyJWT's own leeway (5 s) applies to a fresh verification; keep the same bound here.
    if claims["exp"] + 5 < time.time():
        cache.pop(cache_key, None)
        raise Unauthorized("invalid_token", "Signature has expired")
    return claims


def _verify(token: str) -> dict[str, Any]:
    config = current_app.config
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM or header.get("kid") != key_id():
            raise Unauthorized("invalid_token", "unexpected algorithm or key id")
        claims = jwt.decode(
            token,
            config["JWT_SECRET_BYTES"],
            algorithms=[ALGORITHM],
            audience=config["JWT_AUDIENCE"],
            issuer=config["JWT_ISSUER"],
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            leeway=5,
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid_token", str(exc)) from exc
    # ASCII digits only, and within BIGINT: str.isdigit() accepts "²", which int() rejects.
    if not isinstance(claims.get("sub"), str) or not SUBJECT.fullmatch(claims["sub"]):
        raise Unauthorized("invalid_token", "bad subject")
    if not isinstance(claims.get("iat"), int | float):
        raise Unauthorized("invalid_token", "bad iat")
    return claims


def new_refresh_token() -> tuple[str, str]:
    """A random opaque refresh token and the hash under which it is stored."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
