"""A world for redemption tests: merchants in two communities and a street, residents, staff."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from pointsvc.extensions import db
from pointsvc.ledger.service import (
    Leg,
    Transfer,
    district_of,
    issuance_account,
    post,
    resident_account,
)
from tests.factories import (
    Tree,
    auth,
    make_merchant,
    make_operator,
    make_resident,
    make_tree,
    make_user,
)

_keys = itertools.count(1)


def new_key() -> str:
    return f"redeem-key-{next(_keys)}"


class Clock:
    """A settable clock the redemption service reads instead of the wall clock."""

    def __init__(self) -> None:
        self.now: datetime | None = None

    def __call__(self) -> datetime:
        return self.now or datetime.now(UTC)

    def advance(self, **delta: float) -> None:
        self.now = self() + timedelta(**delta)


@dataclass
class World:
    tree: Tree
    admin: int
    organizer_a: int
    organizer_b: int
    auditor_a: int
    shop: int  # community A's points supermarket
    shop_operator: int
    partner: int  # a street-wide partner merchant
    partner_operator: int
    shop_b: int  # community B's merchant
    shop_b_operator: int
    resident_user: int
    resident: int
    resident2_user: int
    resident2: int
    resident_b_user: int
    resident_b: int
    clock: Clock


def fund(app: Flask, resident_id: int, points: int) -> None:
    """Award points straight through post() (the ledger's own tests cover awards)."""
    from pointsvc.people.models import Resident

    with app.app_context():
        community = db.session.get(Resident, resident_id).community_id
        district = district_of(community_id=community)
        post(transfer=Transfer(
            kind="award", community_id=community, district_id=district,
            legs=(Leg(issuance_account(community_id=community), -points),
                  Leg(resident_account(resident_id=resident_id, community_id=community),
                      points))))
        db.session.commit()


def balance(app: Flask, resident_id: int) -> tuple[int, int]:
    """(balance, held) of a resident's account."""
    from pointsvc.ledger.reading import find_account

    with app.app_context():
        account = find_account(kind="resident", owner_id=resident_id)
        result = (0, 0) if account is None else (account.balance, account.held)
        db.session.remove()
        return result


def merchant_balance(app: Flask, merchant_id: int) -> int:
    from pointsvc.ledger.reading import find_account

    with app.app_context():
        account = find_account(kind="merchant", owner_id=merchant_id)
        result = 0 if account is None else account.balance
        db.session.remove()
        return result


def stock_of(app: Flask, offer_id: int) -> int | None:
    from pointsvc.redemption.models import Offer

    with app.app_context():
        result = db.session.get(Offer, offer_id).stock
        db.session.remove()
        return result


@pytest.fixture
def world(app: Flask) -> World:
    tree = make_tree(app)
    shop = make_merchant(app, node_id=tree.community_a, name="甲社区积分超市")
    partner = make_merchant(app, node_id=tree.street, name="好邻居便利店")
    shop_b = make_merchant(app, node_id=tree.community_b, name="乙社区积分超市")
    w = World(
        tree=tree,
        admin=make_user(app, role="admin", node_id=tree.district, name="区管理员"),
        organizer_a=make_user(app, role="organizer", node_id=tree.community_a),
        organizer_b=make_user(app, role="organizer", node_id=tree.community_b),
        auditor_a=make_user(app, role="auditor", node_id=tree.community_a),
        shop=shop, shop_operator=make_operator(app, merchant_id=shop),
        partner=partner, partner_operator=make_operator(app, merchant_id=partner),
        shop_b=shop_b, shop_b_operator=make_operator(app, merchant_id=shop_b),
        resident_user=0, resident=0, resident2_user=0, resident2=0, resident_b_user=0,
        resident_b=0, clock=Clock(),
    )
    w.resident_user, w.resident = make_resident(app, community_id=tree.community_a,
                                                name="张小明")
    w.resident2_user, w.resident2 = make_resident(app, community_id=tree.community_a,
                                                  name="李华")
    w.resident_b_user, w.resident_b = make_resident(app, community_id=tree.community_b,
                                                    name="王芳")
    app.config["REDEMPTION_CLOCK"] = w.clock
    return w


def make_offer(client, app, operator: int, merchant_id: int, **values) -> dict:
    body = {"title": "大米 5kg", "points_price": 50, **values}
    r = client.post(f"/api/v1/merchants/{merchant_id}/offers", json=body,
                    headers=auth(app, operator))
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def paycode(client, app, resident_user: int) -> str:
    r = client.get("/api/v1/me/paycode", headers=auth(app, resident_user))
    assert r.status_code == 200, r.get_json()
    return r.get_json()["token"]


def redeem(client, app, operator: int, code: str, *, key: str | None = None, **body):
    return client.post("/api/v1/redemptions", json={"pay_code": code, **body},
                       headers=auth(app, operator, **{"Idempotency-Key": key or new_key()}))


def post_with_key(client, app, user: int, url: str, body: dict | None = None,
                  key: str | None = None):
    return client.post(url, json=body if body is not None else {},
                       headers=auth(app, user, **{"Idempotency-Key": key or new_key()}))
