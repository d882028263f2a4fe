"""Shapes of organisation nodes."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import ValidationError, fields, validate, validates

from ..common import PageArgs, StrictSchema
from .models import LEVELS


def _check_timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError("Unknown time zone.") from exc


class OrgNodeOut(StrictSchema):
    id = fields.Integer()
    parent_id = fields.Integer(allow_none=True)
    level = fields.String()
    name_zh = fields.String()
    name_en = fields.String()
    timezone = fields.String()
    path = fields.String()


class OrgNodeCreate(StrictSchema):
    parent_id = fields.Integer(required=True, strict=True)
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=100))
    name_en = fields.String(required=True, validate=validate.Length(min=1, max=200))
    timezone = fields.String(load_default="Asia/Shanghai", validate=validate.Length(max=64))

    @validates("timezone")
    def _tz(self, value: str, **_: object) -> None:
        _check_timezone(value)


class OrgNodeUpdate(StrictSchema):
    name_zh = fields.String(validate=validate.Length(min=1, max=100))
    name_en = fields.String(validate=validate.Length(min=1, max=200))
    timezone = fields.String(validate=validate.Length(max=64))

    @validates("timezone")
    def _tz(self, value: str, **_: object) -> None:
        _check_timezone(value)


class OrgNodeMove(StrictSchema):
    parent_id = fields.Integer(required=True, strict=True)


class OrgListArgs(PageArgs):
    parent_id = fields.Integer()
    level = fields.String(validate=validate.OneOf(LEVELS))


class OrgNodePage(StrictSchema):
    items = fields.List(fields.Nested(OrgNodeOut))
    next_cursor = fields.String(allow_none=True)
