"""Merchant redemptions with a pay code: receipt, idempotency, stock, limits, refusals."""

from __future__ import annotations

from sqlalchemy import func, select

from pointsvc.extensions import db
from pointsvc.ledger.models import LedgerTransaction
from tests.factories import auth, make_merchant, make_operator, make_resident
from tests.redemption.conftest import (
    balance,
    fund,
    make_offer,
    merchant_balance,
    new_key,
    paycode,
    redeem,
    stock_of,
)


def test_redemption_of_an_offer_returns_a_receipt_and_moves_points(app, client, world):
    fund(app, world.resident, 300)
    offer = make_offer(client, app, world.shop_operator, world.shop, title="食用油", stock=5,
                       points_price=40)
    r = redeem(client, app, world.shop_operator, paycode(client, app, world.resident_user),
               offer_id=offer["id"], quantity=2, order_ref="POS-0001")
    assert r.status_code == 201, r.get_json()
    receipt = r.get_json()
    assert receipt["status"] == "captured"
    assert receipt["points"] == receipt["captured_points"] == 80
    assert receipt["resident"] == {"id": world.resident, "name": "张*明"}
    assert receipt["merchant"] == {"id": world.shop, "name": "甲社区积分超市"}
    assert receipt["offer"] == {"id": offer["id"], "title": "食用油"}
    assert receipt["balance"] == 220 and receipt["order_ref"] == "POS-0001"
    assert receipt["transaction_id"] and receipt["created_at"]
    assert balance(app, world.resident) == (220, 0)
    assert merchant_balance(app, world.shop) == 80
    assert stock_of(app, offer["id"]) == 3
    with app.app_context():
        tx = db.session.get(LedgerTransaction, receipt["transaction_id"])
        assert (tx.kind, tx.reference_type, tx.reference_id) == (
            "redemption", "redemption", str(receipt["id"]))


def test_points_redemption_without_an_offer(app, client, world):
    fund(app, world.resident, 100)
    r = redeem(client, app, world.partner_operator, paycode(client, app, world.resident_user),
               points=35)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["offer"] is None and r.get_json()["balance"] == 65
    assert merchant_balance(app, world.partner) == 35


def test_replay_returns_the_same_receipt_and_another_body_is_409(app, client, world):
    fund(app, world.resident, 100)
    code = paycode(client, app, world.resident_user)
    first = redeem(client, app, world.shop_operator, code, key="till-1", points=10)
    again = redeem(client, app, world.shop_operator, code, key="till-1", points=10)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = redeem(client, app, world.shop_operator, code, key="till-1", points=11)
    assert other.status_code == 409 and other.get_json()["code"] == "idempotency_key_reused"
    assert balance(app, world.resident) == (90, 0)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LedgerTransaction)
                                 .where(LedgerTransaction.kind == "redemption")) == 1


def test_missing_idempotency_key_is_400(app, client, world):
    r = client.post("/api/v1/redemptions",
                    json={"pay_code": paycode(client, app, world.resident_user), "points": 1},
                    headers=auth(app, world.shop_operator))
    assert r.status_code == 400 and r.get_json()["code"] == "idempotency_key_required"


def test_body_must_name_an_offer_or_points(app, client, world):
    code = paycode(client, app, world.resident_user)
    for body in ({}, {"points": 5, "offer_id": 1}, {"points": 5, "quantity": 2},
                 {"points": 0}, {"points": "5"}, {"points": 5, "capture": "yes"},
                 {"points": 5, "extra": 1}):
        r = redeem(client, app, world.shop_operator, code, **body)
        assert r.status_code == 422, body
        assert r.get_json()["code"] == "validation_failed"
    # nothing above consumed the code
    fund(app, world.resident, 5)
    assert redeem(client, app, world.shop_operator, code, points=5).status_code == 201


