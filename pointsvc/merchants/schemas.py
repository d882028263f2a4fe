"""Shapes of merchants, merchant applications and merchant operators."""

from __future__ import annotations

from marshmallow import fields, validate

from ..common import PageArgs, StrictSchema
from ..people.models import MERCHANT_STATUSES
from ..people.schemas import Id, QueryId, Text, phone_field_validator

CATEGORIES = ("grocery", "restaurant", "supermarket", "services", "pharmacy", "other")
_USERNAME = [
    validate.Length(min=3, max=64),
    validate.Regexp(r"^[A-Za-z0-9_.-]+$", error="Letters, digits, _ . - only."),
]


class MerchantApplication(StrictSchema):
    """What a member of the public sends to apply; every field is required."""

    name = Text(required=True, validate=validate.Length(max=200))
    address = Text(required=True, validate=validate.Length(max=300))
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    org_node_id = Id(
        required=True, metadata={"description": "The street, community or grid it serves"}
    )
    contact_name = Text(required=True, validate=validate.Length(max=100))
    contact_phone = fields.String(required=True, validate=phone_field_validator)


class ApplicationReceipt(StrictSchema):
    id = fields.Integer(metadata={"description": "The application (merchant) id"})
    status = fields.String()


class MerchantCreate(StrictSchema):
    name = Text(required=True, validate=validate.Length(max=200))
    address = Text(required=True, validate=validate.Length(max=300))
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    org_node_id = Id(required=True)
    contact_name = Text(allow_none=True, load_default=None, validate=validate.Length(max=100))
    contact_phone = fields.String(
        allow_none=True, load_default=None, validate=phone_field_validator
    )


class MerchantUpdate(StrictSchema):
    name = Text(validate=validate.Length(max=200))
    address = Text(validate=validate.Length(max=300))
    category = fields.String(validate=validate.OneOf(CATEGORIES))
    org_node_id = Id(metadata={"description": "Moving needs merchants.manage on both nodes"})
    contact_name = Text(allow_none=True, validate=validate.Length(max=100))
    contact_phone = fields.String(allow_none=True, validate=phone_field_validator)


class ReasonRequired(StrictSchema):
    reason = Text(required=True, validate=validate.Length(max=500))


class ReasonOptional(StrictSchema):
    reason = Text(allow_none=True, load_default=None, validate=validate.Length(max=500))


class MerchantOut(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    address = fields.String()
    category = fields.String()
    org_node_id = fields.Integer()
    status = fields.String()
    status_reason = fields.String(allow_none=True)
    contact_name = fields.String(allow_none=True)
    contact_phone = fields.String(
        allow_none=True, metadata={"description": "Masked (138****1234) unless admin"}
    )
    created_by = fields.Integer(
        allow_none=True, metadata={"description": "None: a public application"}
    )
    status_changed_by = fields.Integer(allow_none=True)
    status_changed_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class MerchantListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(MERCHANT_STATUSES))
    category = fields.String(validate=validate.OneOf(CATEGORIES))
    org_node_id = QueryId(metadata={"description": "Merchants serving this node or below it"})


class MerchantPage(StrictSchema):
    items = fields.List(fields.Nested(MerchantOut))
    next_cursor = fields.String(allow_none=True)


class OperatorCreate(StrictSchema):
    username = fields.String(required=True, validate=_USERNAME)
    display_name = Text(required=True, validate=validate.Length(max=100))
    password = fields.String(required=True, validate=validate.Length(min=8, max=256))
    phone = fields.String(allow_none=True, load_default=None, validate=phone_field_validator)


class OperatorOut(StrictSchema):
    user_id = fields.Integer()
    merchant_id = fields.Integer()
    username = fields.String(allow_none=True)
    display_name = fields.String()
    phone = fields.String(allow_none=True, metadata={"description": "Masked unless admin"})
    is_active = fields.Boolean()
    created_at = fields.DateTime()


class OperatorPage(StrictSchema):
    items = fields.List(fields.Nested(OperatorOut))
    next_cursor = fields.String(allow_none=True)
