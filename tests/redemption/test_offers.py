"""Offers: who manages them, what residents see, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.factories import auth
from tests.redemption.conftest import make_offer


def browse(client, app, user, url="/api/v1/offers"):
    r = client.get(url, headers=auth(app, user))
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_operators_and_staff_in_scope_manage_offers(app, client, world):
    offer = make_offer(client, app, world.shop_operator, world.shop, stock=None)
    assert offer["org_node_id"] == world.tree.community_a and offer["stock"] is None
    staff_made = make_offer(client, app, world.organizer_a, world.shop, title="洗衣液")
    assert staff_made["merchant_id"] == world.shop
    body = {"title": "x", "points_price": 1}
    for user in (world.shop_b_operator, world.organizer_b, world.resident_user):
        r = client.post(f"/api/v1/merchants/{world.shop}/offers", json=body,
                        headers=auth(app, user))
        assert r.status_code == 403, user
    r = client.patch(f"/api/v1/offers/{offer['id']}", json={"stock": 7, "points_price": 45},
                     headers=auth(app, world.shop_operator))
    assert r.status_code == 200 and (r.get_json()["stock"], r.get_json()["points_price"]) == (
        7, 45)
    r = client.patch(f"/api/v1/offers/{offer['id']}", json={"stock": 1},
                     headers=auth(app, world.partner_operator))
    assert r.status_code == 403
    listing = browse(client, app, world.shop_operator, f"/api/v1/merchants/{world.shop}/offers")
    assert [o["id"] for o in listing["items"]] == [offer["id"], staff_made["id"]]


def test_offer_validation(app, client, world):
    url = f"/api/v1/merchants/{world.shop}/offers"
    now = datetime.now(UTC)
    bad = [
        {"title": "x", "points_price": 0},
        {"title": "x", "points_price": 1, "stock": -1},
        {"title": "x", "points_price": 1, "per_resident_limit": 2},
        {"title": "x", "points_price": 1, "limit_period": "year", "per_resident_limit": 1},
        {"title": "x", "points_price": 1, "starts_at": now.isoformat(),
         "ends_at": (now - timedelta(days=1)).isoformat()},
        {"title": "x", "points_price": 1, "org_node_id": 987654321},
        {"title": "", "points_price": 1},
        {"title": "x", "points_price": 1, "unknown": True},
    ]
    for body in bad:
        r = client.post(url, json=body, headers=auth(app, world.shop_operator))
        assert r.status_code == 422, body
        assert r.get_json()["code"] == "validation_failed"


def test_residents_see_offers_on_their_branch_only(app, client, world):
    mine = make_offer(client, app, world.shop_operator, world.shop, title="甲社区大米")
    street = make_offer(client, app, world.partner_operator, world.partner, title="全街道酱油")
    theirs = make_offer(client, app, world.shop_b_operator, world.shop_b, title="乙社区面粉")
    in_grid = make_offer(client, app, world.shop_operator, world.shop, title="网格专享",
                         org_node_id=world.tree.grid_a)
    now = datetime.now(UTC)
    make_offer(client, app, world.shop_operator, world.shop, title="未开始",
               starts_at=(now + timedelta(days=1)).isoformat())
    make_offer(client, app, world.shop_operator, world.shop, title="已结束",
               ends_at=(now - timedelta(days=1)).isoformat(),
               starts_at=(now - timedelta(days=2)).isoformat())
    withdrawn = make_offer(client, app, world.shop_operator, world.shop, title="下架")
    client.patch(f"/api/v1/offers/{withdrawn['id']}", json={"status": "withdrawn"},
                 headers=auth(app, world.shop_operator))

    seen = [o["id"] for o in browse(client, app, world.resident_user)["items"]]
    assert seen == [mine["id"], street["id"], in_grid["id"]]
    seen_b = [o["id"] for o in browse(client, app, world.resident_b_user)["items"]]
    assert seen_b == [street["id"], theirs["id"]]
    item = browse(client, app, world.resident_user)["items"][1]
    assert item["merchant_name"] == "好邻居便利店"
    # keyset pagination
    page = browse(client, app, world.resident_user, "/api/v1/offers?limit=2")
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = browse(client, app, world.resident_user,
                  f"/api/v1/offers?limit=2&cursor={page['next_cursor']}")
    assert [o["id"] for o in rest["items"]] == [in_grid["id"]] and rest["next_cursor"] is None
    # one offer: residents it is offered to; not residents elsewhere
    assert client.get(f"/api/v1/offers/{mine['id']}",
                      headers=auth(app, world.resident_user)).status_code == 200
    assert client.get(f"/api/v1/offers/{mine['id']}",
                      headers=auth(app, world.resident_b_user)).status_code == 403
    # a suspended merchant's offers disappear
    client.post(f"/api/v1/merchants/{world.partner}/suspend", json={"reason": "整改"},
                headers=auth(app, world.admin))
    seen = [o["id"] for o in browse(client, app, world.resident_user)["items"]]
    assert street["id"] not in seen
    assert client.get("/api/v1/offers", headers=auth(app, world.organizer_a)).status_code == 403
