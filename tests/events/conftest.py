"""A world for event tests: two communities, staff, residents, a volunteer-hour rule, a clock."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from tests.factories import Tree, auth, make_resident, make_tree, make_user
from tests.ledger.conftest import make_rule

_n = itertools.count(1)
# 2026-06-01 10:00 in Shanghai: the events below run 10:00-12:00 local time.
START = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


def nonce() -> str:
    return f"nonce-{next(_n):08d}"


def key() -> str:
    return f"events-key-{next(_n)}"


class Clock:
    """A settable clock the events service reads instead of the wall clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now

    def advance(self, **delta: float) -> None:
        self.now = self.now + timedelta(**delta)


@dataclass
class World:
    tree: Tree
    admin: int
    organizer: int
    organizer2: int
    auditor: int
    organizer_b: int
    resident_user: int
    resident: int
    resident2_user: int
    resident2: int
    resident_b_user: int
    resident_b: int
    clock: Clock


@pytest.fixture
def world(app: Flask) -> World:
    tree = make_tree(app)
    w = World(
        tree=tree,
        admin=make_user(app, role="admin", node_id=tree.district, name="区管理员"),
        organizer=make_user(app, role="organizer", node_id=tree.community_a, name="甲组织者"),
        organizer2=make_user(app, role="organizer", node_id=tree.community_a, name="甲复核"),
        auditor=make_user(app, role="auditor", node_id=tree.community_a, name="甲审计"),
        organizer_b=make_user(app, role="organizer", node_id=tree.community_b, name="乙组织者"),
        resident_user=0, resident=0, resident2_user=0, resident2=0, resident_b_user=0,
        resident_b=0, clock=Clock(START - timedelta(minutes=5)),
    )
    w.resident_user, w.resident = make_resident(app, community_id=tree.community_a,
                                                name="张小明")
    w.resident2_user, w.resident2 = make_resident(app, community_id=tree.community_a,
                                                  name="李华")
    w.resident_b_user, w.resident_b = make_resident(app, community_id=tree.community_b,
                                                    name="王芳")
    make_rule(app, node_id=tree.district, code="volunteer-hour", points=10, unit="hour")
    make_rule(app, node_id=tree.district, code="attend", points=5, unit="action")
    app.config["EVENTS_CLOCK"] = w.clock
    return w


def make_event(client, app, world: World, *, publish: bool = True, node_id: int | None = None,
               organizer: int | None = None, **values) -> dict:
    body = {"org_node_id": node_id or world.tree.community_a, "title": "社区清洁日",
            "category": "volunteer", "rule_code": "volunteer-hour",
            "starts_at": START.isoformat(), "ends_at": (START + timedelta(hours=2)).isoformat(),
            "place": "甲社区活动中心", **values}
    organizer = organizer or world.organizer
    r = client.post("/api/v1/events", json=body, headers=auth(app, organizer))
    assert r.status_code == 201, r.get_json()
    event = r.get_json()
    if publish:
        r = client.post(f"/api/v1/events/{event['id']}/publish", headers=auth(app, organizer))
        assert r.status_code == 200, r.get_json()
        event = r.get_json()
    return event


def code_of(client, app, world: World, event_id: int, direction: str = "in",
            organizer: int | None = None) -> dict:
    r = client.get(f"/api/v1/events/{event_id}/checkin-code?direction={direction}",
                   headers=auth(app, organizer or world.organizer))
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def checkin(client, app, resident_user: int, code: str, *, nonce_: str | None = None,
            **extra):
    body = {"code": code, "nonce": nonce_ or nonce(),
            "scanned_at": datetime.now(UTC).isoformat(), **extra}
    return client.post("/api/v1/checkins", json=body, headers=auth(app, resident_user))


def scan_card(client, app, staff: int, event_id: int, card_code: str, direction: str = "in",
              *, nonce_: str | None = None):
    return client.post(f"/api/v1/events/{event_id}/attendance/scans",
                       json={"card_code": card_code, "direction": direction,
                             "nonce": nonce_ or nonce(),
                             "scanned_at": datetime.now(UTC).isoformat()},
                       headers=auth(app, staff))


def close(client, app, staff: int, event_id: int, key_: str | None = None):
    return client.post(f"/api/v1/events/{event_id}/close",
                       headers=auth(app, staff, **{"Idempotency-Key": key_ or key()}))
