"""Check-ins from distinct residents on one event code vs a bare WSGI app doing the same SQL.

POST /api/v1/checkins {code: the event's current link, nonce, scanned_at} with a different
resident's bearer token on every request (bench/lua/checkin.lua deals out "id token" lines,
disjoint per wrk thread, each resident once), against bench/baselines/raw_checkin.py (the
code's HMAC, then the same SELECT / INSERT scan / upsert state / COMMIT through psycopg,
resident id in the body, no JWT, no Flask). Each wrk run uses a fresh slice of residents,
so no request is a duplicate and none is refused as overlapping. Target (issue #4): 500
check-ins/s sustained, p99 <= 50 ms, next to the baseline in the same run.

`python -m bench.run events_checkin`
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from . import common as c

NAME = "events_checkin"
SLICE = int(os.environ.get("BENCH_CHECKIN_SLICE", "15000"))
APP_SLICES, RAW_SLICES = 3, 2
CONNECTIONS = int(os.environ.get("BENCH_CHECKIN_CONNECTIONS", "16"))


def make_event(app, community_id: int, organizer: int, title: str) -> int:  # type: ignore[no-untyped-def]
    """A published event running from an hour ago to three hours from now (no geofence)."""
    from pointsvc.common import utcnow
    from pointsvc.events import service

    with app.app_context():
        now = utcnow()
        event = service.create_event(org_node_id=community_id, actor_user_id=organizer, values={
            "title": title, "category": "volunteer", "rule_code": "volunteer-hour",
            "starts_at": now - timedelta(hours=1), "ends_at": now + timedelta(hours=3),
            "place": "基准社区活动中心"})
        service.publish_event(event_id=event.id, actor_user_id=organizer)
        return event.id


def current_link(app, event_id: int) -> str:  # type: ignore[no-untyped-def]
    from pointsvc.events import service

    with app.app_context():
        return service.checkin_code(event_id=event_id, direction="in")["url"]


def residents_file(app, ids: list[int], *, tokens: bool) -> Path:  # type: ignore[no-untyped-def]
    """ "resident_id token" per line (tokens minted now: they live 10 minutes)."""
    from sqlalchemy import select

    from pointsvc.extensions import db
    from pointsvc.people.models import Resident
    from pointsvc.security.tokens import issue_access_token

    lines = []
    with app.app_context():
        users = dict(db.session.execute(
            select(Resident.id, Resident.user_id).where(Resident.id.in_(ids))).all())
        for rid in ids:
            token = issue_access_token(user_id=users[rid])[0] if tokens else "-"
            lines.append(f"{rid} {token}")
    path = Path(tempfile.mkstemp(prefix="bench-checkin-", suffix=".txt")[1])
    path.write_text("\n".join(lines) + "\n")
    return path


def checkin_wrk(label: str, server: c.Server, path: str, app, event_id: int,  # type: ignore[no-untyped-def]
                ids: list[int], *, mode: str, **kwargs: Any) -> c.WrkResult:
    people = residents_file(app, ids, tokens=mode == "app")
    tag = f"{mode}{time.time_ns()}"
    try:
        result = c.wrk(label, server.url + path, script="checkin.lua",
                       script_args=[path, str(people), mode, current_link(app, event_id), tag,
                                    str(c.THREADS)],
                       server=server, connections=CONNECTIONS, **kwargs)
    finally:
        people.unlink(missing_ok=True)
    result.extra["distinct_residents_available"] = len(ids)
    result.extra["all_distinct"] = result.requests <= len(ids)
    return result


def statements_per_checkin(app, event_id: int, ids: list[int]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Check-ins through the test client: handler time and SQL statements per request."""
    from sqlalchemy import event as sa_event
    from sqlalchemy import select

    from pointsvc.extensions import db
    from pointsvc.people.models import Resident
    from pointsvc.security.tokens import issue_access_token

    with app.app_context():
        users = dict(db.session.execute(
            select(Resident.id, Resident.user_id).where(Resident.id.in_(ids))).all())
        tokens = {rid: issue_access_token(user_id=users[rid])[0] for rid in ids}
        engine = db.engine
    link = current_link(app, event_id)
    counted = {"n": 0}

    def count(*_args: Any) -> None:
        counted["n"] += 1

    client = app.test_client()
    timings = []
    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        for n, rid in enumerate(ids):
            started = time.perf_counter()
            r = client.post("/api/v1/checkins", headers={"Authorization": f"Bearer {tokens[rid]}"},
                            json={"code": link, "nonce": f"inproc-{time.time_ns()}-{n}",
                                  "scanned_at": "2026-06-01T02:00:00+00:00"})
            timings.append((time.perf_counter() - started) * 1000)
            if r.status_code != 201:
                raise RuntimeError(f"check-in: {r.status_code} {r.data!r}")
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    timings.sort()
    return {"p50_ms": round(timings[len(timings) // 2], 2),
            "p99_ms": round(timings[int(len(timings) * 0.99)], 2),
            "sql_statements_per_request": round(counted["n"] / len(ids), 1)}


def main() -> dict:
    with c.bench_database(NAME) as url:
        app = c.make_app(url)
        world = c.seed_world(app, communities=1)
        community = world.communities[0]
        total = SLICE * (APP_SLICES + RAW_SLICES) + 300
        c.log(f"seeding {total} residents")
        ids = c.copy_residents(url, community_ids=[community], per_community=total)
        c.analyze(url)
        app_event = make_event(app, community, world.organizer, "基准签到")
        raw_event = make_event(app, community, world.organizer, "基准签到（基线）")
        slices = [ids[i * SLICE:(i + 1) * SLICE] for i in range(APP_SLICES + RAW_SLICES)]
        inproc_ids = ids[-300:]
        inproc = statements_per_checkin(app, app_event, inproc_ids[:200])
        c.log(f"in-process POST /api/v1/checkins: {inproc}")
        app_slices, raw_slices = iter(slices[:APP_SLICES]), iter(slices[APP_SLICES:])
        raw_env = {"BENCH_DSN": c.psycopg_url(url), "BENCH_QR_MAC_KEY": c._fixed("qr")}
        with c.gunicorn("raw", "bench.baselines.raw_checkin:app", env=raw_env) as raw, \
                c.gunicorn("pointsvc", "wsgi:app", env=c.app_env(url)) as server:
            runs = c.alternate([
                ("raw", lambda: checkin_wrk("raw check-in", raw, "/checkin", app, raw_event,
                                            next(raw_slices), mode="raw")),
                ("app", lambda: checkin_wrk("POST /api/v1/checkins", server, "/api/v1/checkins",
                                            app, app_event, next(app_slices), mode="app")),
            ], rounds=2)
            base, mine = c.median_run(runs["raw"]), c.median_run(runs["app"])
            out = c.RESULTS / f"{NAME}-profile.txt"
            c.RESULTS.mkdir(exist_ok=True)
            spy = threading.Thread(target=c.profile_worker, args=(server, 10, out))
            spy.start()
            checkin_wrk("POST /api/v1/checkins (profiled)", server, "/api/v1/checkins", app,
                        app_event, next(app_slices), mode="app", duration=12)
            spy.join()
            hot = c.top_frames(out, limit=40, package="pointsvc") if out.exists() else []
        ratio = mine.rps / base.rps
        summary = {
            "checkins_per_s": round(mine.rps), "p50_ms": mine.p50_ms, "p99_ms": mine.p99_ms,
            "raw_checkins_per_s": round(base.rps), "raw_p50_ms": base.p50_ms,
            "raw_p99_ms": base.p99_ms, "ratio": round(ratio, 3), "connections": CONNECTIONS,
            "target": ">= 500/s, p99 <= 50 ms", "met": mine.rps >= 500 and mine.p99_ms <= 50,
            "all_requests_distinct_residents": all(r.extra["all_distinct"] for r in runs["app"]),
            "app_rps_rounds": [round(r.rps) for r in runs["app"]],
            "raw_rps_rounds": [round(r.rps) for r in runs["raw"]],
            "app_cpu_ms_per_request": mine.extra.get("worker_cpu_ms_per_request"),
            "raw_cpu_ms_per_request": base.extra.get("worker_cpu_ms_per_request"),
            "in_process_checkin": inproc,
        }
        c.report(NAME, summary, runs["raw"] + runs["app"])
        for frame, share in hot:
            print(f"  {share:6.1%}  {frame}")
        return summary


if __name__ == "__main__":
    main()
