"""Audit search and export on a big ledger: 10,000,000 entries (5M transactions x 2).

Seeding follows bench/big_ledger.py (COPY straight into the ledger tables with the secondary
indexes dropped and rebuilt from their own definitions; content_hash is a PLACEHOLDER: only
reads are measured), with a realistic mix so the filters have something to choose from:
awards under two common rules and one rare one, deductions, redemptions at one merchant per
community, 200 acting staff members, a year of timestamps.

Measured in-process (the app's test client, time.perf_counter around each request):
- GET /api/v1/audit/transactions with several filter combinations, 200 requests each,
  p50/p99 per combination. Target: p99 <= 50 ms.
- GET /api/v1/audit/transactions/export?format=csv over ~1,000,000 transactions, consumed
  chunk by chunk: rows/s and the growth of the process's RSS. Target >= 50,000 rows/s,
  RSS growth < 50 MB. Baselines in the same run: the same rows read by psycopg's COPY TO
  (the fastest the database hands them out) and by a plain named cursor.

BENCH_AUDIT_TRANSACTIONS=500000 seeds a tenth for a quick run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from . import common as c

NAME = "audit"
TRANSACTIONS = int(os.environ.get("BENCH_AUDIT_TRANSACTIONS", "5000000"))
RESIDENTS = int(os.environ.get("BENCH_AUDIT_RESIDENTS", "100000"))
EXPORT_ROWS = int(os.environ.get("BENCH_AUDIT_EXPORT_ROWS", str(TRANSACTIONS // 5)))
COMMUNITIES = 100
STAFF = 200
FIRST_STAFF_ID = 10_000
CHUNK = 250_000
FIRST_RESIDENT_ACCOUNT = COMMUNITIES + 1
FIRST_MERCHANT_ACCOUNT = FIRST_RESIDENT_ACCOUNT + RESIDENTS
REQUESTS = int(os.environ.get("BENCH_AUDIT_REQUESTS", "200"))
DAYS = 365
# BENCH_AUDIT_KEEP=1 keeps the seeded database; a later BENCH_AUDIT_REUSE=1 run measures it
# again without seeding (for looking at plans: the seed takes most of the run).
KEEP = os.environ.get("BENCH_AUDIT_KEEP") == "1"
REUSE = os.environ.get("BENCH_AUDIT_REUSE") == "1"
WORLD_FILE = Path(tempfile.gettempdir()) / "pointsvc-bench-audit-world.json"


def seed(url: str, world: c.World) -> dict:
    """COPY a year of mixed postings; every transaction sums to zero, balances run true."""
    import psycopg

    timings: dict[str, float] = {}
    started = time.perf_counter()
    district, communities = world.district, world.communities
    rng = random.Random(42)
    now = datetime.now(UTC)
    base = now - timedelta(days=DAYS)
    step = DAYS * 86400 / TRANSACTIONS
    with psycopg.connect(c.psycopg_url(url)) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '512MB'")
        indexes, constraints = c.drop_ledger_secondary(conn)
        stamp = now.isoformat()
        balances = [0] * RESIDENTS
        merchant_balances = [0] * COMMUNITIES
        issued = [0] * COMMUNITIES
        entry_id = 0
        for first in range(0, TRANSACTIONS, CHUNK):
            tx_lines, entry_lines = [], []
            for tx in range(first + 1, min(first + CHUNK, TRANSACTIONS) + 1):
                resident = rng.randrange(RESIDENTS)
                community = resident % COMMUNITIES
                cid = communities[community]
                actor = FIRST_STAFF_ID + rng.randrange(STAFF)
                created = (base + timedelta(seconds=tx * step)).isoformat()
                digest = hashlib.sha256(b"placeholder:%d" % tx).hexdigest()
                resident_account = FIRST_RESIDENT_ACCOUNT + resident
                roll = rng.random()
                reference = "\\N\t\\N"
                if roll < 0.05 and balances[resident] >= 5:
                    kind, rule, version, category, points = ("deduction", "litter", "1",
                                                              "conduct", 5)
                    balances[resident] -= points
                    issued[community] -= points
                    legs = ((resident_account, -points, balances[resident]),
                            (community + 1, points, None))
                elif roll < 0.10 and balances[resident] >= 8:
                    kind, rule, version, category, points = ("redemption", None, None, None, 8)
                    balances[resident] -= points
                    merchant_balances[community] += points
                    legs = ((resident_account, -points, balances[resident]),
                            (FIRST_MERCHANT_ACCOUNT + community, points,
                             merchant_balances[community]))
                    reference = f"redemption\tR{tx}"
                    actor = FIRST_STAFF_ID + STAFF + community  # the merchant's operator
                else:
                    if roll > 0.999:
                        rule, points = "mediation", 50
                    elif roll > 0.6:
                        rule, points = "volunteer-hour", 10
                    else:
                        rule, points = "garbage-sorting", 5
                    kind, version, category = "award", "1", "environment"
                    balances[resident] += points
                    issued[community] += points
                    legs = ((community + 1, -points, None),
                            (resident_account, points, balances[resident]))
                tx_lines.append(
                    f"{tx}\t{kind}\t{cid}\t{district}\t{rule or chr(92) + 'N'}\t"
                    f"{version or chr(92) + 'N'}\t{category or chr(92) + 'N'}\t1\t{reference}\t"
                    f"{resident + 1}\t{actor}\t0\t{points}\t{created}\t{digest}\n")
                for account, amount, after in legs:
                    entry_id += 1
                    entry_lines.append(f"{entry_id}\t{tx}\t{account}\t{amount}\t"
                                       f"{chr(92) + 'N' if after is None else after}\t"
                                       f"{cid}\t{district}\n")
            with conn.cursor().copy(
                "COPY ledger_transactions (id, kind, community_id, district_id, rule_code, "
                "rule_version, category, quantity, reference_type, reference_id, "
                "subject_resident_id, actor_user_id, shortfall, amount, created_at, content_hash) "
                "FROM STDIN") as copy:
                copy.write("".join(tx_lines))
            with conn.cursor().copy(
                "COPY ledger_entries (id, transaction_id, account_id, amount, balance_after, "
                "community_id, district_id) FROM STDIN") as copy:
                copy.write("".join(entry_lines))
            conn.commit()
            c.log(f"  {min(first + CHUNK, TRANSACTIONS):,} transactions copied "
                  f"({time.perf_counter() - started:.0f} s)")
        timings["copy_s"] = time.perf_counter() - started
        account_copy = ("COPY ledger_accounts (id, kind, owner_id, community_id, district_id, "
                        "bounded, balance, held, total_credited, total_debited, created_at) "
                        "FROM STDIN")
        with conn.cursor().copy(account_copy) as copy:
            copy.write("".join(
                f"{n + 1}\tissuance\t0\t{cid}\t{district}\tf\t0\t0\t0\t0\t{stamp}\n"
                for n, cid in enumerate(communities)))
            copy.write("".join(
                f"{FIRST_RESIDENT_ACCOUNT + r}\tresident\t{r + 1}\t"
                f"{communities[r % COMMUNITIES]}\t{district}\tt\t{balances[r]}\t0\t0\t0\t"
                f"{stamp}\n" for r in range(RESIDENTS)))
            copy.write("".join(
                f"{FIRST_MERCHANT_ACCOUNT + m}\tmerchant\t{m + 1}\t{communities[m]}\t"
                f"{district}\tt\t{merchant_balances[m]}\t0\t0\t0\t{stamp}\n"
                for m in range(COMMUNITIES)))
        with conn.cursor().copy(
                "COPY ledger_account_shards (account_id, shard, balance) FROM STDIN") as copy:
            copy.write("".join(f"{n + 1}\t{s}\t{-issued[n] if s == 0 else 0}\n"
                               for n in range(COMMUNITIES) for s in range(16)))
        conn.commit()
        index_started = time.perf_counter()
        c.rebuild_ledger_secondary(conn, indexes, constraints)
        timings["index_s"] = time.perf_counter() - index_started
    return c.finish_seed(url, timings, started)


def _community_auditor(app, community_id: int) -> int:  # type: ignore[no-untyped-def]
    from pointsvc.extensions import db
    from pointsvc.people.models import UNUSABLE_PASSWORD, RoleGrant, User

    with app.app_context():
        existing = db.session.scalar(db.select(User.id).where(
            User.username == "bench-community-auditor"))
        if existing is not None:  # a reused database
            return existing
        user = User(username="bench-community-auditor", display_name="bench auditor",
                    password_hash=UNUSABLE_PASSWORD)
        db.session.add(user)
        db.session.flush()
        db.session.add(RoleGrant(user_id=user.id, role="auditor", org_node_id=community_id))
        db.session.commit()
        return user.id


def _searches(world: c.World, now: datetime) -> dict:
    """name -> (who, function of rng giving the query string)."""
    def day(rng: random.Random) -> tuple[str, str]:
        start = now - timedelta(days=rng.randrange(1, DAYS - 1), hours=rng.randrange(24))
        return start.isoformat(), (start + timedelta(days=1)).isoformat()

    def community(rng: random.Random) -> int:
        return rng.choice(world.communities)

    def resident(rng: random.Random) -> int:
        return rng.randrange(1, RESIDENTS + 1)

    return {
        "district, no filter (first page, no totals)": (
            "district", lambda rng: {"totals": "false"}),
        "resident (with totals)": ("district", lambda rng: {"resident_id": resident(rng)}),
        "resident + kind + rule (with totals)": (
            "district", lambda rng: {"resident_id": resident(rng), "kind": "award",
                                     "rule": "garbage-sorting"}),
        "account (resident's, with totals)": (
            "district", lambda rng: {"account_id": FIRST_RESIDENT_ACCOUNT + rng.randrange(
                RESIDENTS)}),
        "community node + kind=deduction (no totals)": (
            "district", lambda rng: {"node_id": community(rng), "kind": "deduction",
                                     "totals": "false"}),
        "community auditor, 1-day window (with totals)": (
            "community", lambda rng: dict(zip(("from", "to"), day(rng), strict=True))),
        "district, 1-day window + actor (with totals)": (
            "district", lambda rng: {**dict(zip(("from", "to"), day(rng), strict=True)),
                                     "actor_id": FIRST_STAFF_ID + rng.randrange(STAFF)}),
        "district, 1-day window + min_amount=10 (no totals)": (
            "district", lambda rng: {**dict(zip(("from", "to"), day(rng), strict=True)),
                                     "min_amount": 10, "totals": "false"}),
        "rare rule (mediation, no totals)": (
            "district", lambda rng: {"rule": "mediation", "totals": "false"}),
        "merchant (no totals)": (
            "district", lambda rng: {"merchant_id": rng.randrange(1, COMMUNITIES + 1),
                                     "totals": "false"}),
        "reference (redemption id, with totals)": (
            "district", lambda rng: {"reference_type": "redemption",
                                     "reference_id": f"R{rng.randrange(TRANSACTIONS)}"}),
    }


def _timed_searches(app, tokens: dict, world: c.World, now: datetime) -> dict:  # type: ignore[no-untyped-def]
    client = app.test_client()
    results = {}
    rng = random.Random(11)
    searches = {name: ("/api/v1/audit/transactions", who, make)
                for name, (who, make) in _searches(world, now).items()}
    # Baseline in the same run: the ledger's own statement page (10 ms p99 on a quiet
    # machine, docs/performance.md), to tell this machine's load from the search's cost.
    searches["BASELINE statement page /accounts/{id}/entries"] = (
        None, "district", lambda rng: {"limit": 50})
    for name, (path, who, make) in searches.items():
        if path is None:
            path = f"/api/v1/accounts/{FIRST_RESIDENT_ACCOUNT + rng.randrange(RESIDENTS)}/entries"
        headers = {"Authorization": f"Bearer {tokens[who]}"}
        timings = []
        cpu = 0.0
        for n in range(REQUESTS + 10):
            params = make(rng)
            started, cpu_started = time.perf_counter(), time.process_time()
            response = client.get(path, query_string=params, headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            if n >= 10:
                cpu += time.process_time() - cpu_started
            if response.status_code != 200:
                raise RuntimeError(f"{name} {params}: {response.status_code} "
                                   f"{response.data[:300]!r}")
            if n >= 10:  # the first few warm caches and plans
                timings.append(elapsed)
        timings.sort()
        results[name] = {"p50_ms": round(timings[len(timings) // 2], 2),
                         "p99_ms": round(timings[int(len(timings) * 0.99) - 1], 2),
                         "max_ms": round(timings[-1], 2),
                         "app_cpu_ms": round(cpu * 1000 / len(timings), 2)}
        c.log(f"search {name}: {results[name]}")
    return results


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _export_window(url: str) -> tuple[str, int]:
    """The start time of the newest EXPORT_ROWS transactions, and how many that is."""
    import psycopg

    with psycopg.connect(c.psycopg_url(url)) as conn:
        (start,) = conn.execute(
            "SELECT created_at FROM ledger_transactions ORDER BY id DESC OFFSET %s LIMIT 1",
            (EXPORT_ROWS - 1,)).fetchone()
        (count,) = conn.execute("SELECT count(*) FROM ledger_transactions WHERE created_at >= %s",
                                (start,)).fetchone()
    return start.isoformat(), count


def _timed_export(app, token: str, start: str, expected: int) -> dict:  # type: ignore[no-untyped-def]
    import gc

    gc.collect()
    client = app.test_client()
    rss_before = peak = _rss_mb()
    started = time.perf_counter()
    response = client.get("/api/v1/audit/transactions/export",
                          query_string={"format": "csv", "from": start},
                          headers={"Authorization": f"Bearer {token}"}, buffered=False)
    if response.status_code != 200:
        raise RuntimeError(f"export: {response.status_code} {response.data[:300]!r}")
    lines = size = 0
    for chunks, chunk in enumerate(response.response, 1):
        lines += chunk.count(b"\n")
        size += len(chunk)
        if chunks % 50 == 0:
            peak = max(peak, _rss_mb())
    response.close()
    seconds = time.perf_counter() - started
    peak = max(peak, _rss_mb())
    rows = lines - 1
    if rows != expected:
        raise RuntimeError(f"export wrote {rows} rows, expected {expected}")
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds),
            "mb": round(size / 1e6, 1), "rss_before_mb": round(rss_before, 1),
            "rss_peak_mb": round(peak, 1), "rss_growth_mb": round(peak - rss_before, 1)}


def _baselines(app, url: str, start: str) -> dict:  # type: ignore[no-untyped-def]
    """The export's own statement read by psycopg alone: COPY TO, and a plain named cursor."""
    import psycopg
    from psycopg import sql as pgsql

    from pointsvc.audit.search import service
    from pointsvc.extensions import db
    from pointsvc.orgs.models import OrgNode

    with app.app_context():
        roots = [db.session.scalar(db.select(OrgNode.path).where(OrgNode.level == "district"))]
        filters = service.Filters(start=datetime.fromisoformat(start))
        query = service.prepare_export(filters=filters, roots=roots)
        db.session.remove()
    results = {}
    with psycopg.connect(c.psycopg_url(url)) as conn:
        started = time.perf_counter()
        size = 0
        statement = pgsql.SQL(query.statement.replace("%(start)s", "{start}")).format(
            start=pgsql.Literal(query.params["start"]))
        with conn.cursor().copy(pgsql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv)").format(
                statement)) as copy:
            for block in copy:
                size += len(block)
        seconds = time.perf_counter() - started
        results["copy_to_s"] = round(seconds, 2)
        results["copy_to_mb"] = round(size / 1e6, 1)
        conn.rollback()
        started = time.perf_counter()
        entries = 0
        with conn.cursor(name="bench_baseline") as cursor:
            cursor.itersize = service.FETCH_ROWS
            cursor.execute(query.statement, query.params)
            while batch := cursor.fetchmany(service.FETCH_ROWS):
                entries += len(batch)
        results["named_cursor_s"] = round(time.perf_counter() - started, 2)
        results["entry_rows"] = entries
        conn.rollback()
    return results


