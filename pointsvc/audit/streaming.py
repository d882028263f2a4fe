"""Streamed exports shared by every audit area: CSV (UTF-8 with BOM) and NDJSON.

Rows arrive as an iterator (a server-side cursor) and leave as an iterator of encoded
chunks, so an export of millions of rows holds one batch in memory at a time.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from flask import Flask, Response, current_app

FORMATS = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
# Excel guesses a legacy code page for a CSV without a byte-order mark and garbles Chinese.
BOM = "\ufeff"
CHUNK_ROWS = 1000


def csv_chunks(*, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    """The header and rows as CSV, BOM first, a chunk per CHUNK_ROWS rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow(columns)
    for count, row in enumerate(rows, 1):
        writer.writerow(["" if value is None else _csv_safe(value) for value in row])
        if count % CHUNK_ROWS == 0:
            yield _drain(buffer)
    yield _drain(buffer)


def ndjson_chunks(*, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    """One JSON object per line, keyed by column, a chunk per CHUNK_ROWS rows."""
    lines: list[str] = []
    for row in rows:
        lines.append(json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False,
                                default=str))
        if len(lines) == CHUNK_ROWS:
            yield ("\n".join(lines) + "\n").encode()
            lines.clear()
    if lines:
        yield ("\n".join(lines) + "\n").encode()


def export_response(
    *, export_format: str, columns: Sequence[str], rows: Iterable[Sequence[Any]],
    filename: str,
) -> Response:
    """A streamed attachment in the chosen format ("csv" or "ndjson").

    `rows` must be lazy (a generator): it is first iterated after the view has returned,
    inside an app context of its own, so it reads through a session of its own.
    """
    chunks = csv_chunks if export_format == "csv" else ndjson_chunks
    body = _in_app_context(current_app._get_current_object(),  # type: ignore[attr-defined]
                           chunks(columns=columns, rows=rows))
    response = Response(body, mimetype=FORMATS[export_format])
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{filename}.{export_format}"'
    )
    return response


def copied_csv_response(*, columns: Sequence[str], blocks: Iterable[bytes],
                        filename: str) -> Response:
    """A CSV attachment whose rows the database wrote (COPY ... TO STDOUT (FORMAT csv)).

    PostgreSQL ends CSV lines with LF alone, so the header here does too.
    """
    def body() -> Iterator[bytes]:
        yield (BOM + ",".join(columns) + "\n").encode()
        yield from blocks

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    response = Response(_in_app_context(app, body()), mimetype=FORMATS["csv"])
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


def _in_app_context(app: Flask, chunks: Iterator[bytes]) -> Iterator[bytes]:
    # Not stream_with_context, and no context held across a yield: a body that is never
    # read to the end (a client hanging up, a test) is closed by the garbage collector
    # wherever it happens to run, and a context pushed elsewhere cannot be popped there.
    # So each chunk is made inside a context of its own (and a session of its own).
    try:
        while True:
            with app.app_context():
                try:
                    chunk = next(chunks, None)
                finally:
                    _remove_session()
            if chunk is None:
                return
            yield chunk
    finally:
        with app.app_context():
            chunks.close()  # type: ignore[attr-defined]
            _remove_session()


def _remove_session() -> None:
    from ..extensions import db

    db.session.remove()


def _csv_safe(value: Any) -> Any:
    # A cell starting with = + - @ is run as a formula by spreadsheets (CSV injection);
    # numbers are left alone so negative amounts stay numbers.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    return data
