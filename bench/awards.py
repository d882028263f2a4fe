"""Single awards over HTTP vs a bare WSGI app doing the same SQL with psycopg.

POST /api/v1/awards (organizer token, rule garbage-sorting, residents drawn at random from
10,000 over 10 communities, a unique Idempotency-Key per request) at 32 connections, and
POST /award on bench/baselines/raw_award.py (credit resident, debit an issuance shard, insert
transaction + 2 entries, one transaction). Target: ratio >= 0.5. A second bare baseline,
bench/baselines/raw_award_same_sql.py, sends the service's own statements (its one read,
idempotency, outbox, audit): the ratio to it is what the framework and the Python around the
SQL cost.
"""

from __future__ import annotations

import re
import threading
import time

from . import common as c

NAME = "awards"


def award_wrk(label: str, server: c.Server, path: str, ids: tuple[int, int], token: str,
              **kwargs) -> c.WrkResult:
    tag = re.sub(r"[^A-Za-z0-9]", "", label)[:20] + str(time.time_ns())
    return c.wrk(label, server.url + path, script="award.lua",
                 script_args=[path, str(ids[0]), str(ids[1]), token, "garbage-sorting", tag],
                 server=server, **kwargs)


def seed(app, url: str, *, communities: int, per_community: int):  # type: ignore[no-untyped-def]
    world = c.seed_world(app, communities=communities)
    ids = c.copy_residents(url, community_ids=world.communities, per_community=per_community)
    c.open_accounts(app, ids)
    return world, ids


def main() -> dict:
    with c.bench_database(NAME) as url:
        app = c.make_app(url)
        world, ids = seed(app, url, communities=10, per_community=1000)
        span = c.contiguous(ids)
        c.warm_ledger(app, url, organizer=world.organizer, resident_ids=ids)
        token = c.token(app, world.organizer)
        inproc = c.in_process(
            app, "POST", "/api/v1/awards", headers={"Authorization": f"Bearer {token}"},
            count=300, json_body=lambda n: {"resident_id": ids[n * 31 % len(ids)],
                                            "rule_code": "garbage-sorting", "quantity": 1})
        c.log(f"in-process POST /api/v1/awards: {inproc}")
        raw_env = {"BENCH_DSN": c.psycopg_url(url), "BENCH_ISSUANCE_MODE": "shard"}
        same_env = {"BENCH_DSN": c.psycopg_url(url), "BENCH_ACTOR": str(world.organizer)}
        with c.gunicorn("raw", "bench.baselines.raw_award:app", env=raw_env) as raw, \
                c.gunicorn("same", "bench.baselines.raw_award_same_sql:app",
                           env=same_env) as same, \
                c.gunicorn("pointsvc", "wsgi:app", env=c.app_env(url)) as server:
            runs = c.alternate([
                ("raw", lambda: award_wrk("raw award", raw, "/award", span, "-")),
                ("same", lambda: award_wrk("raw award, the service's SQL", same, "/award",
                                           span, "-")),
                ("app", lambda: award_wrk("POST /api/v1/awards", server, "/api/v1/awards",
                                          span, c.token(app, world.organizer))),
            ])
            base, mine = c.median_run(runs["raw"]), c.median_run(runs["app"])
            same_sql = c.median_run(runs["same"])
            ratio = mine.rps / base.rps
            out = c.RESULTS / f"{NAME}-profile.txt"
            c.RESULTS.mkdir(exist_ok=True)
            spy = threading.Thread(target=c.profile_worker, args=(server, 10, out))
            spy.start()
            award_wrk("POST /api/v1/awards (profiled)", server, "/api/v1/awards", span,
                      c.token(app, world.organizer), duration=12)
            spy.join()
            hot = c.top_frames(out, limit=70) if out.exists() else []
        summary = {
            "awards_per_s": round(mine.rps), "p50_ms": mine.p50_ms, "p99_ms": mine.p99_ms,
            "raw_awards_per_s": round(base.rps), "raw_p50_ms": base.p50_ms,
            "raw_p99_ms": base.p99_ms,
            "ratio": round(ratio, 3), "target": ">= 0.5", "met": ratio >= 0.5,
            # The same statements as the service, bare: what the framework and the Python
            # around the SQL cost, apart from what the service's features cost in SQL.
            "same_sql_awards_per_s": round(same_sql.rps), "same_sql_p99_ms": same_sql.p99_ms,
            "ratio_to_same_sql": round(mine.rps / same_sql.rps, 3),
            "app_rps_rounds": [round(r.rps) for r in runs["app"]],
            "raw_rps_rounds": [round(r.rps) for r in runs["raw"]],
            "same_sql_rps_rounds": [round(r.rps) for r in runs["same"]],
            "in_process_award": inproc,
        }
        c.report(NAME, summary, runs["raw"] + runs["same"] + runs["app"])
        for frame, share in hot:
            print(f"  {share:6.1%}  {frame}")
        return summary


if __name__ == "__main__":
    main()
