"""Shapes of a monthly statement."""

from __future__ import annotations

from marshmallow import fields, validate

from ...common import StrictSchema


class MonthlyStatementArgs(StrictSchema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]),
                           metadata={"description": "csv: UTF-8 with BOM, for Excel"})


class CounterpartyOut(StrictSchema):
    kind = fields.String()
    id = fields.Integer(allow_none=True)
    name = fields.String(allow_none=True)
    label = fields.String()


class MonthlyEntryOut(StrictSchema):
    entry_id = fields.Integer()
    transaction_id = fields.Integer()
    created_at = fields.String()
    local_date = fields.String(metadata={"description": "In the community's time zone"})
    kind = fields.String()
    amount = fields.Integer()
    balance = fields.Integer(metadata={"description": "Running balance after this entry"})
    reason = fields.String(metadata={"description": "Rule title, or the kind, by "
                                                    "Accept-Language (zh-CN default)"})
    rule_code = fields.String(allow_none=True)
    rule_version = fields.Integer(allow_none=True)
    rule_title = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    memo = fields.String(allow_none=True)
    reverses_id = fields.Integer(allow_none=True)
    reference_type = fields.String(allow_none=True)
    reference_id = fields.String(allow_none=True)
    counterparty = fields.Nested(CounterpartyOut, allow_none=True)


class MonthlyTotalsOut(StrictSchema):
    credits = fields.Integer()
    debits = fields.Integer()
    earned = fields.Integer()
    spent = fields.Integer()
    deducted = fields.Integer()
    refunded = fields.Integer()
    reversed = fields.Integer()
    expired = fields.Integer()
    net = fields.Integer(metadata={"description": "closing_balance - opening_balance"})


class MonthlyStatementOut(StrictSchema):
    resident_id = fields.Integer()
    community_id = fields.Integer()
    month = fields.String()
    timezone = fields.String()
    period_start = fields.String()
    period_end = fields.String()
    opening_balance = fields.Integer()
    closing_balance = fields.Integer()
    totals = fields.Nested(MonthlyTotalsOut)
    entries = fields.List(fields.Nested(MonthlyEntryOut))
