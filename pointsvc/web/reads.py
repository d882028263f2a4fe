"""Figures a page shows that no single API call returns, computed from the same readers."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from ..common import utcnow
from ..ledger import reading

# Rows per page when a figure is read through a paged list (the loops stop at a short page).
_PAGE = 200


def month_start(*, timezone: str, now: datetime | None = None) -> datetime:
    """The instant the current local month began, in the community's zone, as UTC (SQLite
    compares stored times as UTC text)."""
    local = (now or utcnow()).astimezone(ZoneInfo(timezone))
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start.astimezone(UTC)


def earned_this_month(*, account_id: int, timezone: str) -> int:
    """Points credited to the account since the local month began, refunds and reversals
    excluded (a refund gives back what was spent; it is not earning)."""
    return reading.credited_since(account_id=account_id, start=month_start(timezone=timezone))


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


def pending_awards(*, scope_paths: list[str], limit: int = _PAGE) -> list[dict]:
    """Awards waiting for a second staff member in these subtrees, oldest first (the same
    query as GET /api/v1/approvals?status=pending)."""
    from sqlalchemy import or_, select

    from ..extensions import db
    from ..ledger import awards
    from ..ledger.models import PendingAward
    from ..orgs.models import OrgNode

    if not scope_paths:
        return []
    rows = db.session.scalars(
        select(PendingAward)
        .join(OrgNode, OrgNode.id == PendingAward.community_id)
        .where(PendingAward.status == "pending")
        .where(or_(*[OrgNode.path.startswith(path, autoescape=True) for path in scope_paths]))
        .order_by(PendingAward.id).limit(limit)
    )
    items = [awards.pending_json(row) for row in rows]
    from ..people.models import Resident, User

    names = dict(db.session.execute(
        select(Resident.id, User.display_name).join(User, User.id == Resident.user_id)
        .where(Resident.id.in_({item["resident_id"] for item in items}))
    ).all()) if items else {}
    for item in items:
        item["resident_name"] = names.get(item["resident_id"])
    return items
