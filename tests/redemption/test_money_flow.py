"""The worked example of docs/redemption.md ("Money flow"), step by step, and retries."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from pointsvc.redemption import service
from tests.factories import auth
from tests.redemption.conftest import (
    balance,
    fund,
    make_offer,
    merchant_balance,
    paycode,
    post_with_key,
    redeem,
    stock_of,
)


def test_the_documented_worked_example(app, client, world):
    # 1. 张小明 holds 300 points.
    fund(app, world.resident, 300)
    # 2. Two bottles of cooking oil at 40: resident -80, supermarket +80, stock 5 -> 3.
    oil = make_offer(client, app, world.shop_operator, world.shop, title="食用油",
                     points_price=40, stock=5)
    sale = redeem(client, app, world.shop_operator, paycode(client, app, world.resident_user),
                  offer_id=oil["id"], quantity=2)
    assert sale.status_code == 201, sale.get_json()
    sale = sale.get_json()
    assert sale["resident"]["name"] == "张*明" and sale["points"] == 80
    assert sale["balance"] == 220 and sale["spendable"] == 220
    assert stock_of(app, oil["id"]) == 3
    assert (balance(app, world.resident), merchant_balance(app, world.shop)) == ((220, 0), 80)
    # 3. A hold for 60 (spendable 160), captured at 45.
    held = redeem(client, app, world.shop_operator, paycode(client, app, world.resident_user),
                  points=60, capture=False).get_json()
    assert held["balance"] == 220 and held["spendable"] == 160
    r = post_with_key(client, app, world.shop_operator,
                      f"/api/v1/redemptions/{held['id']}/capture", {"points": 45})
    assert r.status_code == 200, r.get_json()
    assert (balance(app, world.resident), merchant_balance(app, world.shop)) == ((175, 0), 125)
    # 4. One bottle broke: refund 40, stock 3 -> 4.
    r = post_with_key(client, app, world.shop_operator,
                      f"/api/v1/redemptions/{sale['id']}/refunds",
                      {"points": 40, "reason": "一瓶破损"})
    assert r.status_code == 201 and r.get_json()["refund"]["restocked"] == 1
    assert stock_of(app, oil["id"]) == 4
    assert (balance(app, world.resident), merchant_balance(app, world.shop)) == ((215, 0), 85)
    # 5. Month end: the whole balance is settled against a bank transfer.
    r = post_with_key(client, app, world.admin, f"/api/v1/merchants/{world.shop}/settlements",
                      {"payment_reference": "BANK-2026-0001"})
    assert r.status_code == 201 and r.get_json()["points"] == 85
    assert merchant_balance(app, world.shop) == 0
    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    st = client.get(f"/api/v1/merchants/{world.shop}/statements?month={month}",
                    headers=auth(app, world.shop_operator)).get_json()
    assert st["opening_balance"] == 0
    assert st["redemptions"] == {"count": 2, "points": 125}
    assert st["refunds"] == {"count": 1, "points": -40}
    assert st["settlements"] == {"count": 1, "points": -85}
    assert st["closing_balance"] == 0
    refs = [line["reference_id"] for line in st["lines"] if line["kind"] == "settlement"]
    assert refs == ["BANK-2026-0001"]


def test_a_refusal_is_stored_under_its_key_and_replayed(app, client, world):
    fund(app, world.resident, 10)
    code = paycode(client, app, world.resident_user)
    first = redeem(client, app, world.shop_operator, code, key="till-3-a", points=11)
    assert first.status_code == 409 and first.get_json()["code"] == "insufficient_points"
    again = redeem(client, app, world.shop_operator, code, key="till-3-a", points=11)
    assert again.status_code == 409 and again.mimetype == "application/problem+json"
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = redeem(client, app, world.shop_operator, code, key="till-3-b", points=5)
    assert other.status_code == 409 and other.get_json()["code"] == "already_used"
    assert balance(app, world.resident) == (10, 0)


def test_a_refused_code_stores_nothing_under_the_key(app, client, world):
    fund(app, world.resident, 10)
    code = paycode(client, app, world.resident_user)
    assert redeem(client, app, world.shop_operator, code, points=5).status_code == 201
    r = redeem(client, app, world.shop_operator, code, key="till-4", points=5)
    assert r.get_json()["code"] == "already_used"
    # the key is still free: a fresh code under it pays
    fresh = paycode(client, app, world.resident_user)
    r = redeem(client, app, world.shop_operator, fresh, key="till-4", points=5)
    assert r.status_code == 201, r.get_json()
    assert balance(app, world.resident) == (0, 0)


def test_a_crash_after_the_code_was_read_still_spends_it(app, client, world, monkeypatch):
    fund(app, world.resident, 100)
    code = paycode(client, app, world.resident_user)

    def broken(**_kwargs):
        raise RuntimeError("the database connection dropped")

    monkeypatch.setattr(service, "redeem", broken)
    r = redeem(client, app, world.shop_operator, code, points=5)
    assert r.status_code == 500 and r.get_json()["code"] == "internal_error"
    monkeypatch.undo()
    r = redeem(client, app, world.shop_operator, code, points=5)
    assert r.status_code == 409 and r.get_json()["code"] == "already_used"
    assert balance(app, world.resident) == (100, 0)
