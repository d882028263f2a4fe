"""Events lifecycle, listing and scope; sign-ups, the wait-list and promotion under races."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from pointsvc.events.models import Event, Signup
from pointsvc.extensions import db
from tests.events.conftest import START, make_event
from tests.factories import auth, make_resident
from tests.ledger.test_concurrency import race


def test_lifecycle_draft_published_closed_or_cancelled(app, client, world):
    event = make_event(client, app, world, publish=False)
    assert event["status"] == "draft"
    url = f"/api/v1/events/{event['id']}"
    r = client.post(f"{url}/publish", headers=auth(app, world.organizer))
    assert r.status_code == 200 and r.get_json()["status"] == "published"
    r = client.post(f"{url}/publish", headers=auth(app, world.organizer))
    assert r.status_code == 409 and r.get_json()["code"] == "invalid_state"
    r = client.post(f"{url}/cancel", headers=auth(app, world.organizer))
    assert r.get_json()["status"] == "cancelled"
    r = client.patch(url, json={"title": "改名"}, headers=auth(app, world.organizer))
    assert r.status_code == 409


def test_create_validates_times_rule_and_geofence(app, client, world):
    base = {"org_node_id": world.tree.community_a, "title": "t", "category": "volunteer",
            "rule_code": "volunteer-hour", "starts_at": START.isoformat(),
            "ends_at": (START + timedelta(hours=1)).isoformat(), "place": "p"}
    bad = [({"ends_at": START.isoformat()}, "ends_at"),
           ({"latitude": 30.0}, "radius_m"),
           ({"starts_at": "2026-06-01T02:00:00"}, "starts_at"),
           ({"capacity": 0}, "capacity"),
           ({"category": "party"}, "category")]
    for change, field in bad:
        r = client.post("/api/v1/events", json={**base, **change},
                        headers=auth(app, world.organizer))
        assert r.status_code == 422 and field in r.get_json()["errors"], (change, r.get_json())
    r = client.post("/api/v1/events", json={**base, "rule_code": "no-such-rule"},
                    headers=auth(app, world.organizer))
    assert r.status_code == 422 and r.get_json()["code"] == "rule_not_found"


def test_scope_staff_of_b_and_auditors(app, client, world):
    event = make_event(client, app, world)
    url = f"/api/v1/events/{event['id']}"
    assert client.get(url, headers=auth(app, world.organizer_b)).status_code == 403
    assert client.patch(url, json={"title": "x"}, headers=auth(app, world.organizer_b)
                        ).status_code == 403
    assert client.get(url, headers=auth(app, world.auditor)).status_code == 200
    assert client.post(f"{url}/cancel", headers=auth(app, world.auditor)).status_code == 403
    r = client.post("/api/v1/events", json={"org_node_id": world.tree.community_b},
                    headers=auth(app, world.organizer))
    assert r.status_code in (403, 422)
    assert client.get(url, headers=auth(app, world.resident_b_user)).status_code == 403


def test_residents_list_published_events_of_their_community_and_above(app, client, world):
    mine = make_event(client, app, world, title="社区")
    street = make_event(client, app, world, title="街道", node_id=world.tree.street,
                        organizer=world.admin)
    make_event(client, app, world, title="乙社区", node_id=world.tree.community_b,
               organizer=world.organizer_b)
    make_event(client, app, world, title="草稿", publish=False)
    r = client.get("/api/v1/events?limit=1", headers=auth(app, world.resident_user))
    first = r.get_json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    r = client.get(f"/api/v1/events?limit=5&cursor={first['next_cursor']}",
                   headers=auth(app, world.resident_user))
    ids = {item["id"] for item in first["items"] + r.get_json()["items"]}
    assert ids == {mine["id"], street["id"]}
    staff = client.get("/api/v1/events", headers=auth(app, world.organizer)).get_json()
    assert {item["title"] for item in staff["items"]} == {"社区", "草稿"}


def _signup(app, user):
    def go(client, event_id):
        return client.post(f"/api/v1/events/{event_id}/signup", headers=auth(app, user))
    return go


def test_signup_waitlist_and_promotion(app, client, world):
    event = make_event(client, app, world, capacity=1, signup_required=True)
    url = f"/api/v1/events/{event['id']}"
    r = client.post(f"{url}/signup", headers=auth(app, world.resident_user))
    assert r.status_code == 201 and r.get_json()["status"] == "confirmed"
    again = client.post(f"{url}/signup", headers=auth(app, world.resident_user))
    assert again.status_code == 200 and again.get_json()["status"] == "confirmed"
    r = client.post(f"{url}/signup", headers=auth(app, world.resident2_user))
    assert r.get_json() | {} and r.get_json()["status"] == "waitlisted"
    assert r.get_json()["position"] == 1
    # staff sign up a resident without a smartphone: second on the wait-list
    _, third = make_resident(app, community_id=world.tree.community_a, name="赵奶奶")
    r = client.post(f"{url}/signups", json={"resident_id": third},
                    headers=auth(app, world.organizer))
    assert r.status_code == 201 and r.get_json()["position"] == 2
    # the first cancels: the first on the wait-list gets the place
    r = client.delete(f"{url}/signup", headers=auth(app, world.resident_user))
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled"
    mine = client.get(url, headers=auth(app, world.resident2_user)).get_json()["my_signup"]
    assert mine["status"] == "confirmed" and mine["promoted_at"]
    roster = client.get(f"{url}/roster", headers=auth(app, world.organizer)).get_json()["items"]
    assert [(i["resident_id"], i["status"], i["position"]) for i in roster] == [
        (world.resident2, "confirmed", None), (third, "waitlisted", 1),
        (world.resident, "cancelled", None)]
    # residents of B may not sign up for A's event
    r = client.post(f"{url}/signup", headers=auth(app, world.resident_b_user))
    assert r.status_code == 403
    # more capacity promotes
    r = client.patch(url, json={"capacity": 3}, headers=auth(app, world.organizer))
    assert r.status_code == 200 and r.get_json()["confirmed_count"] == 2
    r = client.patch(url, json={"capacity": 1}, headers=auth(app, world.organizer))
    assert r.status_code == 422


def test_100_simultaneous_signups_for_10_places(app, client, world):
    event = make_event(client, app, world, capacity=10, signup_required=True)
    residents = [make_resident(app, community_id=world.tree.community_a) for _ in range(100)]

    def one(i):
        r = app.test_client().post(f"/api/v1/events/{event['id']}/signup",
                                   headers=auth(app, residents[i][0]))
        assert r.status_code == 201, r.get_json()
        return r.get_json()

    results = race(100, one)
    assert Counter(r["status"] for r in results) == {"confirmed": 10, "waitlisted": 90}
    positions = sorted(r["position"] for r in results if r["status"] == "waitlisted")
    assert positions == list(range(1, 91))
    with app.app_context():
        assert db.session.get(Event, event["id"]).confirmed_count == 10
        waiting = list(db.session.scalars(
            select(Signup.resident_id).where(Signup.event_id == event["id"],
                                             Signup.status == "waitlisted")
            .order_by(Signup.queue_seq)))
        db.session.remove()
    by_resident = {r["resident_id"]: r for r in results}
    assert [by_resident[rid]["position"] for rid in waiting] == list(range(1, 91))
    # ten confirmed residents cancel at once: exactly the first ten waiting get their places
    confirmed = [r["resident_id"] for r in results if r["status"] == "confirmed"]
    users = {rid: uid for uid, rid in residents}

    def cancel(i):
        r = app.test_client().delete(f"/api/v1/events/{event['id']}/signup",
                                     headers=auth(app, users[confirmed[i]]))
        assert r.status_code == 200, r.get_json()

    race(10, cancel)
    with app.app_context():
        now_confirmed = set(db.session.scalars(
            select(Signup.resident_id).where(Signup.event_id == event["id"],
                                             Signup.status == "confirmed")))
        assert db.session.get(Event, event["id"]).confirmed_count == 10
        db.session.remove()
    assert now_confirmed == set(waiting[:10])
