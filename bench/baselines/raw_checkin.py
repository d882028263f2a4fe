"""The bare check-in baseline: a WSGI callable (no Flask, no ORM, no JWT) doing a check-in.

`BENCH_DSN=postgresql://... BENCH_QR_MAC_KEY=<base64> gunicorn bench.baselines.raw_checkin:app`

POST /checkin {"code", "nonce", "resident_id"}: check the code's envelope and HMAC, then in
ONE database transaction the statements the service's lean path sends: one SELECT of the
event and the resident's state, INSERT the scan (ON CONFLICT DO NOTHING RETURNING), upsert
the resident's state (conditional), COMMIT.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
import time
from datetime import UTC, datetime

import psycopg

_conn: psycopg.Connection | None = None
_key: bytes | None = None
PREFIX = "PSK1"


def _mac_key() -> bytes:
    global _key
    if _key is None:
        text = os.environ["BENCH_QR_MAC_KEY"]
        _key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return _key


def _connection() -> psycopg.Connection:
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg.connect(os.environ["BENCH_DSN"])
    return _conn


def _read_code(text: str) -> tuple[int, int, int]:
    token = text.rsplit("/", 1)[-1].upper()
    if not token.startswith(PREFIX):
        raise ValueError("prefix")
    payload = token[4:]
    raw = base64.b32decode(payload + "=" * (-len(payload) % 8))
    body, tag = raw[:13], raw[13:]
    expected = hmac.new(_mac_key(), b"pointsvc-code-v1|" + PREFIX.encode() + b"|" + body,
                        hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(tag, expected):
        raise ValueError("mac")
    event_id, direction, step = struct.unpack(">QBI", body)
    if abs(step - int(time.time()) // 30) > 1:
        raise ValueError("step")
    return event_id, direction, step


def _checkin(payload: dict) -> tuple[str, dict]:
    event_id, direction, step = _read_code(payload["code"])
    resident_id, nonce, now = int(payload["resident_id"]), payload["nonce"], datetime.now(UTC)
    conn = _connection()
    with conn.transaction():
        facts = conn.execute(
            "SELECT e.status, e.starts_at, e.ends_at, a.inside FROM events e "
            "LEFT JOIN event_attendees a ON a.event_id = e.id AND a.resident_id = %s "
            "WHERE e.id = %s", (resident_id, event_id)).fetchone()
        if facts is None or facts[0] != "published":
            return "409 Conflict", {"code": "event_closed"}
        scan = conn.execute(
            "INSERT INTO event_scans (event_id, resident_id, direction, source, step, at, "
            "scanned_at, received_at, nonce_scope, nonce, actor_user_id, offline) VALUES "
            "(%s, %s, %s, 'code', %s, %s, %s, %s, %s, %s, %s, false) "
            "ON CONFLICT DO NOTHING RETURNING id",
            (event_id, resident_id, "in" if direction == 0 else "out", step, now, now, now,
             f"r:{resident_id}", nonce, resident_id)).fetchone()
        moved = conn.execute(
            "INSERT INTO event_attendees (event_id, resident_id, inside, first_in_at, last_at) "
            "VALUES (%s, %s, true, %s, %s) ON CONFLICT (event_id, resident_id) DO UPDATE "
            "SET inside = true, last_at = excluded.last_at WHERE NOT event_attendees.inside "
            "RETURNING inside", (event_id, resident_id, now, now)).fetchone()
    duplicate = scan is None or moved is None
    return ("200 OK" if duplicate else "201 Created"), {
        "event_id": event_id, "resident_id": resident_id, "duplicate": duplicate,
        "scan_id": scan[0] if scan else None}


def app(environ, start_response):  # type: ignore[no-untyped-def]
    path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
    if path == "/healthz":
        body, status = b'{"status":"ok"}', "200 OK"
    elif path == "/checkin" and method == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            status, result = _checkin(json.loads(environ["wsgi.input"].read(length)))
        except (ValueError, KeyError):
            status, result = "422 Unprocessable Entity", {"code": "invalid"}
        body = json.dumps(result).encode()
    else:
        body, status = b'{"error":"not found"}', "404 Not Found"
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]
