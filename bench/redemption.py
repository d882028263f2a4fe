"""Pay-code redemptions at 64 concurrent merchants vs a bare WSGI app doing the same SQL.

POST /api/v1/redemptions {pay_code, offer_id, quantity: 1, order_ref} by 64 merchant
operators (one token each, one offer each), at 64 connections; every request carries a
FRESH one-time pay code: before each wrk run the benchmark mints pay codes for 10,000
funded residents (the real envelope and HMAC, rows COPY'd into `paycodes`, 60 s of
validity) into a file that bench/lua/redeem.lua deals out, one line per request, disjoint
per wrk thread. The baseline, bench/baselines/raw_redemption.py, runs the statements the
app issues for a redemption (logged in-process, printed by this benchmark) through psycopg
with no Flask and no ORM. Target (issue #5): p99 <= 50 ms and ratio >= 0.5.

`python -m bench.run redemption`; `python -m bench.redemption --statements` only prints
the statement log of one redemption (no servers, no load).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from . import common as c

NAME = "redemption"
MERCHANTS = 64
RESIDENTS = int(os.environ.get("BENCH_REDEMPTION_RESIDENTS", "10000"))
COMMUNITIES = 4
FUNDS = 2000  # points per resident (the price is 2; the daily limit 500 allows 250 a day)
PRICE = 2
CONNECTIONS = int(os.environ.get("BENCH_REDEMPTION_CONNECTIONS", "64"))
# Pay codes live 60 s: a run must fit inside that, and we mint more than it can use.
CODES_PER_RUN = int(os.environ.get("BENCH_REDEMPTION_CODES", "40000"))
# A lighter closed-loop run (8 tills scanning back to back) for latency without queueing
# behind 64: at 64 connections and N req/s, Little's law puts the mean latency at 64/N.
LIGHT_CONNECTIONS = int(os.environ.get("BENCH_REDEMPTION_LIGHT_CONNECTIONS", "8"))
# The latency target at 64 merchants, read where it means something: 64 tills, each pausing
# PACE_MS after an answer before its next scan (a till serves people; it does not scan back
# to back), so the offered load stays below what the server can do and p99 measures service
# time, not a queue that a closed loop of 64 builds at any throughput.
PACE_MS = int(os.environ.get("BENCH_REDEMPTION_PACE_MS", "500"))


# --- seeding --------------------------------------------------------------------------------


def seed(app, url: str, *, residents: int = RESIDENTS) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A district with 4 communities, 10,000 funded residents, 64 active merchants on the
    street, each with one operator and one offer (price 2, stock 10^9, offered street-wide),
    and their merchant accounts opened."""
    from pointsvc.extensions import db
    from pointsvc.ledger.service import (
        Leg,
        Transfer,
        district_of,
        issuance_account,
        post_many,
        resident_account,
    )
    from pointsvc.people.models import (
        UNUSABLE_PASSWORD,
        Merchant,
        MerchantOperator,
        Resident,
        User,
    )
    from pointsvc.redemption import service as redemption

    world = c.seed_world(app, communities=COMMUNITIES)
    ids = c.copy_residents(url, community_ids=world.communities,
                           per_community=residents // COMMUNITIES)
    c.open_accounts(app, ids)
    with app.app_context():
        district = district_of(community_id=world.communities[0])
        community_of = dict(db.session.execute(
            db.select(Resident.id, Resident.community_id).where(Resident.id.in_(ids))).all())
        transfers = []
        for rid in ids:
            cid = community_of[rid]
            transfers.append(Transfer(
                kind="award", community_id=cid, district_id=district,
                legs=(Leg(issuance_account(community_id=cid), -FUNDS),
                      Leg(resident_account(resident_id=rid, community_id=cid), FUNDS))))
        for start in range(0, len(transfers), 2000):
            post_many(transfers=transfers[start:start + 2000])
            db.session.commit()
        tills = []
        for n in range(MERCHANTS):
            merchant = Merchant(name=f"基准商户{n}", address="基准路 1 号", category="grocery",
                                org_node_id=world.street, status="active")
            user = User(username=f"bench-till-{n}", display_name=f"店员{n}",
                        password_hash=UNUSABLE_PASSWORD)
            db.session.add_all([merchant, user])
            db.session.flush()
            db.session.add(MerchantOperator(user_id=user.id, merchant_id=merchant.id))
            db.session.commit()
            offer = redemption.create_offer(
                merchant_id=merchant.id, actor_user_id=user.id,
                values={"title": f"基准商品{n}", "points_price": PRICE, "stock": 10**9,
                        "org_node_id": world.street})
            redemption.open_merchant_account(merchant=db.session.get(Merchant, merchant.id))
            db.session.commit()
            tills.append({"merchant_id": merchant.id, "user_id": user.id,
                          "offer_id": offer.id})
    return {"world": world, "residents": ids, "tills": tills}


def mint_paycodes(app, url: str, residents: list[int], count: int) -> list[str]:  # type: ignore[no-untyped-def]
    """`count` valid pay codes (60 s from now) for residents drawn at random: the real
    envelope (pointsvc.codes.issue_code, HMAC with the server key), rows COPY'd into
    `paycodes` exactly as issue_paycode() writes them."""
    import psycopg

    from pointsvc.codes import PAYCODE, issue_code
    from pointsvc.redemption.service import PAYCODE_SECONDS, STEP_SECONDS

    now = datetime.now(UTC)
    step = int(now.timestamp()) // STEP_SECONDS
    expires = (now + timedelta(seconds=PAYCODE_SECONDS)).isoformat()
    issued = now.isoformat()
    rows, tokens = [], []
    with app.app_context():
        for _ in range(count):
            resident = residents[secrets.randbelow(len(residents))]
            nonce = secrets.token_bytes(6)
            tokens.append(issue_code(PAYCODE, resident_id=resident, nonce=nonce, step=step))
            rows.append(f"{nonce.hex()}\t{resident}\t{step}\t{issued}\t{expires}\n")
    with psycopg.connect(c.psycopg_url(url)) as conn:
        with conn.cursor().copy(
            "COPY paycodes (nonce, resident_id, step, issued_at, expires_at) FROM STDIN"
        ) as copy:
            copy.write("".join(rows))
        conn.commit()
    return tokens


def write_lines(lines: list[str], prefix: str) -> Path:
    with tempfile.NamedTemporaryFile("w", prefix=prefix, suffix=".txt", delete=False) as out:
        out.write("\n".join(lines) + "\n")
    return Path(out.name)


def tills_file(app, tills: list[dict[str, int]]) -> Path:  # type: ignore[no-untyped-def]
    """One line per merchant: token user_id merchant_id offer_id (tokens live 15 minutes)."""
    return write_lines([f"{c.token(app, t['user_id'])} {t['user_id']} {t['merchant_id']} "
                        f"{t['offer_id']}" for t in tills], "bench-tills-")


def redeem_wrk(label: str, server: c.Server, path: str, app, url: str,  # type: ignore[no-untyped-def]
               seeded: dict[str, Any], *, mode: str, duration: int = c.DURATION,
               connections: int = CONNECTIONS) -> c.WrkResult:
    """Mint fresh pay codes and merchant tokens, then one wrk run over them."""
    if duration > 45:
        raise RuntimeError("pay codes live 60 s: keep BENCH_DURATION <= 45")
    tag = re.sub(r"[^A-Za-z0-9]", "", label)[:20] + str(time.time_ns())
    codes = write_lines(mint_paycodes(app, url, seeded["residents"], CODES_PER_RUN),
                        "bench-paycodes-")
    tills = tills_file(app, seeded["tills"])
    try:
        result = c.wrk(label, server.url + path, script="redeem.lua",
                       script_args=[path, str(codes), str(tills), mode, tag, str(c.THREADS)],
                       server=server, duration=duration, connections=connections)
    finally:
        codes.unlink(missing_ok=True)
        tills.unlink(missing_ok=True)
    if result.requests >= CODES_PER_RUN:
        raise RuntimeError(f"{label}: ran out of pay codes; raise BENCH_REDEMPTION_CODES")
    return result


def redeem_paced(label: str, server: c.Server, path: str, app, url: str,  # type: ignore[no-untyped-def]
                 seeded: dict[str, Any], *, mode: str) -> c.WrkResult:
    """64 tills, each pausing 0..2 x PACE_MS between redemptions (bench/paced.py)."""
    import json

    from .paced import paced

    codes = mint_paycodes(app, url, seeded["residents"], CODES_PER_RUN)
    tag = re.sub(r"[^A-Za-z0-9]", "", label)[:20] + str(time.time_ns())
    per_till: list[list[tuple[dict[str, str], bytes]]] = []
    for n, till in enumerate(seeded["tills"]):
        if mode == "raw":
            who = {"X-Bench-User": str(till["user_id"]),
                   "X-Bench-Merchant": str(till["merchant_id"])}
        else:
            who = {"Authorization": f"Bearer {c.token(app, till['user_id'])}"}
        per_till.append([
            ({"Content-Type": "application/json", "Idempotency-Key": f"{tag}-{n}-{k}", **who},
             json.dumps({"pay_code": code, "offer_id": till["offer_id"], "quantity": 1,
                         "order_ref": f"P-{n}-{k}"}).encode())
            for k, code in enumerate(codes[n::len(seeded["tills"])])])
    return paced(label, server, path, per_till, pause_ms=PACE_MS)


# --- in-process measurements ------------------------------------------------------------------


def _inproc_body(app, url: str, seeded: dict[str, Any], count: int):  # type: ignore[no-untyped-def]
    codes = mint_paycodes(app, url, seeded["residents"], count)
    till = seeded["tills"][0]

    def body(n: int) -> dict[str, Any]:
        return {"pay_code": codes[n], "offer_id": till["offer_id"], "quantity": 1,
                "order_ref": f"INPROC-{n}"}
    return body, till


@contextlib.contextmanager
def counting_statements(app) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """Log every statement the app sends: through SQLAlchemy (events) and through the
    driver-cursor helper pointsvc.sql.rows, which the ledger uses and SQLAlchemy's events
    do not see. Transaction boundaries are logged as BEGIN / COMMIT / ROLLBACK."""
    from sqlalchemy import event

    from pointsvc.extensions import db

    with app.app_context():
        engine = db.engine
    seen: list[str] = []

    def _log(_conn, _cursor, statement, _params, _context, _many):  # type: ignore[no-untyped-def]
        seen.append(" ".join(statement.split()))

    def _mark(label: str):  # type: ignore[no-untyped-def]
        return lambda *_args: seen.append(label)

    listeners = [("before_cursor_execute", _log), ("begin", _mark("BEGIN (implicit)")),
                 ("commit", _mark("COMMIT")), ("rollback", _mark("ROLLBACK"))]
    for name, fn in listeners:
        event.listen(engine, name, fn)
    # Driver-cursor helpers (the ledger's pointsvc.sql, redemption's lean): wrap them.
    patched: list[tuple[Any, str, Any]] = []
    for module_name, names in (("pointsvc.sql", ("rows",)),
                               ("pointsvc.redemption.lean", ("count",))):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in names:
            original = getattr(module, name, None)
            if original is None:
                continue

            def counted(statement, params=None, _original=original):  # type: ignore[no-untyped-def]
                db.session.connection()  # a pending BEGIN / SAVEPOINT is logged first
                seen.append("[driver] " + " ".join(statement.split()))
                return _original(statement, params)
            patched.append((module, name, original))
            setattr(module, name, counted)
    try:
        yield seen
    finally:
        for name, fn in listeners:
            event.remove(engine, name, fn)
        for module, name, original in patched:
            setattr(module, name, original)


def is_statement(line: str) -> bool:
    return line not in ("BEGIN (implicit)", "COMMIT", "ROLLBACK")


def statement_log(app, url: str, seeded: dict[str, Any]) -> list[str]:  # type: ignore[no-untyped-def]
    """The SQL of one warm redemption, in order (pool pre-ping included)."""
    body, till = _inproc_body(app, url, seeded, 3)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {c.token(app, till['user_id'])}"}
    for n in range(2):  # warm
        client.post("/api/v1/redemptions", json=body(n),
                    headers={**headers, "Idempotency-Key": f"warm-{time.time_ns()}"})
    with counting_statements(app) as seen:
        r = client.post("/api/v1/redemptions", json=body(2),
                        headers={**headers, "Idempotency-Key": f"log-{time.time_ns()}"})
        if r.status_code != 201:
            raise RuntimeError(f"redemption failed: {r.status_code} {r.data!r}")
    return list(seen)


def in_process(app, url: str, seeded: dict[str, Any], count: int = 300) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The handler's own time (test client: no HTTP, no queueing) and its statements."""
    body, till = _inproc_body(app, url, seeded, count)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {c.token(app, till['user_id'])}"}
    timings = []
    with counting_statements(app) as seen:
        for n in range(count):
            started = time.perf_counter()
            r = client.post("/api/v1/redemptions", json=body(n),
                            headers={**headers, "Idempotency-Key": f"inproc-{time.time_ns()}"})
            timings.append((time.perf_counter() - started) * 1000)
            if r.status_code != 201:
                raise RuntimeError(f"redemption failed: {r.status_code} {r.data!r}")
    timings.sort()
    statements = [line for line in seen if is_statement(line)]
    return {
        "p50_ms": round(timings[len(timings) // 2], 2),
        "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 2),
        "mean_ms": round(sum(timings) / len(timings), 2),
        "sql_statements_per_request": round(len(statements) / count, 1),
        "transactions_per_request": round(seen.count("COMMIT") / count, 1),
    }


COMPONENTS = (
    "authz.py:.*\\(authenticate\\)", "idempotency.py:.*\\(run_once\\)",
    "service.py:.*\\(take_paycode\\)", "service.py:.*\\(redeem\\)",
    "service.py:.*\\(_trading_merchant\\)", "service.py:.*\\(_spender\\)",
    "service.py:.*\\(_offer_for_spend\\)", "service.py:.*\\(_take\\)",
    "service.py:.*\\(post\\)", "service.py:.*\\(_receipt_of\\)",
    "session.py:.*\\(commit\\)", "core.py:.*\\(parse\\)",
    "observability.py:.*", "app.py:.*\\(full_dispatch_request\\)",
)


def profile_in_process(app, url: str, seeded: dict[str, Any], count: int = 300) -> list[str]:  # type: ignore[no-untyped-def]
    """CPU profile (cProfile on process time, so waiting for PostgreSQL does not count) of
    `count` redemptions through the test client: CPU per request by component."""
    import cProfile
    import pstats

    body, till = _inproc_body(app, url, seeded, count)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {c.token(app, till['user_id'])}"}
    profiler = cProfile.Profile(time.process_time)
    started = time.process_time()
    profiler.enable()
    for n in range(count):
        r = client.post("/api/v1/redemptions", json=body(n),
                        headers={**headers, "Idempotency-Key": f"prof-{time.time_ns()}"})
        if r.status_code != 201:
            raise RuntimeError(r.data)
    profiler.disable()
    total = (time.process_time() - started) * 1000 / count
    stats = pstats.Stats(profiler)
    lines = [f"CPU per request (whole test-client request): {total:.2f} ms (profiler on)"]
    for pattern in COMPONENTS:
        best = 0.0
        for (filename, line, name), (_cc, _calls, _tot, cum, _callers) in stats.stats.items():
            if re.search(pattern, f"{Path(filename).name}:{line}({name})"):
                best = max(best, cum)
        lines.append(f"  {pattern:45s} {best * 1000 / count:6.2f} ms/request")
    lines.append("-- top functions by own CPU:")
    by_self = sorted(((tot, calls, f"{Path(f).parent.name}/{Path(f).name}:{ln}({nm})")
                      for (f, ln, nm), (_cc, calls, tot, _cum, _cl) in stats.stats.items()),
                     reverse=True)[:15]
    lines += [f"  {tot * 1000 / count:6.3f} ms/req  {where}" for tot, _calls, where in by_self]
    return lines


# --- the benchmark ----------------------------------------------------------------------------


def main() -> dict:
    with c.bench_database(NAME) as url:
        app = c.make_app(url)
        seeded = seed(app, url)
        c.analyze(url)
        statements = statement_log(app, url, seeded)
        c.log("statements of one redemption:\n  " + "\n  ".join(statements))
        inproc = in_process(app, url, seeded)
        c.log(f"in-process POST /api/v1/redemptions: {inproc}")
        raw_env = {"BENCH_DSN": c.psycopg_url(url),
                   "BENCH_QR_MAC_KEY": c.app_env(url)["POINTSVC_QR_MAC_KEY"]}
        with c.gunicorn("raw", "bench.baselines.raw_redemption:app", env=raw_env) as raw, \
                c.gunicorn("pointsvc", "wsgi:app", env=c.app_env(url)) as server:
            runs = c.alternate([
                ("raw", lambda: redeem_wrk("raw redemption", raw, "/redeem", app, url, seeded,
                                           mode="raw")),
                ("app", lambda: redeem_wrk("POST /api/v1/redemptions", server,
                                           "/api/v1/redemptions", app, url, seeded,
                                           mode="app")),
            ])
            base, mine = c.median_run(runs["raw"]), c.median_run(runs["app"])
            ratio = mine.rps / base.rps
            light = c.alternate([
                ("raw", lambda: redeem_wrk(f"raw redemption, {LIGHT_CONNECTIONS} conn.", raw,
                                           "/redeem", app, url, seeded, mode="raw",
                                           connections=LIGHT_CONNECTIONS)),
                ("app", lambda: redeem_wrk(
                    f"POST /api/v1/redemptions, {LIGHT_CONNECTIONS} conn.", server,
                    "/api/v1/redemptions", app, url, seeded, mode="app",
                    connections=LIGHT_CONNECTIONS)),
            ], rounds=1)
            paced = c.alternate([
                ("raw", lambda: redeem_paced(f"raw redemption, 64 tills pausing ~{PACE_MS} ms",
                                             raw, "/redeem", app, url, seeded, mode="raw")),
                ("app", lambda: redeem_paced(
                    f"POST /api/v1/redemptions, 64 tills pausing ~{PACE_MS} ms", server,
                    "/api/v1/redemptions", app, url, seeded, mode="app")),
            ], rounds=2)
            out = c.RESULTS / f"{NAME}-profile.txt"
            c.RESULTS.mkdir(exist_ok=True)
            spy = threading.Thread(target=c.profile_worker, args=(server, 10, out))
            spy.start()
            redeem_wrk("POST /api/v1/redemptions (profiled)", server, "/api/v1/redemptions",
                       app, url, seeded, mode="app", duration=12)
            spy.join()
            hot = c.top_frames(out, limit=60) if out.exists() else []
        summary = {
            "redemptions_per_s": round(mine.rps), "p50_ms": mine.p50_ms,
            "p99_ms": mine.p99_ms, "p99_target_ms": 50, "p99_met": mine.p99_ms <= 50,
            "app_cpu_ms_per_request": mine.extra.get("worker_cpu_ms_per_request"),
            "raw_redemptions_per_s": round(base.rps), "raw_p50_ms": base.p50_ms,
            "raw_p99_ms": base.p99_ms,
            "raw_cpu_ms_per_request": base.extra.get("worker_cpu_ms_per_request"),
            "ratio": round(ratio, 3), "target": ">= 0.5", "met": ratio >= 0.5,
            "app_rps_rounds": [round(r.rps) for r in runs["app"]],
            "raw_rps_rounds": [round(r.rps) for r in runs["raw"]],
            "light_connections": LIGHT_CONNECTIONS,
            "light_app_rps": round(light["app"][0].rps),
            "light_app_p50_ms": light["app"][0].p50_ms,
            "light_app_p99_ms": light["app"][0].p99_ms,
            "light_raw_rps": round(light["raw"][0].rps),
            "light_raw_p99_ms": light["raw"][0].p99_ms,
            "paced_pause_ms": PACE_MS,
            "paced_app_rps": [round(r.rps) for r in paced["app"]],
            "paced_app_p50_ms": [r.p50_ms for r in paced["app"]],
            "paced_app_p99_ms": [r.p99_ms for r in paced["app"]],
            "paced_p99_met": all(r.p99_ms <= 50 for r in paced["app"]),
            "paced_raw_rps": [round(r.rps) for r in paced["raw"]],
            "paced_raw_p99_ms": [r.p99_ms for r in paced["raw"]],
            "connections": CONNECTIONS, "merchants": MERCHANTS,
            "in_process_redemption": inproc,
            "statements": statements,
        }
        c.report(NAME, {k: v for k, v in summary.items() if k != "statements"},
                 runs["raw"] + runs["app"] + light["raw"] + light["app"] + paced["raw"]
                 + paced["app"])
        for frame, share in hot:
            print(f"  {share:6.1%}  {frame}")
        return summary


def statements_only() -> None:
    """Print the statement log and in-process figures (and a cProfile with --profile)."""
    with c.bench_database(f"{NAME}_sql") as url:
        app = c.make_app(url)
        seeded = seed(app, url, residents=2000)
        c.analyze(url)
        for line in statement_log(app, url, seeded):
            print("  ", line)
        print("in-process:", in_process(app, url, seeded))
        if "--profile" in sys.argv:
            for line in profile_in_process(app, url, seeded):
                print("  ", line)


if __name__ == "__main__":
    if "--statements" in sys.argv:
        statements_only()
    else:
        main()
