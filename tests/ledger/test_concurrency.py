"""Races with real threads, each with its own app context, session and connection.

Every test here commits for real (the fixtures give each test its own database state), so
the threads see each other's work exactly as gunicorn workers would.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from pointsvc.extensions import db
from pointsvc.ledger.models import Account, LedgerTransaction
from pointsvc.ledger.service import (
    InsufficientPoints,
    Leg,
    Transfer,
    account_balance,
    district_of,
    ensure_account,
    issuance_account,
    post,
    resident_account,
)
from tests.factories import auth, make_merchant, make_resident
from tests.ledger.conftest import award, balance_of, new_key


def race(n: int, fn):
    """Run fn(i) in n threads released together; returns the results in order."""
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def test_fifty_debits_against_twenty_points(app, world):
    merchant_id = make_merchant(app, node_id=world.tree.community_a)
    with app.app_context():
        community = world.tree.community_a
        district = district_of(community_id=community)
        resident_acct = resident_account(resident_id=world.resident, community_id=community)
        merchant_acct = ensure_account(kind="merchant", owner_id=merchant_id,
                                       community_id=community, district_id=district)
        post(transfer=Transfer(kind="award", community_id=community, district_id=district,
                               legs=(Leg(issuance_account(community_id=community), -20),
                                     Leg(resident_acct, 20))))
        db.session.commit()

    def debit(_):
        with app.app_context():
            try:
                post(transfer=Transfer(kind="redemption", community_id=community,
                                       district_id=district,
                                       legs=(Leg(resident_acct, -1), Leg(merchant_acct, 1))))
                db.session.commit()
                return "ok"
            except InsufficientPoints:
                db.session.rollback()
                return "insufficient_points"

    outcomes = Counter(race(50, debit))
    assert outcomes == {"ok": 20, "insufficient_points": 30}
    assert balance_of(app, world.resident) == 0
    with app.app_context():
        assert db.session.get(Account, merchant_acct).balance == 20


def test_thirty_two_awards_in_one_community(app, world):
    residents = [make_resident(app, community_id=world.tree.community_a)[1] for _ in range(32)]

    def one(i):
        client = app.test_client()
        return award(client, app, world.organizer, residents[i], "garbage-sorting").status_code

    assert race(32, one) == [201] * 32
    assert all(balance_of(app, rid) == 5 for rid in residents)
    with app.app_context():
        issuance = db.session.scalar(select(Account).where(Account.kind == "issuance"))
        assert account_balance(account=issuance) == -5 * 32
        assert db.session.scalar(select(func.count()).select_from(LedgerTransaction)) == 32


def test_cap_of_three_holds_under_ten_simultaneous_awards(app, world):
    def one(_):
        client = app.test_client()
        return award(client, app, world.organizer, world.resident, "garbage-sorting").status_code

    assert Counter(race(10, one)) == {201: 3, 409: 7}
    assert balance_of(app, world.resident) == 15


def test_same_idempotency_key_from_ten_threads_posts_once(app, world):
    def one(_):
        client = app.test_client()
        r = award(client, app, world.organizer, world.resident, "garbage-sorting", 2,
                  key="same-key")
        return r.status_code, r.get_json()["id"]

    results = race(10, one)
    assert {status for status, _ in results} == {201}
    assert len({tx_id for _, tx_id in results}) == 1
    assert balance_of(app, world.resident) == 10
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LedgerTransaction)) == 1


def test_concurrent_reversals_post_one(app, client, world):
    tx = award(client, app, world.organizer, world.resident, "garbage-sorting", 3).get_json()

    def one(_):
        c = app.test_client()
        r = c.post(f"/api/v1/transactions/{tx['id']}/reversal", json={"reason": "并发"},
                   headers=auth(app, world.organizer2, **{"Idempotency-Key": new_key()}))
        return r.status_code, r.get_json().get("id")

    results = race(8, one)
    assert {status for status, _ in results} <= {200, 201}
    assert [status for status, _ in results].count(201) == 1
    assert len({tx_id for _, tx_id in results}) == 1
    assert balance_of(app, world.resident) == 0


def test_bulk_and_single_awards_on_the_same_residents_never_deadlock(app, world):
    # Bulks list the residents in opposite orders and singles hit them one by one: balance
    # rows are locked in id order whatever the item order, so every request posts.
    residents = [make_resident(app, community_id=world.tree.community_a)[1] for _ in range(12)]
    item = {"rule_code": "volunteer-hour", "quantity": 60}

    def one(i):
        client = app.test_client()
        if i < 4:
            order = residents if i % 2 else residents[::-1]
            r = client.post("/api/v1/awards/bulk",
                            json={"items": [{"resident_id": rid, **item} for rid in order]},
                            headers=auth(app, world.organizer, **{"Idempotency-Key": new_key()}))
        else:
            r = award(client, app, world.organizer, residents[i % 12], "volunteer-hour",
                      quantity=60)
        return r.status_code

    assert race(16, one) == [201] * 16
    singles = Counter(i % 12 for i in range(4, 16))
    assert [balance_of(app, rid) for rid in residents] == [
        10 * (4 + singles[n]) for n in range(12)]
