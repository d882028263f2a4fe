"""Demo honours: two badges, a designated honour, tallies drained after the ledger's history.

Importing this module appends `seed_leaderboards` to pointsvc.demo.EXTRA_SEEDERS; it must run
after the ledger's seeder (pointsvc.demo imports it last).
"""

from __future__ import annotations

from typing import Any

from ..demo import EXTRA_SEEDERS
from ..extensions import db
from ..people.models import Resident
from .honours import create_badge, designate
from .tallies import drain_all


def seed_leaderboards(context: dict[str, Any]) -> None:
    """Badges on the district, 最美志愿者 for one resident, tallies up to date."""
    admin = context.get("admin_user_id")
    create_badge(org_node_id=context["district_id"], actor_user_id=admin, values={
        "code": "sorting-star", "title_zh": "垃圾分类达人", "title_en": "Sorting star",
        "description": "一个月内正确分类投放 5 次", "rule_code": "garbage-sorting",
        "category": None, "metric": "actions", "threshold": 5, "period": "month"})
    create_badge(org_node_id=context["district_id"], actor_user_id=admin, values={
        "code": "helping-hand", "title_zh": "热心志愿者", "title_en": "Helping hand",
        "description": "累计志愿服务 5 小时", "rule_code": None, "category": "volunteer",
        "metric": "hours", "threshold": 5, "period": "all"})
    drain_all()  # the ledger demo's history, with the badges above already defined
    first = db.session.get(Resident, context["resident_ids"][0])
    if first is not None and admin is not None:
        designate(resident_id=first.id, actor_user_id=admin, title="最美志愿者",
                  citation="长期坚持社区防疫与图书角志愿服务，热心助人。", period_label="本月")


EXTRA_SEEDERS.append(seed_leaderboards)
