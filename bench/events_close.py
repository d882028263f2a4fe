"""Closing an event with 2,000 attendees: attendance computed and 2,000 awards posted.

Seeds 2,000 residents who each scanned in and out (some twice, some still inside: the close
policy credits them to the end), rows COPY'd into event_scans and event_attendees, for three
identical events, and times each close in-process (no HTTP server, no queueing):
  1. the first award these residents ever get (close_event + commit): post opens 2,000
     resident accounts;
  2. POST /api/v1/events/{id}/close through the test client, accounts already open (the
     usual case: residents who earned points before);
  3. the same, the event's rule having a daily cap (each line reserves room under it).
Target (issue #4): <= 2 s.

`python -m bench.run events_close`
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from . import common as c

NAME = "events_close"
ATTENDEES = 2000


def seed_event(app, url: str, world, resident_ids: list[int], *, rule_code: str,  # type: ignore[no-untyped-def]
               title: str) -> int:
    import psycopg

    from pointsvc.common import utcnow
    from pointsvc.events import service

    with app.app_context():
        now = utcnow()
        event = service.create_event(org_node_id=world.communities[0],
                                     actor_user_id=world.organizer, values={
            "title": title, "category": "volunteer", "rule_code": rule_code,
            "starts_at": now - timedelta(hours=3), "ends_at": now - timedelta(minutes=30),
            "place": "基准社区活动中心", "points_cap": 40})
        service.publish_event(event_id=event.id, actor_user_id=world.organizer)
        event_id, start = event.id, now - timedelta(hours=3)
    rng = random.Random(event_id)
    scans, attendees = [], []
    for n, rid in enumerate(resident_ids):
        entry = start + timedelta(minutes=rng.randrange(-10, 40))
        times = [("in", entry), ("out", entry + timedelta(minutes=rng.randrange(30, 120)))]
        if n % 5 == 0:  # re-entry
            back = times[-1][1] + timedelta(minutes=10)
            times += [("in", back), ("out", back + timedelta(minutes=15))]
        if n % 17 == 0:  # still inside at the close
            times = times[:1]
        for k, (direction, at) in enumerate(times):
            scans.append((event_id, rid, direction, "code", service.step_of(at), at, at,
                          at, f"r:{rid}", f"bench-{event_id}-{rid}-{k}", rid, False))
        attendees.append((event_id, rid, times[-1][0] == "in", entry, times[-1][1]))
    with psycopg.connect(c.psycopg_url(url)) as conn:
        with conn.cursor().copy(
                "COPY event_scans (event_id, resident_id, direction, source, step, at, "
                "scanned_at, received_at, nonce_scope, nonce, actor_user_id, offline) "
                "FROM STDIN") as cp:
            for row in scans:
                cp.write_row(row)
        with conn.cursor().copy(
                "COPY event_attendees (event_id, resident_id, inside, first_in_at, last_at) "
                "FROM STDIN") as cp:
            for row in attendees:
                cp.write_row(row)
        conn.commit()
    return event_id


def main() -> dict:
    from pointsvc.events import service
    from pointsvc.extensions import db
    from pointsvc.ledger import rules as rulebook

    with c.bench_database(NAME) as url:
        app = c.make_app(url)
        world = c.seed_world(app, communities=1)
        with app.app_context():
            rulebook.create_rule(org_node_id=world.district, actor_user_id=None, values={
                "code": "capped-hour", "title_zh": "志愿服务（限额）", "title_en": "Capped hour",
                "category": "volunteer", "points": 10, "unit": "hour", "cap_day": 80})
        ids = c.copy_residents(url, community_ids=world.communities, per_community=ATTENDEES)
        c.open_accounts(app, ids[:10])  # most accounts are opened by the close itself
        first = seed_event(app, url, world, ids, rule_code="volunteer-hour", title="结束基准")
        second = seed_event(app, url, world, ids, rule_code="volunteer-hour", title="结束基准二")
        capped = seed_event(app, url, world, ids, rule_code="capped-hour", title="结束基准（限额）")
        c.analyze(url)
        with app.app_context():
            started = time.perf_counter()
            _, summary_first = service.close_event(event_id=first, actor_user_id=world.organizer)
            db.session.commit()
            new_accounts_seconds = time.perf_counter() - started
            db.session.remove()
        token = c.token(app, world.organizer)

        def close_http(event_id: int) -> tuple[float, dict]:
            started = time.perf_counter()
            r = app.test_client().post(f"/api/v1/events/{event_id}/close", headers={
                "Authorization": f"Bearer {token}",
                "Idempotency-Key": f"close-{time.time_ns()}"})
            if r.status_code != 200:
                raise RuntimeError(f"close: {r.status_code} {r.data[:300]!r}")
            return time.perf_counter() - started, r.get_json()

        open_seconds, summary_second = close_http(second)
        capped_seconds, summary_capped = close_http(capped)
        repeat_seconds, again = close_http(second)
        assert again["points_posted"] == summary_second["points_posted"]

        def posted(body: dict) -> int:
            return body["by_status"].get("posted", {}).get("lines", 0)

        summary = {
            "attendees": ATTENDEES,
            "close_s_accounts_already_open": round(open_seconds, 3),
            "close_s_first_award_opens_2000_accounts": round(new_accounts_seconds, 3),
            "close_s_rule_with_daily_cap": round(capped_seconds, 3),
            "second_close_s": round(repeat_seconds, 3),
            "posted_lines": [posted(summary_first), posted(summary_second),
                             posted(summary_capped)],
            "points_posted": summary_second["points_posted"],
            "target": "<= 2 s", "met_accounts_open": open_seconds <= 2,
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        c.report(NAME, summary)
        return summary


if __name__ == "__main__":
    main()
