"""Demo merchants for `flask demo seed`: a community points supermarket and a partner shop.

Importing this module appends `seed_merchants` to pointsvc.demo.EXTRA_SEEDERS.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..demo import EXTRA_SEEDERS
from ..extensions import db
from ..people.models import MerchantOperator, User
from . import service

# (login, password, display name): the supermarket's operator. The partner shop is run by
# the demo's own "merchant" login (pointsvc.demo.STAFF_LOGINS).
SUPERMARKET_LOGIN = ("supermarket", "supermarket-demo-2026", "孙秀兰")
DEMO_LOGINS = [
    (SUPERMARKET_LOGIN[0], SUPERMARKET_LOGIN[1], "merchant_operator", "春晓社区积分超市"),
    ("merchant", "merchant-demo-2026", "merchant_operator", "好邻居便利店"),
]


def seed_merchants(context: dict[str, Any]) -> None:
    """Create the demo merchants and attach their operators; adds ids to the context."""
    communities = context["community_ids"]
    admin_id = context["admin_user_id"]
    supermarket = service.create_merchant(
        name="春晓社区积分超市",
        address="长河街道春晓路 88 号春晓社区服务中心一楼",
        category="supermarket",
        org_node_id=communities["chunxiao"],
        contact_name="孙秀兰",
        contact_phone="13900000101",
        created_by=admin_id,
    ).merchant
    partner = service.create_merchant(
        name="好邻居便利店",
        address="长河街道江南大道 1024 号",
        category="grocery",
        org_node_id=context["street_ids"]["changhe"],
        contact_name="刘德胜",
        contact_phone="13900000102",
        created_by=admin_id,
    ).merchant
    # One application waiting for a decision, so approving can be tried straight away.
    pending = service.apply(
        name="老街坊面馆",
        address="长河街道春晓路 12 号",
        category="restaurant",
        org_node_id=communities["jiangnan"],
        contact_name="周海燕",
        contact_phone="13900000103",
    )
    context["merchant_ids"] = {
        "supermarket": supermarket.id,
        "partner": partner.id,
        "pending": pending.id,
    }

    login, password, name = SUPERMARKET_LOGIN
    if db.session.scalar(select(User.id).where(User.username == login)) is None:
        operator = service.create_operator(
            merchant_id=supermarket.id, username=login, display_name=name, password=password
        )
        context["supermarket_user_id"] = operator.user.id
    merchant_user_id = context.get("merchant_user_id")
    if merchant_user_id is not None and db.session.get(MerchantOperator, merchant_user_id) is None:
        db.session.add(MerchantOperator(user_id=merchant_user_id, merchant_id=partner.id))
        db.session.commit()


EXTRA_SEEDERS.append(seed_merchants)
