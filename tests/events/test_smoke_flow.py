"""End to end: an organiser's event, residents scanning in and out, close, points, record."""

from __future__ import annotations

from datetime import timedelta

from tests.events.conftest import START, checkin, close, code_of, make_event
from tests.factories import auth
from tests.ledger.conftest import balance_of


def test_scan_in_and_out_then_close_posts_hours(app, client, world):
    event = make_event(client, app, world)
    world.clock.set(START)
    r = checkin(client, app, world.resident_user, code_of(client, app, world, event["id"])["url"])
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["duplicate"] is False
    world.clock.set(START + timedelta(minutes=100))
    out = code_of(client, app, world, event["id"], "out")["code"]
    r = checkin(client, app, world.resident_user, out)
    assert r.status_code == 201, r.get_json()
    world.clock.set(START + timedelta(hours=3))
    r = close(client, app, world.organizer, event["id"])
    assert r.status_code == 200, r.get_json()
    summary = r.get_json()
    assert summary["attendees"] == 1 and summary["points_posted"] == 15  # 90 min x 10/h
    assert balance_of(app, world.resident) == 15
    record = client.get("/api/v1/me/service-record", headers=auth(app, world.resident_user))
    assert record.get_json()["totals"]["minutes"] == 90
