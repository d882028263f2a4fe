"""Migrations build exactly the schema the models describe, and tear it down again.

Runs on an EMPTY database of each backend (not the session's template), upgrading to every
head and downgrading to base.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

import pointsvc
from pointsvc import MIGRATIONS_DIR, create_app
from pointsvc.extensions import db
from tests.conftest import BACKENDS, PG_URL, _admin_url
from tests.conftest import test_config as base_config


def _import_all_models() -> None:
    """Every models module under pointsvc (audit/appeals/models too), so the metadata holds
    every table."""
    for module in pkgutil.walk_packages(pointsvc.__path__, "pointsvc."):
        if module.name.endswith(".models"):
            importlib.import_module(module.name)


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    import psycopg

    name = f"pointsvc_mig_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = _admin_url(PG_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _describe(diff) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(f"  {entry!r}"[:300] for entry in diff)


def test_upgrade_matches_the_models_and_downgrade_removes_everything(empty_database):
    _import_all_models()
    app = create_app(base_config(empty_database))
    try:
        with app.app_context():
            assert inspect(db.engine).get_table_names() == []
            upgrade(directory=MIGRATIONS_DIR, revision="heads")
            with db.engine.connect() as conn:
                context = MigrationContext.configure(
                    conn, opts={"compare_type": True, "compare_server_default": False}
                )
                diff = compare_metadata(context, db.metadata)
            assert not diff, (
                "the migrations and the models disagree (write a migration):\n" + _describe(diff)
            )
            tables = set(inspect(db.engine).get_table_names())
            assert {t.name for t in db.metadata.sorted_tables} <= tables

            downgrade(directory=MIGRATIONS_DIR, revision="base")
            left = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
            assert not left, f"tables left after downgrade to base: {sorted(left)}"
            if empty_database.startswith("postgresql"):
                with db.engine.connect() as conn:
                    leftovers = conn.exec_driver_sql(
                        "SELECT typname FROM pg_type t JOIN pg_namespace n "
                        "ON n.oid = t.typnamespace WHERE n.nspname = 'public' AND t.typtype = 'e'"
                    ).all()
                assert not leftovers, f"enum types left after downgrade: {leftovers}"

            # ... and it all comes back.
            upgrade(directory=MIGRATIONS_DIR, revision="heads")
            assert {t.name for t in db.metadata.sorted_tables} <= set(
                inspect(db.engine).get_table_names()
            )
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_0015_fills_the_shown_name_of_existing_tally_rows(empty_database):
    from sqlalchemy import text

    from pointsvc.common import mask_name
    from pointsvc.people.models import Resident
    from tests.factories import make_resident, make_tree

    app = create_app(base_config(empty_database))
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR, revision="0014")
    tree = make_tree(app)
    people = {name: make_resident(app, community_id=tree.community_a, name=name)[1]
              for name in ("张三丰", "李四", "王", "匿名者", "小朋友", "欧阳娜娜")}
    with app.app_context():
        db.session.get(Resident, people["匿名者"]).privacy = "anonymous"
        db.session.get(Resident, people["小朋友"]).is_minor = True
        db.session.commit()
        for resident_id in people.values():
            for period in ("all", "m:2026-11"):
                db.session.execute(text(
                    "INSERT INTO leaderboard_tallies (resident_id, period, category, points,"
                    " minutes, listed, district_id, street_id, community_id, grid_id)"
                    " VALUES (:rid, :period, 'all', 5, 0, TRUE, 1, 2, 3, 0)"),
                    {"rid": resident_id, "period": period})
        db.session.commit()
        upgrade(directory=MIGRATIONS_DIR, revision="0015")
        shown = dict(db.session.execute(text(
            "SELECT DISTINCT resident_id, shown_name FROM leaderboard_tallies")).all())
        db.session.remove()
        db.engine.dispose()
    assert shown == {people[name]: mask_name(name)
                     for name in ("张三丰", "李四", "王", "欧阳娜娜")} | {
        people["匿名者"]: None, people["小朋友"]: None}
