"""Lean statements for the hot paths: the driver's own cursor, inside the session's transaction.

Building a statement through SQLAlchemy costs 0.1–0.5 ms of CPU each (the ORM's more), which
on a posting is most of the request. The few statements that run on every award, redemption
or check-in are therefore written as SQL text and sent through the DBAPI cursor of the
connection the session already holds — the same database transaction, so atomicity and
rollback are the session's.

SQL is written once in psycopg's `%(name)s` style; for SQLite it is rewritten to `:name`.
Values must be plain (int, str, None, bool); datetimes go through `db_time()`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, any_, bindparam, exc
from sqlalchemy.dialects.postgresql import ARRAY

from .extensions import db

_TUPLES_OK = 2  # libpq's PGRES_TUPLES_OK: the statement returned rows
_PYFORMAT = re.compile(r"%\((\w+)\)s")


@lru_cache(maxsize=512)
def _for_sqlite(sql: str) -> str:
    return _PYFORMAT.sub(r":\1", sql)


def is_postgresql() -> bool:
    return db.engine.dialect.name == "postgresql"


def rows(sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
    """Run a statement in the session's transaction and return all its rows."""
    connection = db.session.connection()
    postgresql = connection.dialect.name == "postgresql"
    driver = connection.connection.driver_connection
    cursor = driver.cursor()
    try:
        cursor.execute(sql if postgresql else _for_sqlite(sql), params or {})
        if postgresql:  # psycopg builds `description` objects on demand; the status is cheap
            result = cursor.pgresult
            return cursor.fetchall() if result is not None and result.status == _TUPLES_OK else []
        return cursor.fetchall() if cursor.description is not None else []
    except _driver_error(postgresql) as error:
        raise _translated(error, sql, params, postgresql, driver, cursor) from error
    finally:
        cursor.close()


def copy_in(table: str, columns: tuple[str, ...], values: Iterable[tuple]) -> None:
    """PostgreSQL only: COPY rows (tuples in `columns` order) into a table, in the session's
    transaction. The fastest way in for thousands of rows: no statement to parse, no array
    to build and unnest; psycopg's C code formats and escapes each row."""
    driver = db.session.connection().connection.driver_connection
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    cursor = driver.cursor()
    try:
        with cursor.copy(statement) as copy:
            for row in values:
                copy.write_row(row)
    except _driver_error(True) as error:
        raise _translated(error, statement, None, True, driver, cursor) from error
    finally:
        cursor.close()


def _translated(error: Exception, sql: str, params: Any, postgresql: bool, driver: Any,
                cursor: Any) -> exc.DBAPIError:
    """The same exception classes SQLAlchemy raises (IntegrityError, ...), so callers handle
    a constraint violation the same way whichever path sent the statement."""
    gone = _drop_if_disconnected(error, driver, cursor)
    return exc.DBAPIError.instance(sql, params, error, _driver_error(postgresql),
                                   connection_invalidated=gone)


def _drop_if_disconnected(error: Exception, driver: Any, cursor: Any) -> bool:
    """What SQLAlchemy does for its own statements: a lost server connection is thrown away,
    and so is every idle one of the pool (a restarted server dropped them all)."""
    if not db.engine.dialect.is_disconnect(error, driver, cursor):
        return False
    db.session.connection().invalidate(error)
    db.engine.dispose(close=True)
    return True


def _driver_error(postgresql: bool) -> type[Exception]:
    if postgresql:
        import psycopg

        return psycopg.Error
    import sqlite3

    return sqlite3.Error


def one(sql: str, params: dict[str, Any] | None = None) -> tuple | None:
    """The first row of a statement, or None."""
    found = rows(sql, params)
    return found[0] if found else None


def rows_for_ids(statement: str, column: str, ids: Iterable[int],
                 params: dict[str, Any] | None = None) -> list[tuple]:
    """Rows of `statement` whose `{ids}` placeholder becomes "`column` is one of `ids`":
    one array on PostgreSQL, chunks of 1,000 placeholders on SQLite."""
    unique = sorted(set(ids))
    if is_postgresql():
        return rows(statement.format(ids=f"{column} = ANY(CAST(%(_ids)s AS bigint[]))"),
                    {**(params or {}), "_ids": array_literal(unique)})
    found: list[tuple] = []
    for start in range(0, len(unique), 1000):
        chunk = unique[start:start + 1000]
        marks = ", ".join(f"%(_i{n})s" for n in range(len(chunk)))
        found.extend(rows(statement.format(ids=f"{column} IN ({marks})"),
                          {**(params or {}), **{f"_i{n}": v for n, v in enumerate(chunk)}}))
    return found


def in_ids(column: Any, ids: Iterable[int]) -> Any:
    """`column IN ids`; on PostgreSQL one array parameter (= ANY), not thousands of them
    (an expanded IN of 5,000 ids costs more to build and parse than to run)."""
    ids = list(ids)
    if is_postgresql():
        return column == any_(bindparam(None, ids, type_=ARRAY(BigInteger)))
    return column.in_(ids)


def array_literal(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal (`{1,2,NULL,"a b"}`) of ints, booleans, datetimes and text.

    Set-based statements pass each column as one such text, cast in SQL (`CAST(%(x)s AS
    bigint[])`): psycopg's per-element dumping of Python lists cost more than the
    statements themselves. One inline loop: a bulk award formats 320,000 values.
    """
    parts = []
    for value in values:
        kind = type(value)
        if kind is int:
            parts.append(str(value))
        elif value is None:
            parts.append("NULL")
        elif kind is bool:
            parts.append("t" if value else "f")
        elif kind is datetime:
            parts.append('"' + value.isoformat() + '"')
        else:
            # Quoted, backslash and double quote escaped: any text survives, commas,
            # braces, quotes, "NULL" and blanks included.
            parts.append('"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


def db_time(value: datetime) -> Any:
    """A UTC datetime as the backend stores it (SQLAlchemy's SQLite format is naive text)."""
    if is_postgresql():
        return value
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def from_db_time(value: Any) -> datetime | None:
    """A datetime read by rows(), as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
