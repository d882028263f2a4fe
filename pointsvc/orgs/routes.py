"""/api/v1/orgs: the organisation tree."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from ..security.authz import current_principal, policy, require_scope
from . import service
from .schemas import (
    OrgListArgs,
    OrgNodeCreate,
    OrgNodeMove,
    OrgNodeOut,
    OrgNodePage,
    OrgNodeUpdate,
)

blp = Blueprint("orgs", __name__, url_prefix="/api/v1/orgs", description="Organisation tree")


@blp.route("")
class OrgNodes(MethodView):
    @blp.arguments(OrgListArgs, location="query")
    @blp.response(200, OrgNodePage)
    @policy("orgs.read")
    def get(self, args):
        """Nodes in the caller's scope (filter by parent or level)."""
        items, next_cursor = service.list_nodes(
            scope_paths=current_principal().scope_paths("orgs.read"),
            limit=args["limit"],
            cursor=args["cursor"],
            parent_id=args.get("parent_id"),
            level=args.get("level"),
        )
        return {"items": items, "next_cursor": next_cursor}

    @blp.arguments(OrgNodeCreate)
    @blp.response(201, OrgNodeOut)
    @policy("orgs.manage")
    def post(self, body):
        """Create a node under a parent the caller administers."""
        parent = service.get_node(node_id=body["parent_id"])
        require_scope("orgs.manage", parent.path)
        return service.create_child(
            parent_id=parent.id,
            name_zh=body["name_zh"],
            name_en=body["name_en"],
            timezone=body["timezone"],
        )


@blp.route("/<int:node_id>")
class OrgNodeItem(MethodView):
    @blp.response(200, OrgNodeOut)
    @policy("orgs.read")
    def get(self, node_id):
        """One node."""
        node = service.get_node(node_id=node_id)
        require_scope("orgs.read", node.path)
        return node

    @blp.arguments(OrgNodeUpdate)
    @blp.response(200, OrgNodeOut)
    @policy("orgs.manage")
    def patch(self, body, node_id):
        """Rename a node or change its time zone."""
        require_scope("orgs.manage", service.get_node(node_id=node_id).path)
        return service.update_node(node_id=node_id, changes=body)

    @blp.response(204)
    @policy("orgs.manage")
    def delete(self, node_id):
        """Delete a node that holds nothing (else 409 node_not_empty)."""
        require_scope("orgs.manage", service.get_node(node_id=node_id).path)
        service.delete_node(node_id=node_id)


@blp.route("/<int:node_id>/subtree")
class OrgSubtree(MethodView):
    @blp.arguments(OrgListArgs, location="query")
    @blp.response(200, OrgNodePage)
    @policy("orgs.read")
    def get(self, args, node_id):
        """The node and everything below it."""
        node = service.get_node(node_id=node_id)
        require_scope("orgs.read", node.path)
        items, next_cursor = service.list_nodes(
            scope_paths=current_principal().scope_paths("orgs.read"),
            limit=args["limit"],
            cursor=args["cursor"],
            level=args.get("level"),
            under_path=node.path,
        )
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/<int:node_id>/move")
class OrgNodeMoveView(MethodView):
    @blp.arguments(OrgNodeMove)
    @blp.response(200, OrgNodeOut)
    @policy("orgs.manage")
    def post(self, body, node_id):
        """Move an empty node under another parent (both in the caller's scope)."""
        require_scope("orgs.manage", service.get_node(node_id=node_id).path)
        require_scope("orgs.manage", service.get_node(node_id=body["parent_id"]).path)
        return service.move_node(node_id=node_id, new_parent_id=body["parent_id"])
