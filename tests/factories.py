"""Builders for test data. They return ids (never ORM objects) so tests stay detached-safe."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from pointsvc.extensions import db
from pointsvc.orgs import service as orgs
from pointsvc.people.models import Merchant, MerchantOperator, Resident, RoleGrant, User
from pointsvc.security.passwords import hash_password
from pointsvc.security.tokens import issue_access_token

PASSWORD = "correct-horse-9"
TZ = "Asia/Shanghai"


@dataclass
class Tree:
    district: int
    street: int
    community_a: int
    community_b: int
    grid_a: int
    grid_b: int


def make_tree(app: Flask) -> Tree:
    """One district, one street, two communities (A and B), one grid in each."""
    with app.app_context():
        district = orgs.create_district(name_zh="测试区", name_en="Test District")
        street = orgs.create_child(
            parent_id=district.id, name_zh="测试街道", name_en="Test Street", timezone=TZ
        )
        a = orgs.create_child(
            parent_id=street.id, name_zh="甲社区", name_en="Community A", timezone="Asia/Shanghai"
        )
        b = orgs.create_child(
            parent_id=street.id, name_zh="乙社区", name_en="Community B", timezone="Asia/Shanghai"
        )
        grid_a = orgs.create_child(
            parent_id=a.id, name_zh="甲一网格", name_en="Grid A1", timezone="Asia/Shanghai"
        )
        grid_b = orgs.create_child(
            parent_id=b.id, name_zh="乙一网格", name_en="Grid B1", timezone="Asia/Shanghai"
        )
        return Tree(district.id, street.id, a.id, b.id, grid_a.id, grid_b.id)


_counter = {"n": 0}


def _next() -> int:
    _counter["n"] += 1
    return _counter["n"]


def make_user(
    app: Flask,
    *,
    username: str | None = None,
    phone: str | None = None,
    name: str = "测试用户",
    password: str = PASSWORD,
    role: str | None = None,
    node_id: int | None = None,
) -> int:
    """A user, optionally with one staff role granted on a node."""
    with app.app_context():
        user = User(
            username=username or f"user{_next()}",
            phone=phone,
            display_name=name,
            password_hash=hash_password(password),
        )
        db.session.add(user)
        db.session.flush()
        if role:
            db.session.add(RoleGrant(user_id=user.id, role=role, org_node_id=node_id))
        db.session.commit()
        return user.id


def make_resident(
    app: Flask,
    *,
    community_id: int,
    name: str = "张小明",
    phone: str | None = None,
    grid_id: int | None = None,
    household_id: int | None = None,
    is_minor: bool = False,
) -> tuple[int, int]:
    """A resident and their login; returns (user_id, resident_id)."""
    n = _next()
    phone = phone or f"139{n:08d}"[-11:]
    user_id = make_user(app, username=None, phone=phone, name=name)
    with app.app_context():
        user = db.session.get(User, user_id)
        user.username = None
        resident = Resident(
            user_id=user_id,
            community_id=community_id,
            grid_id=grid_id,
            household_id=household_id,
            is_minor=is_minor,
        )
        db.session.add(resident)
        db.session.commit()
        return user_id, resident.id


def make_merchant(
    app: Flask, *, node_id: int, name: str = "便民超市", status: str = "active"
) -> int:
    with app.app_context():
        merchant = Merchant(
            name=name, address="幸福路 1 号", category="grocery", org_node_id=node_id, status=status
        )
        db.session.add(merchant)
        db.session.commit()
        return merchant.id


def make_operator(app: Flask, *, merchant_id: int) -> int:
    user_id = make_user(app, name="店员")
    with app.app_context():
        db.session.add(MerchantOperator(user_id=user_id, merchant_id=merchant_id))
        db.session.commit()
    return user_id


def token_for(app: Flask, user_id: int) -> str:
    with app.app_context():
        token, _ = issue_access_token(user_id=user_id)
        return token


def auth(app: Flask, user_id: int, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(app, user_id)}", **headers}


def make_household(app: Flask, *, community_id: int, label: str | None = None) -> int:
    """A household in a community; returns its id."""
    from pointsvc.people.models import Household

    with app.app_context():
        household = Household(community_id=community_id, label=label or f"{_next()}号楼")
        db.session.add(household)
        db.session.commit()
        return household.id
