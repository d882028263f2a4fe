"""A worker's copy of node facts: reused across requests within the bound, emptied at once by
a committed change to a node, never longer than the bound for changes it cannot see."""

from __future__ import annotations

import time

from sqlalchemy import text

from pointsvc.extensions import db
from pointsvc.orgs import service as orgs
from tests.factories import make_tree


def _facts(app, node_id: int, monkeypatch) -> tuple[orgs.NodeFacts | None, int]:
    """The node's facts in a fresh request context, and how many times they were read."""
    reads = []
    original = db.session.execute

    def counting(statement, *args, **kwargs):  # type: ignore[no-untyped-def]
        if "org_nodes" in str(statement):
            reads.append(1)
        return original(statement, *args, **kwargs)

    with app.app_context():
        monkeypatch.setattr(db.session, "execute", counting)
        facts = orgs.node_facts(node_id=node_id)
        monkeypatch.undo()
        db.session.remove()
    return facts, len(reads)


def test_kept_across_requests_and_emptied_by_a_change(app, monkeypatch):
    tree = make_tree(app)
    first, reads = _facts(app, tree.community_a, monkeypatch)
    assert reads == 1 and first.level == "community" and first.timezone == "Asia/Shanghai"
    again, reads = _facts(app, tree.community_a, monkeypatch)
    assert reads == 0 and again == first
    with app.app_context():
        orgs.update_node(node_id=tree.community_a, changes={"timezone": "Asia/Urumqi"})
    changed, reads = _facts(app, tree.community_a, monkeypatch)
    assert reads == 1 and changed.timezone == "Asia/Urumqi"


def test_a_change_behind_the_orm_is_seen_within_the_bound(app, monkeypatch):
    app.config["PRINCIPAL_CACHE_SECONDS"] = 1
    tree = make_tree(app)
    assert _facts(app, tree.community_a, monkeypatch)[0].timezone == "Asia/Shanghai"
    with app.app_context():  # raw SQL, as another worker's commit looks to this one
        db.session.execute(text("UPDATE org_nodes SET timezone = 'Asia/Urumqi' WHERE id = :n"),
                           {"n": tree.community_a})
        db.session.commit()
    assert _facts(app, tree.community_a, monkeypatch)[0].timezone == "Asia/Shanghai"
    time.sleep(1.05)
    assert _facts(app, tree.community_a, monkeypatch)[0].timezone == "Asia/Urumqi"


def test_zero_reads_every_time(app, monkeypatch):
    app.config["PRINCIPAL_CACHE_SECONDS"] = 0
    tree = make_tree(app)
    assert _facts(app, tree.community_a, monkeypatch)[1] == 1
    assert _facts(app, tree.community_a, monkeypatch)[1] == 1
    assert orgs.NODE_FACTS not in app.extensions
