"""Shapes of offers, codes, redemptions, refunds, settlements and statements."""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from ..common import PageArgs, StrictSchema
from ..people.schemas import Id, QueryId, StrictBool
from .models import LIMIT_PERIODS, OFFER_STATUSES, REDEMPTION_STATUSES

MAX_POINTS = 10**9
MAX_QUANTITY = 10_000
_TEXT = re.compile(r"^[^\x00-\x1f\x7f]*$")
no_control = validate.Regexp(_TEXT, error="Control characters are not allowed.")


def _time(**kwargs: Any) -> fields.String:
    """Times in responses: ISO 8601 strings (UTC)."""
    return fields.String(allow_none=True, metadata={"format": "date-time"}, **kwargs)


def _points(**kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_POINTS), **kwargs)


# -- offers --------------------------------------------------------------------------------


class OfferPatch(StrictSchema):
    title = fields.String(validate=[validate.Length(min=1, max=200), no_control])
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    points_price = _points()
    stock = fields.Integer(strict=True, allow_none=True,
                           validate=validate.Range(min=0, max=MAX_POINTS),
                           metadata={"description": "null: unlimited"})
    per_resident_limit = fields.Integer(strict=True, allow_none=True,
                                        validate=validate.Range(min=1, max=MAX_QUANTITY))
    limit_period = fields.String(allow_none=True, validate=validate.OneOf(LIMIT_PERIODS))
    starts_at = fields.AwareDateTime(allow_none=True, default_timezone=UTC)
    ends_at = fields.AwareDateTime(allow_none=True, default_timezone=UTC)
    org_node_id = Id(metadata={"description": "Where it is offered (default: the merchant's"
                                              " node); residents on that branch see it"})
    status = fields.String(validate=validate.OneOf(OFFER_STATUSES))


class OfferIn(StrictSchema):
    title = fields.String(required=True, validate=[validate.Length(min=1, max=200), no_control])
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    points_price = _points(required=True)
    stock = fields.Integer(strict=True, allow_none=True, load_default=None,
                           validate=validate.Range(min=0, max=MAX_POINTS),
                           metadata={"description": "null: unlimited"})
    per_resident_limit = fields.Integer(strict=True, allow_none=True,
                                        validate=validate.Range(min=1, max=MAX_QUANTITY))
    limit_period = fields.String(allow_none=True, validate=validate.OneOf(LIMIT_PERIODS))
    starts_at = fields.AwareDateTime(allow_none=True, default_timezone=UTC)
    ends_at = fields.AwareDateTime(allow_none=True, default_timezone=UTC)
    org_node_id = Id(metadata={"description": "Where it is offered (default: the merchant's"
                                              " node)"})


class OfferOut(StrictSchema):
    id = fields.Integer()
    merchant_id = fields.Integer()
    merchant_name = fields.String(allow_none=True)
    org_node_id = fields.Integer()
    title = fields.String()
    description = fields.String(allow_none=True)
    points_price = fields.Integer()
    stock = fields.Integer(allow_none=True)
    per_resident_limit = fields.Integer(allow_none=True)
    limit_period = fields.String(allow_none=True)
    starts_at = _time()
    ends_at = _time()
    status = fields.String()
    created_at = _time()
    updated_at = _time()


class OfferPage(StrictSchema):
    items = fields.List(fields.Nested(OfferOut))
    next_cursor = fields.String(allow_none=True)


# -- codes ---------------------------------------------------------------------------------


class PayCodeOut(StrictSchema):
    token = fields.String(metadata={"description": "Bare token; show it as a QR code"})
    issued_at = _time()
    expires_at = _time()
    valid_seconds = fields.Integer()


class CodeFormatArgs(StrictSchema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "png", "svg"]))


class MerchantCodeOut(StrictSchema):
    merchant_id = fields.Integer()
    version = fields.Integer()
    token = fields.String()
    link = fields.String(metadata={"description": "HTTPS://<PUBLIC_HOST>/M/<token>"})


# -- redemptions ---------------------------------------------------------------------------


def _one_way_to_price(data: dict[str, Any]) -> None:
    """Either an offer (and a quantity) or a number of points, never both."""
    if (data.get("offer_id") is None) == (data.get("points") is None):
        raise ValidationError("Give either offer_id (with quantity) or points.", "_schema")
    if data.get("quantity") is not None and data.get("offer_id") is None:
        raise ValidationError("quantity goes with offer_id.", "quantity")


class RedemptionIn(StrictSchema):
    pay_code = fields.String(required=True, validate=validate.Length(min=1, max=400),
                             metadata={"description": "The resident's pay code as scanned"})
    offer_id = Id()
    quantity = fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_QUANTITY))
    points = _points()
    order_ref = fields.String(validate=[validate.Length(min=1, max=64), no_control])
    capture = StrictBool(load_default=True, metadata={
        "description": "false: only reserve the points (a hold), capture or void later"})

    @validates_schema
    def _shape(self, data: dict[str, Any], **_: Any) -> None:
        _one_way_to_price(data)


