"""Pieces every domain shares: strict schemas, keyset pagination, masking, time."""

from __future__ import annotations

import base64
import binascii
import gc
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from .errors import ValidationFailed

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


def utcnow() -> datetime:
    """Timezone-aware now in UTC (the only clock the service reads)."""
    return datetime.now(UTC)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around one burst of allocation (a bulk request).

    Building 10,000 postings allocates a few hundred thousand objects, which set off full
    collections that walk the whole heap: 60–100 ms of a one-second bulk request, measured.
    The burst's objects hold no cycles and are freed by reference counting regardless;
    collection resumes (and catches up) once the burst is over.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; treat every stored time as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class StrictSchema(ma.Schema):
    """Input schema that rejects unknown fields."""

    class Meta:
        unknown = ma.RAISE


class UtcDateTime(fields.DateTime):
    """Always rendered with its UTC offset (SQLite hands back naive datetimes)."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return super()._serialize(as_utc(value), attr, obj, **kwargs)


class PageArgs(StrictSchema):
    limit = fields.Integer(
        load_default=DEFAULT_PAGE_SIZE, validate=validate.Range(min=1, max=MAX_PAGE_SIZE)
    )
    cursor = fields.String(load_default=None, validate=validate.Length(max=200))


def encode_cursor(values: Sequence[Any]) -> str:
    """Opaque cursor: base64 of the JSON sort key of the last row returned."""
    raw = json.dumps(list(values), separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """Parse a cursor made by encode_cursor, or fail with a 422 naming the field."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(errors={"cursor": ["Invalid cursor."]}) from exc
    if not isinstance(values, list) or len(values) != arity:
        raise ValidationFailed(errors={"cursor": ["Invalid cursor."]})
    return values


def page_of(
    rows: list[Any], *, limit: int, key: Callable[[Any], Sequence[Any]]
) -> tuple[list[Any], str | None]:
    """Given limit+1 rows fetched in order, return the page and the next cursor."""
    if len(rows) > limit:
        page = rows[:limit]
        return page, encode_cursor(key(page[-1]))
    return rows, None


def mask_phone(phone: str | None) -> str | None:
    """138****1234."""
    if not phone:
        return phone
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_name(name: str | None) -> str | None:
    """张*明 / 张* : keep the first and (for three or more characters) the last character."""
    if not name:
        return name
    if len(name) == 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def decode_id_cursor(cursor: str) -> int:
    """A cursor holding one integer id (the common case)."""
    (value,) = decode_cursor(cursor, 1)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationFailed(errors={"cursor": ["Invalid cursor."]})
    return value
