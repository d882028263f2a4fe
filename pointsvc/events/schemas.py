"""Marshmallow schemas of the events API (input schemas reject unknown fields)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from ..common import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, StrictSchema
from ..people.schemas import MAX_ID
from .models import CATEGORIES, CLOSE_POLICIES, EVENT_STATUSES

ID = validate.Range(min=1, max=MAX_ID)
NONCE = validate.Regexp(r"^[A-Za-z0-9._:\-]{8,64}$",
                        error="8-64 characters of A-Z a-z 0-9 . _ : -")
MAX_BATCH = 200
CODE_TEXT = validate.Length(min=1, max=400)


class EventIn(StrictSchema):
    org_node_id = fields.Integer(required=True, validate=ID)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default=None, allow_none=True,
                                validate=validate.Length(max=4000))
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    rule_code = fields.String(required=True, validate=validate.Length(min=1, max=64))
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)
    place = fields.String(required=True, validate=validate.Length(min=1, max=300))
    latitude = fields.Float(load_default=None, allow_none=True,
                            validate=validate.Range(min=-90, max=90))
    longitude = fields.Float(load_default=None, allow_none=True,
                             validate=validate.Range(min=-180, max=180))
    radius_m = fields.Integer(load_default=None, allow_none=True,
                              validate=validate.Range(min=10, max=50_000))
    capacity = fields.Integer(load_default=None, allow_none=True,
                              validate=validate.Range(min=1, max=100_000))
    signup_required = fields.Boolean(load_default=False)
    approval_required = fields.Boolean(load_default=False)
    points_cap = fields.Integer(load_default=None, allow_none=True,
                                validate=validate.Range(min=0, max=1_000_000))
    credit_granularity_minutes = fields.Integer(validate=validate.Range(min=1, max=240))
    close_policy = fields.String(validate=validate.OneOf(CLOSE_POLICIES))


class EventPatch(StrictSchema):
    title = fields.String(validate=validate.Length(min=1, max=200))
    description = fields.String(allow_none=True, validate=validate.Length(max=4000))
    category = fields.String(validate=validate.OneOf(CATEGORIES))
    rule_code = fields.String(validate=validate.Length(min=1, max=64))
    starts_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime()
    place = fields.String(validate=validate.Length(min=1, max=300))
    latitude = fields.Float(allow_none=True, validate=validate.Range(min=-90, max=90))
    longitude = fields.Float(allow_none=True, validate=validate.Range(min=-180, max=180))
    radius_m = fields.Integer(allow_none=True, validate=validate.Range(min=10, max=50_000))
    capacity = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=100_000))
    signup_required = fields.Boolean()
    approval_required = fields.Boolean()
    points_cap = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=1_000_000))
    credit_granularity_minutes = fields.Integer(validate=validate.Range(min=1, max=240))
    close_policy = fields.String(validate=validate.OneOf(CLOSE_POLICIES))


class SignupOut(ma.Schema):
    event_id = fields.Integer()
    resident_id = fields.Integer()
    status = fields.String()
    position = fields.Integer(allow_none=True)
    created_at = fields.String(allow_none=True)
    promoted_at = fields.String(allow_none=True)
    cancelled_at = fields.String(allow_none=True)


class EventOut(ma.Schema):
    id = fields.Integer()
    org_node_id = fields.Integer()
    title = fields.String()
    description = fields.String(allow_none=True)
    category = fields.String()
    rule_code = fields.String()
    starts_at = fields.String()
    ends_at = fields.String()
    place = fields.String()
    latitude = fields.Float(allow_none=True)
    longitude = fields.Float(allow_none=True)
    radius_m = fields.Integer(allow_none=True)
    capacity = fields.Integer(allow_none=True)
    confirmed_count = fields.Integer()
    signup_required = fields.Boolean()
    approval_required = fields.Boolean()
    points_cap = fields.Integer(allow_none=True)
    credit_granularity_minutes = fields.Integer()
    close_policy = fields.String()
    status = fields.String()
    settlement = fields.String()
    created_at = fields.String(allow_none=True)
    published_at = fields.String(allow_none=True)
    closed_at = fields.String(allow_none=True)
    my_signup = fields.Nested(SignupOut, allow_none=True)
    inside_count = fields.Integer()


class EventPage(ma.Schema):
    items = fields.List(fields.Nested(EventOut))
    next_cursor = fields.String(allow_none=True)


class EventListArgs(StrictSchema):
    limit = fields.Integer(load_default=DEFAULT_PAGE_SIZE,
                           validate=validate.Range(min=1, max=MAX_PAGE_SIZE))
    cursor = fields.String(load_default=None, validate=validate.Length(max=200))
    status = fields.String(load_default=None, validate=validate.OneOf(EVENT_STATUSES))
    upcoming = fields.Boolean(load_default=True)


class StaffSignupIn(StrictSchema):
    resident_id = fields.Integer(required=True, validate=ID)


class RosterItem(SignupOut):
    name = fields.String(allow_none=True)


class RosterOut(ma.Schema):
    items = fields.List(fields.Nested(RosterItem))


class FormatArgs(StrictSchema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))


class CodeArgs(StrictSchema):
    direction = fields.String(load_default="in", validate=validate.OneOf(["in", "out"]))
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "png", "svg"]))


class CheckinCodeOut(ma.Schema):
    event_id = fields.Integer()
    direction = fields.String()
    step = fields.Integer()
    code = fields.String()
    url = fields.String()
    expires_at = fields.String()
    refresh_after = fields.String()


class ImageArgs(StrictSchema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "png", "svg"]))


class CardOut(ma.Schema):
    resident_id = fields.Integer()
    serial = fields.Integer()
    code = fields.String()


class CheckinIn(StrictSchema):
    code = fields.String(required=True, validate=CODE_TEXT)
    nonce = fields.String(required=True, validate=NONCE)
    scanned_at = fields.AwareDateTime(required=True)
    latitude = fields.Float(load_default=None, allow_none=True,
                            validate=validate.Range(min=-90, max=90))
    longitude = fields.Float(load_default=None, allow_none=True,
                             validate=validate.Range(min=-180, max=180))
    event_id = fields.Integer(load_default=None, allow_none=True, validate=ID,
                              metadata={"description": "The event the app expects (optional): "
                                        "a code of another event is then wrong_event"})


class ScanOut(ma.Schema):
    event_id = fields.Integer()
    resident_id = fields.Integer()
    direction = fields.String()
    source = fields.String()
    at = fields.String()
    offline = fields.Boolean()
    duplicate = fields.Boolean()
    scan_id = fields.Integer(allow_none=True)


class CheckinBatchIn(StrictSchema):
    sent_at = fields.AwareDateTime(load_default=None, allow_none=True, metadata={
        "description": "The device's clock when it sent the batch: corrects its skew"})
    items = fields.List(fields.Nested(CheckinIn), required=True,
                        validate=validate.Length(min=1, max=MAX_BATCH))


class BatchResult(ScanOut):
    index = fields.Integer()
    nonce = fields.String()
    status = fields.String(metadata={"description": "accepted | duplicate | rejected"})
    reason = fields.String(allow_none=True)
    detail = fields.String(allow_none=True)


class BatchOut(ma.Schema):
    results = fields.List(fields.Nested(BatchResult))
    accepted = fields.Integer()
    duplicates = fields.Integer()
    rejected = fields.Integer()


class CardScanIn(StrictSchema):
    card_code = fields.String(required=True, validate=CODE_TEXT)
    direction = fields.String(required=True, validate=validate.OneOf(["in", "out"]))
    nonce = fields.String(required=True, validate=NONCE)
    scanned_at = fields.AwareDateTime(required=True)


class CardBatchIn(StrictSchema):
    sent_at = fields.AwareDateTime(load_default=None, allow_none=True)
    items = fields.List(fields.Nested(CardScanIn), required=True,
                        validate=validate.Length(min=1, max=MAX_BATCH))


class LineOut(ma.Schema):
    event_id = fields.Integer()
    resident_id = fields.Integer()
    name = fields.String(allow_none=True)
    stays = fields.Integer()
    first_in_at = fields.String(allow_none=True)
    last_out_at = fields.String(allow_none=True)
    raw_minutes = fields.Integer()
    minutes = fields.Integer()
    computed_points = fields.Integer()
    points = fields.Integer()
    status = fields.String()
    transaction_id = fields.Integer(allow_none=True)
    adjust_reason = fields.String(allow_none=True)


class AttendanceOut(ma.Schema):
    items = fields.List(fields.Nested(LineOut))


class LinePatch(StrictSchema):
    minutes = fields.Integer(load_default=None, allow_none=True,
                             validate=validate.Range(min=0, max=100_000))
    rejected = fields.Boolean(load_default=False)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class SummaryOut(ma.Schema):
    event_id = fields.Integer()
    status = fields.String()
    settlement = fields.String()
    closed_at = fields.String(allow_none=True)
    attendees = fields.Integer()
    points_posted = fields.Integer()
    by_status = fields.Dict()


class RecordEvent(ma.Schema):
    event_id = fields.Integer()
    title = fields.String()
    category = fields.String()
    starts_at = fields.String()
    ends_at = fields.String()
    minutes = fields.Integer()
    hours = fields.Float()
    points = fields.Integer()
    status = fields.String()
    transaction_id = fields.Integer(allow_none=True)


class RecordTotals(ma.Schema):
    events = fields.Integer()
    minutes = fields.Integer()
    hours = fields.Float()
    points = fields.Integer()
    star_level = fields.Integer()


class ServiceRecordOut(ma.Schema):
    resident_id = fields.Integer()
    events = fields.List(fields.Nested(RecordEvent))
    totals = fields.Nested(RecordTotals)


class KioskLinkOut(ma.Schema):
    id = fields.Integer()
    event_id = fields.Integer()
    token = fields.String()
    path = fields.String()
    url = fields.String()
    expires_at = fields.String()
