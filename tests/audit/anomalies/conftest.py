"""A world for anomaly tests: two communities, staff on each, five residents in A, rules."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from tests.factories import Tree, auth, make_resident, make_tree, make_user
from tests.ledger.conftest import make_rule

_keys = itertools.count(1)
URL = "/api/v1/audit/anomalies"


def new_key() -> str:
    return f"anomaly-key-{next(_keys)}"


@dataclass
class World:
    tree: Tree
    admin: int
    organizer: int
    organizer2: int
    auditor: int
    organizer_b: int
    auditor_b: int
    residents: list[tuple[int, int]] = field(default_factory=list)  # (user id, resident id) in A
    resident_b: tuple[int, int] = (0, 0)


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
        auditor_b=make_user(app, role="auditor", node_id=tree.community_b, name="乙审计"),
    )
    w.residents = [make_resident(app, community_id=tree.community_a, name=f"居民{i}")
                   for i in range(5)]
    w.resident_b = make_resident(app, community_id=tree.community_b, name="王芳")
    # No caps: the tests plant many awards to one resident in one day.
    make_rule(app, node_id=tree.district, code="sorting", points=5, category="environment")
    make_rule(app, node_id=tree.district, code="volunteer-hour", points=10, unit="hour")
    return w


def award(client, app, actor: int, resident: int, code: str | None = "sorting",
          quantity: int | None = 1, **extra):
    body = {"resident_id": resident, **extra}
    if code is not None:
        body.update(rule_code=code, quantity=quantity)
    return client.post("/api/v1/awards", json=body,
                       headers=auth(app, actor, **{"Idempotency-Key": new_key()}))


def anomalies(client, app, user: int, *, lang: str | None = None, **params):
    headers = auth(app, user)
    if lang:
        headers["Accept-Language"] = lang
    return client.get(URL, query_string=params, headers=headers)


def items_of(response, detector: str | None = None) -> list[dict]:
    assert response.status_code == 200, response.get_json()
    items = response.get_json()["items"]
    return [item for item in items if detector is None or item["detector"] == detector]


def around(moment: datetime, hours: int = 12) -> dict[str, str]:
    """A from/to window around a moment, as query parameters."""
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return {"from": (moment - timedelta(hours=hours)).astimezone(UTC).strftime(fmt),
            "to": (moment + timedelta(hours=hours)).astimezone(UTC).strftime(fmt)}


def today() -> dict[str, str]:
    return around(datetime.now(UTC))
