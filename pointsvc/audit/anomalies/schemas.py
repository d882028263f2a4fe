"""Shapes of the anomaly report."""

from marshmallow import fields, validate

from ...common import StrictSchema
from ...people.schemas import MAX_ID
from .service import DETECTORS

SUBJECT_TYPES = ("resident", "staff", "merchant", "event")


class AnomalyArgs(StrictSchema):
    start = fields.AwareDateTime(data_key="from", load_default=None, metadata={
        "description": "window start, ISO 8601 with offset (default: `to` minus "
                       "ANOMALY_DEFAULT_DAYS days)"})
    end = fields.AwareDateTime(data_key="to", load_default=None, metadata={
        "description": "window end, exclusive (default: now); at most ANOMALY_MAX_DAYS "
                       "after `from`"})
    node_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_ID),
                             metadata={"description": "only this node's subtree (in scope)"})
    detector = fields.List(fields.String(validate=validate.OneOf(DETECTORS)),
                           load_default=None, metadata={"description": "only these detectors"})


class SubjectOut(StrictSchema):
    type = fields.String(metadata={"description": " | ".join(SUBJECT_TYPES) + " ('staff' is a "
                                                  "user id)"})
    id = fields.Integer()


class AnomalyOut(StrictSchema):
    detector = fields.String(metadata={"description": " | ".join(DETECTORS)})
    severity = fields.String(metadata={"description": "high (twice the threshold or more) | "
                                                      "medium"})
    subject = fields.Nested(SubjectOut)
    community_id = fields.Integer(allow_none=True, metadata={
        "description": "the community (for merchants and events: the node they belong to)"})
    summary = fields.String(metadata={"description": "Chinese or English by Accept-Language"})
    evidence = fields.Dict(metadata={"description": "the figures and the ids behind them "
                                                    "(lists capped at ANOMALY_EVIDENCE_LIMIT)"})


class AnomalyReportOut(StrictSchema):
    start = fields.DateTime(data_key="from")
    end = fields.DateTime(data_key="to")
    node_id = fields.Integer(allow_none=True)
    items = fields.List(fields.Nested(AnomalyOut))
    truncated = fields.List(fields.String(), metadata={
        "description": "detectors that found more than ANOMALY_MAX_ITEMS (the largest kept)"})
    settings = fields.Dict(keys=fields.String(), values=fields.Integer(),
                           metadata={"description": "the ANOMALY_* thresholds applied"})
