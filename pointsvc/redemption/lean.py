"""The spend path's statements as plain SQL on the driver's cursor, in the session's transaction.

Building a statement through SQLAlchemy costs 0.1-0.5 ms of CPU each (the ORM's more); a
pay-code redemption sends eight of its own, so they are written once as SQL text and run on
the DBAPI cursor of the connection the session already holds — the same database
transaction (and savepoint), so atomicity and rollback stay the session's. This mirrors
the ledger's helper (pointsvc/sql.py) and can be replaced by it.

SQL is written in psycopg's `%(name)s` style; for SQLite it is rewritten to `:name`. Values
must be plain (int, str, None); datetimes go through `stored_time()`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import exc

from ..extensions import db

_PYFORMAT = re.compile(r"%\((\w+)\)s")


def postgresql() -> bool:
    return db.engine.dialect.name == "postgresql"


@lru_cache(maxsize=128)
def _for_sqlite(sql: str) -> str:
    return _PYFORMAT.sub(r":\1", sql)


def rows(sql: str, params: dict[str, Any]) -> list[tuple]:
    """Run one statement in the session's transaction; all its rows (none for plain DML)."""
    pg = postgresql()
    cursor = db.session.connection().connection.driver_connection.cursor()
    try:
        cursor.execute(sql if pg else _for_sqlite(sql), params)
        return cursor.fetchall() if cursor.description is not None else []
    except _driver_error(pg) as error:
        # The exception classes SQLAlchemy raises, so callers see IntegrityError etc.
        raise exc.DBAPIError.instance(sql, params, error, _driver_error(pg)) from error
    finally:
        cursor.close()


def count(sql: str, params: dict[str, Any]) -> int:
    """Run one UPDATE / DELETE in the session's transaction; the number of rows it changed."""
    pg = postgresql()
    cursor = db.session.connection().connection.driver_connection.cursor()
    try:
        cursor.execute(sql if pg else _for_sqlite(sql), params)
        return int(cursor.rowcount)
    except _driver_error(pg) as error:
        raise exc.DBAPIError.instance(sql, params, error, _driver_error(pg)) from error
    finally:
        cursor.close()


def one(sql: str, params: dict[str, Any]) -> tuple | None:
    found = rows(sql, params)
    return found[0] if found else None


def _driver_error(pg: bool) -> type[Exception]:
    if pg:
        import psycopg

        return psycopg.Error
    import sqlite3

    return sqlite3.Error


def stored_time(value: datetime) -> Any:
    """A UTC instant as the backend stores it (SQLAlchemy keeps naive UTC text on SQLite)."""
    if postgresql():
        return value
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def read_time(value: Any) -> datetime | None:
    """A stored instant read by rows(), as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