def test_insufficient_points_consumes_the_code_and_changes_nothing(app, client, world):
    fund(app, world.resident, 10)
    code = paycode(client, app, world.resident_user)
    r = redeem(client, app, world.shop_operator, code, points=11)
    assert r.status_code == 409 and r.get_json()["code"] == "insufficient_points"
    again = redeem(client, app, world.shop_operator, code, points=5)
    assert again.status_code == 409 and again.get_json()["code"] == "already_used"
    assert balance(app, world.resident) == (10, 0)
    assert merchant_balance(app, world.shop) == 0


def test_out_of_stock_offer_limit_and_daily_limit(app, client, world):
    fund(app, world.resident, 2000)
    scarce = make_offer(client, app, world.shop_operator, world.shop, stock=1, points_price=10)
    limited = make_offer(client, app, world.shop_operator, world.shop, points_price=10,
                         per_resident_limit=2, limit_period="week")

    def spend(**body):
        return redeem(client, app, world.shop_operator, paycode(client, app, world.resident_user),
                      **body)

    assert spend(offer_id=scarce["id"]).status_code == 201
    r = spend(offer_id=scarce["id"])
    assert r.status_code == 409 and r.get_json()["code"] == "out_of_stock"
    assert stock_of(app, scarce["id"]) == 0

    assert spend(offer_id=limited["id"], quantity=2).status_code == 201
    r = spend(offer_id=limited["id"])
    assert r.status_code == 409 and r.get_json()["code"] == "offer_limit_reached"
    assert r.get_json()["remaining"] == 0

    # default daily limit 500: 30 spent so far
    assert spend(points=470).status_code == 201
    r = spend(points=1)
    assert r.status_code == 409 and r.get_json()["code"] == "daily_limit_reached"
    assert balance(app, world.resident) == (1500, 0)


def test_community_sets_its_daily_limit(app, client, world):
    fund(app, world.resident, 1000)
    url = f"/api/v1/communities/{world.tree.community_a}/redemption-policy"
    assert client.get(url, headers=auth(app, world.organizer_a)).get_json()["daily_limit"] == 500
    r = client.put(url, json={"daily_limit": 800}, headers=auth(app, world.organizer_a))
    assert r.status_code == 403  # admins set policies
    r = client.put(url, json={"daily_limit": 800}, headers=auth(app, world.admin))
    assert r.status_code == 200 and r.get_json()["daily_limit"] == 800
    ok = redeem(client, app, world.shop_operator, paycode(client, app, world.resident_user),
                points=800)
    assert ok.status_code == 201
    other = f"/api/v1/communities/{world.tree.community_b}/redemption-policy"
    assert client.get(other, headers=auth(app, world.organizer_a)).status_code == 403


def test_suspended_merchant_cannot_redeem_or_be_paid(app, client, world):
    fund(app, world.resident, 100)
    r = client.post(f"/api/v1/merchants/{world.shop}/suspend", json={"reason": "投诉核查"},
                    headers=auth(app, world.organizer_a))
    assert r.status_code == 200, r.get_json()
    r = redeem(client, app, world.shop_operator, paycode(client, app, world.resident_user),
               points=10)
    assert r.status_code == 409 and r.get_json()["code"] == "merchant_suspended"
    code = client.get(f"/api/v1/merchants/{world.shop}/code",
                      headers=auth(app, world.shop_operator)).get_json()["token"]
    r = client.post("/api/v1/payments", json={"merchant_code": code, "points": 10},
                    headers=auth(app, world.resident_user, **{"Idempotency-Key": new_key()}))
    assert r.status_code == 409 and r.get_json()["code"] == "merchant_suspended"
    assert balance(app, world.resident) == (100, 0)


def test_cross_district_spending_is_refused(app, client, world):
    from pointsvc.orgs import service as orgs

    with app.app_context():
        other = orgs.create_district(name_zh="邻区", name_en="Next District")
        street = orgs.create_child(parent_id=other.id, name_zh="邻街道", name_en="S",
                                   timezone="Asia/Shanghai")
        community = orgs.create_child(parent_id=street.id, name_zh="邻社区", name_en="C",
                                      timezone="Asia/Shanghai")
        community_id = community.id
    far_shop = make_merchant(app, node_id=community_id, name="邻区超市")
    far_operator = make_operator(app, merchant_id=far_shop)
    fund(app, world.resident, 100)
    r = redeem(client, app, far_operator, paycode(client, app, world.resident_user), points=10)
    assert r.status_code == 409 and r.get_json()["code"] == "cross_district"
    assert balance(app, world.resident) == (100, 0)


