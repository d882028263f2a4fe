"""Shapes of leaderboards, my place, badges, designations, honours and certificates."""

from marshmallow import fields, validate

from ..common import StrictSchema
from ..ledger.models import CATEGORIES as RULE_CATEGORIES
from ..ledger.schemas import CODE
from .models import BADGE_METRICS, BADGE_PERIODS
from .service import CATEGORIES, PERIODS

MAX_ID = 2**63 - 1


class Value(fields.Number):
    """Points stay integers in JSON; hours are decimals."""

    num_type = float

    def _serialize(self, value, attr, obj, **kwargs):  # type: ignore[no-untyped-def]
        return value


class BoardArgs(StrictSchema):
    scope = fields.Integer(required=True, strict=False,
                           validate=validate.Range(min=1, max=MAX_ID),
                           metadata={"description": "org node id: district, street, community "
                                                    "or grid"})
    period = fields.String(load_default="month", validate=validate.OneOf(PERIODS))
    at = fields.Date(load_default=None, metadata={
        "description": "a local date inside the period (default: today in the scope's zone)"})
    category = fields.String(load_default="all", validate=validate.OneOf(CATEGORIES))
    metric = fields.String(load_default="points", validate=validate.OneOf(("points", "hours")))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = fields.String(load_default=None, validate=validate.Length(max=64))


class MyPlaceArgs(StrictSchema):
    period = fields.String(load_default="month", validate=validate.OneOf(PERIODS))
    at = fields.Date(load_default=None)
    category = fields.String(load_default="all", validate=validate.OneOf(CATEGORIES))
    metric = fields.String(load_default="points", validate=validate.OneOf(("points", "hours")))


class ScopeOut(StrictSchema):
    id = fields.Integer()
    level = fields.String()


class BoardRowOut(StrictSchema):
    rank = fields.Integer(metadata={"description": "standard competition rank (1, 2, 2, 4)"})
    name = fields.String(metadata={"description": "masked (张*明) or 匿名居民"})
    value = Value(metadata={"description": "points, or hours for metric=hours"})
    is_me = fields.Boolean()


class BoardOut(StrictSchema):
    scope = fields.Nested(ScopeOut)
    period = fields.String()
    period_key = fields.String()
    category = fields.String()
    metric = fields.String()
    items = fields.List(fields.Nested(BoardRowOut))
    next_cursor = fields.String(allow_none=True)


class ScopePlaceOut(StrictSchema):
    scope = fields.Nested(ScopeOut)
    rank = fields.Integer(allow_none=True)
    value = Value()
    above = fields.List(fields.Nested(BoardRowOut))
    below = fields.List(fields.Nested(BoardRowOut))


class MyPlaceOut(StrictSchema):
    period = fields.String()
    period_key = fields.String()
    category = fields.String()
    metric = fields.String()
    listed = fields.Boolean(metadata={"description": "whether others see me on boards"})
    shown_as = fields.String(allow_none=True)
    scopes = fields.List(fields.Nested(ScopePlaceOut))


class BadgeIn(StrictSchema):
    org_node_id = fields.Integer(required=True, strict=True,
                                 validate=validate.Range(min=1, max=MAX_ID))
    code = fields.String(required=True, validate=CODE)
    title_zh = fields.String(required=True, validate=validate.Length(min=1, max=100))
    title_en = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default=None, validate=validate.Length(max=500))
    rule_code = fields.String(load_default=None, validate=CODE)
    category = fields.String(load_default=None, validate=validate.OneOf(RULE_CATEGORIES))
    metric = fields.String(required=True, validate=validate.OneOf(BADGE_METRICS))
    threshold = fields.Integer(required=True, strict=True,
                               validate=validate.Range(min=1, max=10**9))
    period = fields.String(required=True, validate=validate.OneOf(BADGE_PERIODS))


class BadgeListArgs(StrictSchema):
    org_node_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_ID))


class BadgeOut(StrictSchema):
    id = fields.Integer()
    org_node_id = fields.Integer()
    code = fields.String()
    title_zh = fields.String()
    title_en = fields.String()
    description = fields.String(allow_none=True)
    rule_code = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    metric = fields.String()
    threshold = fields.Integer()
    period = fields.String()
    active = fields.Boolean()


class DesignationIn(StrictSchema):
    resident_id = fields.Integer(required=True, strict=True,
                                 validate=validate.Range(min=1, max=MAX_ID))
    title = fields.String(required=True, validate=validate.Length(min=1, max=100))
    citation = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    period_label = fields.String(load_default=None, validate=validate.Length(min=1, max=32))


class DesignationOut(StrictSchema):
    id = fields.Integer()
    title = fields.String()
    citation = fields.String()
    period_label = fields.String(allow_none=True)
    designated_at = fields.String()


class GrantedBadgeOut(StrictSchema):
    badge_id = fields.Integer()
    code = fields.String()
    title = fields.String()
    period = fields.String()
    granted_at = fields.String()


class HonoursOut(StrictSchema):
    resident_id = fields.Integer()
    service_minutes = fields.Integer()
    service_hours = fields.Float()
    star_level = fields.Integer(metadata={"description": "0-5 (★ 100 h … ★★★★★ 1500 h)"})
    next_star_hours = fields.Integer(allow_none=True)
    badges = fields.List(fields.Nested(GrantedBadgeOut))
    designations = fields.List(fields.Nested(DesignationOut))


class VerifyIn(StrictSchema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=100))


class VerifyOut(StrictSchema):
    valid = fields.Boolean()
    name = fields.String(allow_none=True, metadata={"description": "masked"})
    community = fields.String(allow_none=True)
    service_hours = fields.Float()
    star_level = fields.Integer()
    issued_on = fields.String()