class PaymentIn(StrictSchema):
    merchant_code = fields.String(required=True, validate=validate.Length(min=1, max=400),
                                  metadata={"description": "The merchant's token or link"})
    offer_id = Id()
    quantity = fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_QUANTITY))
    points = _points()

    @validates_schema
    def _shape(self, data: dict[str, Any], **_: Any) -> None:
        _one_way_to_price(data)


class CaptureIn(StrictSchema):
    points = _points(metadata={"description": "Up to the held points (default: all)"})


class VoidIn(StrictSchema):
    pass


class RefundIn(StrictSchema):
    points = _points(required=True)
    reason = fields.String(required=True, validate=[validate.Length(min=1, max=500), no_control])


class NamedRef(StrictSchema):
    id = fields.Integer()
    name = fields.String(allow_none=True)


class ResidentRef(StrictSchema):
    id = fields.Integer()
    name = fields.String(allow_none=True, metadata={"description": "Masked (张*明)"})


class OfferRef(StrictSchema):
    id = fields.Integer()
    title = fields.String(allow_none=True)


class RefundOut(StrictSchema):
    id = fields.Integer()
    redemption_id = fields.Integer()
    points = fields.Integer()
    restocked = fields.Integer()
    reason = fields.String()
    transaction_id = fields.Integer()
    created_by = fields.Integer()
    created_at = _time()


class RedemptionOut(StrictSchema):
    id = fields.Integer()
    status = fields.String(metadata={"enum": list(REDEMPTION_STATUSES)})
    channel = fields.String()
    merchant = fields.Nested(NamedRef)
    resident = fields.Nested(ResidentRef)
    offer = fields.Nested(OfferRef, allow_none=True)
    quantity = fields.Integer(allow_none=True)
    points = fields.Integer()
    captured_points = fields.Integer()
    refunded_points = fields.Integer()
    order_ref = fields.String(allow_none=True)
    transaction_id = fields.Integer(allow_none=True)
    hold_expires_at = _time()
    created_at = _time()
    captured_at = _time()
    resolved_at = _time()
    balance = fields.Integer(metadata={"description": "Receipts only: the resident's balance"})
    spendable = fields.Integer(metadata={"description": "Receipts only"})
    refunds = fields.List(fields.Nested(RefundOut), metadata={"description": "Detail only"})


class RefundResult(StrictSchema):
    refund = fields.Nested(RefundOut)
    redemption = fields.Nested(RedemptionOut)


class RedemptionPage(StrictSchema):
    items = fields.List(fields.Nested(RedemptionOut))
    next_cursor = fields.String(allow_none=True)


class RedemptionListArgs(PageArgs):
    merchant_id = QueryId()
    status = fields.String(validate=validate.OneOf(REDEMPTION_STATUSES))


class MyRedemptionArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(REDEMPTION_STATUSES))


# -- settlement, statements, policy -------------------------------------------------------


class SettlementIn(StrictSchema):
    points = _points(metadata={"description": "Default: the merchant's whole balance"})
    payment_reference = fields.String(
        required=True, validate=[validate.Length(min=1, max=64), no_control],
        metadata={"description": "The bank or cash transfer that paid the merchant"})


class SettlementOut(StrictSchema):
    id = fields.Integer()
    merchant_id = fields.Integer()
    points = fields.Integer()
    payment_reference = fields.String()
    transaction_id = fields.Integer()
    created_by = fields.Integer()
    created_at = _time()


class SettlementPage(StrictSchema):
    items = fields.List(fields.Nested(SettlementOut))
    next_cursor = fields.String(allow_none=True)


class StatementArgs(StrictSchema):
    month = fields.String(required=True, validate=validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$"),
                          metadata={"description": "YYYY-MM in the merchant's time zone"})
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))


class StatementTotal(StrictSchema):
    count = fields.Integer()
    points = fields.Integer()


class StatementLine(StrictSchema):
    transaction_id = fields.Integer()
    kind = fields.String()
    time = fields.String()
    reference_type = fields.String(allow_none=True)
    reference_id = fields.String(allow_none=True)
    amount = fields.Integer()
    balance_after = fields.Integer(allow_none=True)


class StatementOut(StrictSchema):
    merchant_id = fields.Integer()
    merchant_name = fields.String()
    month = fields.String()
    timezone = fields.String()
    opening_balance = fields.Integer()
    redemptions = fields.Nested(StatementTotal)
    refunds = fields.Nested(StatementTotal)
    settlements = fields.Nested(StatementTotal)
    other = fields.Nested(StatementTotal)
    closing_balance = fields.Integer()
    lines = fields.List(fields.Nested(StatementLine))


class SpendingPolicyIn(StrictSchema):
    daily_limit = fields.Integer(required=True, strict=True,
                                 validate=validate.Range(min=0, max=MAX_POINTS))


class SpendingPolicyOut(StrictSchema):
    community_id = fields.Integer()
    daily_limit = fields.Integer()