def test_resident_of_another_community_of_the_district_can_spend(app, client, world):
    fund(app, world.resident_b, 50)
    r = redeem(client, app, world.shop_operator, paycode(client, app, world.resident_b_user),
               points=20)
    assert r.status_code == 201, r.get_json()
    assert merchant_balance(app, world.shop) == 20


def test_offer_not_offered_to_the_residents_community_is_refused(app, client, world):
    fund(app, world.resident_b, 100)
    offer = make_offer(client, app, world.shop_operator, world.shop)  # community A only
    r = redeem(client, app, world.shop_operator, paycode(client, app, world.resident_b_user),
               offer_id=offer["id"])
    assert r.status_code == 409 and r.get_json()["code"] == "offer_not_available"
    other_shops = make_offer(client, app, world.shop_b_operator, world.shop_b)
    r = redeem(client, app, world.shop_operator, paycode(client, app, world.resident_user),
               offer_id=other_shops["id"])
    assert r.status_code == 422 and "offer_id" in r.get_json()["errors"]


def test_scope_isolation_of_redemption_lists(app, client, world):
    fund(app, world.resident, 100)
    fund(app, world.resident_b, 100)
    mine = redeem(client, app, world.shop_operator, paycode(client, app, world.resident_user),
                  points=5).get_json()
    theirs = redeem(client, app, world.shop_b_operator,
                    paycode(client, app, world.resident_b_user), points=7).get_json()

    def ids(user, url="/api/v1/redemptions"):
        r = client.get(url, headers=auth(app, user))
        assert r.status_code == 200, r.get_json()
        return [item["id"] for item in r.get_json()["items"]]

    assert ids(world.shop_operator) == [mine["id"]]
    assert ids(world.shop_b_operator) == [theirs["id"]]
    assert ids(world.organizer_a) == [mine["id"]]
    assert ids(world.auditor_a) == [mine["id"]]
    assert sorted(ids(world.admin)) == sorted([mine["id"], theirs["id"]])
    assert ids(world.resident_user, "/api/v1/me/redemptions") == [mine["id"]]
    assert "balance" not in client.get("/api/v1/me/redemptions",
                                       headers=auth(app, world.resident_user)
                                       ).get_json()["items"][0]
    r = client.get(f"/api/v1/redemptions?merchant_id={world.shop_b}",
                   headers=auth(app, world.shop_operator))
    assert r.status_code == 403
    for user in (world.shop_operator, world.organizer_a, world.resident_user):
        r = client.get(f"/api/v1/redemptions/{theirs['id']}", headers=auth(app, user))
        assert r.status_code == 403, user
    r = client.get(f"/api/v1/redemptions/{mine['id']}", headers=auth(app, world.resident_user))
    assert r.status_code == 200 and r.get_json()["refunds"] == []
    # only operators take payments, and only for their own merchant
    r = redeem(client, app, world.organizer_a, paycode(client, app, world.resident_user),
               points=1)
    assert r.status_code == 403
    other_resident = make_resident(app, community_id=world.tree.community_a)[0]
    assert client.get("/api/v1/redemptions", headers=auth(app, other_resident)).status_code == 403


def test_keyset_pagination_of_my_redemptions(app, client, world):
    fund(app, world.resident, 100)
    made = [redeem(client, app, world.shop_operator, paycode(client, app, world.resident_user),
                   points=1).get_json()["id"] for _ in range(5)]
    seen, cursor = [], None
    while True:
        url = "/api/v1/me/redemptions?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=auth(app, world.resident_user)).get_json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(made, reverse=True)
    bad = client.get("/api/v1/me/redemptions?cursor=!!", headers=auth(app, world.resident_user))
    assert bad.status_code == 422
