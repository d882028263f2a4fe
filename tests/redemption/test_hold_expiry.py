"""Holds expire on their own: lazily when the resident spends, and by the background sweeper."""

from __future__ import annotations

import time
from collections import Counter

import psycopg
from sqlalchemy import select
from sqlalchemy.engine import make_url

from pointsvc import create_app
from pointsvc.extensions import db
from pointsvc.redemption.models import Redemption
from pointsvc.redemption.sweeper import ADVISORY_KEY, HoldSweeper, sweep_once
from tests.conftest import test_config as make_config
from tests.factories import auth
from tests.ledger.test_concurrency import race
from tests.redemption.conftest import (
    balance,
    fund,
    make_offer,
    paycode,
    post_with_key,
    redeem,
    stock_of,
)


def status_of(app, redemption_id: int) -> str:
    with app.app_context():
        found = db.session.scalar(select(Redemption.status)
                                  .where(Redemption.id == redemption_id))
        db.session.remove()
        return found


def hold(client, app, world, operator=None, **body) -> dict:
    r = redeem(client, app, operator or world.shop_operator,
               paycode(client, app, world.resident_user), capture=False, **body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_a_spend_after_the_hold_expired_releases_it_first(app, client, world):
    fund(app, world.resident, 100)
    offer = make_offer(client, app, world.shop_operator, world.shop, stock=5, points_price=80)
    held = hold(client, app, world, offer_id=offer["id"])
    assert stock_of(app, offer["id"]) == 4 and balance(app, world.resident) == (100, 80)
    # Within the hold's life the points are not spendable ...
    r = redeem(client, app, world.partner_operator, paycode(client, app, world.resident_user),
               points=50)
    assert r.status_code == 409 and r.get_json()["code"] == "insufficient_points"
    # ... after it (nobody ran the command, no sweeper in tests) the next spend sees them.
    world.clock.advance(minutes=15, seconds=1)
    r = redeem(client, app, world.partner_operator, paycode(client, app, world.resident_user),
               points=50)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["balance"] == 50 and r.get_json()["spendable"] == 50
    assert status_of(app, held["id"]) == "expired"
    assert stock_of(app, offer["id"]) == 5
    assert balance(app, world.resident) == (50, 0)


def test_a_payment_at_a_merchant_code_releases_expired_holds_first(app, client, world):
    fund(app, world.resident, 100)
    held = hold(client, app, world, points=90)
    code = client.get(f"/api/v1/merchants/{world.partner}/code",
                      headers=auth(app, world.partner_operator)).get_json()["link"]
    world.clock.advance(minutes=16)
    r = post_with_key(client, app, world.resident_user, "/api/v1/payments",
                      {"merchant_code": code, "points": 60})
    assert r.status_code == 201, r.get_json()
    assert status_of(app, held["id"]) == "expired"
    assert balance(app, world.resident) == (40, 0)


def test_the_sweeper_releases_holds_nobody_touches(app, client, world):
    fund(app, world.resident, 100)
    offer = make_offer(client, app, world.shop_operator, world.shop, stock=3, points_price=40,
                       per_resident_limit=1, limit_period="day")
    held = hold(client, app, world, offer_id=offer["id"])
    app.config["HOLD_SWEEP_SECONDS"] = 0.2
    sweeper = HoldSweeper(app)
    sweeper.start()
    try:
        time.sleep(0.6)
        assert status_of(app, held["id"]) == "held"  # not due yet: the sweeper ticks idle
        world.clock.advance(minutes=16)
        deadline = time.monotonic() + 20
        while status_of(app, held["id"]) == "held" and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        sweeper.stop()
        time.sleep(0.3)
    assert status_of(app, held["id"]) == "expired"
    assert sweeper.swept == 1 and sweeper.ticks >= 3
    assert balance(app, world.resident) == (100, 0)
    assert stock_of(app, offer["id"]) == 3
    # the per-resident and daily room came back too: the same offer can be bought again
    r = redeem(client, app, world.shop_operator, paycode(client, app, world.resident_user),
               offer_id=offer["id"])
    assert r.status_code == 201, r.get_json()


def test_the_sweeper_starts_on_the_first_request_of_a_serving_app_only(database_url):
    plain = create_app(make_config(database_url))
    assert "pointsvc_hold_sweeper" not in plain.extensions  # tests: off unless asked
    serving = create_app(make_config(database_url, HOLD_SWEEP_IN_TESTS=True,
                                     HOLD_SWEEP_SECONDS=3600))
    sweeper = serving.extensions["pointsvc_hold_sweeper"]
    assert not sweeper._started
    serving.test_client().get("/healthz")
    assert sweeper._started
    sweeper.stop()
    off = create_app(make_config(database_url, HOLD_SWEEP_IN_TESTS=True,
                                 HOLD_SWEEP_SECONDS=0))
    assert "pointsvc_hold_sweeper" not in off.extensions
    for one in (plain, serving, off):
        with one.app_context():
            db.engine.dispose()


def test_one_process_sweeps_at_a_time_on_postgresql(app, client, world, backend):
    fund(app, world.resident, 100)
    held = hold(client, app, world, points=30)
    world.clock.advance(minutes=16)
    if backend == "postgresql":
        url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False)) as other:
            other.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_KEY,))
            with app.app_context():
                assert sweep_once() == 0  # another process is sweeping: skip this tick
                db.session.remove()
            assert status_of(app, held["id"]) == "held"
    with app.test_request_context():
        assert sweep_once() == 1
        db.session.remove()
    assert balance(app, world.resident) == (100, 0)


def test_voids_racing_the_sweeper_resolve_an_expired_hold_once(app, client, world):
    threads = 8
    fund(app, world.resident, 100)
    offer = make_offer(client, app, world.shop_operator, world.shop, stock=2, points_price=25)
    held = hold(client, app, world, offer_id=offer["id"], quantity=2)
    world.clock.advance(minutes=16)  # past its expiry, not yet released

    def one(i):
        if i % 2:
            r = post_with_key(app.test_client(), app, world.shop_operator,
                              f"/api/v1/redemptions/{held['id']}/void")
            return "void" if r.status_code == 200 else r.get_json()["code"]
        with app.test_request_context():
            try:
                return "swept" if sweep_once() else "nothing"
            finally:
                db.session.remove()

    outcomes = Counter(race(threads, one))
    # Past its expiry a hold can only expire (a void first releases it lazily, then finds
    # it expired); whoever claims it, it is unwound once: stock 2, not 4; held 0, not < 0.
    assert outcomes["void"] == 0 and outcomes["swept"] <= 1
    assert outcomes["hold_not_active"] == threads // 2
    assert status_of(app, held["id"]) == "expired"
    assert balance(app, world.resident) == (100, 0)
    assert stock_of(app, offer["id"]) == 2
