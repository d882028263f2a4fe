"""The bare redemption baseline: a WSGI callable (no Flask, no ORM) doing a redemption's SQL.

`BENCH_DSN=postgresql://... BENCH_QR_MAC_KEY=<base64> gunicorn bench.baselines.raw_redemption:app`

POST /redeem {"pay_code", "offer_id", "quantity", "order_ref"} with headers X-Bench-User
(the operator's user id: no JWT here) and X-Bench-Merchant. In ONE database transaction it
sends the statements the service sends for a pay-code redemption (bench/redemption.py
prints the service's log next to this list, so the two can be compared):

   0  SELECT the user with resident / merchant operator; SELECT their role grants (the
      principal). The service caches principals per worker for 5 s, but with 64 operators
      spread over 4 workers at tens of requests per second most requests miss that cache
      (py-spy: _read_principal ~20 % of a worker), so the baseline sends both queries too;
      BENCH_RAW_AUTH=0 leaves them out.

   1  INSERT idempotency key ON CONFLICT DO NOTHING RETURNING id
   2  UPDATE paycodes SET used_at ... WHERE nonce, resident, step, unused, unexpired
   3  SAVEPOINT (a refusal after the code was read rolls back to here)
   4  SELECT merchant (FOR SHARE) + its account, resident + name + account (id, held)
      + community path/time zone + daily limit, offer + its node's path: ONE statement
   5  UPDATE offers SET stock = stock - q WHERE stock >= q
   6  INSERT redemption_counters ... ON CONFLICT DO UPDATE ... WHERE amount + n <= limit
   7  INSERT redemptions RETURNING id
   8  UPDATE resident account RETURNING balance, nextval(transaction id)   (post())
   9  UPDATE merchant account RETURNING balance                            (post())
  10  WITH t AS (INSERT ledger_transactions) INSERT ledger_entries          (post())
  11  UPDATE redemptions SET transaction_id
  12  RELEASE SAVEPOINT
  13  UPDATE idempotency key SET status, response
      COMMIT
It also checks the pay code's HMAC and hashes the transaction (SHA-256), as the service does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
from datetime import UTC, datetime

import psycopg

_conn: psycopg.Connection | None = None
AUTH = os.environ.get("BENCH_RAW_AUTH", "1") != "0"
DOMAIN = b"pointsvc-code-v1|PSP1|"


def _mac_key() -> bytes:
    raw = os.environ["BENCH_QR_MAC_KEY"]
    return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))


MAC_KEY = _mac_key() if os.environ.get("BENCH_QR_MAC_KEY") else b""


def _connection() -> psycopg.Connection:
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg.connect(os.environ["BENCH_DSN"])
    return _conn


class Refused(Exception):
    pass


def _paycode(text: str) -> tuple[int, str, int]:
    token = text.strip().upper()
    if not token.startswith("PSP1"):
        raise Refused("invalid")
    payload = token[4:]
    raw = base64.b32decode(payload + "=" * (-len(payload) % 8))
    body, tag = raw[:18], raw[18:]
    if not hmac.compare_digest(tag, hmac.new(MAC_KEY, DOMAIN + body,
                                             hashlib.sha256).digest()[:16]):
        raise Refused("invalid")
    resident_id, nonce, step = struct.unpack(">Q6sI", body)
    return resident_id, nonce.hex(), step


def _redeem(user_id: int, merchant_id: int, payload: dict, key: str) -> dict:
    conn = _connection()
    now = datetime.now(UTC)
    resident_id, nonce, step = _paycode(payload["pay_code"])
    quantity = int(payload.get("quantity") or 1)
    with conn.transaction():
        if AUTH:
            conn.execute(
                "SELECT users.id, users.username, users.phone, users.display_name, "
                "users.password_hash, users.is_active, users.failed_logins, "
                "users.locked_until, users.password_changed_at, users.created_at, "
                "residents.id, residents.community_id, org_nodes.path, residents.household_id, "
                "merchant_operators.merchant_id FROM users LEFT OUTER JOIN residents ON "
                "residents.user_id = users.id LEFT OUTER JOIN org_nodes ON org_nodes.id = "
                "residents.community_id LEFT OUTER JOIN merchant_operators ON "
                "merchant_operators.user_id = users.id WHERE users.id = %s",
                (user_id,)).fetchone()
            conn.execute(
                "SELECT role_grants.role, role_grants.org_node_id, org_nodes.path FROM "
                "role_grants JOIN org_nodes ON org_nodes.id = role_grants.org_node_id "
                "WHERE role_grants.user_id = %s", (user_id,)).fetchall()
        request_hash = hashlib.sha256(json.dumps(
            ["/redeem", payload], sort_keys=True).encode()).hexdigest()
        key_id = conn.execute(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response_body, "
            "created_at) VALUES (%s, %s, %s, -1, 'null', %s) ON CONFLICT DO NOTHING RETURNING id",
            (f"user:{user_id}", key, request_hash, now)).fetchone()[0]
        used = conn.execute(
            "UPDATE paycodes SET used_at = %s, used_by_user_id = %s WHERE nonce = %s AND "
            "resident_id = %s AND step = %s AND used_at IS NULL AND expires_at > %s",
            (now, user_id, nonce, resident_id, step, now)).rowcount
        if used != 1:
            raise Refused("already_used")
        conn.execute("SAVEPOINT sp")
        facts = conn.execute(
            "SELECT m.id, m.name, m.status, m.org_node_id, ma.id, ma.district_id, r.id, "
            "r.community_id, u.display_name, o.path, o.timezone, p.daily_limit, ra.id, "
            "ra.held, f.id, f.merchant_id, f.title, f.points_price, f.stock, "
            "f.per_resident_limit, f.limit_period, f.starts_at, f.ends_at, f.status, fo.path "
            "FROM merchants m LEFT JOIN ledger_accounts ma ON ma.kind = 'merchant' AND "
            "ma.owner_id = m.id LEFT JOIN residents r ON r.id = %s "
            "LEFT JOIN users u ON u.id = r.user_id LEFT JOIN org_nodes o ON o.id = "
            "r.community_id LEFT JOIN redemption_policies p ON p.community_id = r.community_id "
            "LEFT JOIN ledger_accounts ra ON ra.kind = 'resident' AND ra.owner_id = r.id AND "
            "ra.community_id = r.community_id LEFT JOIN offers f ON f.id = %s "
            "LEFT JOIN org_nodes fo ON fo.id = f.org_node_id WHERE m.id = %s FOR SHARE OF m",
            (resident_id, int(payload["offer_id"]), merchant_id)).fetchone()
        merchant_name, merchant_acct = facts[1], facts[4]
        community_id, name, path, limit, resident_acct, held = (
            facts[7], facts[8], facts[9], facts[11], facts[12], facts[13])
        district_id = int(path.strip("/").split("/")[0])
        offer = facts[14:]
        offer_id, _m, title, price = offer[:4]
        points = price * quantity
        conn.execute("UPDATE offers SET stock = stock - %s WHERE id = %s AND stock >= %s",
                     (quantity, offer_id, quantity))
        day = "d:" + now.astimezone().strftime("%Y-%m-%d")
        room = conn.execute(
            "INSERT INTO redemption_counters (resident_id, counter, period, amount) "
            "VALUES (%s, 'spend', %s, %s) ON CONFLICT (resident_id, counter, period) DO UPDATE "
            "SET amount = redemption_counters.amount + excluded.amount "
            "WHERE redemption_counters.amount + excluded.amount <= %s "
            "RETURNING redemption_counters.amount",
            (resident_id, day, points, limit or 500)).fetchone()
        if room is None:
            raise Refused("daily_limit_reached")
        redemption_id = conn.execute(
            "INSERT INTO redemptions (channel, merchant_id, resident_id, community_id, "
            "district_id, offer_id, quantity, unit_points, points, captured_points, "
            "refunded_points, restocked, status, order_ref, resident_account_id, "
            "merchant_account_id, spend_period, offer_period, transaction_id, hold_expires_at, "
            "created_by, created_at, captured_at, resolved_at) VALUES ('paycode', %s, %s, %s, "
            "%s, %s, %s, %s, %s, %s, 0, 0, 'captured', %s, %s, %s, %s, NULL, NULL, NULL, %s, "
            "%s, %s, %s) RETURNING id",
            (merchant_id, resident_id, community_id, district_id, offer_id, quantity, price,
             points, points, payload.get("order_ref"), resident_acct, merchant_acct, day,
             user_id, now, now, now)).fetchone()[0]
        row = conn.execute(
            "UPDATE ledger_accounts SET balance = balance - %s, total_debited = total_debited "
            "+ %s WHERE id = %s AND balance - %s >= held RETURNING balance, "
            "nextval(pg_get_serial_sequence('ledger_transactions', 'id'))",
            (points, points, resident_acct, points)).fetchone()
        if row is None:
            raise Refused("insufficient_points")
        balance, tx_id = row
        merchant_balance = conn.execute(
            "UPDATE ledger_accounts SET balance = balance + %s, total_credited = "
            "total_credited + %s WHERE id = %s RETURNING balance",
            (points, points, merchant_acct)).fetchone()[0]
        digest = hashlib.sha256(json.dumps(
            [tx_id, "redemption", community_id, district_id, redemption_id, resident_id,
             [[resident_acct, -points, balance], [merchant_acct, points, merchant_balance]],
             now.isoformat()]).encode()).hexdigest()
        conn.execute(
            "WITH t AS (INSERT INTO ledger_transactions (id, kind, community_id, district_id, "
            "quantity, reference_type, reference_id, subject_resident_id, actor_user_id, "
            "shortfall, amount, created_at, content_hash) VALUES (%s, 'redemption', %s, %s, %s, "
            "'redemption', %s, %s, %s, 0, %s, %s, %s) RETURNING id) "
            "INSERT INTO ledger_entries (transaction_id, account_id, amount, balance_after, "
            "community_id, district_id) SELECT t.id, v.a, v.n, v.b, %s, %s FROM t, "
            "unnest(CAST(%s AS bigint[]), CAST(%s AS bigint[]), CAST(%s AS bigint[])) "
            "WITH ORDINALITY AS v(a, n, b, k) ORDER BY v.k",
            (tx_id, community_id, district_id, quantity, str(redemption_id), resident_id,
             user_id, points, now, digest, community_id, district_id,
             [resident_acct, merchant_acct],
             [-points, points], [balance, merchant_balance]))
        conn.execute("UPDATE redemptions SET transaction_id = %s WHERE id = %s",
                     (tx_id, redemption_id))
        conn.execute("RELEASE SAVEPOINT sp")
        receipt = {
            "id": redemption_id, "status": "captured", "channel": "paycode",
            "merchant": {"id": merchant_id, "name": merchant_name},
            "resident": {"id": resident_id, "name": (name or "")[:1] + "*"},
            "offer": {"id": offer_id, "title": title}, "quantity": quantity,
            "points": points, "transaction_id": tx_id, "balance": balance,
            "spendable": balance - held, "created_at": now.isoformat(),
        }
        conn.execute("UPDATE idempotency_keys SET status_code = 201, response_body = %s "
                     "WHERE id = %s", (json.dumps(receipt, ensure_ascii=False), key_id))
    return receipt


def app(environ, start_response):  # type: ignore[no-untyped-def]
    path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
    if path == "/healthz":
        body, status = b'{"status":"ok"}', "200 OK"
    elif path == "/redeem" and method == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = json.loads(environ["wsgi.input"].read(length))
        try:
            result = _redeem(int(environ["HTTP_X_BENCH_USER"]),
                             int(environ["HTTP_X_BENCH_MERCHANT"]), payload,
                             environ.get("HTTP_IDEMPOTENCY_KEY", ""))
            body, status = json.dumps(result, ensure_ascii=False).encode(), "201 Created"
        except Refused as refused:
            body, status = json.dumps({"code": str(refused)}).encode(), "409 Conflict"
    else:
        body, status = b'{"error":"not found"}', "404 Not Found"
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]
