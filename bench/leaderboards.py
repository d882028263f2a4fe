"""Leaderboards at district scale, and award throughput with tallies on and off.

Part 1 (reads). One district (10 streets × 10 communities × 10 grids) with 1,000,000
residents (COPY) whose tallies stand for 20,000,000 postings: each resident gets a number of
postings from a skewed distribution (mean 20), split over categories, of which about one in
twelve falls in the measured month. Their month and all-time tally rows are written with COPY
and the score histograms built with one GROUP BY per scope level (exactly what the drainer
maintains). Weekly and yearly rows are left out: they sit in other (period, category) ranges
of the same indexes, which the measured queries never enter.
Measured: the district's top 100 for the month (GET /api/v1/leaderboards, server-side in
process and over HTTP with wrk) and GET /api/v1/leaderboards/me for random residents
(server-side, in process). Targets: p99 ≤ 10 ms and ≤ 15 ms.

Part 2 (writes). POST /api/v1/awards at 32 connections over 10,000 residents, gunicorn with
POINTSVC_LEADERBOARD_TALLIES=1 (the hook queues, each worker drains every second) against
=0, interleaved. While the tallies run, the age of the oldest queued posting is sampled every
0.5 s: that is the staleness of the boards. Target: ratio ≥ 0.8.

BENCH_LB_RESIDENTS (default 1,000,000) and BENCH_LB_POSTINGS (20,000,000) scale part 1.
"""

from __future__ import annotations

import io
import os
import random
import threading
import time
from datetime import date

from . import common as c
from .awards import award_wrk, seed

NAME = "leaderboards"
RESIDENTS = int(os.environ.get("BENCH_LB_RESIDENTS", "1000000"))
POSTINGS = int(os.environ.get("BENCH_LB_POSTINGS", "20000000"))
MONTH = "m:2026-11"
AT = "2026-11-15"
CATEGORIES = ("volunteer", "environment", "conduct")


def seed_tree(app):  # type: ignore[no-untyped-def]
    """District › 10 streets › 10 communities each › 10 grids each; a district organizer."""
    from pointsvc.extensions import db
    from pointsvc.orgs import service as orgs
    from pointsvc.people.models import UNUSABLE_PASSWORD, RoleGrant, User

    with app.app_context():
        district = orgs.create_district(name_zh="榜单区", name_en="Board District")
        communities: dict[int, list[int]] = {}
        streets: dict[int, int] = {}
        for s in range(10):
            street = orgs.create_child(parent_id=district.id, name_zh=f"街道{s}",
                                       name_en=f"Street {s}", timezone="Asia/Shanghai")
            for n in range(10):
                community = orgs.create_child(parent_id=street.id, name_zh=f"社区{s}-{n}",
                                              name_en=f"Community {s}-{n}",
                                              timezone="Asia/Shanghai")
                streets[community.id] = street.id
                communities[community.id] = [
                    orgs.create_child(parent_id=community.id, name_zh=f"网格{s}-{n}-{g}",
                                      name_en=f"Grid {s}-{n}-{g}", timezone="Asia/Shanghai").id
                    for g in range(10)
                ]
        user = User(username="bench-board-organizer", display_name="bench organizer",
                    password_hash=UNUSABLE_PASSWORD)
        db.session.add(user)
        db.session.flush()
        db.session.add(RoleGrant(user_id=user.id, role="organizer", org_node_id=district.id))
        db.session.commit()
        return district.id, streets, communities, user.id


