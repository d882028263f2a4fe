"""Resident check-in and check-out: every reason code, replays, window edges, clock skew."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from pointsvc.codes import CARD, CHECKIN, MERCHANT, PAYCODE, issue_code
from pointsvc.events.service import STEP_SECONDS, step_of
from tests.events.conftest import START, checkin, code_of, make_event, nonce
from tests.factories import auth
from tests.ledger.test_concurrency import race


def reason(r) -> str:
    assert r.status_code >= 400, r.get_json()
    assert r.mimetype == "application/problem+json"
    return r.get_json()["code"]


def issue(app, event_id: int, direction: int, step: int) -> str:
    with app.app_context():
        return issue_code(CHECKIN, event_id=event_id, direction=direction, step=step)


@pytest.fixture
def event(app, client, world):
    world.clock.set(START)
    return make_event(client, app, world)


def test_token_or_link_checks_in_and_a_repeat_is_a_duplicate(app, client, world, event):
    code = code_of(client, app, world, event["id"])
    assert code["url"] == f"HTTPS://POINTS.EXAMPLE.CN/K/{code['code']}"
    first = checkin(client, app, world.resident_user, code["url"])
    assert first.status_code == 201 and first.get_json()["duplicate"] is False
    # The same code again (another nonce: a double tap) and the same scan again (same nonce)
    again = checkin(client, app, world.resident_user, code["code"])
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    n = nonce()
    world.clock.advance(seconds=STEP_SECONDS)
    fresh = code_of(client, app, world, event["id"], "out")
    r1 = checkin(client, app, world.resident_user, fresh["code"], nonce_=n)
    r2 = checkin(client, app, world.resident_user, fresh["code"], nonce_=n)
    assert r1.status_code == 201 and r2.status_code == 200
    assert r2.get_json()["duplicate"] is True and r2.get_json()["scan_id"] == r1.get_json()[
        "scan_id"]
    # Another resident may scan the same code: it is shown to everyone on the screen.
    assert checkin(client, app, world.resident2_user, code["code"]).status_code == 201
    r = client.get(f"/api/v1/events/{event['id']}", headers=auth(app, world.organizer))
    assert r.get_json()["inside_count"] == 1


def test_a_nonce_reused_for_another_scan_is_refused(app, client, world, event):
    n = nonce()
    code_in = code_of(client, app, world, event["id"])["code"]
    assert checkin(client, app, world.resident_user, code_in, nonce_=n).status_code == 201
    code_out = code_of(client, app, world, event["id"], "out")["code"]
    r = checkin(client, app, world.resident_user, code_out, nonce_=n)
    assert r.status_code == 409 and reason(r) == "nonce_reused"


def test_steps_at_the_edge_of_the_window(app, client, world, event):
    now_step = step_of(world.clock())
    for offset, expected in ((-2, "expired"), (2, "not_yet_valid")):
        r = checkin(client, app, world.resident_user, issue(app, event["id"], 0, now_step + offset))
        assert reason(r) == expected
    assert checkin(client, app, world.resident_user,
                   issue(app, event["id"], 0, now_step + 1)).status_code == 201
    assert checkin(client, app, world.resident2_user,
                   issue(app, event["id"], 0, now_step - 1)).status_code == 201


def test_a_shown_code_stays_good_until_its_expiry_and_not_after(app, client, world, event):
    code = code_of(client, app, world, event["id"])
    world.clock.set(START.replace(second=0) + timedelta(seconds=STEP_SECONDS * 2 - 1))
    assert world.clock() < START + timedelta(seconds=60)
    assert checkin(client, app, world.resident_user, code["code"]).status_code == 201
    world.clock.set(START + timedelta(seconds=STEP_SECONDS * 2))
    assert reason(checkin(client, app, world.resident2_user, code["code"])) == "expired"


def test_the_phones_clock_does_not_matter_online(app, client, world, event):
    code = code_of(client, app, world, event["id"])["code"]
    skewed = (START - timedelta(hours=5)).isoformat()
    r = checkin(client, app, world.resident_user, code, scanned_at=skewed)
    assert r.status_code == 201
    assert r.get_json()["at"] == START.isoformat()  # the server's clock, not the phone's


def test_a_code_of_another_event(app, client, world, event):
    other = make_event(client, app, world, title="另一个活动")
    code = code_of(client, app, world, other["id"])["code"]
    r = checkin(client, app, world.resident_user, code, event_id=event["id"])
    assert r.status_code == 422 and reason(r) == "wrong_event"
    # an event of community B is not open to a resident of A
    b_event = make_event(client, app, world, node_id=world.tree.community_b,
                         organizer=world.organizer_b)
    code_b = code_of(client, app, world, b_event["id"], organizer=world.organizer_b)["code"]
    assert reason(checkin(client, app, world.resident_user, code_b)) == "wrong_event"
    assert checkin(client, app, world.resident_b_user, code_b).status_code == 201


def test_other_code_types_are_wrong_type_and_forgeries_invalid(app, client, world, event):
    with app.app_context():
        others = [issue_code(CARD, resident_id=world.resident, serial=1),
                  issue_code(PAYCODE, resident_id=world.resident, nonce=b"\x01" * 6, step=1),
                  issue_code(MERCHANT, merchant_id=1, version=1)]
    for text in others:
        assert reason(checkin(client, app, world.resident_user, text)) == "wrong_type"
    good = code_of(client, app, world, event["id"])["code"]
    flipped = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    for text in (flipped, good[:-1], "HTTPS://EVIL.EXAMPLE/K/" + good, "nonsense",
                 issue(app, 999_999, 0, step_of(world.clock()))):
        assert reason(checkin(client, app, world.resident_user, text)) == "invalid", text


def test_not_checked_in_and_checking_out_twice(app, client, world, event):
    out = code_of(client, app, world, event["id"], "out")["code"]
    r = checkin(client, app, world.resident_user, out)
    assert r.status_code == 409 and reason(r) == "not_checked_in"
    assert checkin(client, app, world.resident_user,
                   code_of(client, app, world, event["id"])["code"]).status_code == 201
    world.clock.advance(minutes=5)
    out = code_of(client, app, world, event["id"], "out")["code"]
    assert checkin(client, app, world.resident_user, out).status_code == 201
    world.clock.advance(minutes=1)
    out = code_of(client, app, world, event["id"], "out")["code"]
    r = checkin(client, app, world.resident_user, out)
    assert r.status_code == 200 and r.get_json()["duplicate"] is True


def test_event_closed_and_not_yet_open(app, client, world):
    world.clock.set(START - timedelta(minutes=31))
    event = make_event(client, app, world)
    code = code_of(client, app, world, event["id"])["code"]
    assert reason(checkin(client, app, world.resident_user, code)) == "not_yet_valid"
    world.clock.set(START - timedelta(minutes=30))
    assert checkin(client, app, world.resident_user,
                   code_of(client, app, world, event["id"])["code"]).status_code == 201
    # after the end nobody checks in; check-out stays open for the grace period
    world.clock.set(START + timedelta(hours=2, seconds=1))
    assert reason(checkin(client, app, world.resident2_user,
                          code_of(client, app, world, event["id"])["code"])) == "event_closed"
    world.clock.set(START + timedelta(hours=3))
    assert checkin(client, app, world.resident_user, code_of(
        client, app, world, event["id"], "out")["code"]).status_code == 201
    draft = make_event(client, app, world, publish=False)
    assert reason(checkin(client, app, world.resident_user,
                          code_of(client, app, world, draft["id"])["code"])) == "event_closed"


def test_not_signed_up(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world, signup_required=True, capacity=1)
    code = code_of(client, app, world, event["id"])["code"]
    r = checkin(client, app, world.resident_user, code)
    assert r.status_code == 403 and reason(r) == "not_signed_up"
    assert client.post(f"/api/v1/events/{event['id']}/signup",
                       headers=auth(app, world.resident_user)).status_code == 201
    r = client.post(f"/api/v1/events/{event['id']}/signup", headers=auth(app, world.resident2_user))
    assert r.get_json()["status"] == "waitlisted"
    assert checkin(client, app, world.resident_user, code).status_code == 201
    # wait-listed is not signed up
    assert reason(checkin(client, app, world.resident2_user, code)) == "not_signed_up"


def test_outside_geofence(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world, latitude=30.2084, longitude=120.2119, radius_m=100)
    code = code_of(client, app, world, event["id"])["code"]
    assert reason(checkin(client, app, world.resident_user, code)) == "outside_geofence"
    far = checkin(client, app, world.resident_user, code, latitude=30.2200, longitude=120.2119)
    assert reason(far) == "outside_geofence"  # about 1.3 km north
    near = checkin(client, app, world.resident_user, code, latitude=30.2092, longitude=120.2119)
    assert near.status_code == 201  # about 90 m


def test_overlapping_event(app, client, world, event):
    other = make_event(client, app, world, title="同时段活动")
    assert checkin(client, app, world.resident_user,
                   code_of(client, app, world, event["id"])["code"]).status_code == 201
    r = checkin(client, app, world.resident_user, code_of(client, app, world, other["id"])["code"])
    assert r.status_code == 409 and reason(r) == "overlapping_event"
    checkin(client, app, world.resident_user, code_of(client, app, world, event["id"], "out")[
        "code"])
    assert checkin(client, app, world.resident_user,
                   code_of(client, app, world, other["id"])["code"]).status_code == 201


def test_rate_limited(app, client, world, event):
    app.config["EVENT_SCANS_PER_MINUTE"] = 3
    # three scans within one minute, each in a fresh (direction, step)
    for direction, seconds in (("in", 5), ("out", 35), ("in", 50)):
        world.clock.set(START + timedelta(seconds=seconds))
        r = checkin(client, app, world.resident_user,
                    code_of(client, app, world, event["id"], direction)["code"])
        assert r.status_code == 201, r.get_json()
    r = checkin(client, app, world.resident_user, code_of(client, app, world, event["id"], "out")[
        "code"])
    assert r.status_code == 429 and reason(r) == "rate_limited"
    assert r.headers["Retry-After"] == "60"
    world.clock.set(START + timedelta(seconds=116))
    assert checkin(client, app, world.resident_user, code_of(
        client, app, world, event["id"], "out")["code"]).status_code == 201


def test_bad_input_is_a_clear_422(app, client, world, event):
    code = code_of(client, app, world, event["id"])["code"]
    for body in ({"code": code}, {"code": code, "nonce": "short", "scanned_at": "x"},
                 {"code": code, "nonce": nonce(), "scanned_at": "2026-06-01T02:00:00"},
                 {"code": "", "nonce": nonce(), "scanned_at": START.isoformat()},
                 {"code": code, "nonce": nonce(), "scanned_at": START.isoformat(), "x": 1}):
        r = client.post("/api/v1/checkins", json=body, headers=auth(app, world.resident_user))
        assert r.status_code == 422 and r.get_json()["code"] == "validation_failed", body
    assert client.post("/api/v1/checkins", json={}, headers=auth(app, world.organizer)
                       ).status_code == 403


def test_concurrent_double_scans_count_once(app, client, world, event):
    code = code_of(client, app, world, event["id"])["code"]

    def one(_):
        r = checkin(app.test_client(), app, world.resident_user, code)
        return r.status_code, r.get_json().get("duplicate")

    outcomes = Counter(race(8, one))
    assert outcomes == {(201, False): 1, (200, True): 7}
    with app.app_context():
        from sqlalchemy import func, select

        from pointsvc.events.models import Scan
        from pointsvc.extensions import db

        assert db.session.scalar(select(func.count()).select_from(Scan)) == 1


def test_the_check_in_path_stays_lean(app, client, world, event):
    """A check-in reads and writes with a handful of statements (no ORM loads), whatever
    the event's size: authentication, one SELECT of facts, the scan and the state."""
    from sqlalchemy import event as sa_event

    from pointsvc.extensions import db

    code = code_of(client, app, world, event["id"])["code"]
    headers = auth(app, world.resident_user)
    with app.app_context():
        engine = db.engine
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement.split()[0].upper())

    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        r = client.post("/api/v1/checkins", headers=headers,
                        json={"code": code, "nonce": nonce(), "scanned_at": START.isoformat()})
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
    assert r.status_code == 201
    # Authentication sends at most two SELECTs (none when the worker has the principal
    # cached); then the facts, then the scan and the state: one statement on PostgreSQL
    # (CTEs), two on SQLite (after its BEGIN IMMEDIATE).
    mine = ["SELECT", "WITH"] if engine.dialect.name == "postgresql" else [
        "SELECT", "INSERT", "INSERT"]
    assert statements[-len(mine):] == mine, statements
    auth_part = [s for s in statements[:-len(mine)] if s != "BEGIN"]
    assert auth_part in ([], ["SELECT"], ["SELECT", "SELECT"]), statements
