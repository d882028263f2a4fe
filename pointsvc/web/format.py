"""Jinja filters: times in the community's zone, points with their sign."""

from __future__ import annotations

from datetime import datetime

from flask_babel import format_datetime, format_decimal


def _parse(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def local_time(value: str | datetime | None, pattern: str = "yyyy-MM-dd HH:mm") -> str:
    """An instant in the page's time zone (Flask-Babel's timezone selector)."""
    moment = _parse(value)
    return "" if moment is None else format_datetime(moment, pattern)


def points(value: int | None) -> str:
    return "" if value is None else format_decimal(value)


def signed_points(value: int | None) -> str:
    if value is None:
        return ""
    sign = "+" if value > 0 else "−" if value < 0 else ""
    return sign + format_decimal(abs(value))
