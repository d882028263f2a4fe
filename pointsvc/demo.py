"""Demo data: a realistic district (滨江区) with staff, residents and households.

`flask demo seed` runs seed_demo() once; a second run finds the district and changes nothing.
Later packages add their own demo data (merchants, rules, events...) by appending a function
to EXTRA_SEEDERS; each is called once, on the first run, with the context of created ids.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from flask.cli import with_appcontext
from sqlalchemy import or_, select

from .extensions import db
from .orgs import service as orgs
from .orgs.models import OrgNode
from .people.models import UNUSABLE_PASSWORD, Household, Resident, RoleGrant, StaffHousehold, User
from .security.passwords import hash_password

DEMO_DISTRICT = ("滨江区", "Binjiang District")
TZ = "Asia/Shanghai"

# (login, password, role, where, display name). Residents sign in with their phone number.
STAFF_LOGINS = [
    ("admin", "admin-demo-2026", "admin", "district", "王建国"),
    ("organizer", "organizer-demo-2026", "organizer", "chunxiao", "陈丽华"),
    ("auditor", "auditor-demo-2026", "auditor", "changhe", "赵志强"),
    ("merchant", "merchant-demo-2026", "merchant_operator", None, "刘德胜"),
]
RESIDENT_PASSWORD = "resident-demo-2026"
# (phone, name, community key): the two residents who can sign in, in different communities.
RESIDENT_LOGINS = [
    ("13800000001", "张伟", "chunxiao"),
    ("13800000002", "李娜", "jiangnan"),
]

# Functions of later packages: fn(context) with the ids seed_demo created; run on first seed.
EXTRA_SEEDERS: list[Callable[[dict[str, Any]], None]] = []

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
_GIVEN = [
    "秀英",
    "桂英",
    "志明",
    "建华",
    "海燕",
    "国强",
    "晓东",
    "丽娟",
    "子涵",
    "浩然",
    "雨桐",
    "俊杰",
    "思远",
    "欣怡",
    "文博",
    "佳怡",
    "宇航",
    "梦琪",
    "嘉豪",
    "淑芬",
]
_TREE = {
    "changhe": ("长河街道", "Changhe Street", "district"),
    "xixing": ("西兴街道", "Xixing Street", "district"),
    "chunxiao": ("春晓社区", "Chunxiao Community", "changhe"),
    "jiangnan": ("江南社区", "Jiangnan Community", "changhe"),
    "xingmin": ("星民社区", "Xingmin Community", "xixing"),
}
_GRIDS = {
    "chunxiao": [("春晓一网格", "Chunxiao Grid 1"), ("春晓二网格", "Chunxiao Grid 2")],
    "jiangnan": [("江南一网格", "Jiangnan Grid 1"), ("江南二网格", "Jiangnan Grid 2")],
    "xingmin": [("星民一网格", "Xingmin Grid 1")],
}
OTHER_RESIDENTS = 38


class DemoConflict(RuntimeError):
    """The database already holds accounts the demo needs (the demo wants a fresh database)."""


def is_seeded() -> bool:
    """The demo district exists."""
    return (
        db.session.scalar(
            select(OrgNode.id).where(
                OrgNode.parent_id.is_(None), OrgNode.name_zh == DEMO_DISTRICT[0]
            )
        )
        is not None
    )


def seed_demo() -> dict[str, Any] | None:
    """Create the demo district once; returns the ids created, or None if already seeded."""
    if is_seeded():
        return None
    _refuse_taken_logins()
    nodes: dict[str, OrgNode] = {
        "district": orgs.create_district(name_zh=DEMO_DISTRICT[0], name_en=DEMO_DISTRICT[1])
    }
    for key, (zh, en, parent) in _TREE.items():
        nodes[key] = orgs.create_child(
            parent_id=nodes[parent].id, name_zh=zh, name_en=en, timezone=TZ
        )
    grids: dict[str, list[int]] = {}
    for community, names in _GRIDS.items():
        grids[community] = [
            orgs.create_child(parent_id=nodes[community].id, name_zh=zh, name_en=en, timezone=TZ).id
            for zh, en in names
        ]
    context: dict[str, Any] = {
        "district_id": nodes["district"].id,
        "street_ids": {key: nodes[key].id for key in ("changhe", "xixing")},
        "community_ids": {key: nodes[key].id for key in _GRIDS},
        "grid_ids": grids,
    }
    context.update(_seed_people(nodes, grids))
    db.session.commit()
    for seeder in _seeders():
        seeder(context)
    return context


# Importing a package's demo module registers its seeder; they run in this order (the
# ledger first, redemption after merchants, events and leaderboards after the ledger).
SEEDER_MODULES = ("ledger", "merchants", "redemption", "events", "leaderboards", "audit.appeals")


def _seeders() -> list[Callable[[dict[str, Any]], None]]:
    """Every package's demo seeder, in SEEDER_MODULES order."""
    import importlib

    for name in SEEDER_MODULES:
        importlib.import_module(f"{__package__}.{name}.demo")
    return list(dict.fromkeys(EXTRA_SEEDERS))


