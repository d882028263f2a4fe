"""A small world for ledger tests: two communities, staff, residents and a rule book."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from flask import Flask

from pointsvc.extensions import db
from pointsvc.ledger import rules as rulebook
from tests.factories import Tree, auth, make_resident, make_tree, make_user

_keys = itertools.count(1)


def new_key() -> str:
    return f"test-key-{next(_keys)}"


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


def make_rule(app: Flask, *, node_id: int, code: str, points: int, unit: str = "action",
              category: str = "volunteer", **extra) -> int:
    with app.app_context():
        rule = rulebook.create_rule(
            org_node_id=node_id,
            actor_user_id=None,
            values={"code": code, "title_zh": f"规则{code}", "title_en": f"Rule {code}",
                    "category": category, "points": points, "unit": unit, **extra},
        )
        return rule.id


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
        resident_b=0,
    )
    w.resident_user, w.resident = make_resident(app, community_id=tree.community_a, name="张小明")
    w.resident2_user, w.resident2 = make_resident(app, community_id=tree.community_a,
                                                  name="李华")
    w.resident_b_user, w.resident_b = make_resident(app, community_id=tree.community_b,
                                                    name="王芳")
    make_rule(app, node_id=tree.district, code="garbage-sorting", points=5,
              category="environment", cap_day=15)
    make_rule(app, node_id=tree.district, code="volunteer-hour", points=10, unit="hour")
    make_rule(app, node_id=tree.district, code="litter", points=-20, category="conduct")
    make_rule(app, node_id=tree.district, code="mediation", points=50, category="conduct",
              approval_required=True)
    return w


def award(client, app, actor: int, resident: int, code: str, quantity: int = 1,
          key: str | None = None, **extra):
    return client.post(
        "/api/v1/awards",
        json={"resident_id": resident, "rule_code": code, "quantity": quantity, **extra},
        headers=auth(app, actor, **{"Idempotency-Key": key or new_key()}),
    )


def balance_of(app: Flask, resident_id: int) -> int:
    from pointsvc.ledger.reading import find_account

    with app.app_context():
        account = find_account(kind="resident", owner_id=resident_id)
        result = 0 if account is None else account.balance
        db.session.remove()
        return result
