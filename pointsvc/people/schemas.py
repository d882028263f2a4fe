"""Shapes of people: the caller's own profile, residents, households, staff and grants."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import ValidationError, fields, validate

from ..common import PageArgs, StrictSchema, UtcDateTime
from .models import PRIVACY_CHOICES, STAFF_ROLES

PHONE_PATTERN = r"^1[3-9]\d{9}$"
phone_field_validator = validate.Regexp(PHONE_PATTERN, error="Not a valid mainland mobile number.")

# Largest value a BIGINT id column holds; bigger ids would make the database raise (a 500).
MAX_ID = 2**63 - 1
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Id(fields.Integer):
    """A database id: a JSON integer (not a string, float or boolean) in BIGINT range."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("validate", validate.Range(min=1, max=MAX_ID))
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class QueryId(fields.Integer):
    """An id given in a query string (text, so not strict), in BIGINT range."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("validate", validate.Range(min=1, max=MAX_ID))
        super().__init__(**kwargs)


class StrictBool(fields.Boolean):
    """JSON true/false only: "yes" or 1 are type errors, not truthy values."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class Text(fields.String):
    """A one-line text: trimmed, not blank, no control characters (PostgreSQL rejects NUL)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if _CONTROL.search(text):
            raise ValidationError("Must not contain control characters.")
        if not text:
            raise ValidationError("Must not be blank.")
        return text


def check_text(value: str, *, max_length: int) -> str | None:
    """The error message for a one-line text (shared with the CSV importer), or None."""
    if _CONTROL.search(value):
        return "Must not contain control characters."
    if not value:
        return "Must not be blank."
    if len(value) > max_length:
        return f"Longer than maximum length {max_length}."
    return None


# -- the caller ---------------------------------------------------------------------------


class GrantOut(StrictSchema):
    role = fields.String()
    org_node_id = fields.Integer()


class MeResidentOut(StrictSchema):
    id = fields.Integer()
    community_id = fields.Integer()
    grid_id = fields.Integer(allow_none=True)
    household_id = fields.Integer(allow_none=True)
    is_minor = fields.Boolean()
    privacy = fields.String()


class MeOut(StrictSchema):
    id = fields.Integer()
    username = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    display_name = fields.String()
    roles = fields.List(fields.String())
    grants = fields.List(fields.Nested(GrantOut))
    resident = fields.Nested(MeResidentOut, allow_none=True)
    merchant_id = fields.Integer(allow_none=True)


class MeUpdate(StrictSchema):
    display_name = Text(validate=validate.Length(min=1, max=100))
    privacy = fields.String(validate=validate.OneOf(PRIVACY_CHOICES))


# -- residents ----------------------------------------------------------------------------


class ResidentCreate(StrictSchema):
    name = Text(required=True, validate=validate.Length(max=100))
    phone = fields.String(required=True, validate=phone_field_validator)
    community_id = Id(required=True)
    grid_id = Id(allow_none=True, load_default=None)
    household_id = Id(allow_none=True, load_default=None)
    is_minor = StrictBool(required=True)
    privacy = fields.String(load_default="public", validate=validate.OneOf(PRIVACY_CHOICES))
    password = fields.String(validate=validate.Length(min=8, max=256))


class ResidentUpdate(StrictSchema):
    """Moving a resident to another community is not an edit (their accounts are per community)."""

    name = Text(validate=validate.Length(max=100))
    phone = fields.String(validate=phone_field_validator)
    grid_id = Id(allow_none=True)
    household_id = Id(allow_none=True)
    is_minor = StrictBool()
    privacy = fields.String(validate=validate.OneOf(PRIVACY_CHOICES))


class ResidentOut(StrictSchema):
    id = fields.Integer()
    user_id = fields.Integer()
    name = fields.String()
    phone = fields.String(
        allow_none=True, metadata={"description": "Masked (138****1234) unless yours or admin"}
    )
    community_id = fields.Integer()
    grid_id = fields.Integer(allow_none=True)
    household_id = fields.Integer(allow_none=True)
    is_minor = fields.Boolean()
    privacy = fields.String()
    created_at = UtcDateTime()


class ResidentCreated(ResidentOut):
    initial_password = fields.String(
        metadata={"description": "Only when the server generated it; shown this once"}
    )


class ResidentListArgs(PageArgs):
    community_id = QueryId()
    q = fields.String(
        validate=validate.Length(min=1, max=100), metadata={"description": "Name contains"}
    )


class ResidentPage(StrictSchema):
    items = fields.List(fields.Nested(ResidentOut))
    next_cursor = fields.String(allow_none=True)


class PasswordResetOut(StrictSchema):
    initial_password = fields.String()


class ImportArgs(StrictSchema):
    community_id = QueryId(
        metadata={"description": "Community of rows whose community_id column is blank or absent"}
    )
    partial = fields.Boolean(
        load_default=False, metadata={"description": "Import the good rows, report the bad ones"}
    )


class ImportRowError(StrictSchema):
    row = fields.Integer(metadata={"description": "1-based data row (the header is not counted)"})
    line = fields.Integer(metadata={"description": "Line of the file (the header is line 1)"})
    field = fields.String(allow_none=True)
    message = fields.String()


class ImportResult(StrictSchema):
    rows = fields.Integer()
    created = fields.Integer()
    unchanged = fields.Integer()
    failed = fields.Integer()
    households_created = fields.Integer()
    errors = fields.List(fields.Nested(ImportRowError))


# -- households ---------------------------------------------------------------------------


class HouseholdCreate(StrictSchema):
    community_id = Id(required=True)
    label = Text(required=True, validate=validate.Length(max=200))


class HouseholdOut(StrictSchema):
    id = fields.Integer()
    community_id = fields.Integer()
    label = fields.String()
    created_at = UtcDateTime()


class HouseholdMemberOut(StrictSchema):
    resident_id = fields.Integer()
    name = fields.String()
    is_minor = fields.Boolean()


class HouseholdDetailOut(HouseholdOut):
    members = fields.List(fields.Nested(HouseholdMemberOut))
    staff_user_ids = fields.List(fields.Integer())


class HouseholdListArgs(PageArgs):
    community_id = QueryId()
    q = fields.String(
        validate=validate.Length(min=1, max=100), metadata={"description": "Label contains"}
    )


class HouseholdPage(StrictSchema):
    items = fields.List(fields.Nested(HouseholdOut))
    next_cursor = fields.String(allow_none=True)


# -- staff and grants ---------------------------------------------------------------------


class StaffCreate(StrictSchema):
    username = fields.String(
        required=True,
        validate=[
            validate.Length(min=3, max=64),
            validate.Regexp(r"^[A-Za-z0-9_.-]+$", error="Letters, digits, _ . - only."),
        ],
    )
    display_name = Text(required=True, validate=validate.Length(max=100))
    password = fields.String(required=True, validate=validate.Length(min=8, max=256))
    phone = fields.String(allow_none=True, load_default=None, validate=phone_field_validator)
    role = fields.String(required=True, validate=validate.OneOf(STAFF_ROLES))
    org_node_id = Id(required=True)


class GrantCreate(StrictSchema):
    role = fields.String(required=True, validate=validate.OneOf(STAFF_ROLES))
    org_node_id = Id(required=True)


class StaffGrantOut(StrictSchema):
    id = fields.Integer()
    role = fields.String()
    org_node_id = fields.Integer()
    granted_by = fields.Integer(allow_none=True)
    created_at = UtcDateTime()


class StaffOut(StrictSchema):
    id = fields.Integer()
    username = fields.String(allow_none=True)
    display_name = fields.String()
    phone = fields.String(allow_none=True)
    is_active = fields.Boolean()
    household_id = fields.Integer(allow_none=True)
    grants = fields.List(
        fields.Nested(StaffGrantOut),
        metadata={"description": "The grants inside the caller's scope"},
    )


class StaffPage(StrictSchema):
    items = fields.List(fields.Nested(StaffOut))
    next_cursor = fields.String(allow_none=True)


class StaffHouseholdSet(StrictSchema):
    household_id = Id(required=True, allow_none=True)


class StaffHouseholdOut(StrictSchema):
    user_id = fields.Integer()
    household_id = fields.Integer(allow_none=True)
