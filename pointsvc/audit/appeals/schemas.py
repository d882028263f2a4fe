"""Shapes of appeals: filing, deciding, listing."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from ...common import PageArgs, StrictSchema
from .models import OUTCOMES, REASON_MAX, STATUSES, SUBJECTS

_ID = validate.Range(min=1, max=2**63 - 1)


def _not_blank(value: str) -> None:
    # Length(min=1) lets "   " through; an appeal or a decision must say something.
    if not value.strip():
        raise ValidationError("Must not be blank.")


class AppealIn(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(SUBJECTS),
                         metadata={"description": "deduction: a ledger transaction; "
                                                  "attendance: a rejected attendance line"})
    transaction_id = fields.Integer(strict=True, validate=_ID,
                                    metadata={"description": "The deduction (kind=deduction)"})
    event_id = fields.Integer(strict=True, validate=_ID,
                              metadata={"description": "The event (kind=attendance)"})
    reason = fields.String(required=True,
                           validate=[validate.Length(min=1, max=REASON_MAX), _not_blank])

    @validates_schema
    def _subject(self, data: dict, **_: object) -> None:
        wanted, other = (("transaction_id", "event_id") if data.get("kind") == "deduction"
                         else ("event_id", "transaction_id"))
        if data.get("kind") is None:
            return
        if data.get(wanted) is None:
            raise ValidationError(f"Required when kind is {data['kind']}.", wanted)
        if data.get(other) is not None:
            raise ValidationError(f"Not allowed when kind is {data['kind']}.", other)


class AppealDecisionIn(StrictSchema):
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    reason = fields.String(required=True,
                           validate=[validate.Length(min=1, max=REASON_MAX), _not_blank])


class AppealListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(STATUSES))
    community_id = fields.Integer(validate=_ID)


class AppealOut(StrictSchema):
    id = fields.Integer()
    status = fields.String(metadata={"description": "open | upheld | dismissed"})
    kind = fields.String(metadata={"description": "deduction | attendance"})
    community_id = fields.Integer()
    resident_id = fields.Integer()
    transaction_id = fields.Integer(allow_none=True)
    event_id = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True, metadata={"description": "Null once erased"})
    created_at = fields.String()
    decided_originally_at = fields.String()
    reviewer_user_id = fields.Integer(allow_none=True)
    decided_at = fields.String(allow_none=True)
    decision_reason = fields.String(allow_none=True)
    reversal_transaction_id = fields.Integer(
        allow_none=True, metadata={"description": "Upheld deduction: its reversal"})
    credit_transaction_id = fields.Integer(
        allow_none=True, metadata={"description": "Upheld attendance: the award crediting it"})


class AppealPage(StrictSchema):
    items = fields.List(fields.Nested(AppealOut))
    next_cursor = fields.String(allow_none=True)
