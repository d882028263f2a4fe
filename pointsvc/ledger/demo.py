"""Demo rule book and three weeks of postings, so `make run` shows a living ledger."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from ..common import utcnow
from ..demo import EXTRA_SEEDERS
from ..extensions import db
from ..people.models import Resident
from . import rules as rulebook
from .awards import set_approval_threshold
from .models import Account, PendingAward, Rule
from .seals import seal
from .service import Leg, Transfer, district_of, issuance_account, post, resident_account

# code, zh, en, category, points, unit, caps (day, week, month), approval required
RULE_BOOK = [
    ("volunteer-hour", "志愿服务（每小时）", "Volunteer service (per hour)", "volunteer", 10,
     "hour", (80, None, 600), False),
    ("garbage-sorting", "垃圾分类投放正确", "Garbage sorted correctly", "environment", 2,
     "action", (4, None, None), False),
    ("sanitation-duty", "环境卫生值守", "Sanitation duty", "environment", 5, "action",
     (10, None, None), False),
    ("civilised-behaviour", "文明行为（经核实）", "Civilised behaviour (verified)", "conduct", 3,
     "action", (None, 15, None), False),
    ("conflict-mediation", "邻里矛盾调解", "Neighbour conflict mediation", "conduct", 20,
     "action", (None, None, 60), True),
    ("elderly-visit", "关爱独居老人走访", "Visiting elderly living alone", "volunteer", 8,
     "action", (16, None, None), False),
    ("neg-littering", "乱扔垃圾（负面清单）", "Littering (negative list)", "conduct", -10,
     "action", (None, None, None), False),
    ("neg-ebike-charging", "电动车违规充电（负面清单）", "Unsafe e-bike charging (negative list)",
     "conduct", -20, "action", (None, None, None), False),
    ("neg-pet-nuisance", "不文明养犬（负面清单）", "Uncivil dog keeping (negative list)",
     "conduct", -5, "action", (None, None, None), False),
]
# A community's own variant: 春晓社区 pays more for garbage sorting during its pilot.
OVERRIDE = ("garbage-sorting", "垃圾分类投放正确（试点加分）", "Garbage sorted correctly (pilot)",
            "environment", 3, "action", (6, None, None), False)

MEMOS = {
    "volunteer-hour": ["社区防疫志愿服务", "图书角整理", "文明交通劝导", "社区运动会保障"],
    "garbage-sorting": ["厨余垃圾分类正确", "可回收物投放正确"],
    "sanitation-duty": ["楼道清扫", "小区绿地捡拾垃圾"],
    "civilised-behaviour": ["主动让座", "拾金不昧"],
    "elderly-visit": ["走访独居老人并代购药品"],
    "neg-littering": ["高空抛物警示"],
    "neg-ebike-charging": ["楼道内为电动车充电"],
    "neg-pet-nuisance": ["遛狗未牵绳"],
}


def _create_rules(context: dict[str, Any]) -> dict[str, Rule]:
    actor = context.get("admin_user_id")
    rules = {}
    for code, zh, en, category, points, unit, caps, approval in RULE_BOOK:
        rules[code] = rulebook.create_rule(
            org_node_id=context["district_id"], actor_user_id=actor,
            values={"code": code, "title_zh": zh, "title_en": en, "category": category,
                    "points": points, "unit": unit, "cap_day": caps[0], "cap_week": caps[1],
                    "cap_month": caps[2], "approval_required": approval},
        )
    code, zh, en, category, points, unit, caps, approval = OVERRIDE
    rulebook.create_rule(
        org_node_id=context["community_ids"]["chunxiao"], actor_user_id=actor,
        values={"code": code, "title_zh": zh, "title_en": en, "category": category,
                "points": points, "unit": unit, "cap_day": caps[0], "approval_required": approval},
    )
    return rules


def seed_ledger(context: dict[str, Any]) -> None:
    """Rule book, three weeks of awards and deductions, a reversal, a pending approval, seals."""
    rng = random.Random(2026)
    rules = _create_rules(context)
    organizer = context.get("organizer_user_id")
    residents = [db.session.get(Resident, rid) for rid in context["resident_ids"]]
    start = utcnow() - timedelta(days=21)
    positive = ["volunteer-hour", "garbage-sorting", "garbage-sorting", "sanitation-duty",
                "civilised-behaviour", "elderly-visit"]
    negative = ["neg-littering", "neg-ebike-charging", "neg-pet-nuisance"]
    first_award = None
    for day in range(21):
        for resident in rng.sample(residents, k=12):
            at = start + timedelta(days=day, hours=rng.randint(1, 10), minutes=rng.randint(0, 59))
            code = rng.choice(negative) if rng.random() < 0.06 else rng.choice(positive)
            rule = rules[code]
            quantity = rng.choice([60, 90, 120, 180]) if rule.unit == "hour" else 1
            transaction = _post_at(resident, rule, quantity, organizer, at,
                                   rng.choice(MEMOS.get(code, [""])))
            first_award = first_award or transaction
    db.session.commit()
    if first_award is not None:
        _reverse(first_award, context.get("admin_user_id"))
    set_approval_threshold(community_id=context["community_ids"]["chunxiao"], threshold=100,
                           actor_user_id=context.get("admin_user_id"))
    mediation = rules["conflict-mediation"]
    db.session.add(PendingAward(
        community_id=residents[0].community_id, resident_id=residents[0].id,
        rule_id=mediation.id, quantity=1, points=mediation.points,
        memo="调解 3 幢邻里漏水纠纷", reason_required="rule_requires_approval",
        requested_by=organizer,
    ))
    db.session.commit()
    seal()


def _post_at(resident: Resident, rule: Rule, quantity: int, actor: int | None, at, memo: str):
    community = resident.community_id
    account = resident_account(resident_id=resident.id, community_id=community)
    issuance = issuance_account(community_id=community)
    points = rulebook.points_for(rule=rule, quantity=quantity)
    shortfall = 0
    if points < 0:
        balance = db.session.get(Account, account).balance
        taken = min(balance, -points)
        shortfall = -points - taken
        legs = (Leg(account, -taken), Leg(issuance, taken)) if taken else ()
    else:
        legs = (Leg(issuance, -points), Leg(account, points))
    return post(transfer=Transfer(
        kind="award" if points > 0 else "deduction",
        community_id=community, district_id=district_of(community_id=community), legs=legs,
        actor_user_id=actor, rule_id=rule.id, rule_code=rule.code, rule_version=rule.version,
        category=rule.category, quantity=quantity, subject_resident_id=resident.id,
        shortfall=shortfall, memo=memo or None, created_at=at,
    ))


def _reverse(original, actor: int | None) -> None:
    from .awards import reverse

    reverse(transaction_id=original.id, actor_user_id=actor, reason="重复录入，冲正")
    db.session.commit()


EXTRA_SEEDERS.append(seed_ledger)
