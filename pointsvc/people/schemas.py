"""Shapes of people: the caller's own profile, residents, staff, merchants."""

from marshmallow import fields, validate

from ..common import StrictSchema
from .models import PRIVACY_CHOICES

PHONE_PATTERN = r"^1[3-9]\d{9}$"
phone_field_validator = validate.Regexp(PHONE_PATTERN, error="Not a valid mainland mobile number.")


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
    display_name = fields.String(validate=validate.Length(min=1, max=100))
    privacy = fields.String(validate=validate.OneOf(PRIVACY_CHOICES))
