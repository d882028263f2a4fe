"""Shapes of rules, awards, approvals, transactions, accounts and seals."""

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from ..common import PageArgs, StrictSchema, UtcDateTime
from .models import CATEGORIES, UNITS

MAX_QUANTITY = 100_000
MAX_MANUAL_POINTS = 100_000
CODE = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]{0,63}$", error="Lower-case letters, digits, _ . -")


class RuleIn(StrictSchema):
    org_node_id = fields.Integer(required=True, strict=True)
    code = fields.String(required=True, validate=CODE)
    title_zh = fields.String(required=True, validate=validate.Length(min=1, max=200))
    title_en = fields.String(required=True, validate=validate.Length(min=1, max=300))
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    points = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=-10_000, max=10_000)
    )
    unit = fields.String(load_default="action", validate=validate.OneOf(UNITS))
    cap_day = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1,
                                                                                  max=10**7))
    cap_week = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1,
                                                                                   max=10**7))
    cap_month = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1,
                                                                                    max=10**7))
    approval_required = fields.Boolean(load_default=False)
    active_from = fields.AwareDateTime(allow_none=True)
    active_until = fields.AwareDateTime(allow_none=True)

    @validates_schema
    def _points(self, data: dict, **_: object) -> None:
        if data.get("points") == 0:
            raise ValidationError("Points cannot be zero.", "points")


class RuleEdit(StrictSchema):
    title_zh = fields.String(validate=validate.Length(min=1, max=200))
    title_en = fields.String(validate=validate.Length(min=1, max=300))
    category = fields.String(validate=validate.OneOf(CATEGORIES))
    points = fields.Integer(strict=True, validate=validate.Range(min=-10_000, max=10_000))
    unit = fields.String(validate=validate.OneOf(UNITS))
    cap_day = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1,
                                                                                  max=10**7))
    cap_week = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1,
                                                                                   max=10**7))
    cap_month = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1,
                                                                                    max=10**7))
    approval_required = fields.Boolean()
    active_from = fields.AwareDateTime(allow_none=True)
    active_until = fields.AwareDateTime(allow_none=True)
    retired = fields.Boolean()

    @validates_schema
    def _points(self, data: dict, **_: object) -> None:
        if data.get("points") == 0:
            raise ValidationError("Points cannot be zero.", "points")
        if not data:
            raise ValidationError("Nothing to change.")


class RuleOut(StrictSchema):
    id = fields.Integer()
    org_node_id = fields.Integer()
    code = fields.String()
    version = fields.Integer()
    title_zh = fields.String()
    title_en = fields.String()
    category = fields.String()
    points = fields.Integer()
    unit = fields.String()
    cap_day = fields.Integer(allow_none=True)
    cap_week = fields.Integer(allow_none=True)
    cap_month = fields.Integer(allow_none=True)
    approval_required = fields.Boolean()
    active_from = UtcDateTime(allow_none=True)
    active_until = UtcDateTime(allow_none=True)
    retired = fields.Boolean()
    is_current = fields.Boolean()
    created_at = UtcDateTime()


class RuleList(StrictSchema):
    items = fields.List(fields.Nested(RuleOut))


class RuleListArgs(StrictSchema):
    node_id = fields.Integer(metadata={"description": "Rule book in force at this node"})


class AwardIn(StrictSchema):
    resident_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1,
                                                                                     max=2**62))
    rule_code = fields.String(validate=CODE)
    quantity = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=MAX_QUANTITY),
        metadata={"description": "Actions, or minutes for hourly rules"},
    )
    points = fields.Integer(
        strict=True,
        validate=validate.Range(min=-MAX_MANUAL_POINTS, max=MAX_MANUAL_POINTS),
        metadata={"description": "Manual adjustment without a rule (always needs approval)"},
    )
    memo = fields.String(validate=validate.Length(max=500))
    evidence_ref = fields.String(validate=validate.Length(max=500))

    @validates_schema
    def _rule_or_points(self, data: dict, **_: object) -> None:
        if "rule_code" in data and "points" in data:
            raise ValidationError("Give rule_code and quantity, or points, not both.", "points")
        if "rule_code" not in data and "points" not in data:
            raise ValidationError("Give rule_code and quantity, or points.", "rule_code")
        if "rule_code" in data and "quantity" not in data:
            raise ValidationError("Missing data for required field.", "quantity")
        if data.get("points") == 0:
            raise ValidationError("Points cannot be zero.", "points")


