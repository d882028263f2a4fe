"""Reading page forms: typed values and field errors in the page's language.

Bounds come from the API's schemas, so a page accepts exactly what the API accepts.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import get_timezone
from flask_babel import gettext as _
from marshmallow import Schema, ValidationError

from ..redemption.schemas import MAX_POINTS, MAX_QUANTITY

MAX_ID = 2**63 - 1
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def new_form_key() -> str:
    """The idempotency key a rendered confirm form carries (one per rendering)."""
    return "web-" + secrets.token_urlsafe(18)


class Form:
    """Values as typed (to show them again) and errors by field."""

    def __init__(self, data: Any) -> None:
        self.raw = {key: data.get(key, "") for key in data}
        self.errors: dict[str, str] = {}

    @property
    def ok(self) -> bool:
        return not self.errors

    def value(self, name: str) -> str:
        return str(self.raw.get(name, "")).strip()

    def text(self, name: str, *, max_length: int, required: bool = True) -> str | None:
        value = self.value(name)
        if not value:
            if required:
                self.errors[name] = _("This field is required.")
            return None
        if len(value) > max_length:
            self.errors[name] = _("At most %(n)d characters.", n=max_length)
            return None
        if CONTROL.search(value):
            self.errors[name] = _("Control characters are not allowed.")
            return None
        return value

    def integer(self, name: str, *, maximum: int, minimum: int = 1,
                required: bool = True) -> int | None:
        value = self.value(name)
        if not value:
            if required:
                self.errors[name] = _("This field is required.")
            return None
        if not value.isascii() or not value.isdigit():
            self.errors[name] = _("Enter a whole number.")
            return None
        number = int(value)
        if not minimum <= number <= maximum:
            self.errors[name] = _("Enter a number from %(low)d to %(high)d.",
                                  low=minimum, high=maximum)
            return None
        return number

    def moment(self, name: str, *, required: bool = True) -> datetime | None:
        """A datetime-local value, read in the page's (the community's) time zone."""
        value = self.value(name)
        if not value:
            if required:
                self.errors[name] = _("This field is required.")
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.errors[name] = _("Enter a date and time.")
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(str(get_timezone())))
        return moment

    def add_errors(self, errors: dict[str, Any] | None,
                   message: Callable[[str, Any], str]) -> None:
        """Field errors of an API schema or service ({field: messages}), as `message` words
        them in the page's language."""
        for name, messages in (errors or {}).items():
            self.errors[name] = message(name, messages)

    def load(self, schema: Schema, body: dict[str, Any],
             message: Callable[[str, Any], str]) -> dict[str, Any] | None:
        """`body` through the API's schema, or None with its complaints as field errors."""
        try:
            return schema.load(body)
        except ValidationError as err:
            self.add_errors(err.normalized_messages(), message)
            return None


@dataclass(frozen=True)
class Spend:
    """An offer and a quantity, or a number of points (never both), as the API takes it."""

    offer_id: int | None
    quantity: int | None
    points: int | None


def read_spend(form: Form) -> Spend | None:
    """The spend a form asks for, or None with the field errors set."""
    offer_id = form.integer("offer_id", maximum=MAX_ID, required=False)
    if offer_id is not None:
        quantity = form.integer("quantity", maximum=MAX_QUANTITY, required=False) or 1
        return Spend(offer_id, quantity, None) if form.ok else None
    if form.value("offer_id") and "offer_id" in form.errors:
        return None
    points = form.integer("points", maximum=MAX_POINTS, required=False)
    if points is None and "points" not in form.errors:
        form.errors["points"] = _("Choose an offer or enter a number of points.")
    return Spend(None, None, points) if form.ok else None
