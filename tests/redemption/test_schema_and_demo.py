"""The redemption tables match migration 0006; the demo seeds offers, sales and a refund."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from pointsvc.extensions import db
from pointsvc.redemption import models

TABLES = {model.__tablename__ for model in (
    models.Offer, models.PayCode, models.MerchantCode, models.Redemption, models.Refund,
    models.Settlement, models.SpendCounter, models.RedemptionPolicy)}


def _touches(diff: object) -> bool:
    text = repr(diff)
    return any(f"'{name}'" in text or f"table={name!r}" in text for name in TABLES)


def test_redemption_models_match_the_migration(app):
    assert len(TABLES) == 8
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, db.metadata)
    assert [d for d in diffs if _touches(d)] == []


def test_demo_seeds_offers_redemptions_and_a_refund(app, client):
    from pointsvc.demo import EXTRA_SEEDERS, seed_demo
    from pointsvc.ledger.demo import seed_ledger
    from pointsvc.merchants.demo import seed_merchants
    from pointsvc.redemption.demo import seed_redemption

    with app.app_context():
        context = seed_demo()
    order = list(dict.fromkeys(EXTRA_SEEDERS))
    assert order.index(seed_redemption) > max(order.index(seed_ledger),
                                              order.index(seed_merchants))
    assert len(context["offer_ids"]) == 6 and len(context["redemption_ids"]) == 4
    with app.app_context():
        rows = list(db.session.scalars(select(models.Redemption).order_by(models.Redemption.id)))
        assert [r.status for r in rows] == ["captured", "captured", "captured", "held"]
        assert rows[0].refunded_points == 30
        assert {r.channel for r in rows} == {"paycode", "merchant_code"}
    r = client.post("/api/v1/auth/token", json={"username": "13800000001",
                                                "password": "resident-demo-2026"})
    assert r.status_code == 200, r.get_json()
    token = r.get_json()["access_token"]
    # the resident login lives in 春晓社区: the supermarket's and the street's offers show
    offers = client.get("/api/v1/offers",
                        headers={"Authorization": f"Bearer {token}"}).get_json()["items"]
    assert {"东北大米 5kg", "酿造酱油 500ml"} <= {o["title"] for o in offers}