class BulkItemIn(StrictSchema):
    resident_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1,
                                                                                     max=2**62))
    rule_code = fields.String(required=True, validate=CODE)
    quantity = fields.Integer(required=True, strict=True,
                              validate=validate.Range(min=1, max=MAX_QUANTITY))
    memo = fields.String(validate=validate.Length(max=500))
    evidence_ref = fields.String(validate=validate.Length(max=500))


_ITEM_REQUIRED = frozenset({"resident_id", "rule_code", "quantity"})
_ITEM_KEYS = _ITEM_REQUIRED | {"memo", "evidence_ref"}
_ITEM_TEXTS = ("memo", "evidence_ref")


def _plain_item(item: Any) -> bool:
    """An item BulkItemIn loads unchanged: the same checks, only narrower (exact types)."""
    if type(item) is not dict or not (_ITEM_REQUIRED <= item.keys() <= _ITEM_KEYS):
        return False
    resident_id, code, quantity = item["resident_id"], item["rule_code"], item["quantity"]
    return (type(resident_id) is int and 1 <= resident_id <= 2**62
            and type(quantity) is int and 1 <= quantity <= MAX_QUANTITY
            and type(code) is str and CODE.regex.match(code) is not None
            and all(type(item[key]) is str and len(item[key]) <= 500
                    for key in _ITEM_TEXTS if key in item))


