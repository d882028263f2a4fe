"""Idempotency-Key handling for every POST that moves points.

The key (scoped to the caller) and a hash of the request are written in the SAME database
transaction as the ledger rows, with the response. The key row is inserted first, so a
concurrent request with the same key waits on the unique index and then finds the answer.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import request
from sqlalchemy import delete, select

from .. import sql
from ..common import utcnow
from ..errors import Conflict, DomainError
from ..extensions import db
from .models import IdempotencyKey

KEY_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
RETENTION = timedelta(hours=48)
PENDING = -1


@dataclass(frozen=True)
class Replay:
    status: int
    body: Any


def key_from_request() -> str:
    """The Idempotency-Key header, validated; 400 when missing or malformed."""
    key = request.headers.get("Idempotency-Key")
    if key is None or key == "":
        raise DomainError("idempotency_key_required", "send an Idempotency-Key header", status=400)
    if not KEY_PATTERN.match(key):
        raise DomainError(
            "idempotency_key_required",
            "Idempotency-Key must be 1-128 characters of A-Z a-z 0-9 . _ : -",
            status=400,
        )
    return key


def request_fingerprint(*, route: str, body: Any) -> str:
    """Hash of what the request asks for; a reused key must ask for the same thing."""
    canonical = json.dumps([route, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _stored(scope: str, key: str) -> IdempotencyKey | None:
    return db.session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
    )


def _replay(found: IdempotencyKey, fingerprint: str) -> Replay:
    if found.request_hash != fingerprint:
        raise Conflict(
            "idempotency_key_reused", "this Idempotency-Key was used for a different request"
        )
    if found.status_code == PENDING:
        raise Conflict("idempotency_in_progress", "the first request with this key is running")
    return Replay(found.status_code, json.loads(found.response_body))


def run_once(
    *,
    scope: str,
    key: str,
    fingerprint: str,
    work: Callable[[], tuple[int, Any]],
) -> tuple[Replay, bool]:
    """Run work() at most once per (scope, key); returns (status+body, replayed?).

    The key row is claimed first with INSERT … ON CONFLICT DO NOTHING: a concurrent request
    with the same key waits for the first to finish and then finds its answer. work() does
    its writes without committing and returns (status, JSON-able body); the key row, the
    work and the stored response commit together.
    """
    claimed = sql.one(_CLAIM, {"scope": scope, "key": key, "hash": fingerprint,
                               "pending": PENDING, "created_at": sql.db_time(utcnow())})
    if claimed is None:
        try:
            found = _stored(scope, key)
            if found is None:  # pragma: no cover - the winner rolled back; the client retries
                raise Conflict("idempotency_in_progress", "retry the request")
            return _replay(found, fingerprint), True
        finally:
            db.session.rollback()
    try:
        status, body = work()
    except BaseException:
        db.session.rollback()
        raise
    sql.rows(_ANSWER,
             {"status": status, "body": json.dumps(body, ensure_ascii=False, default=str),
              "id": claimed[0]})
    db.session.commit()
    return Replay(status, body), False


_ANSWER = ("UPDATE idempotency_keys SET status_code = %(status)s, response_body = %(body)s "
           "WHERE id = %(id)s")
# A concurrent request with the same key waits on the unique index, then finds no row here.
_CLAIM = (
    "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response_body, "
    "created_at) VALUES (%(scope)s, %(key)s, %(hash)s, %(pending)s, 'null', %(created_at)s) "
    "ON CONFLICT DO NOTHING RETURNING id"
)


def purge_expired() -> int:
    """Delete keys older than the retention window (kept at least 24 hours; 48 by default)."""
    result = db.session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - RETENTION)
    )
    db.session.commit()
    return int(result.rowcount or 0)


def respond_once(
    *,
    scope: str,
    fingerprint_body: Any,
    work: Callable[[], tuple[int, Any]],
    before: Callable[[], None] | None = None,
):  # type: ignore[no-untyped-def]
    """The HTTP side of run_once: read the key, run at most once, answer (or replay) as JSON.

    `before` runs and commits first unless this key already has a stored answer (the pay
    code is spent that way, so a replay returns the receipt instead of `already_used`).
    """
    from flask import jsonify, make_response

    key = key_from_request()
    if before is not None:
        already_answered = _stored(scope, key) is not None
        db.session.rollback()
        if not already_answered:
            before()
    result, replayed = run_once(
        scope=scope,
        key=key,
        fingerprint=request_fingerprint(route=request.path, body=fingerprint_body),
        work=work,
    )
    response = make_response(jsonify(result.body), result.status)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response
