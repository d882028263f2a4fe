"""Reads on a big ledger: 10,000,000 entries (5M awards x 2) over 100,000 resident accounts.

Seeding writes straight into ledger_accounts / ledger_account_shards / ledger_transactions /
ledger_entries with COPY (the secondary indexes are dropped first and rebuilt from their own
definitions afterwards, and `session_replication_role = replica` skips the foreign-key
triggers during the load; the rows are built consistent: every transaction sums to zero and
every balance_after is the running balance). content_hash is a PLACEHOLDER (sha256 of the
id), not the canonical hash: this benchmark measures reads only.

Then: GET /api/v1/accounts/{id} and GET /api/v1/accounts/{id}/entries?limit=50 on random
resident accounts, server-side p99 (handler time, in-process with time.perf_counter, and the
pointsvc_http_request_duration_seconds histogram of the gunicorn run) and wrk's p99.
Target: p99 <= 10 ms. BENCH_BIG_TRANSACTIONS=500000 seeds a tenth for a quick run.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import time
from datetime import UTC, datetime, timedelta

from . import common as c

NAME = "big_ledger"
TRANSACTIONS = int(os.environ.get("BENCH_BIG_TRANSACTIONS", "5000000"))
RESIDENTS = int(os.environ.get("BENCH_BIG_RESIDENTS", "100000"))
COMMUNITIES = 100
CHUNK = 250_000
FIRST_RESIDENT_ACCOUNT = COMMUNITIES + 1


def seed(url: str, world: c.World) -> dict:
    import psycopg

    timings: dict[str, float] = {}
    started = time.perf_counter()
    district = world.district
    communities = world.communities
    rng = random.Random(42)
    now = datetime.now(UTC)
    with psycopg.connect(c.psycopg_url(url)) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '512MB'")
        indexes, constraints = c.drop_ledger_secondary(conn)
        # Accounts: issuance 1..100 (one per community), residents 101..100,100.
        stamp = now.isoformat()
        with conn.cursor().copy(
            "COPY ledger_accounts (id, kind, owner_id, community_id, district_id, bounded, "
            "balance, held, total_credited, total_debited, created_at) FROM STDIN"
        ) as copy:
            copy.write("".join(f"{n + 1}\tissuance\t0\t{cid}\t{district}\tf\t0\t0\t0\t0\t{stamp}\n"
                               for n, cid in enumerate(communities)))
        balances = [0] * RESIDENTS
        issued = [0] * COMMUNITIES
        base = now - timedelta(days=365)
        step = 365 * 86400 / TRANSACTIONS
        entry_id = 0
        for first in range(0, TRANSACTIONS, CHUNK):
            tx_lines, entry_lines = [], []
            for tx in range(first + 1, min(first + CHUNK, TRANSACTIONS) + 1):
                resident = rng.randrange(RESIDENTS)
                community = resident % COMMUNITIES
                cid = communities[community]
                points = 5
                balances[resident] += points
                issued[community] += points
                created = (base + timedelta(seconds=tx * step)).isoformat()
                digest = hashlib.sha256(b"placeholder:%d" % tx).hexdigest()
                tx_lines.append(
                    f"{tx}\taward\t{cid}\t{district}\tgarbage-sorting\t1\tenvironment\t1\t"
                    f"{resident + 1}\t{world.organizer}\t0\t{points}\t{created}\t{digest}\n")
                entry_lines.append(
                    f"{entry_id + 1}\t{tx}\t{community + 1}\t-{points}\t\\N\t{cid}\t{district}\n"
                    f"{entry_id + 2}\t{tx}\t{FIRST_RESIDENT_ACCOUNT + resident}\t{points}\t"
                    f"{balances[resident]}\t{cid}\t{district}\n")
                entry_id += 2
            with conn.cursor().copy(
                "COPY ledger_transactions (id, kind, community_id, district_id, rule_code, "
                "rule_version, category, quantity, subject_resident_id, actor_user_id, "
                "shortfall, amount, created_at, content_hash) FROM STDIN") as copy:
                copy.write("".join(tx_lines))
            with conn.cursor().copy(
                "COPY ledger_entries (id, transaction_id, account_id, amount, balance_after, "
                "community_id, district_id) FROM STDIN") as copy:
                copy.write("".join(entry_lines))
            conn.commit()
            c.log(f"  {min(first + CHUNK, TRANSACTIONS):,} transactions copied "
                  f"({time.perf_counter() - started:.0f} s)")
        timings["copy_s"] = time.perf_counter() - started
        with conn.cursor().copy(
            "COPY ledger_accounts (id, kind, owner_id, community_id, district_id, bounded, "
            "balance, held, total_credited, total_debited, created_at) FROM STDIN"
        ) as copy:
            copy.write("".join(
                f"{FIRST_RESIDENT_ACCOUNT + r}\tresident\t{r + 1}\t"
                f"{communities[r % COMMUNITIES]}\t{district}\tt\t{balances[r]}\t0\t"
                f"{balances[r]}\t0\t{stamp}\n" for r in range(RESIDENTS)))
        with conn.cursor().copy(
            "COPY ledger_account_shards (account_id, shard, balance) FROM STDIN") as copy:
            copy.write("".join(f"{n + 1}\t{s}\t{-issued[n] if s == 0 else 0}\n"
                               for n in range(COMMUNITIES) for s in range(16)))
        conn.commit()
        index_started = time.perf_counter()
        c.rebuild_ledger_secondary(conn, indexes, constraints)
        timings["index_s"] = time.perf_counter() - index_started
    return c.finish_seed(url, timings, started)


def histogram_p(metrics: str, endpoint: str, quantile: float = 0.99) -> dict:
    """Share of requests within 10 ms, and the bucket bound holding the quantile."""
    buckets = []
    pattern = re.compile(
        r'pointsvc_http_request_duration_seconds_bucket\{endpoint="' + re.escape(endpoint)
        + r'",le="([^"]+)",method="GET"\} ([\d.e+]+)')
    for le, count in pattern.findall(metrics):
        buckets.append((float("inf") if le == "+Inf" else float(le), float(count)))
    if not buckets:
        pattern = re.compile(r'pointsvc_http_request_duration_seconds_bucket\{[^}]*endpoint="'
                             + re.escape(endpoint) + r'"[^}]*le="([^"]+)"[^}]*\} ([\d.e+]+)')
        buckets = [(float("inf") if le == "+Inf" else float(le), float(n))
                   for le, n in pattern.findall(metrics)]
    buckets.sort()
    total = buckets[-1][1] if buckets else 0
    within_10 = next((n for le, n in buckets if le >= 0.01), 0)
    bound = next((le for le, n in buckets if total and n / total >= quantile), None)
    return {"requests": int(total), "share_within_10ms": round(within_10 / total, 4) if total
            else None, "p99_bucket_upper_bound_ms": bound * 1000 if bound else None}


def main() -> dict:
    with c.bench_database(NAME) as url:
        app = c.make_app(url)
        world = c.seed_world(app, communities=COMMUNITIES)
        c.log(f"seeding {TRANSACTIONS:,} transactions / {2 * TRANSACTIONS:,} entries over "
              f"{RESIDENTS:,} residents")
        seeded = seed(url, world)
        c.log(f"seeded: {seeded}")
        lo, hi = FIRST_RESIDENT_ACCOUNT, FIRST_RESIDENT_ACCOUNT + RESIDENTS - 1
        token = c.token(app, world.auditor)
        auth = {"Authorization": f"Bearer {token}"}
        rng = random.Random(7)
        paths = {
            "balance": "/api/v1/accounts/{id}",
            "statement": "/api/v1/accounts/{id}/entries?limit=50",
        }
        inproc = {}
        for name, template in paths.items():
            inproc[name] = _timed_loop(app, template, auth, rng, lo, hi, count=1000)
            c.log(f"in-process {name}: {inproc[name]}")
        # An issuance account has 50,000 entries: its statement page is the heavy case.
        inproc["issuance_statement"] = _timed_loop(app, paths["statement"], auth, rng, 1,
                                                   COMMUNITIES, count=200)
        c.log(f"in-process issuance statement: {inproc['issuance_statement']}")
        sql_only = _sql_only(url, rng, lo, hi)
        c.log(f"SQL alone (psycopg, the statement page's two queries): {sql_only}")
        runs = []
        server_side = {}
        with c.gunicorn("pointsvc", "wsgi:app", env=c.app_env(url)) as server:
            for name, template in paths.items():
                runs.append(c.wrk(f"GET {template}", server.url + "/",
                                  script="random_id.lua",
                                  script_args=[template, str(lo), str(hi),
                                               c.token(app, world.auditor)], server=server))
                with c.urllib.request.urlopen(server.url + "/metrics") as response:
                    metrics = response.read().decode()
                rule = "/api/v1/accounts/<int:account_id>" + (
                    "/entries" if name == "statement" else "")
                server_side[name] = histogram_p(metrics, rule)
                c.log(f"server histogram {name} (cumulative): {server_side[name]}")
        summary = {
            "seed": seeded,
            "balance_inproc_p50_ms": inproc["balance"]["p50_ms"],
            "balance_inproc_p99_ms": inproc["balance"]["p99_ms"],
            "statement_inproc_p50_ms": inproc["statement"]["p50_ms"],
            "statement_inproc_p99_ms": inproc["statement"]["p99_ms"],
            "issuance_statement_inproc_p99_ms": inproc["issuance_statement"]["p99_ms"],
            "balance_wrk_rps": round(runs[0].rps), "balance_wrk_p99_ms": runs[0].p99_ms,
            "statement_wrk_rps": round(runs[1].rps), "statement_wrk_p99_ms": runs[1].p99_ms,
            "statement_sql_only": sql_only,
            "server_histogram": server_side,
            "in_process": inproc,
            "target": "p99 <= 10 ms (server-side)",
            "met": max(inproc["balance"]["p99_ms"], inproc["statement"]["p99_ms"]) <= 10,
        }
        c.report(NAME, summary, runs)
        print("  in-process cProfile of 200 statement pages:")
        for line in c.cprofile_top(
                lambda: _timed_loop(app, paths["statement"], auth, rng, lo, hi, count=200),
                limit=15, contains="pointsvc"):
            print("   ", line)
        return summary


def _sql_only(url: str, rng: random.Random, lo: int, hi: int, count: int = 1000) -> dict:
    """The statement page's own SQL (page + counterparties) with psycopg: the database's share."""
    import psycopg

    timings = []
    with psycopg.connect(c.psycopg_url(url), autocommit=True) as conn:
        for _ in range(count):
            account = rng.randint(lo, hi)
            started = time.perf_counter()
            rows = conn.execute(
                "SELECT e.id, e.transaction_id, e.amount, e.balance_after, t.kind, t.created_at, "
                "t.category, t.rule_code, t.rule_version, r.title_zh, m.memo "
                "FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id "
                "LEFT JOIN ledger_rules r ON r.id = t.rule_id "
                "LEFT JOIN ledger_memos m ON m.transaction_id = t.id "
                "WHERE e.account_id = %s ORDER BY e.id DESC LIMIT 51", (account,)).fetchall()
            conn.execute(
                "SELECT e.transaction_id, a.id, a.kind, a.owner_id FROM ledger_entries e "
                "JOIN ledger_accounts a ON a.id = e.account_id "
                "WHERE e.transaction_id = ANY(%s) AND e.account_id <> %s",
                ([row[1] for row in rows], account)).fetchall()
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {"p50_ms": round(timings[len(timings) // 2], 2),
            "p99_ms": round(timings[int(len(timings) * 0.99) - 1], 2)}


def _timed_loop(app, template: str, auth: dict, rng: random.Random, lo: int, hi: int,  # type: ignore[no-untyped-def]
                *, count: int) -> dict:
    from sqlalchemy import event

    from pointsvc.extensions import db

    client = app.test_client()
    with app.app_context():
        engine = db.engine
    statements = {"n": 0}

    def _count(*_args) -> None:  # type: ignore[no-untyped-def]
        statements["n"] += 1

    event.listen(engine, "before_cursor_execute", _count)
    plain_rows = c.count_driver_statements(statements)
    timings = []
    try:
        for _ in range(count):
            path = template.replace("{id}", str(rng.randint(lo, hi)))
            started = time.perf_counter()
            response = client.get(path, headers=auth)
            timings.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"GET {path}: {response.status_code} {response.data[:300]!r}")
    finally:
        event.remove(engine, "before_cursor_execute", _count)
        c.restore_driver_statements(plain_rows)
    timings.sort()
    return {"p50_ms": round(timings[len(timings) // 2], 2),
            "p99_ms": round(timings[int(len(timings) * 0.99) - 1], 2),
            "max_ms": round(timings[-1], 2),
            "sql_statements_per_request": round(statements["n"] / count, 1)}


if __name__ == "__main__":
    main()
