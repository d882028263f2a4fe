"""Service record, roster and attendance CSV, the events tables vs migration 0007, the demo."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from pointsvc.events import models
from pointsvc.events.service import star_level
from pointsvc.extensions import db
from tests.events.conftest import START, checkin, close, code_of, make_event
from tests.factories import auth, make_resident

TABLES = {model.__tablename__ for model in (
    models.Event, models.Signup, models.Scan, models.Attendee, models.AttendanceLine,
    models.ResidentCard, models.KioskLink)}


def _touches(diff: object) -> bool:
    text = repr(diff)
    return any(f"'{name}'" in text or f"table={name!r}" in text for name in TABLES)


def test_events_models_match_the_migration(app):
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, db.metadata)
    assert [d for d in diffs if _touches(d)] == []


def attend(client, app, world, event_id, user, minutes):
    world.clock.set(START)
    checkin(client, app, user, code_of(client, app, world, event_id)["code"])
    world.clock.set(START + timedelta(minutes=minutes))
    checkin(client, app, user, code_of(client, app, world, event_id, "out")["code"])


def test_service_record_lists_events_hours_and_totals(app, client, world):
    world.clock.set(START)
    first = make_event(client, app, world, title="=HYPERLINK(\"x\")")
    attend(client, app, world, first["id"], world.resident_user, 90)
    world.clock.set(START + timedelta(hours=3))
    close(client, app, world.organizer, first["id"])
    world.clock.set(START)
    second = make_event(client, app, world, title="第二场", approval_required=True)
    attend(client, app, world, second["id"], world.resident_user, 60)
    world.clock.set(START + timedelta(hours=3))
    close(client, app, world.organizer, second["id"])
    body = client.get("/api/v1/me/service-record", headers=auth(app, world.resident_user)
                      ).get_json()
    assert {(e["event_id"], e["minutes"], e["status"]) for e in body["events"]} == {
        (first["id"], 90, "posted"), (second["id"], 60, "pending")}
    # only settled lines count as recorded service
    assert body["totals"] == {"events": 1, "minutes": 90, "hours": 1.5, "points": 15,
                              "star_level": 0}
    assert client.get("/api/v1/me/service-record", headers=auth(app, world.organizer)
                      ).status_code == 403
    assert [star_level(h) for h in (99.9, 100, 300, 1499, 1500)] == [0, 1, 2, 4, 5]


def read_csv(response) -> list[list[str]]:
    assert response.mimetype == "text/csv"
    text = response.data.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_roster_and_attendance_csv(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world, capacity=1)
    _, evil = make_resident(app, community_id=world.tree.community_a, name="=cmd|' /C calc'!A0")
    client.post(f"/api/v1/events/{event['id']}/signup", headers=auth(app, world.resident_user))
    client.post(f"/api/v1/events/{event['id']}/signups", json={"resident_id": evil},
                headers=auth(app, world.organizer))
    rows = read_csv(client.get(f"/api/v1/events/{event['id']}/roster?format=csv",
                               headers=auth(app, world.auditor)))
    assert rows[0][:3] == ["resident_id", "name", "status"]
    assert rows[1][1:3] == ["张小明", "confirmed"]
    assert rows[2][1].startswith("'=") and rows[2][2:4] == ["waitlisted", "1"]
    attend(client, app, world, event["id"], world.resident_user, 45)
    rows = read_csv(client.get(f"/api/v1/events/{event['id']}/attendance?format=csv",
                               headers=auth(app, world.organizer)))
    assert rows[1][0] == str(world.resident) and rows[1][6] == "45" and rows[1][9] == "preview"
    assert client.get(f"/api/v1/events/{event['id']}/attendance?format=csv",
                      headers=auth(app, world.organizer_b)).status_code == 403
    assert client.get(f"/api/v1/events/{event['id']}/roster",
                      headers=auth(app, world.resident_user)).status_code == 403


def test_demo_seeds_a_past_event_with_points_and_an_upcoming_one(app, client):
    from pointsvc.demo import EXTRA_SEEDERS, seed_demo
    from pointsvc.events.demo import seed_events
    from pointsvc.ledger.demo import seed_ledger
    from pointsvc.ledger.models import LedgerTransaction

    with app.app_context():
        context = seed_demo()
    order = list(dict.fromkeys(EXTRA_SEEDERS))
    assert order.index(seed_events) > order.index(seed_ledger)
    with app.app_context():
        past = db.session.get(models.Event, context["event_ids"]["past"])
        assert (past.status, past.settlement) == ("closed", "posted")
        lines = list(db.session.scalars(select(models.AttendanceLine)
                                        .where(models.AttendanceLine.event_id == past.id)))
        assert len(lines) == 8 and sum(1 for line in lines if line.status == "posted") >= 6
        posted = db.session.scalars(select(LedgerTransaction.reference_id).where(
            LedgerTransaction.reference_type == "event_attendance")).all()
        assert len(posted) == sum(1 for line in lines if line.status == "posted")
        upcoming = db.session.get(models.Event, context["event_ids"]["upcoming"])
        assert upcoming.status == "published" and upcoming.confirmed_count == 4
        db.session.remove()
    token = client.post("/api/v1/auth/token", json={"username": "13800000001",
                                                    "password": "resident-demo-2026"}
                        ).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    titles = {e["title"] for e in client.get("/api/v1/events", headers=headers)
              .get_json()["items"]}
    assert "关爱独居老人：重阳节走访" in titles
    record = client.get("/api/v1/me/service-record", headers=headers).get_json()
    assert record["totals"]["minutes"] > 0
