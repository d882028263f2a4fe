"""The bare award, second form: a WSGI callable sending the SAME statements as the service.

`BENCH_DSN=postgresql://... BENCH_ACTOR=<staff user id> gunicorn
bench.baselines.raw_award_same_sql:app`

raw_award.py does only the ledger's core (credit, shard, transaction, entries). This one
replays what POST /api/v1/awards sends, statement for statement, with the service's own
statement texts (imported, so they cannot drift apart): the award's one read (resident,
community, threshold, rule, open accounts, household check), the idempotency claim, the
guarded balance update that also draws the transaction id, the one-statement write (shard,
transaction, entries, memo), the leaderboards' outbox row, the audit row and the stored
answer — in one database transaction. What remains between it and the service is the web
framework and the Python around the SQL (authentication, validation, rules, hashing, JSON).
Importing the texts loads pointsvc's modules once at start; a request runs none of its code.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
from datetime import UTC, datetime

import psycopg

from pointsvc.audit.actions.service import _INSERT as AUDIT_INSERT
from pointsvc.leaderboards.tallies import OUTBOX_INSERT
from pointsvc.ledger.awards import _AWARD_SQL as AWARD_READ
from pointsvc.ledger.idempotency import _ANSWER as IDEMPOTENCY_ANSWER
from pointsvc.ledger.idempotency import _CLAIM as IDEMPOTENCY_CLAIM
from pointsvc.ledger.service import _CREDIT_SQL, _NEXT_ID, _PG_WRITE

SHARDS = 16
CREDIT_WITH_ID = f"{_CREDIT_SQL}, {_NEXT_ID}"
_conn: psycopg.Connection | None = None


def _connection() -> psycopg.Connection:
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg.connect(os.environ["BENCH_DSN"])
    return _conn


def _award(payload: dict, key: str, actor: int) -> dict:
    conn = _connection()
    now = datetime.now(UTC)
    resident_id, code, quantity = payload["resident_id"], payload["rule_code"], payload["quantity"]
    with conn.transaction():
        found = conn.execute(AWARD_READ, {"id": resident_id, "code": code, "yes": True,
                                          "actor": actor}).fetchall()
        if not found or found[0][8] is None or found[0][15] is None:
            raise LookupError(resident_id)
        row = found[0]
        community_id, path = row[2], row[4]
        district_id = int(path.strip("/").split("/")[0])
        account_id, issuance_id = row[8], row[11]
        rule_id, rule_version, category, rule_points = row[15], row[18], row[21], row[22]
        request_hash = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        claimed = conn.execute(IDEMPOTENCY_CLAIM, {
            "scope": f"user:{actor}:awards", "key": key, "hash": request_hash, "pending": -1,
            "created_at": now}).fetchone()
        if claimed is None:
            raise LookupError(key)
        points = rule_points * quantity
        balance, tx_id = conn.execute(CREDIT_WITH_ID, {"n": points, "id": account_id}).fetchone()
        header = {
            "id": tx_id, "kind": "award", "community_id": community_id,
            "district_id": district_id, "rule_id": rule_id, "rule_code": code,
            "rule_version": rule_version, "category": category, "quantity": quantity,
            "reference_type": None, "reference_id": None, "subject_resident_id": resident_id,
            "actor_user_id": actor, "reverses_id": None, "shortfall": 0, "memo_hash": None,
            "created_at": now,
        }
        entries = [(issuance_id, -points, None), (account_id, points, balance)]
        digest = hashlib.sha256(json.dumps(
            [*header.values(), entries], default=str, separators=(",", ":")).encode()
        ).hexdigest()
        conn.execute(_PG_WRITE, {
            **header, "amount": points, "content_hash": digest,
            "s_accounts": [issuance_id], "s_shards": [random.randrange(SHARDS)],
            "s_amounts": [-points],
            "e_accounts": [a for a, _, _ in entries], "e_amounts": [n for _, n, _ in entries],
            "e_after": [b for _, _, b in entries],
            "salt": secrets.token_hex(16), "memo": None, "evidence": None, "has_memo": False,
        })
        conn.execute(OUTBOX_INSERT, {"ids": f"{{{tx_id}}}"})
        conn.execute(AUDIT_INSERT, {
            "actor": actor, "action": "award.posted", "target_type": "transaction",
            "target_id": str(tx_id), "community_id": community_id, "address": "127.0.0.1",
            "detail": json.dumps({"quantity": quantity, "resident_id": resident_id,
                                  "rule_code": code}, sort_keys=True),
            "before": None, "after": None, "created_at": now,
        })
        answer = {"id": tx_id, "resident_id": resident_id, "points": points,
                  "balance": balance, "content_hash": digest}
        conn.execute(IDEMPOTENCY_ANSWER, {"status": 201, "body": json.dumps(answer),
                                          "id": claimed[0]})
    return answer


def app(environ, start_response):  # type: ignore[no-untyped-def]
    path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
    if path == "/healthz":
        body, status = b'{"status":"ok"}', "200 OK"
    elif path == "/award" and method == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = json.loads(environ["wsgi.input"].read(length))
        try:
            result = _award(payload, environ.get("HTTP_IDEMPOTENCY_KEY", ""),
                            int(os.environ["BENCH_ACTOR"]))
            body, status = json.dumps(result).encode(), "201 Created"
        except LookupError:
            body, status = b'{"error":"not found"}', "404 Not Found"
    else:
        body, status = b'{"error":"not found"}', "404 Not Found"
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]
