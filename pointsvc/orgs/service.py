"""Create, rename, move and delete organisation nodes."""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..common import decode_id_cursor, page_of
from ..errors import Conflict, NotFound, ValidationFailed
from ..extensions import db
from ..security import authz
from .models import LEVELS, PARENT_LEVEL, OrgNode

CHILD_LEVEL = {parent: child for child, parent in PARENT_LEVEL.items() if parent}


def get_node(*, node_id: int) -> OrgNode:
    """The node, or 404."""
    node = db.session.get(OrgNode, node_id)
    if node is None:
        raise NotFound("not_found", f"organisation node {node_id} does not exist")
    return node


def create_district(*, name_zh: str, name_en: str, timezone: str = "Asia/Shanghai") -> OrgNode:
    """A new root of the tree (CLI and seed only: no staff member covers a new district)."""
    return _insert(parent=None, level="district", name_zh=name_zh, name_en=name_en, tz=timezone)


def create_child(*, parent_id: int, name_zh: str, name_en: str, timezone: str) -> OrgNode:
    """A node one level below its parent (street under district, ...)."""
    parent = get_node(node_id=parent_id)
    level = CHILD_LEVEL.get(parent.level)
    if level is None:
        raise ValidationFailed(errors={"parent_id": ["A grid cannot have children."]})
    return _insert(parent=parent, level=level, name_zh=name_zh, name_en=name_en, tz=timezone)


def _insert(
    *, parent: OrgNode | None, level: str, name_zh: str, name_en: str, tz: str
) -> OrgNode:
    node = OrgNode(
        parent_id=parent.id if parent else None,
        level=level,
        name_zh=name_zh,
        name_en=name_en,
        timezone=tz,
        path="/pending/",
    )
    db.session.add(node)
    try:
        db.session.flush()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict("conflict", "a sibling node already has this name") from exc
    node.path = f"{parent.path if parent else '/'}{node.id}/"
    db.session.commit()
    _forget_nodes()
    return node


def update_node(*, node_id: int, changes: dict) -> OrgNode:
    """Rename a node or change its time zone."""
    node = get_node(node_id=node_id)
    _forget_nodes()
    for key, value in changes.items():
        setattr(node, key, value)
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict("conflict", "a sibling node already has this name") from exc
    return node


def holdings(*, node_id: int) -> dict[str, int]:
    """Rows anywhere in the schema that refer to this node (children, people, accounts...)."""
    counts: dict[str, int] = {}
    target = OrgNode.__table__.c.id
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            if any(fk.column is target for fk in column.foreign_keys):
                n = db.session.scalar(
                    select(func.count()).select_from(table).where(column == node_id)
                )
                if n:
                    key = "children" if table is OrgNode.__table__ else table.name
                    counts[key] = counts.get(key, 0) + n
    return counts


def _require_empty(node_id: int) -> None:
    held = holdings(node_id=node_id)
    if held:
        raise Conflict(
            "node_not_empty",
            "the node still holds: " + ", ".join(f"{k}={v}" for k, v in sorted(held.items())),
            holdings=held,
        )


def move_node(*, node_id: int, new_parent_id: int) -> OrgNode:
    """Re-parent an empty node under a node of the right level."""
    node = get_node(node_id=node_id)
    parent = get_node(node_id=new_parent_id)
    if PARENT_LEVEL[node.level] != parent.level:
        raise ValidationFailed(
            errors={"parent_id": [f"A {node.level} must sit under a {PARENT_LEVEL[node.level]}."]}
        )
    _require_empty(node_id)
    _forget_nodes()
    node.parent_id = parent.id
    node.path = f"{parent.path}{node.id}/"
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict("conflict", "a sibling node already has this name") from exc
    return node


def delete_node(*, node_id: int) -> None:
    """Delete an empty node."""
    node = get_node(node_id=node_id)
    _require_empty(node_id)
    _forget_nodes()
    db.session.delete(node)
    db.session.commit()


def list_nodes(
    *,
    scope_paths: list[str],
    limit: int,
    cursor: str | None,
    parent_id: int | None = None,
    level: str | None = None,
    under_path: str | None = None,
) -> tuple[list[OrgNode], str | None]:
    """Nodes inside the caller's scope, ordered by id, keyset-paginated."""
    if not scope_paths:
        return [], None
    query = select(OrgNode).where(
        db.or_(*[OrgNode.path.startswith(path, autoescape=True) for path in scope_paths])
    )
    if under_path:
        query = query.where(OrgNode.path.startswith(under_path, autoescape=True))
    if parent_id is not None:
        query = query.where(OrgNode.parent_id == parent_id)
    if level is not None:
        assert level in LEVELS
        query = query.where(OrgNode.level == level)
    if cursor:
        query = query.where(OrgNode.id > decode_id_cursor(cursor))
    rows = list(db.session.scalars(query.order_by(OrgNode.id).limit(limit + 1)))
    return page_of(rows, limit=limit, key=lambda node: [node.id])




@dataclass(frozen=True)
class NodeFacts:
    path: str
    timezone: str
    level: str

    @property
    def district_id(self) -> int:
        return int(self.path.strip("/").split("/")[0])


# Every request asks for a few nodes (the caller's community, a board's scope, ...) and nodes
# change rarely: each worker keeps what it read for POINTSVC_PRINCIPAL_CACHE_SECONDS, like
# the principals. A committed change to a node empties this worker's copy at once (the
# identity caches of security.authz); other workers see it within that bound.
NODE_FACTS = "pointsvc.node_facts"
NODE_FACTS_KEPT = 20_000
authz.IDENTITY_CACHES.append(NODE_FACTS)


def node_facts(*, node_id: int) -> NodeFacts | None:
    """Path, time zone and level of a node: read once per session, kept briefly per worker.

    Hot paths (every award, every scope check) ask for the same few nodes many times per
    request; the session's copy ends with the request and is dropped whenever this module
    changes a node.
    """
    cache: dict[int, NodeFacts | None] = db.session.info.setdefault("node_facts", {})
    if node_id not in cache:
        cache[node_id] = _kept_node_facts(node_id)
    return cache[node_id]


def _kept_node_facts(node_id: int) -> NodeFacts | None:
    seconds = current_app.config["PRINCIPAL_CACHE_SECONDS"]
    if seconds <= 0:
        return _read_node_facts(node_id)
    kept: dict[int, tuple[float, NodeFacts]] = current_app.extensions.setdefault(NODE_FACTS, {})
    entry = kept.get(node_id)
    if entry is not None and entry[0] > time.monotonic():
        return entry[1]
    facts = _read_node_facts(node_id)
    if facts is not None:
        if len(kept) >= NODE_FACTS_KEPT:
            kept.clear()
        kept[node_id] = (time.monotonic() + seconds, facts)
    return facts


def _read_node_facts(node_id: int) -> NodeFacts | None:
    row = db.session.execute(
        select(OrgNode.path, OrgNode.timezone, OrgNode.level).where(OrgNode.id == node_id)
    ).first()
    return NodeFacts(*row) if row else None


def _forget_nodes() -> None:
    db.session.info.pop("node_facts", None)
    current_app.extensions.pop(NODE_FACTS, None)
