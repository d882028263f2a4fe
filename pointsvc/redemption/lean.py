"""The spend path's statements as plain SQL on the driver's cursor, in the session's transaction.

Building a statement through SQLAlchemy costs 0.1-0.5 ms of CPU each (the ORM's more); a
pay-code redemption sends several of its own, so they are written once as SQL text and run
through the ledger's helper (pointsvc/sql.py) on the DBAPI cursor of the connection the
session already holds — the same database transaction (and savepoint), so atomicity and
rollback stay the session's. This module adds the row count for conditional updates.

SQL is written in psycopg's `%(name)s` style (rewritten to `:name` for SQLite). Values must
be plain (int, str, None); datetimes go through `stored_time()`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import exc

from .. import sql
from ..extensions import db


def one(statement: str, params: dict[str, Any]) -> tuple | None:
    """The first row of one statement in the session's transaction, or None."""
    return sql.one(statement, params)


def postgresql() -> bool:
    return sql.is_postgresql()


def stored_time(value: datetime) -> Any:
    """A UTC instant as the backend stores it."""
    return sql.db_time(value)


def read_time(value: Any) -> datetime | None:
    """A stored instant read back, as an aware UTC datetime."""
    return sql.from_db_time(value)


def count(statement: str, params: dict[str, Any]) -> int:
    """Run one UPDATE / DELETE in the session's transaction; the number of rows it changed."""
    pg = sql.is_postgresql()
    cursor = db.session.connection().connection.driver_connection.cursor()
    try:
        cursor.execute(statement if pg else sql._for_sqlite(statement), params)
        return int(cursor.rowcount)
    except sql._driver_error(pg) as error:
        # The exception classes SQLAlchemy raises, so callers see IntegrityError etc.
        raise exc.DBAPIError.instance(statement, params, error, sql._driver_error(pg)) from error
    finally:
        cursor.close()
