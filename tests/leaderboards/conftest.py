"""A world for leaderboard tests: one district (two communities, grids), staff, rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest
from flask import Flask

from pointsvc.extensions import db
from pointsvc.ledger import rules as rulebook
from pointsvc.ledger.service import (
    Leg,
    Transfer,
    district_of,
    issuance_account,
    post,
    resident_account,
)
from pointsvc.people.models import Resident
from tests.factories import Tree, auth, make_resident, make_tree, make_user
from tests.ledger.conftest import make_rule


@dataclass
class World:
    tree: Tree
    admin: int
    organizer: int
    organizer_b: int
    auditor: int


@pytest.fixture
def world(app: Flask) -> World:
    tree = make_tree(app)
    w = World(
        tree=tree,
        admin=make_user(app, role="admin", node_id=tree.district, name="区管理员"),
        organizer=make_user(app, role="organizer", node_id=tree.community_a, name="甲组织者"),
        organizer_b=make_user(app, role="organizer", node_id=tree.community_b, name="乙组织者"),
        auditor=make_user(app, role="auditor", node_id=tree.community_a, name="甲审计"),
    )
    make_rule(app, node_id=tree.district, code="garbage-sorting", points=5,
              category="environment")
    make_rule(app, node_id=tree.district, code="volunteer-hour", points=10, unit="hour")
    make_rule(app, node_id=tree.district, code="litter", points=-20, category="conduct")
    make_rule(app, node_id=tree.district, code="civility", points=10, category="conduct")
    return w


def resident(app: Flask, world: World, name: str = "张小明", *, community: str = "a",
             grid: bool = True, privacy: str = "public", **extra) -> tuple[int, int]:
    """(user id, resident id) of a new resident in community a or b."""
    community_id = world.tree.community_a if community == "a" else world.tree.community_b
    grid_id = (world.tree.grid_a if community == "a" else world.tree.grid_b) if grid else None
    user_id, resident_id = make_resident(app, community_id=community_id, name=name,
                                         grid_id=grid_id, **extra)
    if privacy != "public":
        with app.app_context():
            db.session.get(Resident, resident_id).privacy = privacy
            db.session.commit()
    return user_id, resident_id


def give(app: Flask, resident_id: int, code: str, quantity: int = 1,
         at: datetime | None = None) -> int:
    """Post an award or deduction under a rule straight through post(); returns its id."""
    with app.app_context():
        person = db.session.get(Resident, resident_id)
        community = person.community_id
        rule = rulebook.resolve(community_id=community, code=code)
        points = rulebook.points_for(rule=rule, quantity=quantity)
        mine = resident_account(resident_id=resident_id, community_id=community)
        source = issuance_account(community_id=community)
        if points < 0:
            from pointsvc.ledger.models import Account

            points = -min(-points, db.session.get(Account, mine).balance)
        legs = (Leg(source, -points), Leg(mine, points)) if points else ()
        transaction = post(transfer=Transfer(
            kind="award" if points > 0 else "deduction", community_id=community,
            district_id=district_of(community_id=community), legs=legs,
            rule_id=rule.id, rule_code=rule.code, rule_version=rule.version,
            category=rule.category, quantity=quantity, subject_resident_id=resident_id,
            shortfall=0 if legs else -rulebook.points_for(rule=rule, quantity=quantity),
            created_at=at))
        db.session.commit()
        return transaction.id


def reverse(app: Flask, world: World, transaction_id: int) -> int:
    from pointsvc.ledger.awards import reverse as reverse_transaction

    with app.app_context():
        status, body = reverse_transaction(transaction_id=transaction_id,
                                           actor_user_id=world.admin, reason="录入错误")
        db.session.commit()
        assert status == 201, body
        return body["id"]


def drain(app: Flask) -> int:
    from pointsvc.leaderboards.tallies import drain_all

    with app.app_context():
        moved = drain_all()
        db.session.remove()
        return moved


def board(client, app: Flask, user: int, **params):
    response = client.get("/api/v1/leaderboards", query_string=params, headers=auth(app, user))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ranks(body: dict) -> list[tuple[int, str, float]]:
    return [(row["rank"], row["name"], row["value"]) for row in body["items"]]
