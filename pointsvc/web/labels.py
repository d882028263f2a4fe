"""Words for the service's enumerations (ledger kinds, redemption statuses)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

KINDS = {
    "award": _l("Award"),
    "deduction": _l("Deduction"),
    "redemption": _l("Spent"),
    "refund": _l("Refund"),
    "reversal": _l("Correction"),
    "expiry": _l("Expired"),
    "settlement": _l("Settlement"),
    "adjustment": _l("Adjustment"),
}

STATUSES = {
    "captured": _l("Paid"),
    "held": _l("Reserved"),
    "voided": _l("Cancelled"),
    "expired": _l("Expired"),
}


def kind_label(kind: str) -> str:
    return str(KINDS.get(kind, kind))


def status_label(status: str) -> str:
    return str(STATUSES.get(status, status))

APPROVAL_REASONS = {
    "manual_adjustment": _l("Manual adjustment without a rule"),
    "rule_requires_approval": _l("The rule needs approval"),
    "above_threshold": _l("Above the community's approval threshold"),
}


def approval_reason(reason: str) -> str:
    return str(APPROVAL_REASONS.get(reason, reason))

MERCHANT_STATUSES = {
    "pending": _l("Waiting for approval"),
    "active": _l("Active"),
    "rejected": _l("Rejected"),
    "suspended": _l("Suspended"),
}


def merchant_status(status: str) -> str:
    return str(MERCHANT_STATUSES.get(status, status))

SIGNUP_STATUSES = {
    "confirmed": _l("Signed up"),
    "waitlisted": _l("On the wait-list"),
    "cancelled": _l("Cancelled"),
}


def signup_label(status: str) -> str:
    return str(SIGNUP_STATUSES.get(status, status))

EVENT_STATUSES = {
    "draft": _l("Draft"),
    "published": _l("Published"),
    "closed": _l("Closed"),
    "cancelled": _l("Cancelled"),
}

SETTLEMENTS = {
    "none": _l("Not settled"),
    "awaiting_approval": _l("Waiting for approval"),
    "posted": _l("Points posted"),
}

CATEGORIES = {
    "volunteer": _l("Volunteering"),
    "environment": _l("Environment"),
    "conduct": _l("Good conduct"),
    "other": _l("Other"),
}

LINE_STATUSES = {
    "preview": _l("So far"),
    "pending": _l("Waiting for approval"),
    "posted": _l("Posted"),
    "no_points": _l("No points"),
    "rejected": _l("Rejected"),
}


def event_label(kind: str, value: str | None) -> str:
    """A word for an event's status, settlement, category or attendance line status."""
    table = {"status": EVENT_STATUSES, "settlement": SETTLEMENTS, "category": CATEGORIES,
             "line": LINE_STATUSES}[kind]
    return str(table.get(value or "", value or ""))

PERIODS = {"week": _l("This week"), "month": _l("This month"), "year": _l("This year"),
           "all": _l("All time")}
LEVELS = {"grid": _l("My grid"), "community": _l("My community"), "street": _l("My street"),
          "district": _l("My district")}
BOARD_CATEGORIES = {**CATEGORIES, "all": _l("All kinds")}
METRICS = {"points": _l("Points"), "hours": _l("Service hours")}


def board_label(kind: str, value: str) -> str:
    """A word for a leaderboard's period, level, category or metric."""
    table = {"period": PERIODS, "level": LEVELS, "category": BOARD_CATEGORIES,
             "metric": METRICS}[kind]
    return str(table.get(value, value))

APPEAL_STATUSES = {"open": _l("Open"), "upheld": _l("Upheld"), "dismissed": _l("Dismissed")}


def appeal_label(status: str) -> str:
    return str(APPEAL_STATUSES.get(status, status))