@contextlib.contextmanager
def _database():  # type: ignore[no-untyped-def]
    if REUSE:
        yield f"postgresql+psycopg://{c.PG_BASE.split('://', 1)[1]}/pointsvc_bench_{NAME}"
        return
    with c.bench_database(NAME, keep=KEEP) as url:
        yield url


def main() -> dict:
    with _database() as url:
        app = c.make_app(url)
        load_before = os.getloadavg()
        if REUSE:
            world = c.World(**json.loads(WORLD_FILE.read_text()))
            seeded = {"reused": True}
        else:
            world = c.seed_world(app, communities=COMMUNITIES)
            c.log(f"seeding {TRANSACTIONS:,} transactions / ~{2 * TRANSACTIONS:,} entries "
                  f"(load average {load_before})")
            seeded = seed(url, world)
            c.log(f"seeded: {seeded}")
            WORLD_FILE.write_text(json.dumps(world.__dict__))
        now = datetime.now(UTC)
        tokens = {"district": c.token(app, world.auditor),
                  "community": c.token(app, _community_auditor(app, world.communities[0]))}
        load_search = os.getloadavg()
        searches = _timed_searches(app, tokens, world, now)
        worst = max(result["p99_ms"] for name, result in searches.items()
                    if not name.startswith("BASELINE"))
        start, expected = _export_window(url)
        c.log(f"export window from {start}: {expected:,} transactions")
        load_export = os.getloadavg()
        baseline = _baselines(app, url, start)
        c.log(f"baselines: {baseline}")
        export = _timed_export(app, tokens["district"], start, expected)
        c.log(f"export: {export}")
        baseline["copy_to_rows_per_s"] = round(expected / baseline["copy_to_s"])
        baseline["named_cursor_rows_per_s"] = round(expected / baseline["named_cursor_s"])
        summary = {
            "seed": seeded,
            "searches": searches,
            "search_worst_p99_ms": worst,
            "search_target": "p99 <= 50 ms",
            "search_met": worst <= 50,
            "export": export,
            "export_baselines": baseline,
            "export_vs_copy_to": round(export["rows_per_s"] / baseline["copy_to_rows_per_s"], 2),
            "export_vs_named_cursor": round(
                export["rows_per_s"] / baseline["named_cursor_rows_per_s"], 2),
            "export_target": ">= 50,000 rows/s, RSS growth < 50 MB",
            "export_met": export["rows_per_s"] >= 50_000 and export["rss_growth_mb"] < 50,
            "load_average": {"before_seed": load_before, "searches": load_search,
                             "export": load_export, "end": os.getloadavg()},
        }
        c.report(NAME, summary)
        return summary


if __name__ == "__main__":
    main()
