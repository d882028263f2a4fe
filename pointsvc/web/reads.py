"""Figures a page shows that no single API call returns, computed from the same readers."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from ..common import utcnow
from ..ledger import reading

# Enough for any month of one resident; the loop stops at the first short page anyway.
_PAGE = 200


def month_start(*, timezone: str, now: datetime | None = None) -> datetime:
    """The instant the current local month began, in the community's zone, as UTC (SQLite
    compares stored times as UTC text)."""
    local = (now or utcnow()).astimezone(ZoneInfo(timezone))
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start.astimezone(UTC)


def earned_this_month(*, account_id: int, timezone: str) -> int:
    """Points credited to the account since the local month began, refunds excluded
    (a refund gives back what was spent; it is not earning)."""
    start = month_start(timezone=timezone)
    total, cursor = 0, None
    while True:
        items, cursor = reading.statement(account_id=account_id, limit=_PAGE, cursor=cursor,
                                          start=start)
        total += sum(item["amount"] for item in items
                     if item["amount"] > 0 and item["kind"] not in ("refund", "reversal"))
        if cursor is None:
            return total


def todays_redemptions(*, merchant_id: int, timezone: str) -> list[dict]:
    """The merchant's redemptions since local midnight, newest first (keyset pages of the
    same list the API serves, stopping at the first one from before today)."""
    from ..redemption import service as redemption

    local = utcnow().astimezone(ZoneInfo(timezone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    found: list[dict] = []
    cursor = None
    while True:
        items, cursor = redemption.list_redemptions(limit=_PAGE, cursor=cursor,
                                                    merchant_ids=[merchant_id])
        for item in items:
            if datetime.fromisoformat(item["created_at"]) < midnight:
                return found
            found.append(item)
        if cursor is None:
            return found
