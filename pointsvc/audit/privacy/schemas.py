"""Shapes of the personal-data requests: the erasure request and its record."""

from marshmallow import fields, validate

from ...common import StrictSchema
from .models import REASON_CODES


class ErasureIn(StrictSchema):
    # A code only: the request must not carry free text about the person.
    reason_code = fields.String(required=True, validate=validate.OneOf(REASON_CODES))


class ErasureOut(StrictSchema):
    id = fields.Integer()
    resident_id = fields.Integer()
    pseudonym = fields.String(metadata={"description": "The name the resident now shows as"})
    reason_code = fields.String()
    erased_by = fields.Integer(allow_none=True)
    erased_at = fields.DateTime()
    summary = fields.Dict(keys=fields.String(), values=fields.Integer(),
                          metadata={"description": "Rows changed per table (counts only)"})
    residual = fields.Dict(
        keys=fields.String(), values=fields.Integer(),
        metadata={"description": "Append-only rows still holding one of the person's "
                                 "identifying strings (should be empty; a design bug if not)"})
