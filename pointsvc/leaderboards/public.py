"""The public community board (阳光公开): this month's top ten and the community's totals.

Nothing personal beyond masked names: minors and residents who chose "hidden" are never
listed, residents who chose "anonymous" show as 匿名居民, and the totals are aggregates.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text

from ..common import as_utc
from ..errors import NotFound
from ..extensions import db
from ..ledger.seals import latest_seal
from ..orgs.models import OrgNode
from .models import Tally
from .service import board
from .tallies import now_local_date, period_bounds, period_key

_FLOWS_SQL = """
SELECT t.kind, COALESCE(SUM(e.amount), 0)
FROM ledger_transactions t
JOIN ledger_entries e ON e.transaction_id = t.id
JOIN ledger_accounts a ON a.id = e.account_id AND a.kind = 'resident'
WHERE t.community_id = :community AND t.created_at >= :start AND t.created_at < :end
  AND t.kind IN ('award', 'adjustment', 'redemption', 'refund')
GROUP BY t.kind
"""


def month_flows(*, community_id: int, start: Any, end: Any) -> dict[str, int]:
    """Points issued (awards) and redeemed (redemptions net of refunds) in [start, end)."""
    totals = dict(db.session.execute(
        text(_FLOWS_SQL), {"community": community_id, "start": start, "end": end}).all())
    issued = max(0, int(totals.get("award", 0))) + max(0, int(totals.get("adjustment", 0)))
    redeemed = -(int(totals.get("redemption", 0)) + int(totals.get("refund", 0)))
    return {"issued": issued, "redeemed": max(0, redeemed)}


def community_board(*, community_id: int) -> dict[str, Any]:
    """Everything the public page shows about one community this month."""
    community = db.session.get(OrgNode, community_id)
    if community is None or community.level != "community":
        raise NotFound("not_found", f"community {community_id} does not exist")
    today = now_local_date(timezone=community.timezone)
    month = period_key(period="month", day=today)
    start, end = period_bounds(period="month", day=today, timezone=community.timezone)
    top = board(scope_id=community_id, period="month", at=today, category="all",
                metric="points", limit=10, cursor=None)["items"]
    volunteers, minutes = db.session.execute(
        select(func.count(), func.coalesce(func.sum(Tally.minutes), 0)).where(
            Tally.community_id == community_id, Tally.period == month,
            Tally.category == "volunteer", Tally.minutes > 0)
    ).one()
    seal = latest_seal()
    return {
        "community": community.name_zh,
        "community_en": community.name_en,
        "month": today.strftime("%Y年%m月"),
        "top": top,
        "flows": month_flows(community_id=community_id, start=start, end=end),
        "volunteers": int(volunteers),
        "hours": round(int(minutes) / 60, 1),
        "seal": None if seal is None else {
            "seq": seal.seq, "tree_size": seal.tree_size, "root_hash": seal.root_hash,
            "sealed_at": as_utc(seal.sealed_at).isoformat(timespec="seconds"),
        },
    }
