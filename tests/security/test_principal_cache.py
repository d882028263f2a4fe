"""The per-worker principal cache: reused within its bound, emptied by committed changes."""

from __future__ import annotations

import time

from sqlalchemy import text

from pointsvc.extensions import db
from pointsvc.security import authz
from tests.factories import auth, make_tree, make_user


def _role_grants_of(app, user_id: int) -> int:
    with app.app_context():
        return db.session.scalar(text("SELECT count(*) FROM role_grants WHERE user_id = :u"),
                                 {"u": user_id})


def _reads_during(monkeypatch, call) -> int:
    """How many times the principal was read from the database while call() ran."""
    reads = []
    original = authz._read_principal

    def counting(user_id: int):  # type: ignore[no-untyped-def]
        reads.append(user_id)
        return original(user_id)

    monkeypatch.setattr(authz, "_read_principal", counting)
    call()
    return len(reads)


def test_a_fresh_principal_is_not_read_again(app, client, monkeypatch):
    tree = make_tree(app)
    auditor = make_user(app, role="auditor", node_id=tree.district)
    headers = auth(app, auditor)
    assert client.get("/api/v1/orgs", headers=headers).status_code == 200
    assert _reads_during(monkeypatch, lambda: client.get("/api/v1/orgs", headers=headers)) == 0


def test_a_change_behind_the_orm_is_seen_only_after_the_bound(app, client):
    app.config["PRINCIPAL_CACHE_SECONDS"] = 1
    tree = make_tree(app)
    auditor = make_user(app, role="auditor", node_id=tree.district)
    headers = auth(app, auditor)
    assert client.get("/api/v1/orgs", headers=headers).status_code == 200
    with app.app_context():  # raw SQL: no ORM event, so only the bound ends the cache entry
        db.session.execute(text("DELETE FROM role_grants WHERE user_id = :u"), {"u": auditor})
        db.session.commit()
    assert _role_grants_of(app, auditor) == 0
    assert client.get("/api/v1/orgs", headers=headers).status_code == 200
    time.sleep(1.1)
    assert client.get("/api/v1/orgs", headers=headers).status_code == 403


def test_a_committed_orm_change_applies_at_once(app, client):
    tree = make_tree(app)
    admin = make_user(app, role="admin", node_id=tree.district)
    newcomer = make_user(app)
    headers = auth(app, newcomer)
    assert client.get("/api/v1/orgs", headers=headers).status_code == 403
    granted = client.post(f"/api/v1/staff/{newcomer}/grants", headers=auth(app, admin),
                          json={"role": "auditor", "org_node_id": tree.district})
    assert granted.status_code == 201
    assert client.get("/api/v1/orgs", headers=headers).status_code == 200
    revoked = client.delete(f"/api/v1/staff/{newcomer}/grants/{granted.get_json()['id']}",
                            headers=auth(app, admin))
    assert revoked.status_code == 204
    assert client.get("/api/v1/orgs", headers=headers).status_code == 403


def test_disabled_cache_reads_every_time(app, client, monkeypatch):
    app.config["PRINCIPAL_CACHE_SECONDS"] = 0
    tree = make_tree(app)
    auditor = make_user(app, role="auditor", node_id=tree.district)
    headers = auth(app, auditor)
    client.get("/api/v1/orgs", headers=headers)
    assert _reads_during(monkeypatch, lambda: client.get("/api/v1/orgs", headers=headers)) == 1
