"""Races with real threads (each its own app context, session and connection)."""

from __future__ import annotations

import json
from collections import Counter

from sqlalchemy import func, select

from pointsvc.extensions import db
from pointsvc.redemption.models import Redemption
from tests.factories import make_resident
from tests.ledger.test_concurrency import race
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


def test_64_redemptions_of_an_offer_with_stock_10(app, client, world):
    offer = make_offer(client, app, world.shop_operator, world.shop, stock=10, points_price=5)
    residents = [make_resident(app, community_id=world.tree.community_a) for _ in range(64)]
    for _, resident_id in residents:
        fund(app, resident_id, 5)
    codes = [paycode(client, app, user_id) for user_id, _ in residents]

    def one(i):
        r = redeem(app.test_client(), app, world.shop_operator, codes[i], offer_id=offer["id"])
        return r.get_json()["code"] if r.status_code != 201 else 201

    outcomes = Counter(race(64, one))
    assert outcomes == {201: 10, "out_of_stock": 54}
    assert stock_of(app, offer["id"]) == 0
    assert merchant_balance(app, world.shop) == 50
    assert sum(balance(app, rid)[0] for _, rid in residents) == 64 * 5 - 50


def test_concurrent_spends_beyond_the_balance_never_overdraw(app, client, world):
    fund(app, world.resident, 100)
    codes = [paycode(client, app, world.resident_user) for _ in range(24)]

    def one(i):
        operator = world.shop_operator if i % 2 else world.partner_operator
        r = redeem(app.test_client(), app, operator, codes[i], points=10,
                   capture=bool(i % 3))
        return r.status_code if r.status_code == 201 else r.get_json()["code"]

    outcomes = Counter(race(24, one))
    assert outcomes == {201: 10, "insufficient_points": 14}
    points, held = balance(app, world.resident)
    with app.app_context():
        held_rows = db.session.scalar(select(func.count()).select_from(Redemption)
                                      .where(Redemption.status == "held"))
    assert held == 10 * held_rows
    assert points + merchant_balance(app, world.shop) + merchant_balance(
        app, world.partner) == 100


def test_concurrent_capture_and_void_resolve_a_hold_once(app, client, world):
    fund(app, world.resident, 100)
    held = redeem(client, app, world.shop_operator, paycode(client, app, world.resident_user),
                  points=40, capture=False).get_json()
    url = f"/api/v1/redemptions/{held['id']}"

    def one(i):
        action = "capture" if i % 2 else "void"
        r = post_with_key(app.test_client(), app, world.shop_operator, f"{url}/{action}")
        return action, r.status_code, r.get_json().get("code")

    results = race(12, one)
    winners = [(action, status) for action, status, _ in results if status == 200]
    assert len(winners) == 1
    assert all(code == "hold_not_active" for _, status, code in results if status != 200)
    if winners[0][0] == "capture":
        assert balance(app, world.resident) == (60, 0)
        assert merchant_balance(app, world.shop) == 40
    else:
        assert balance(app, world.resident) == (100, 0)
        assert merchant_balance(app, world.shop) == 0


def test_concurrent_refunds_never_exceed_the_redeemed_points(app, client, world):
    fund(app, world.resident, 100)
    sale = redeem(client, app, world.shop_operator, paycode(client, app, world.resident_user),
                  points=50).get_json()

    def one(_):
        r = post_with_key(app.test_client(), app, world.shop_operator,
                          f"/api/v1/redemptions/{sale['id']}/refunds",
                          {"points": 15, "reason": "并发退款"})
        return r.status_code if r.status_code == 201 else r.get_json()["code"]

    assert Counter(race(10, one)) == {201: 3, "refund_exceeds_redeemed": 7}
    assert balance(app, world.resident) == (95, 0)
    assert merchant_balance(app, world.shop) == 5


def test_one_pay_code_scanned_by_many_tills_pays_once(app, client, world):
    fund(app, world.resident, 100)
    code = paycode(client, app, world.resident_user)

    def one(_):
        r = redeem(app.test_client(), app, world.shop_operator, code, points=10)
        return r.status_code if r.status_code == 201 else r.get_json()["code"]

    assert Counter(race(16, one)) == {201: 1, "already_used": 15}
    assert balance(app, world.resident) == (90, 0)


def _redemption_postings(app) -> int:
    from pointsvc.ledger.models import LedgerTransaction

    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(LedgerTransaction)
                                  .where(LedgerTransaction.kind == "redemption"))
        db.session.remove()
        return count


def test_same_key_and_body_racing_pay_once_and_answer_one_receipt(app, client, world):
    """A till that sends its request twice at once (a retry racing the first): the second
    waits on the Idempotency-Key and replays the first's receipt, never `already_used`."""
    fund(app, world.resident, 100)
    code = paycode(client, app, world.resident_user)
    from tests.factories import auth

    # one token and one key for every thread, as one till retrying would send them
    token_headers = auth(app, world.shop_operator, **{"Idempotency-Key": "till-7-order-42"})

    def one(_):
        r = app.test_client().post("/api/v1/redemptions",
                                   json={"pay_code": code, "points": 10, "order_ref": "42"},
                                   headers=token_headers)
        return r.status_code, r.get_json(), r.headers.get("Idempotent-Replayed")

    results = race(8, one)
    assert [status for status, _, _ in results] == [201] * 8, results
    receipts = {json.dumps(body, sort_keys=True) for _, body, _ in results}
    assert len(receipts) == 1
    assert sorted(replayed or "" for _, _, replayed in results) == [""] + ["true"] * 7
    assert balance(app, world.resident) == (90, 0)
    assert merchant_balance(app, world.shop) == 10
    assert _redemption_postings(app) == 1


def test_same_key_racing_a_refused_payment_replays_the_one_refusal(app, client, world):
    fund(app, world.resident, 5)
    code = paycode(client, app, world.resident_user)
    from tests.factories import auth

    headers = auth(app, world.shop_operator, **{"Idempotency-Key": "till-7-order-43"})

    def one(_):
        r = app.test_client().post("/api/v1/redemptions", json={"pay_code": code, "points": 10},
                                   headers=headers)
        return r.status_code, r.get_json()["code"], r.mimetype

    results = race(6, one)
    assert set(results) == {(409, "insufficient_points", "application/problem+json")}
    assert balance(app, world.resident) == (5, 0)
    assert _redemption_postings(app) == 0
