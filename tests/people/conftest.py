"""A small world for the people tests: two communities and staff with different reach."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.factories import Tree, make_tree, make_user


@dataclass
class World:
    tree: Tree
    admin: int  # admin on the district
    organizer_a: int  # organizer on community A
    organizer_b: int  # organizer on community B
    auditor: int  # auditor on the street


@pytest.fixture
def world(app) -> World:
    tree = make_tree(app)
    return World(
        tree=tree,
        admin=make_user(app, role="admin", node_id=tree.district, name="区管理员"),
        organizer_a=make_user(app, role="organizer", node_id=tree.community_a, name="甲组织者"),
        organizer_b=make_user(app, role="organizer", node_id=tree.community_b, name="乙组织者"),
        auditor=make_user(app, role="auditor", node_id=tree.street, name="审计员"),
    )
