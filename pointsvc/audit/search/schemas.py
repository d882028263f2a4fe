"""Query and response shapes of the audit search and export."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from ...common import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, StrictSchema
from ...ledger.models import TRANSACTION_KINDS
from ..streaming import FORMATS

BIGINT = validate.Range(min=1, max=2**63 - 1)
AMOUNT = validate.Range(min=0, max=2**63 - 1)


class SearchFilters(StrictSchema):
    """Every filter is optional; several narrow together (AND)."""

    node_id = fields.Integer(strict=False, validate=BIGINT, metadata={
        "description": "Organisation node: its whole subtree (must be in your scope)"})
    resident_id = fields.Integer(validate=BIGINT,
                                 metadata={"description": "The resident the posting concerns"})
    merchant_id = fields.Integer(validate=BIGINT, metadata={
        "description": "Postings touching the merchant's account"})
    account_id = fields.Integer(validate=BIGINT,
                                metadata={"description": "Postings with an entry on this account"})
    kind = fields.List(fields.String(validate=validate.OneOf(TRANSACTION_KINDS)),
                       validate=validate.Length(min=1, max=len(TRANSACTION_KINDS)),
                       metadata={"description": "Repeat for several kinds (any of them)"})
    rule = fields.String(validate=validate.Length(min=1, max=64),
                         metadata={"description": "Rule code"})
    actor_id = fields.Integer(validate=BIGINT,
                              metadata={"description": "User id of the staff member who acted"})
    min_amount = fields.Integer(validate=AMOUNT, metadata={
        "description": "Amount = sum of the positive entries (points moved), inclusive"})
    max_amount = fields.Integer(validate=AMOUNT, metadata={"description": "Inclusive"})
    start = fields.AwareDateTime(data_key="from", metadata={
        "description": "ISO 8601; created_at >= from (no offset: UTC)"})
    end = fields.AwareDateTime(data_key="to", metadata={
        "description": "ISO 8601; created_at < to (no offset: UTC)"})
    reference_type = fields.String(validate=validate.Length(min=1, max=32))
    reference_id = fields.String(validate=validate.Length(min=1, max=64))

    @validates_schema
    def _ranges(self, data: dict, **_: object) -> None:
        low, high = data.get("min_amount"), data.get("max_amount")
        if low is not None and high is not None and low > high:
            raise ValidationError("min_amount is larger than max_amount.", "min_amount")
        start, end = data.get("start"), data.get("end")
        if start is not None and end is not None and start >= end:
            raise ValidationError("from must be earlier than to.", "from")


class SearchArgs(SearchFilters):
    limit = fields.Integer(load_default=DEFAULT_PAGE_SIZE,
                           validate=validate.Range(min=1, max=MAX_PAGE_SIZE))
    cursor = fields.String(load_default=None, validate=validate.Length(max=200))
    totals = fields.Boolean(load_default=True, metadata={
        "description": "Totals of the whole filtered set, on the first page (no cursor)"})


class ExportArgs(SearchFilters):
    format = fields.String(load_default="csv", validate=validate.OneOf(sorted(FORMATS)))


class AuditEntryOut(StrictSchema):
    account_id = fields.Integer()
    account_kind = fields.String()
    owner_id = fields.Integer()
    amount = fields.Integer()


class AuditTransactionOut(StrictSchema):
    id = fields.Integer()
    kind = fields.String()
    created_at = fields.String()
    community_id = fields.Integer()
    community_name = fields.String(allow_none=True)
    district_id = fields.Integer()
    rule_code = fields.String(allow_none=True)
    rule_version = fields.Integer(allow_none=True)
    category = fields.String(allow_none=True)
    quantity = fields.Integer(allow_none=True)
    amount = fields.Integer(metadata={"description": "Sum of the positive entries"})
    entries = fields.List(fields.Nested(AuditEntryOut))
    actor_user_id = fields.Integer(allow_none=True)
    reference_type = fields.String(allow_none=True)
    reference_id = fields.String(allow_none=True)
    resident_id = fields.Integer(allow_none=True)
    reverses_id = fields.Integer(allow_none=True)
    shortfall = fields.Integer()
    memo = fields.String(allow_none=True, metadata={
        "description": "Only for callers who may read memos (ledger.read); null once erased"})
    evidence_ref = fields.String(allow_none=True)


class AuditKindTotal(StrictSchema):
    count = fields.Integer()
    amount = fields.Integer()


class AuditSearchTotals(StrictSchema):
    count = fields.Integer()
    amount = fields.Integer()
    by_kind = fields.Dict(keys=fields.String(), values=fields.Nested(AuditKindTotal))


class AuditTransactionPage(StrictSchema):
    items = fields.List(fields.Nested(AuditTransactionOut))
    next_cursor = fields.String(allow_none=True)
    totals = fields.Nested(AuditSearchTotals, allow_none=True, metadata={
        "description": "Whole filtered set; on the first page only (null on later pages)"})
