"""Holds (capture, void, expiry), refunds, settlement and monthly statements."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from pointsvc.extensions import db
from pointsvc.ledger.models import Account
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


def hold(client, app, world, **body):
    r = redeem(client, app, world.shop_operator, paycode(client, app, world.resident_user),
               capture=False, **body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_hold_reserves_then_partial_capture_releases_the_rest(app, client, world):
    fund(app, world.resident, 100)
    held = hold(client, app, world, points=60)
    assert held["status"] == "held" and held["hold_expires_at"]
    assert held["balance"] == 100 and held["spendable"] == 40
    assert balance(app, world.resident) == (100, 60)
    # held points cannot be spent twice
    r = redeem(client, app, world.partner_operator, paycode(client, app, world.resident_user),
               points=50)
    assert r.get_json()["code"] == "insufficient_points"
    r = post_with_key(client, app, world.shop_operator,
                      f"/api/v1/redemptions/{held['id']}/capture", {"points": 61})
    assert r.status_code == 422
    r = post_with_key(client, app, world.shop_operator,
                      f"/api/v1/redemptions/{held['id']}/capture", {"points": 45})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "captured" and r.get_json()["captured_points"] == 45
    assert balance(app, world.resident) == (55, 0)
    assert merchant_balance(app, world.shop) == 45
    r = post_with_key(client, app, world.shop_operator,
                      f"/api/v1/redemptions/{held['id']}/capture")
    assert r.status_code == 409 and r.get_json()["code"] == "hold_not_active"


def test_void_gives_back_points_stock_and_limits_and_capture_after_void_fails(app, client,
                                                                             world):
    fund(app, world.resident, 100)
    offer = make_offer(client, app, world.shop_operator, world.shop, stock=3, points_price=20,
                       per_resident_limit=1, limit_period="day")
    held = hold(client, app, world, offer_id=offer["id"])
    assert stock_of(app, offer["id"]) == 2
    url = f"/api/v1/redemptions/{held['id']}"
    assert post_with_key(client, app, world.partner_operator, url + "/void").status_code == 403
    r = post_with_key(client, app, world.shop_operator, url + "/void")
    assert r.status_code == 200 and r.get_json()["status"] == "voided"
    assert balance(app, world.resident) == (100, 0)
    assert stock_of(app, offer["id"]) == 3
    r = post_with_key(client, app, world.shop_operator, url + "/capture")
    assert r.status_code == 409 and r.get_json()["code"] == "hold_not_active"
    assert r.get_json()["current_status"] == "voided"
    # the per-resident limit's room came back too
    again = redeem(client, app, world.shop_operator, paycode(client, app, world.resident_user),
                   offer_id=offer["id"])
    assert again.status_code == 201, again.get_json()


def test_holds_expire_lazily_and_by_command(app, client, world):
    fund(app, world.resident, 100)
    fund(app, world.resident2, 100)
    first = hold(client, app, world, points=30)
    other = redeem(client, app, world.shop_operator, paycode(client, app, world.resident2_user),
                   capture=False, points=30).get_json()
    world.clock.advance(minutes=16)
    r = post_with_key(client, app, world.shop_operator,
                      f"/api/v1/redemptions/{first['id']}/capture")
    assert r.status_code == 409 and r.get_json()["code"] == "hold_not_active"
    assert r.get_json()["current_status"] == "expired"
    assert balance(app, world.resident) == (100, 0)
    assert balance(app, world.resident2) == (100, 30)
    # the command releases the rest (it reads the wall clock: move the hold into the past)
    from pointsvc.redemption.models import Redemption

    with app.app_context():
        db.session.get(Redemption, other["id"]).hold_expires_at = datetime(2020, 1, 1, tzinfo=UTC)
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["redemption", "expire-holds"])
    assert result.exit_code == 0 and "expired 1 holds" in result.output
    assert balance(app, world.resident2) == (100, 0)
    detail = client.get(f"/api/v1/redemptions/{other['id']}",
                        headers=auth(app, world.resident2_user)).get_json()
    assert detail["status"] == "expired"


def test_refunds_partial_never_beyond_redeemed_and_restock(app, client, world):
    fund(app, world.resident, 300)
    offer = make_offer(client, app, world.shop_operator, world.shop, stock=10, points_price=30)
    sale = redeem(client, app, world.shop_operator, paycode(client, app, world.resident_user),
                  offer_id=offer["id"], quantity=3).get_json()
    assert stock_of(app, offer["id"]) == 7
    url = f"/api/v1/redemptions/{sale['id']}/refunds"
    r = post_with_key(client, app, world.shop_operator, url, {"points": 45, "reason": "一件破损"},
                      key="refund-1")
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["refund"]["restocked"] == 1
    assert r.get_json()["redemption"]["refunded_points"] == 45
    again = post_with_key(client, app, world.shop_operator, url,
                          {"points": 45, "reason": "一件破损"}, key="refund-1")
    assert again.get_json() == r.get_json()
    assert stock_of(app, offer["id"]) == 8
    r = post_with_key(client, app, world.shop_operator, url, {"points": 46, "reason": "多退"})
    assert r.status_code == 409 and r.get_json()["code"] == "refund_exceeds_redeemed"
    assert r.get_json()["remaining"] == 45
    r = post_with_key(client, app, world.shop_operator, url, {"points": 45, "reason": "全退"})
    assert r.status_code == 201 and r.get_json()["refund"]["restocked"] == 2
    assert stock_of(app, offer["id"]) == 10
    assert balance(app, world.resident) == (300, 0)
    assert merchant_balance(app, world.shop) == 0
    detail = client.get(f"/api/v1/redemptions/{sale['id']}",
                        headers=auth(app, world.shop_operator)).get_json()
    assert [x["points"] for x in detail["refunds"]] == [45, 45]
    r = post_with_key(client, app, world.shop_b_operator, url, {"points": 1, "reason": "x"})
    assert r.status_code == 403


def test_refund_window_closes(app, client, world):
    fund(app, world.resident, 100)
    sale = redeem(client, app, world.shop_operator, paycode(client, app, world.resident_user),
                  points=20).get_json()
    world.clock.advance(days=8)
    r = post_with_key(client, app, world.shop_operator,
                      f"/api/v1/redemptions/{sale['id']}/refunds", {"points": 5, "reason": "晚了"})
    assert r.status_code == 409 and r.get_json()["code"] == "refund_window_closed"
    assert balance(app, world.resident) == (80, 0)


def test_settlement_and_monthly_statement(app, client, world):
    fund(app, world.resident, 500)
    for points in (100, 50):
        assert redeem(client, app, world.shop_operator,
                      paycode(client, app, world.resident_user), points=points).status_code == 201
    sale = redeem(client, app, world.shop_operator, paycode(client, app, world.resident_user),
                  points=30).get_json()
    post_with_key(client, app, world.shop_operator, f"/api/v1/redemptions/{sale['id']}/refunds",
                  {"points": 10, "reason": "退一部分"})
    url = f"/api/v1/merchants/{world.shop}/settlements"
    body = {"points": 100, "payment_reference": "BANK-2026-0001"}
    assert post_with_key(client, app, world.organizer_a, url, body).status_code == 403
    assert post_with_key(client, app, world.shop_operator, url, body).status_code == 403
    r = post_with_key(client, app, world.admin, url, body)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["points"] == 100
    r = post_with_key(client, app, world.admin, url, {"points": 1000, "payment_reference": "X"})
    assert r.status_code == 409 and r.get_json()["code"] == "insufficient_points"
    r = post_with_key(client, app, world.admin, url, {"payment_reference": "BANK-2026-0002"})
    assert r.status_code == 201 and r.get_json()["points"] == 70
    assert merchant_balance(app, world.shop) == 0
    with app.app_context():
        settlement = db.session.scalar(select(Account).where(Account.kind == "settlement"))
        from pointsvc.ledger.service import account_balance

        assert account_balance(account=settlement) == 170
    listing = client.get(url, headers=auth(app, world.shop_operator)).get_json()["items"]
    assert [s["payment_reference"] for s in listing] == ["BANK-2026-0002", "BANK-2026-0001"]

    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    st = client.get(f"/api/v1/merchants/{world.shop}/statements?month={month}",
                    headers=auth(app, world.shop_operator))
    assert st.status_code == 200, st.get_json()
    st = st.get_json()
    assert st["opening_balance"] == 0 and st["timezone"] == "Asia/Shanghai"
    assert st["redemptions"] == {"count": 3, "points": 180}
    assert st["refunds"] == {"count": 1, "points": -10}
    assert st["settlements"] == {"count": 2, "points": -170}
    assert st["closing_balance"] == 0 and len(st["lines"]) == 6
    later = client.get(f"/api/v1/merchants/{world.shop}/statements?month=2099-01",
                       headers=auth(app, world.organizer_a)).get_json()
    assert later["opening_balance"] == 0 and later["lines"] == []
    r = client.get(f"/api/v1/merchants/{world.shop}/statements?month={month}&format=csv",
                   headers=auth(app, world.admin))
    assert r.mimetype == "text/csv" and r.data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert rows[1][1] == "甲社区积分超市"
    assert ["redemptions", "3", "180"] in rows and ["closing_balance", "", "0"] in rows
    for bad in ("2026-13", "2026-1", "x"):
        assert client.get(f"/api/v1/merchants/{world.shop}/statements?month={bad}",
                          headers=auth(app, world.admin)).status_code == 422
    for user in (world.shop_b_operator, world.organizer_b, world.resident_user):
        assert client.get(f"/api/v1/merchants/{world.shop}/statements?month={month}",
                          headers=auth(app, user)).status_code == 403
