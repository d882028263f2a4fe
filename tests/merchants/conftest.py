"""Fixtures for merchant tests: a tree with staff on it, and apps with settings of their own."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask import Flask

from tests.factories import Tree, make_tree, make_user
from tests.platform.conftest import make_app  # noqa: F401


@dataclass
class Staff:
    tree: Tree
    admin: int  # admin on the district
    organizer_a: int  # organizer of community A
    organizer_b: int  # organizer of community B
    auditor_a: int  # auditor of community A
    organizer_grid_a: int  # organizer of grid A1 only


def make_staff(app: Flask) -> Staff:
    tree = make_tree(app)
    return Staff(
        tree=tree,
        admin=make_user(app, role="admin", node_id=tree.district),
        organizer_a=make_user(app, role="organizer", node_id=tree.community_a),
        organizer_b=make_user(app, role="organizer", node_id=tree.community_b),
        auditor_a=make_user(app, role="auditor", node_id=tree.community_a),
        organizer_grid_a=make_user(app, role="organizer", node_id=tree.grid_a),
    )


@pytest.fixture
def staff(app: Flask) -> Staff:
    return make_staff(app)
