"""Shapes of the action-log search, its export and its rows."""

from __future__ import annotations

from datetime import UTC

from marshmallow import ValidationError, fields, validate, validates_schema

from ...common import PageArgs, StrictSchema
from ...people.schemas import MAX_ID

# An action name ("award.approved"), or a prefix of whole segments ending in "." ("award.").
ACTION = validate.Regexp(r"^[a-z0-9_]{1,32}(\.[a-z0-9_]{1,32}){0,3}\.?$",
                         error='An action name such as "award.approved", or a prefix '
                               'ending in "." such as "award.".')
TARGET_TYPE = validate.Regexp(r"^[a-z_]{1,32}$", error="Lower-case letters and _.")
FORMATS = ("csv", "ndjson")


class ActionFilterArgs(StrictSchema):
    actor = fields.Integer(validate=validate.Range(min=1, max=MAX_ID),
                           metadata={"description": "user id of the acting staff member"})
    action = fields.String(validate=validate.And(validate.Length(max=64), ACTION),
                           metadata={"description": 'exact name, or a prefix ending in "."'})
    target_type = fields.String(validate=TARGET_TYPE)
    target_id = fields.String(validate=validate.Length(min=1, max=64))
    node_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID),
                             metadata={"description": "only actions on this node's subtree"})
    # Without an offset a time is UTC, as in the ledger search.
    start = fields.AwareDateTime(data_key="from", default_timezone=UTC,
                                 metadata={"description": "inclusive; UTC without an offset"})
    end = fields.AwareDateTime(data_key="to", default_timezone=UTC,
                               metadata={"description": "exclusive; UTC without an offset"})

    @validates_schema
    def _window(self, data: dict, **_: object) -> None:
        if data.get("start") and data.get("end") and data["end"] <= data["start"]:
            raise ValidationError("Must be after from.", "to")
        if "target_id" in data and "target_type" not in data:
            raise ValidationError("Give target_type with target_id.", "target_type")


class ActionListArgs(ActionFilterArgs, PageArgs):
    pass


class ActionExportArgs(ActionFilterArgs):
    format = fields.String(load_default="csv", validate=validate.OneOf(FORMATS))


class ActionOut(StrictSchema):
    id = fields.Integer()
    created_at = fields.DateTime()
    actor_user_id = fields.Integer(allow_none=True)
    action = fields.String()
    target_type = fields.String(allow_none=True)
    target_id = fields.String(allow_none=True)
    community_id = fields.Integer(allow_none=True,
                                  metadata={"description": "the organisation node acted on"})
    client_address = fields.String(allow_none=True)
    detail = fields.Dict(allow_none=True)
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)


class ActionPage(StrictSchema):
    items = fields.List(fields.Nested(ActionOut))
    next_cursor = fields.String(allow_none=True)
