"""pointsvc.sql: the lean statement helpers the hot paths use, on both databases."""

from __future__ import annotations

import gc

import pytest
from sqlalchemy import exc

from pointsvc import sql
from pointsvc.common import gc_paused
from pointsvc.extensions import db


def test_rows_for_ids_finds_each_id_once_across_many_chunks(app):
    # 2,500 ids and duplicates: one array on PostgreSQL, three chunks of placeholders on
    # SQLite; the extra parameter travels beside them.
    with app.app_context():
        found = sql.rows_for_ids(
            "SELECT n, %(tag)s FROM (SELECT 1 AS n UNION ALL SELECT 1500 UNION ALL "
            "SELECT 2500 UNION ALL SELECT 9999) AS t WHERE {ids}", "n",
            [*range(1, 2501), 1500, 1], {"tag": "x"})
    assert sorted(found) == [(1, "x"), (1500, "x"), (2500, "x")]


def test_rows_for_ids_of_nothing_finds_nothing(app):
    with app.app_context():
        assert sql.rows_for_ids("SELECT 1 WHERE {ids}", "1", []) == []


def test_copy_in_writes_every_character_and_a_violation_is_an_integrity_error(pg_url):
    from pointsvc import create_app
    from tests import conftest

    app = create_app(conftest.test_config(pg_url))
    texts = ["tab\there", "line\nbreak", "cr\rhere", "back\\slash", "\\N", "NULL", "",
             "逗号,{括号}\"引号\""]
    with app.app_context():
        sql.rows("CREATE TEMPORARY TABLE copy_probe (id bigint PRIMARY KEY, body text)")
        sql.copy_in("copy_probe", ("id", "body"), [(n, t) for n, t in enumerate(texts)]
                    + [(len(texts), None)])
        assert sql.rows("SELECT id, body FROM copy_probe ORDER BY id") == [
            *enumerate(texts), (len(texts), None)]
        with pytest.raises(exc.IntegrityError):  # the same class sql.rows and the ORM raise
            sql.copy_in("copy_probe", ("id", "body"), [(0, "again")])
        db.session.rollback()
        db.session.remove()
        db.engine.dispose()


def test_gc_paused_pauses_collection_and_always_restores_it():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("the burst failed")
    assert gc.isenabled()
    gc.disable()  # someone else paused it: leave it as it was found
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