def _refuse_taken_logins() -> None:
    usernames = [login for login, *_ in STAFF_LOGINS]
    phones = [phone for phone, *_ in RESIDENT_LOGINS] + [
        _phone(n) for n in range(len(RESIDENT_LOGINS) + 1, OTHER_RESIDENTS + 3)
    ]
    taken = db.session.scalars(
        select(User.username).where(or_(User.username.in_(usernames), User.phone.in_(phones)))
    ).all()
    if taken:
        raise DemoConflict(
            "the demo needs a fresh database: these accounts already exist: "
            + ", ".join(sorted(str(name) for name in taken))
        )


def _phone(n: int) -> str:
    return f"138{n:08d}"


def _seed_people(nodes: dict[str, OrgNode], grids: dict[str, list[int]]) -> dict[str, Any]:
    ids: dict[str, Any] = {}
    communities = list(_GRIDS)
    households: dict[str, list[Household]] = {}
    for community in communities:
        households[community] = [
            Household(community_id=nodes[community].id, label=f"{building}幢{room}室")
            for building, room in ((1, 101), (1, 202), (2, 301), (3, 502))
        ]
        db.session.add_all(households[community])
    db.session.flush()
    ids["household_ids"] = {c: [h.id for h in households[c]] for c in communities}

    for login, password, role, where, name in STAFF_LOGINS:
        user = User(username=login, display_name=name, password_hash=hash_password(password))
        db.session.add(user)
        db.session.flush()
        if where is not None:
            db.session.add(RoleGrant(user_id=user.id, role=role, org_node_id=nodes[where].id))
        ids[f"{login}_user_id"] = user.id
    # The organizer lives in 春晓社区: the ledger stops them awarding their own family.
    db.session.add(
        StaffHousehold(user_id=ids["organizer_user_id"], household_id=households["chunxiao"][0].id)
    )

    resident_hash = hash_password(RESIDENT_PASSWORD)
    people = [(phone, name, community, resident_hash) for phone, name, community in RESIDENT_LOGINS]
    for n in range(OTHER_RESIDENTS):
        name = _SURNAMES[n % len(_SURNAMES)] + _GIVEN[(n * 7) % len(_GIVEN)]
        people.append((_phone(n + 3), name, communities[n % 3], UNUSABLE_PASSWORD))
    resident_ids = []
    for n, (phone, name, community, password_hash) in enumerate(people):
        user = User(phone=phone, display_name=name, password_hash=password_hash)
        db.session.add(user)
        db.session.flush()
        community_grids = grids[community]
        resident = Resident(
            user_id=user.id,
            community_id=nodes[community].id,
            grid_id=community_grids[n % len(community_grids)],
            household_id=households[community][n % 4].id if n % 5 else None,
            is_minor=n % 9 == 8,
            privacy=("public", "public", "anonymous", "hidden")[n % 4],
        )
        db.session.add(resident)
        db.session.flush()
        resident_ids.append(resident.id)
        if n < len(RESIDENT_LOGINS):
            ids[f"resident_{'ab'[n]}"] = {"user_id": user.id, "resident_id": resident.id}
    ids["resident_ids"] = resident_ids
    return ids


def logins_table() -> str:
    """The demo logins as a Markdown table (also in README-DEMO-LOGINS.md)."""
    scopes = {"district": "滨江区", "chunxiao": "春晓社区", "changhe": "长河街道"}
    lines = [
        "| login | password | role | where |",
        "|---|---|---|---|",
    ]
    for login, password, role, where, name in STAFF_LOGINS:
        place = scopes[where] if where else "partner merchant (created by the merchants seeder)"
        lines.append(f"| `{login}` | `{password}` | {role} ({name}) | {place} |")
    labels = {"chunxiao": "春晓社区", "jiangnan": "江南社区"}
    for phone, name, community in RESIDENT_LOGINS:
        lines.append(
            f"| `{phone}` | `{RESIDENT_PASSWORD}` | resident ({name}) | {labels[community]} |"
        )
    return "\n".join(lines)


@click.command("seed")
@with_appcontext
def seed_command() -> None:
    """Seed the demo district 滨江区 (idempotent) and print the demo logins."""
    try:
        context = seed_demo()
    except DemoConflict as exc:
        raise click.ClickException(str(exc)) from exc
    if context is None:
        click.echo("The demo district 滨江区 is already there; nothing was added.")
    else:
        click.echo(
            f"Seeded 滨江区: {len(context['resident_ids'])} residents, "
            f"{sum(len(v) for v in context['household_ids'].values())} households, "
            f"{len(EXTRA_SEEDERS)} extra seeders run."
        )
    click.echo("\nDemo logins (POST /api/v1/auth/token with username or phone):\n")
    click.echo(logins_table())
