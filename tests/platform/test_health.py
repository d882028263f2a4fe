"""Liveness and readiness: /readyz is 503 (never 500) when the database is not usable."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from pointsvc import create_app
from pointsvc.extensions import db
from pointsvc.health import migration_heads
from tests.conftest import test_config as base_config


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.get_json() == {"status": "ok"}


def test_readyz_when_migrated(client):
    r = client.get("/readyz")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "ok"
    assert set(r.get_json()["migration"]) == set(migration_heads())


def _set_versions(app, versions) -> None:
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
        for version in versions:
            conn.execute(
                text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": version}
            )


def test_readyz_is_503_when_migrations_are_not_at_head(app, client):
    heads = sorted(migration_heads())
    try:
        _set_versions(app, ["bogus0000"])
        r = client.get("/readyz")
        assert r.status_code == 503
        body = r.get_json()
        assert body["reason"] == "migrations not at head"
        assert body["applied"] == ["bogus0000"] and body["expected"] == heads
        _set_versions(app, [])
        assert client.get("/readyz").status_code == 503
    finally:
        _set_versions(app, heads)  # the PostgreSQL database is shared by the session
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_without_the_version_table(sqlite_template, tmp_path):
    # SQLite only: dropping the table in the session's shared PostgreSQL database would hurt
    # the other tests (the stamped-version test above covers PostgreSQL).
    import shutil

    target = tmp_path / "dropped.db"
    shutil.copyfile(sqlite_template, target)
    app = create_app(base_config(f"sqlite:///{target}"))
    try:
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(text("DROP TABLE alembic_version"))
        r = app.test_client().get("/readyz")
        assert r.status_code == 503
        assert r.get_json()["status"] == "unavailable"
    finally:
        with app.app_context():
            db.engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres@127.0.0.1:1/nowhere",
        "sqlite:////nonexistent-directory/for/sure/pointsvc.db",
    ],
    ids=["postgresql-closed-port", "sqlite-unopenable"],
)
def test_readyz_is_503_when_the_database_is_unreachable(url):
    app = create_app(base_config(url))
    try:
        r = app.test_client().get("/readyz")
        assert r.status_code == 503
        body = r.get_json()
        assert body == {"status": "unavailable", "reason": "database unreachable"}
        assert r.mimetype == "application/json"
        # liveness does not depend on the database
        assert app.test_client().get("/healthz").status_code == 200
    finally:
        with app.app_context():
            db.engine.dispose()
