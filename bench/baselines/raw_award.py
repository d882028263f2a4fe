"""The bare award baseline: a WSGI callable (no Flask) doing an award's SQL with psycopg.

`BENCH_DSN=postgresql://... gunicorn bench.baselines.raw_award:app`

POST /award {"resident_id": n, ...} in ONE database transaction: credit the resident's
account (conditional update returning the balance), debit the community's issuance account,
insert the transaction row and its two entries. BENCH_ISSUANCE_MODE picks the debit:
  shard  - one of the account's 16 shard rows at random (what the service does)
  hotrow - the issuance account's own row (every award of a community locks one row)
  none   - no issuance update at all (DESIGN.md §7 "without a hot row")
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from datetime import UTC, datetime

import psycopg

POINTS = 5
SHARDS = 16
MODE = os.environ.get("BENCH_ISSUANCE_MODE", "shard")
_conn: psycopg.Connection | None = None
_issuance: dict[int, int] = {}


def _connection() -> psycopg.Connection:
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg.connect(os.environ["BENCH_DSN"])
        _issuance.update(_conn.execute(
            "SELECT community_id, id FROM ledger_accounts WHERE kind = 'issuance'").fetchall())
        _conn.commit()
    return _conn


def _award(resident_id: int, actor: int) -> dict:
    conn = _connection()
    with conn.transaction():
        row = conn.execute(
            "UPDATE ledger_accounts SET balance = balance + %s, "
            "total_credited = total_credited + %s "
            "WHERE kind = 'resident' AND owner_id = %s "
            "RETURNING id, balance, community_id, district_id",
            (POINTS, POINTS, resident_id),
        ).fetchone()
        if row is None:
            raise LookupError(resident_id)
        account_id, balance, community_id, district_id = row
        issuance = _issuance[community_id]
        if MODE == "shard":
            conn.execute(
                "UPDATE ledger_account_shards SET balance = balance - %s "
                "WHERE account_id = %s AND shard = %s",
                (POINTS, issuance, random.randrange(SHARDS)),
            )
        elif MODE == "hotrow":
            conn.execute("UPDATE ledger_accounts SET balance = balance - %s WHERE id = %s",
                         (POINTS, issuance))
        now = datetime.now(UTC)
        digest = hashlib.sha256(
            json.dumps([resident_id, account_id, issuance, POINTS, now.isoformat()]).encode()
        ).hexdigest()
        tx_id = conn.execute(
            "INSERT INTO ledger_transactions (kind, community_id, district_id, rule_code, "
            "rule_version, category, quantity, subject_resident_id, actor_user_id, shortfall, "
            "amount, created_at, content_hash) VALUES ('award', %s, %s, 'garbage-sorting', 1, "
            "'environment', 1, %s, %s, 0, %s, %s, %s) RETURNING id",
            (community_id, district_id, resident_id, actor, POINTS, now, digest),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO ledger_entries (transaction_id, account_id, amount, balance_after, "
            "community_id, district_id) VALUES (%s, %s, %s, NULL, %s, %s), "
            "(%s, %s, %s, %s, %s, %s)",
            (tx_id, issuance, -POINTS, community_id, district_id,
             tx_id, account_id, POINTS, balance, community_id, district_id),
        )
    return {"id": tx_id, "resident_id": resident_id, "points": POINTS, "balance": balance}


def app(environ, start_response):  # type: ignore[no-untyped-def]
    path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
    if path == "/healthz":
        body, status = b'{"status":"ok"}', "200 OK"
    elif path == "/award" and method == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = json.loads(environ["wsgi.input"].read(length))
        try:
            result = _award(int(payload["resident_id"]), int(payload.get("actor", 0)) or 1)
            body, status = json.dumps(result).encode(), "201 Created"
        except LookupError:
            body, status = b'{"error":"no account"}', "404 Not Found"
    else:
        body, status = b'{"error":"not found"}', "404 Not Found"
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]
