"""Appeals tests: the ledger's world (two communities, staff, residents, rules) and helpers
that make the decisions residents contest — a deduction, a rejected attendance."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from flask import Flask

from pointsvc.common import utcnow
from tests.events.conftest import Clock, checkin, close, code_of, make_event
from tests.factories import auth
from tests.ledger.conftest import World, award, world  # noqa: F401 (fixture)

_keys = itertools.count(1)


def key() -> str:
    return f"appeal-key-{next(_keys)}"


@pytest.fixture
def clock(app: Flask) -> Clock:
    """The events clock: attendance decisions happen when the test says."""
    c = Clock(utcnow() - timedelta(days=1))
    app.config["EVENTS_CLOCK"] = c
    return c


def deduction(client, app, w: World, *, earned_minutes: int = 120, by: int | None = None
              ) -> int:
    """The resident earns 10 points an hour, then loses 20 for littering; the deduction id."""
    r = award(client, app, w.organizer, w.resident, "volunteer-hour", earned_minutes)
    assert r.status_code == 201, r.get_json()
    r = award(client, app, by or w.organizer, w.resident, "litter")
    assert r.status_code == 201 and r.get_json()["kind"] == "deduction", r.get_json()
    return r.get_json()["id"]


def rejected_attendance(client, app, w: World, clock: Clock, *, approved_at=None) -> int:
    """An approval-required event: the resident attends 2 h, w.organizer rejects the line,
    w.organizer2 approves the rest (at approved_at); the event id."""
    start = (approved_at or utcnow() - timedelta(days=1)) - timedelta(hours=3)
    clock.set(start)
    event = make_event(client, app, w, approval_required=True, starts_at=start.isoformat(),
                       ends_at=(start + timedelta(hours=2)).isoformat())
    e = event["id"]
    r = checkin(client, app, w.resident_user, code_of(client, app, w, e, "in")["code"])
    assert r.status_code == 201, r.get_json()
    clock.set(start + timedelta(hours=3))
    assert close(client, app, w.organizer, e).status_code == 200
    r = client.patch(f"/api/v1/events/{e}/attendance/{w.resident}",
                     json={"rejected": True, "reason": "代签"}, headers=auth(app, w.organizer))
    assert r.status_code == 200 and r.get_json()["status"] == "rejected", r.get_json()
    r = client.post(f"/api/v1/events/{e}/attendance/approve",
                    headers=auth(app, w.organizer2, **{"Idempotency-Key": key()}))
    assert r.status_code == 200, r.get_json()
    return e


def file(client, app, user: int, **body):
    body.setdefault("reason", "我当天没有乱扔垃圾，有邻居可以作证")
    return client.post("/api/v1/appeals", json=body, headers=auth(app, user))


def decide(client, app, user: int, appeal_id: int, outcome: str, reason: str = "复核结论"):
    return client.post(f"/api/v1/appeals/{appeal_id}/decision",
                       json={"outcome": outcome, "reason": reason}, headers=auth(app, user))

