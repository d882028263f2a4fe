"""Attendance pairs, minute crediting, close policy, posting through the ledger, approval."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from pointsvc.events.models import AttendanceLine
from pointsvc.extensions import db
from pointsvc.ledger.models import AuditEvent, LedgerTransaction
from tests.events.conftest import START, checkin, close, code_of, key, make_event
from tests.factories import auth, make_household, make_resident
from tests.ledger.conftest import balance_of, make_rule
from tests.ledger.test_concurrency import race


def scan_at(client, app, world, event_id, resident_user, direction, minutes):
    world.clock.set(START + timedelta(minutes=minutes))
    r = checkin(client, app, resident_user,
                code_of(client, app, world, event_id, direction)["code"])
    assert r.status_code == 201, r.get_json()


def lines(app, event_id):
    with app.app_context():
        result = {line.resident_id: (line.minutes, line.points, line.status) for line in
                  db.session.scalars(select(AttendanceLine)
                                     .where(AttendanceLine.event_id == event_id))}
        db.session.remove()
        return result


def transactions(app):
    with app.app_context():
        rows = db.session.execute(select(LedgerTransaction.reference_type,
                                         LedgerTransaction.reference_id,
                                         LedgerTransaction.quantity,
                                         LedgerTransaction.rule_code)).all()
        db.session.remove()
        return [tuple(row) for row in rows]


def test_reentry_sums_minutes_clipped_to_the_window_and_rounded_down(app, client, world):
    world.clock.set(START - timedelta(minutes=20))
    event = make_event(client, app, world, credit_granularity_minutes=15)
    e = event["id"]
    # in 20 min early (clipped to the start), out at 0:40, back at 1:00, out at 1:34
    scan_at(client, app, world, e, world.resident_user, "in", -20)
    scan_at(client, app, world, e, world.resident_user, "out", 40)
    scan_at(client, app, world, e, world.resident_user, "in", 60)
    scan_at(client, app, world, e, world.resident_user, "out", 94)
    # resident2 stays 14 minutes: below the granularity, no credit
    scan_at(client, app, world, e, world.resident2_user, "in", 100)
    scan_at(client, app, world, e, world.resident2_user, "out", 114)
    world.clock.set(START + timedelta(hours=3))
    preview = client.get(f"/api/v1/events/{e}/attendance", headers=auth(app, world.organizer))
    assert preview.get_json()["items"][0]["status"] == "preview"
    r = close(client, app, world.organizer, e)
    assert r.status_code == 200, r.get_json()
    # 40 + 34 = 74 minutes -> 60 credited -> 10 points; 14 minutes -> 0
    assert lines(app, e) == {world.resident: (60, 10, "posted"),
                             world.resident2: (0, 0, "no_points")}
    assert balance_of(app, world.resident) == 10
    assert transactions(app) == [("event_attendance", f"{e}:{world.resident}", 60,
                                  "volunteer-hour")]


def test_close_policy_for_people_still_inside(app, client, world):
    for policy, expected in (("credit_to_end", (120, 20)), ("no_credit", (0, 0))):
        world.clock.set(START)
        event = make_event(client, app, world, close_policy=policy)
        scan_at(client, app, world, event["id"], world.resident_user, "in", 0)
        world.clock.set(START + timedelta(hours=4))
        assert close(client, app, world.organizer, event["id"]).status_code == 200
        minutes, points, _ = lines(app, event["id"])[world.resident]
        assert (minutes, points) == expected, policy


def test_caps_of_the_event_and_of_the_rule(app, client, world):
    make_rule(app, node_id=world.tree.district, code="capped-hour", points=10, unit="hour",
              cap_day=25)
    world.clock.set(START)
    event = make_event(client, app, world, rule_code="capped-hour", points_cap=15)
    scan_at(client, app, world, event["id"], world.resident_user, "in", 0)
    world.clock.set(START + timedelta(hours=3))
    close(client, app, world.organizer, event["id"])
    assert lines(app, event["id"])[world.resident] == (120, 15, "posted")  # 20 -> event cap 15
    world.clock.set(START)
    second = make_event(client, app, world, rule_code="capped-hour", title="第二场")
    scan_at(client, app, world, second["id"], world.resident_user, "in", 0)
    world.clock.set(START + timedelta(hours=3))
    close(client, app, world.organizer, second["id"])
    assert lines(app, second["id"])[world.resident] == (120, 10, "posted")  # day cap 25 - 15
    assert balance_of(app, world.resident) == 25


def test_per_attendance_rule(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world, rule_code="attend")
    scan_at(client, app, world, event["id"], world.resident_user, "in", 0)
    scan_at(client, app, world, event["id"], world.resident_user, "out", 30)
    world.clock.set(START + timedelta(hours=3))
    close(client, app, world.organizer, event["id"])
    assert lines(app, event["id"])[world.resident] == (30, 5, "posted")
    assert transactions(app)[0][2] == 1


def test_closing_twice_posts_nothing_twice(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world)
    scan_at(client, app, world, event["id"], world.resident_user, "in", 0)
    world.clock.set(START + timedelta(hours=3))
    k = key()
    first = close(client, app, world.organizer, event["id"], k)
    replay = close(client, app, world.organizer, event["id"], k)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.get_json() == first.get_json()
    other_key = close(client, app, world.organizer2, event["id"])
    assert other_key.status_code == 200 and other_key.get_json()["points_posted"] == 20
    assert len(transactions(app)) == 1 and balance_of(app, world.resident) == 20
    # after close nobody can scan
    r = checkin(client, app, world.resident2_user, code_of(client, app, world, event["id"])["code"])
    assert r.get_json()["code"] == "event_closed"


def test_concurrent_closes_post_once(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world)
    for user in (world.resident_user, world.resident2_user):
        scan_at(client, app, world, event["id"], user, "in", 0)
    world.clock.set(START + timedelta(hours=3))

    def one(i):
        r = close(app.test_client(), app, world.organizer if i % 2 else world.organizer2,
                  event["id"])
        return r.status_code

    assert Counter(race(6, one)) == {200: 6}
    assert len(transactions(app)) == 2
    assert balance_of(app, world.resident) == 20 and balance_of(app, world.resident2) == 20


def test_approval_flow_adjust_reject_then_approve(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world, approval_required=True)
    e = event["id"]
    scan_at(client, app, world, e, world.resident_user, "in", 0)
    scan_at(client, app, world, e, world.resident2_user, "in", 0)
    world.clock.set(START + timedelta(hours=3))
    r = close(client, app, world.organizer, e)
    assert r.get_json()["settlement"] == "awaiting_approval"
    assert r.get_json()["points_posted"] == 0 and transactions(app) == []
    url = f"/api/v1/events/{e}/attendance"
    r = client.patch(f"{url}/{world.resident}", json={"minutes": 121, "reason": "多记"},
                     headers=auth(app, world.organizer))
    assert r.status_code == 422 and "minutes" in r.get_json()["errors"]
    r = client.patch(f"{url}/{world.resident}", json={"minutes": 90, "reason": "提前离场"},
                     headers=auth(app, world.organizer))
    assert r.status_code == 200 and r.get_json()["points"] == 15
    r = client.patch(f"{url}/{world.resident2}", json={"rejected": True, "reason": "代签"},
                     headers=auth(app, world.organizer))
    assert r.get_json()["status"] == "rejected"
    assert client.patch(f"{url}/{world.resident2}", json={"rejected": True},
                        headers=auth(app, world.organizer)).status_code == 422  # no reason
    listing = client.get(url, headers=auth(app, world.organizer)).get_json()["items"]
    assert {(i["resident_id"], i["status"]) for i in listing} == {
        (world.resident, "pending"), (world.resident2, "rejected")}
    r = client.post(f"{url}/approve",
                    headers=auth(app, world.organizer2, **{"Idempotency-Key": key()}))
    assert r.status_code == 200 and r.get_json()["points_posted"] == 15
    assert balance_of(app, world.resident) == 15 and balance_of(app, world.resident2) == 0
    assert client.patch(f"{url}/{world.resident}", json={"minutes": 1, "reason": "x"},
                        headers=auth(app, world.organizer)).status_code == 409
    with app.app_context():
        actions = Counter(db.session.scalars(select(AuditEvent.action)))
        db.session.remove()
    assert actions["event.attendance_adjusted"] == 1
    assert actions["event.attendance_rejected"] == 1
    assert actions["event.attendance_approved"] == 1


def test_staff_never_post_their_own_familys_hours(app, client, world):
    household = make_household(app, community_id=world.tree.community_a)
    from pointsvc.people.models import StaffHousehold

    with app.app_context():
        db.session.add(StaffHousehold(user_id=world.organizer, household_id=household))
        db.session.commit()
    family_user, family = make_resident(app, community_id=world.tree.community_a,
                                        household_id=household)
    world.clock.set(START)
    event = make_event(client, app, world)
    scan_at(client, app, world, event["id"], family_user, "in", 0)
    scan_at(client, app, world, event["id"], world.resident_user, "in", 0)
    world.clock.set(START + timedelta(hours=3))
    r = close(client, app, world.organizer, event["id"])
    assert r.get_json()["settlement"] == "awaiting_approval"
    assert lines(app, event["id"])[family][2] == "pending"
    assert balance_of(app, world.resident) == 20 and balance_of(app, family) == 0
    url = f"/api/v1/events/{event['id']}/attendance/approve"
    r = client.post(url, headers=auth(app, world.organizer, **{"Idempotency-Key": key()}))
    assert r.status_code == 403 and r.get_json()["code"] == "self_dealing"
    r = client.post(url, headers=auth(app, world.organizer2, **{"Idempotency-Key": key()}))
    assert r.status_code == 200 and balance_of(app, family) == 20
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LedgerTransaction)) == 2


def test_closing_early_credits_people_inside_only_up_to_the_close(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world)
    scan_at(client, app, world, event["id"], world.resident_user, "in", 0)
    world.clock.set(START + timedelta(minutes=50))  # the rain came: closed after 50 minutes
    assert close(client, app, world.organizer, event["id"]).status_code == 200
    assert lines(app, event["id"])[world.resident] == (45, 7, "posted")