def synthetic_rows(resident_ids: list[int], places: dict[int, tuple[int, int, int, str]],
                   district: int) -> tuple[io.StringIO, int, int]:
    """COPY text of month + all-time tally rows for a synthetic 20M-posting history."""
    rng = random.Random(20)
    mean = POSTINGS / len(resident_ids)
    out = io.StringIO()
    rows = postings = 0
    for rid in resident_ids:
        street, community, grid, shown = places[rid]
        n = min(int(rng.expovariate(1 / mean)) + 1, 50 * int(mean))
        postings += n
        for period, count in (("all", n), (MONTH, sum(rng.random() < 1 / 12
                                                     for _ in range(n)))):
            if not count:
                continue
            totals = {category: [0, 0] for category in CATEGORIES}
            for _ in range(count):
                category = rng.choices(CATEGORIES, weights=(3, 6, 1))[0]
                if category == "volunteer":
                    minutes = rng.choice((60, 90, 120, 180))
                    totals[category][0] += minutes // 6
                    totals[category][1] += minutes
                elif category == "environment":
                    totals[category][0] += 5
                else:
                    totals[category][0] += rng.choice((10, 10, 10, -20))
            totals["all"] = [sum(v[0] for v in totals.values()),
                             sum(v[1] for v in totals.values())]
            for category, (points, minutes) in totals.items():
                if category != "all" and points == 0 and minutes == 0:
                    continue
                out.write(f"{rid}\t{period}\t{category}\t{points}\t{minutes}\tt\t{district}\t"
                          f"{street}\t{community}\t{grid}\t{shown}\n")
                rows += 1
    out.seek(0)
    return out, rows, postings


def load_tallies(url: str, resident_ids: list[int], places, district: int) -> dict:  # type: ignore[no-untyped-def]
    import psycopg

    started = time.perf_counter()
    text, rows, postings = synthetic_rows(resident_ids, places, district)
    generated = time.perf_counter() - started
    with psycopg.connect(c.psycopg_url(url)) as conn:
        indexes = [name for (name,) in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'leaderboard_tallies' "
            "AND indexname LIKE 'ix_%'")]
        definitions = [conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s",
                                    (name,)).fetchone()[0] for name in indexes]
        for name in indexes:
            conn.execute(f"DROP INDEX {name}")
        with conn.cursor().copy(
            "COPY leaderboard_tallies (resident_id, period, category, points, minutes, listed,"
            " district_id, street_id, community_id, grid_id, shown_name) FROM STDIN"
        ) as copy:
            while chunk := text.read(1 << 20):
                copy.write(chunk)
        copied = time.perf_counter() - started
        for definition in definitions:
            conn.execute(definition)
        for level in ("district", "street", "community", "grid"):
            for metric in ("points", "minutes"):
                conn.execute(
                    f"INSERT INTO leaderboard_score_counts (node_id, period, category, metric,"
                    f" score, residents) SELECT {level}_id, period, category, '{metric}',"
                    f" {metric}, COUNT(*) FROM leaderboard_tallies WHERE listed"
                    f" AND {level}_id <> 0 GROUP BY {level}_id, period, category, {metric}")
        conn.commit()
    c.log(f"tallies: {rows:,} rows for {postings:,} postings (generated {generated:.0f} s, "
          f"copied by {copied:.0f} s, indexed + histograms by "
          f"{time.perf_counter() - started:.0f} s)")
    return {"tally_rows": rows, "postings_represented": postings,
            "seed_seconds": round(time.perf_counter() - started)}


def place_residents(url: str, resident_ids: list[int], streets, communities) -> dict:  # type: ignore[no-untyped-def]
    """Give every resident a grid (round robin inside their community); with the masked
    name their tally rows show (all seeded residents are public adults)."""
    import psycopg

    from pointsvc.common import mask_name

    places = {}
    with psycopg.connect(c.psycopg_url(url)) as conn:
        rows = conn.execute("SELECT r.id, r.community_id, u.display_name FROM residents r "
                            "JOIN users u ON u.id = r.user_id WHERE r.id = ANY(%s)",
                            (resident_ids,)).fetchall()
        grid_of: dict[int, int] = {}
        seen: dict[int, int] = {}
        for rid, community, name in rows:
            # round robin inside each community (a global counter would put every resident
            # of a community in the same grid, since communities are assigned round robin too)
            seen[community] = seen.get(community, -1) + 1
            grid = communities[community][seen[community] % 10]
            grid_of[rid] = grid
            places[rid] = (streets[community], community, grid, mask_name(name))
        with conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE tmp_grids (id bigint, grid_id bigint)")
            with cur.copy("COPY tmp_grids (id, grid_id) FROM STDIN") as copy:
                copy.write("".join(f"{rid}\t{grid}\n" for rid, grid in grid_of.items()))
            cur.execute("UPDATE residents r SET grid_id = t.grid_id FROM tmp_grids t "
                        "WHERE t.id = r.id")
        conn.commit()
    return places