class BulkItems(fields.List):
    """A list of BulkItemIn. Plain valid items take a short path: 10,000 of them cost a
    quarter of a second through marshmallow's per-field machinery. Any list with an item
    that is not plainly valid is loaded by marshmallow itself, so every error reads the same."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if type(value) is list and all(_plain_item(item) for item in value):
            return [dict(item) for item in value]
        return super()._deserialize(value, attr, data, **kwargs)


class BulkAwardIn(StrictSchema):
    items = BulkItems(fields.Nested(BulkItemIn), required=True,
                      validate=validate.Length(min=1, max=10_000))


class EntryOut(StrictSchema):
    account_id = fields.Integer()
    account_kind = fields.String()
    amount = fields.Integer()
    balance_after = fields.Integer(allow_none=True)


class TransactionOut(StrictSchema):
    id = fields.Integer()
    kind = fields.String()
    community_id = fields.Integer()
    resident_id = fields.Integer(allow_none=True)
    rule_code = fields.String(allow_none=True)
    rule_version = fields.Integer(allow_none=True)
    category = fields.String(allow_none=True)
    quantity = fields.Integer(allow_none=True)
    points = fields.Integer()
    shortfall = fields.Integer()
    reverses_id = fields.Integer(allow_none=True)
    reference_type = fields.String(allow_none=True)
    reference_id = fields.String(allow_none=True)
    actor_user_id = fields.Integer(allow_none=True)
    created_at = fields.String()
    content_hash = fields.String()
    memo = fields.String(allow_none=True)
    evidence_ref = fields.String(allow_none=True)
    entries = fields.List(fields.Nested(EntryOut))


class BulkAwardOut(StrictSchema):
    posted = fields.Integer()
    points = fields.Integer()
    transaction_ids = fields.List(fields.Integer())


class PendingOut(StrictSchema):
    id = fields.Integer()
    status = fields.String()
    community_id = fields.Integer()
    resident_id = fields.Integer()
    rule_id = fields.Integer(allow_none=True)
    quantity = fields.Integer(allow_none=True)
    points = fields.Integer()
    reason_required = fields.String()
    requested_by = fields.Integer()
    decided_by = fields.Integer(allow_none=True)
    decision_reason = fields.String(allow_none=True)
    transaction_id = fields.Integer(allow_none=True)
    created_at = fields.String()


class PendingPage(StrictSchema):
    items = fields.List(fields.Nested(PendingOut))
    next_cursor = fields.String(allow_none=True)


class PendingListArgs(PageArgs):
    status = fields.String(load_default="pending",
                           validate=validate.OneOf(["pending", "approved", "rejected"]))
    community_id = fields.Integer()


class DecisionIn(StrictSchema):
    reason = fields.String(validate=validate.Length(min=1, max=500))


class RejectIn(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class ReversalIn(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class AccountOut(StrictSchema):
    id = fields.Integer()
    kind = fields.String()
    owner_id = fields.Integer()
    community_id = fields.Integer()
    balance = fields.Integer()
    held = fields.Integer()
    spendable = fields.Integer()
    total_earned = fields.Integer()
    total_spent = fields.Integer()


class StatementArgs(PageArgs):
    start = fields.AwareDateTime(data_key="from")
    end = fields.AwareDateTime(data_key="to")
    category = fields.String(validate=validate.OneOf(CATEGORIES))


class StatementEntryOut(StrictSchema):
    entry_id = fields.Integer()
    transaction_id = fields.Integer()
    kind = fields.String()
    amount = fields.Integer()
    balance_after = fields.Integer(allow_none=True)
    created_at = fields.String()
    category = fields.String(allow_none=True)
    rule_code = fields.String(allow_none=True)
    rule_version = fields.Integer(allow_none=True)
    rule_title = fields.String(allow_none=True)
    memo = fields.String(allow_none=True)
    counterparty = fields.Dict(allow_none=True)
    reference_type = fields.String(allow_none=True)
    reference_id = fields.String(allow_none=True)
    shortfall = fields.Integer()


class StatementPage(StrictSchema):
    items = fields.List(fields.Nested(StatementEntryOut))
    next_cursor = fields.String(allow_none=True)


class SealOut(StrictSchema):
    seq = fields.Integer()
    tree_size = fields.Integer()
    root_hash = fields.String()
    previous_root_hash = fields.String()
    sealed_at = fields.String()
    sealed_at_micros = fields.Integer()
    key_id = fields.String()
    signature = fields.String()
    algorithm = fields.String()


class SealPage(StrictSchema):
    items = fields.List(fields.Nested(SealOut))
    next_cursor = fields.String(allow_none=True)


class ProofOut(StrictSchema):
    transaction_id = fields.Integer()
    content_hash = fields.String()
    leaf_index = fields.Integer()
    leaf_hash = fields.String()
    tree_size = fields.Integer()
    seal = fields.Nested(SealOut)
    audit_path = fields.List(fields.String())


class ProofArgs(StrictSchema):
    seal = fields.Integer(validate=validate.Range(min=1))


class ConsistencyArgs(StrictSchema):
    old = fields.Integer(required=True, data_key="from", validate=validate.Range(min=1))
    new = fields.Integer(required=True, data_key="to", validate=validate.Range(min=1))


class ConsistencyOut(StrictSchema):
    old = fields.Nested(SealOut)
    new = fields.Nested(SealOut)
    proof = fields.List(fields.String())


class KeyOut(StrictSchema):
    kid = fields.String()
    alg = fields.String()
    use = fields.String()
    public_key = fields.String()
    pem = fields.String()


class KeyList(StrictSchema):
    keys = fields.List(fields.Nested(KeyOut))


class PolicyIn(StrictSchema):
    approval_threshold = fields.Integer(required=True, strict=True,
                                        validate=validate.Range(min=0, max=10**6))


class PolicyOut(StrictSchema):
    community_id = fields.Integer()
    approval_threshold = fields.Integer()
