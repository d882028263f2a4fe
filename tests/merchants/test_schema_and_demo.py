"""The merchants table matches its migrations; the demo seeds the two demo merchants."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pointsvc.extensions import db


def _touches(diff: object, tables: set[str]) -> bool:
    text = repr(diff)
    return any(f"'{name}'" in text or f"table={name!r}" in text for name in tables)


def test_merchant_models_match_the_migrations(app):
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, db.metadata)
    mine = [d for d in diffs if _touches(d, {"merchants", "merchant_operators"})]
    assert mine == []


def test_demo_seeds_a_points_supermarket_and_a_partner_merchant(app, client):
    from pointsvc.demo import EXTRA_SEEDERS, seed_demo
    from pointsvc.merchants.demo import SUPERMARKET_LOGIN, seed_merchants

    assert EXTRA_SEEDERS.count(seed_merchants) == 1
    with app.app_context():
        context = seed_demo()
    ids = context["merchant_ids"]

    admin = client.post(
        "/api/v1/auth/token", json={"username": "admin", "password": "admin-demo-2026"}
    ).get_json()["access_token"]
    listing = client.get(
        "/api/v1/merchants", headers={"Authorization": f"Bearer {admin}"}
    ).get_json()["items"]
    by_id = {item["id"]: item for item in listing}
    assert by_id[ids["supermarket"]]["name"] == "春晓社区积分超市"
    assert by_id[ids["supermarket"]]["category"] == "supermarket"
    assert by_id[ids["supermarket"]]["org_node_id"] == context["community_ids"]["chunxiao"]
    assert by_id[ids["partner"]]["name"] == "好邻居便利店"
    assert by_id[ids["partner"]]["status"] == "active"
    assert by_id[ids["pending"]]["status"] == "pending"

    for login, password, merchant in [
        (SUPERMARKET_LOGIN[0], SUPERMARKET_LOGIN[1], ids["supermarket"]),
        ("merchant", "merchant-demo-2026", ids["partner"]),
    ]:
        r = client.post("/api/v1/auth/token", json={"username": login, "password": password})
        token = r.get_json()["access_token"]
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).get_json()
        assert me["merchant_id"] == merchant, login
    # seeding again changes nothing
    with app.app_context():
        assert seed_demo() is None
