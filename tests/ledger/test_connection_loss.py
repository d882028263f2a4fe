"""A pooled PostgreSQL connection the server dropped: 503 and nothing posted, never a 500.

The pool tests a connection only after it sat idle DB_PING_IDLE_SECONDS (pre-ping on every
checkout cost a round trip per request), so a connection dropped moments after use is found
out by the request itself. Both ways are checked by terminating the server-side backends.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from flask import Flask
from sqlalchemy.engine import make_url

from pointsvc import create_app
from pointsvc.extensions import db
from tests import conftest
from tests.ledger.conftest import award, balance_of


@pytest.fixture
def idle_seconds() -> int:
    return 3600


@pytest.fixture
def app(pg_url: str, idle_seconds: int) -> Iterator[Flask]:
    app = create_app(conftest.test_config(pg_url, DB_PING_IDLE_SECONDS=idle_seconds))
    yield app
    try:
        from tests.invariants import assert_invariants

        assert_invariants(app)
    finally:
        conftest._truncate_all(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _drop_server_connections(pg_url: str) -> int:
    """What a database restart does to the pool: every backend of the database ends."""
    url = make_url(pg_url)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        return len(conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()", (url.database,)).fetchall())


def test_a_connection_dropped_within_the_idle_window_is_503_then_renewed(
        app, client, world, pg_url):
    assert award(client, app, world.organizer, world.resident, "garbage-sorting").status_code \
        == 201
    assert _drop_server_connections(pg_url) >= 1

    r = award(client, app, world.organizer, world.resident, "garbage-sorting")
    assert r.status_code == 503, r.get_json()
    assert r.mimetype == "application/problem+json"
    assert r.get_json()["code"] == "database_unavailable"
    assert r.headers["Retry-After"] == "1"

    # The pool threw the dead connections away: the retry goes through, and only the
    # first and the retried award were posted.
    r = award(client, app, world.organizer, world.resident, "garbage-sorting")
    assert r.status_code == 201, r.get_json()
    assert balance_of(app, world.resident) == 10


@pytest.mark.parametrize("idle_seconds", [0])
def test_an_idle_connection_is_tested_and_replaced_before_use(app, client, world, pg_url):
    assert award(client, app, world.organizer, world.resident, "garbage-sorting").status_code \
        == 201
    assert _drop_server_connections(pg_url) >= 1

    r = award(client, app, world.organizer, world.resident, "garbage-sorting")
    assert r.status_code == 201, r.get_json()
    assert balance_of(app, world.resident) == 10


def test_postgresql_pools_do_not_pre_ping_every_checkout(app):
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is False
    with app.app_context():
        assert db.engine.pool._pre_ping is False