def percentiles(timings: list[float]) -> dict[str, float]:
    timings = sorted(timings)
    return {"p50_ms": round(timings[len(timings) // 2], 2),
            "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 2),
            "max_ms": round(timings[-1], 2)}


def me_requests(app, user_ids: list[int], count: int = 400) -> dict:  # type: ignore[no-untyped-def]
    """GET /api/v1/leaderboards/me for random residents through the test client."""
    client = app.test_client()
    rng = random.Random(7)
    timings = []
    for _ in range(count):
        token = c.token(app, rng.choice(user_ids))
        started = time.perf_counter()
        response = client.get(f"/api/v1/leaderboards/me?period=month&at={AT}",
                              headers={"Authorization": f"Bearer {token}"})
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(response.get_data(as_text=True))
    return percentiles(timings)


def reads() -> dict:
    # BENCH_LB_KEEP=1 keeps the seeded database (pointsvc_bench_leaderboards): then
    # BENCH_LB_REUSE=1 measures it again without seeding (for profiling and re-runs).
    keep = os.environ.get("BENCH_LB_KEEP") == "1"
    if os.environ.get("BENCH_LB_REUSE") == "1":
        url = f"postgresql+psycopg://{c.PG_BASE.split('://', 1)[1]}/pointsvc_bench_{NAME}"
        return measure_reads(url)
    with c.bench_database(NAME, keep=keep) as url:
        app = c.make_app(url)
        district, streets, communities, _ = seed_tree(app)
        started = time.perf_counter()
        ids = c.copy_residents(url, community_ids=list(communities), per_community=RESIDENTS
                               // len(communities))
        places = place_residents(url, ids, streets, communities)
        c.log(f"{len(ids):,} residents copied and placed in {time.perf_counter() - started:.0f} s")
        seeded = load_tallies(url, ids, places, district)
        c.analyze(url)
        return {**seeded, **measure_reads(url)}


def measure_reads(url: str) -> dict:
    """Top 100 and /me on a seeded database, in process and (top 100) over HTTP."""
    import psycopg

    app = c.make_app(url)
    with psycopg.connect(c.psycopg_url(url)) as conn:
        district = conn.execute("SELECT id FROM org_nodes WHERE level = 'district' "
                                "AND name_zh = '榜单区'").fetchone()[0]
        street = conn.execute("SELECT id FROM org_nodes WHERE parent_id = %s ORDER BY id "
                              "LIMIT 1", (district,)).fetchone()[0]
        organizer = conn.execute("SELECT id FROM users WHERE username = "
                                 "'bench-board-organizer'").fetchone()[0]
        user_ids = [row[0] for row in conn.execute(
            "SELECT user_id FROM residents TABLESAMPLE SYSTEM (1) LIMIT 2000")]
    token = c.token(app, organizer)
    headers = {"Authorization": f"Bearer {token}"}
    top = f"/api/v1/leaderboards?scope={district}&period=month&at={AT}&limit=100"
    # Every page read misses the worker's page cache here (0 s), so these are the cost of
    # computing a page; the cached figure below is what repeats of a page cost within the
    # cache's bound (POINTSVC_LEADERBOARD_CACHE_SECONDS, 1 s by default).
    cache_seconds = app.config["LEADERBOARD_CACHE_SECONDS"]
    app.config["LEADERBOARD_CACHE_SECONDS"] = 0
    results = {
        "district_top100_month_points": c.in_process(app, "GET", top, headers=headers,
                                                     count=400),
        "district_top100_month_hours_volunteer": c.in_process(
            app, "GET", top + "&metric=hours&category=volunteer", headers=headers, count=400),
        "street_top100_month": c.in_process(
            app, "GET", top.replace(f"scope={district}", f"scope={street}"), headers=headers,
            count=200),
        "me_month": me_requests(app, user_ids),
    }
    app.config["LEADERBOARD_CACHE_SECONDS"] = max(cache_seconds, 1)
    results["district_top100_month_points_cached"] = c.in_process(app, "GET", top,
                                                                 headers=headers, count=400)
    c.log(f"in process: {results}")
    http = {}
    for label, seconds in (("cached", "1"), ("uncached", "0")):
        env = c.app_env(url, POINTSVC_LEADERBOARD_CACHE_SECONDS=seconds)
        with c.gunicorn("pointsvc", "wsgi:app", env=env) as server:
            run = c.wrk(f"GET district top 100 (month), page cache {seconds} s",
                        server.url + top, headers=[f"Authorization: Bearer {token}"],
                        connections=8, server=server)
        http[label] = {"rps": round(run.rps), "p50_ms": run.p50_ms, "p99_ms": run.p99_ms}
    return {"in_process": results, "http_top100": http}


def sample_staleness(url: str, stop: threading.Event, ages: list[float]) -> None:
    """Age (s) of the oldest queued posting, every 0.5 s, while the tallies run."""
    import psycopg

    with psycopg.connect(c.psycopg_url(url), autocommit=True) as conn:
        while not stop.is_set():
            age = conn.execute(
                "SELECT EXTRACT(EPOCH FROM now() - MIN(t.created_at)) FROM leaderboard_outbox o"
                " JOIN ledger_transactions t ON t.id = o.transaction_id").fetchone()[0]
            ages.append(float(age or 0.0))
            time.sleep(0.5)


def in_process_awards(app, world, ids: list[int]) -> dict:  # type: ignore[no-untyped-def]
    """The award handler's own cost with the hook on and off (test client, alternated), and
    the drain's cost per posting: far less exposed to a busy neighbour than req/s."""
    from pointsvc.extensions import db
    from pointsvc.leaderboards.tallies import drain

    token = c.token(app, world.organizer)
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    handler: dict[str, list[float]] = {"off": [], "on": []}
    for round_ in range(3):
        for label in ("off", "on"):
            app.config["LEADERBOARD_TALLIES"] = label == "on"
            started = time.process_time()
            result = c.in_process(
                app, "POST", "/api/v1/awards", headers={"Authorization": f"Bearer {token}"},
                count=200, json_body=lambda n, r=round_, k=label: {
                    "resident_id": ids[(n * 37 + r * 11 + (5 if k == "on" else 0)) % len(ids)],
                    "rule_code": "garbage-sorting", "quantity": 1})
            cpu[label].append((time.process_time() - started) * 1000 / 200)
            handler[label].append(result["p50_ms"])
    app.config["LEADERBOARD_TALLIES"] = True
    drains = {}
    with app.app_context():
        for batch in (50, 500):
            started_cpu, started, moved = time.process_time(), time.perf_counter(), 0
            while moved < 500 and (n := drain(limit=batch)):
                moved += n
            drains[f"batch_{batch}"] = {
                "postings": moved,
                "wall_ms_per_posting": round((time.perf_counter() - started) * 1000
                                             / max(moved, 1), 3),
                "cpu_ms_per_posting": round((time.process_time() - started_cpu) * 1000
                                            / max(moved, 1), 3)}
        db.session.remove()
    cpu_off, cpu_on = sorted(cpu["off"])[1], sorted(cpu["on"])[1]
    drain_cost = drains["batch_50"]["wall_ms_per_posting"]
    return {
        "cpu_ms_per_award_off": round(cpu_off, 2), "cpu_ms_per_award_on": round(cpu_on, 2),
        "handler_p50_ms_off": sorted(handler["off"])[1],
        "handler_p50_ms_on": sorted(handler["on"])[1],
        "drain": drains,
        # One core's worth of work per award: handler CPU, plus the drain's wall time per
        # posting (Python and PostgreSQL) at the small batches a 1-second drain sees.
        "estimated_ratio": round(cpu_off / (cpu_on + drain_cost), 3),
    }


def writes() -> tuple[dict, list]:
    with c.bench_database(NAME + "_awards") as url:
        app = c.make_app(url)
        world, ids = seed(app, url, communities=10, per_community=1000)
        span = c.contiguous(ids)
        c.analyze(url)
        inproc = in_process_awards(app, world, ids)
        ages: list[float] = []
        # BENCH_LB_DRAIN_SECONDS: the serving processes' drain interval (1 s, the default).
        on_env = c.app_env(url, POINTSVC_LEADERBOARD_TALLIES="1",
                           POINTSVC_LEADERBOARD_DRAIN_SECONDS=os.environ.get(
                               "BENCH_LB_DRAIN_SECONDS", "1"))
        off_env = c.app_env(url, POINTSVC_LEADERBOARD_TALLIES="0",
                            POINTSVC_LEADERBOARD_DRAIN_SECONDS="0")

        def tallies_on() -> c.WrkResult:
            stop = threading.Event()
            spy = threading.Thread(target=sample_staleness, args=(url, stop, ages))
            with c.gunicorn("tallies-on", "wsgi:app", env=on_env) as server:
                spy.start()
                try:
                    return award_wrk("awards, tallies on", server, "/api/v1/awards", span,
                                     c.token(app, world.organizer))
                finally:
                    time.sleep(2)  # let the drainers catch up before the sampler stops
                    stop.set()
                    spy.join()

        def tallies_off() -> c.WrkResult:
            with c.gunicorn("tallies-off", "wsgi:app", env=off_env) as server:
                return award_wrk("awards, tallies off", server, "/api/v1/awards", span,
                                 c.token(app, world.organizer))

        runs = c.alternate([("off", tallies_off), ("on", tallies_on)])
        off, on = c.median_run(runs["off"]), c.median_run(runs["on"])
        from pointsvc.extensions import db
        from pointsvc.leaderboards.tallies import check_tallies, drain_all, rebuild

        # The tallies-off rounds posted without queueing: rebuild from the ledger, then prove
        # that a tallies-on round starting from there leaves tallies equal to the ledger.
        with app.app_context():
            started = time.perf_counter()
            rebuilt = rebuild()["tallies"]
            rebuild_s = time.perf_counter() - started
            db.session.remove()
        verify = tallies_on()
        with app.app_context():
            drained_after = drain_all()
            problems = check_tallies()
            db.session.remove()
        ratio = on.rps / off.rps
        return {
            "in_process": inproc,
            "awards_per_s_tallies_on": round(on.rps), "awards_per_s_tallies_off": round(off.rps),
            "p99_ms_on": on.p99_ms, "p99_ms_off": off.p99_ms,
            "rounds_on": [round(r.rps) for r in runs["on"]],
            "rounds_off": [round(r.rps) for r in runs["off"]],
            "cpu_ms_per_award_on": on.extra.get("worker_cpu_ms_per_request"),
            "cpu_ms_per_award_off": off.extra.get("worker_cpu_ms_per_request"),
            "ratio": round(ratio, 3), "target": ">= 0.8", "met": ratio >= 0.8,
            "staleness_max_s": round(max(ages), 2) if ages else None,
            "staleness_p99_s": round(sorted(ages)[int(len(ages) * 0.99)], 2) if ages else None,
            "rebuild_s": round(rebuild_s, 2), "rebuilt_tallies": rebuilt,
            "verify_round_awards": verify.requests,
            "left_for_the_tally_check": drained_after,
            "tallies_agree_with_ledger_after_live_round": not problems,
        }, runs["off"] + runs["on"]


def main() -> dict:
    # The benchmark process's own app only seeds and measures in process: no drainer thread.
    os.environ["POINTSVC_LEADERBOARD_DRAIN_SECONDS"] = "0"
    parts = os.environ.get("BENCH_LB_PARTS", "reads,writes").split(",")
    summary: dict = {"date_measured_for": date.today().isoformat()}
    runs: list = []
    if "writes" in parts:
        written, runs = writes()
        summary["writes"] = written
    if "reads" in parts:
        summary["reads"] = reads()
    c.report(NAME, summary, runs)
    return summary


if __name__ == "__main__":
    main()
