"""App-factory fixtures: every database test runs on SQLite and, when configured, PostgreSQL.

SQLite: the schema is migrated once per session into a template file that each test copies.
PostgreSQL: each session migrates its own throw-away database, and every test truncates all
tables afterwards. Tests commit for real (so threads can race), which is why we do not use
rolled-back outer transactions here.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from pointsvc import MIGRATIONS_DIR, create_app
from pointsvc.extensions import db

PG_URL = os.environ.get("POINTSVC_TEST_DATABASE_URL", "")
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])

TEST_SECRETS = {
    "JWT_SECRET": "dGVzdC1qd3Qtc2VjcmV0LXRoYXQtaXMtbG9uZy1lbm91Z2gtMDEyMzQ1Njc4OQ",
    "QR_MAC_KEY": "dGVzdC1xci1tYWMta2V5LXRoYXQtaXMtbG9uZy1lbm91Z2gtMDEyMzQ1Njc4OQ",
    "SECRET_KEY": "dGVzdC1zZWNyZXQta2V5LXRoYXQtaXMtbG9uZy1lbm91Z2gtMDEyMzQ1Njc4OQ",
    "ED25519_PRIVATE_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
}


def pytest_configure(config: pytest.Config) -> None:
    if IN_CI and not PG_URL:
        raise pytest.UsageError("CI=true needs POINTSVC_TEST_DATABASE_URL: PostgreSQL must run")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    # In CI a skipped test (above all a PostgreSQL one) is a failure, not a quiet gap.
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped in CI: {item.nodeid}"


def test_config(database_url: str, **extra: object) -> dict:
    """The settings every test app starts from."""
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_KIB": 1024,
        "LOG_REQUESTS": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        **TEST_SECRETS,
        **extra,
    }


def migrate_to_head(app: Flask) -> None:
    from flask_migrate import upgrade

    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR, revision="heads")
        db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("template") / "template.db"
    app = create_app(test_config(f"sqlite:///{path}"))
    migrate_to_head(app)
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return str(path)


def _admin_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("POINTSVC_TEST_DATABASE_URL not set")
    import psycopg

    name = f"pointsvc_t_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = _admin_url(PG_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    migrate_to_head(create_app(test_config(url)))
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate_all(app: Flask) -> None:
    with app.app_context():
        tables = [t.name for t in db.metadata.sorted_tables]
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path) -> str:
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        target = tmp_path / "test.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def app(database_url: str, backend: str) -> Iterator[Flask]:
    app = create_app(test_config(database_url))
    yield app
    try:
        from tests.invariants import assert_invariants

        assert_invariants(app)
    finally:
        if backend == "postgresql":
            _truncate_all(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
