"""Demo offers at the points supermarket and the partner shop, a few redemptions, a refund.

Importing this module appends `seed_redemption` to pointsvc.demo.EXTRA_SEEDERS; it must run
after the ledger's seeder (residents need points) and the merchants' seeder (the shops).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..demo import EXTRA_SEEDERS
from ..errors import DomainError
from ..extensions import db
from ..ledger.models import Account
from ..people.models import MerchantOperator, Resident
from . import service

# (merchant key, title, points, stock, per-resident limit, period, where)
OFFERS = [
    ("supermarket", "东北大米 5kg", 200, 20, 1, "week", "chunxiao"),
    ("supermarket", "花生油 1.8L", 150, 30, None, None, "chunxiao"),
    ("supermarket", "洗衣液 2kg", 80, None, None, None, "chunxiao"),
    ("supermarket", "土鸡蛋（10 枚）", 30, 100, 2, "day", "chunxiao"),
    ("partner", "酿造酱油 500ml", 40, 50, None, None, "changhe"),
    ("partner", "矿泉水（箱）", 25, None, 1, "day", "changhe"),
]


def _operator(merchant_id: int) -> int:
    return db.session.scalar(
        select(MerchantOperator.user_id).where(MerchantOperator.merchant_id == merchant_id)
        .order_by(MerchantOperator.user_id)
    )


def _richest(community_id: int, count: int) -> list[Resident]:
    return list(db.session.scalars(
        select(Resident).join(Account, (Account.owner_id == Resident.id)
                              & (Account.kind == "resident"))
        .where(Resident.community_id == community_id)
        .order_by(Account.balance.desc(), Resident.id).limit(count)
    ))


def seed_redemption(context: dict[str, Any]) -> None:
    """Offers, four redemptions (pay code and merchant code), a hold and a partial refund."""
    merchants = context["merchant_ids"]
    nodes = {**context["community_ids"], **context["street_ids"]}
    operators = {key: _operator(merchants[key]) for key in ("supermarket", "partner")}
    offers = {}
    for key, title, points, stock, limit, period, where in OFFERS:
        offers[title] = service.create_offer(
            merchant_id=merchants[key], actor_user_id=operators[key],
            values={"title": title, "points_price": points, "stock": stock,
                    "per_resident_limit": limit, "limit_period": period,
                    "org_node_id": nodes[where]},
        ).id
    service.reissue_merchant_code(merchant_id=merchants["partner"],
                                  actor_user_id=context["admin_user_id"])
    buyers = _richest(context["community_ids"]["chunxiao"], 3)
    sales = []
    spends = [
        ("paycode", "supermarket", buyers[0], offers["土鸡蛋（10 枚）"], 2, True),
        ("paycode", "supermarket", buyers[1], offers["洗衣液 2kg"], 1, True),
        ("merchant_code", "partner", buyers[2], offers["矿泉水（箱）"], 1, True),
        ("paycode", "partner", buyers[0], offers["矿泉水（箱）"], 1, False),
    ]
    for channel, key, resident, offer_id, quantity, capture in spends:
        actor = operators[key] if channel == "paycode" else resident.user_id
        try:
            _, receipt = service.redeem(request=service.SpendRequest(
                channel=channel, resident_id=resident.id, merchant_id=merchants[key],
                actor_user_id=actor, offer_id=offer_id, quantity=quantity, capture=capture,
                order_ref=f"DEMO-{len(sales) + 1:04d}" if channel == "paycode" else None))
        except DomainError:  # the ledger demo gave this resident too few points: skip it
            db.session.rollback()
            continue
        db.session.commit()
        sales.append(receipt["id"])
    if not sales:
        return
    service.refund(redemption_id=sales[0], points=30, reason="一盒鸡蛋破损，退回",
                   actor_user_id=operators["supermarket"])
    db.session.commit()
    context["offer_ids"] = offers
    context["redemption_ids"] = sales


EXTRA_SEEDERS.append(seed_redemption)
