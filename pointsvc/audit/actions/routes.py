"""/api/v1/audit/actions: search and export the staff action log (auditors and admins)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from ...common import decode_id_cursor
from ...security.authz import current_principal, node_path_of, policy, require_scope
from ..streaming import export_response
from . import service
from .schemas import ActionExportArgs, ActionListArgs, ActionPage

blp = Blueprint("audit_actions", __name__, url_prefix="/api/v1", description="Audit: actions")

SCOPE_ACTION = "audit.actions"


def _filter(args: dict[str, Any]) -> tuple[service.ActionFilter, int | None]:
    """The caller's filter, bounded by their subtree; and the node asked for, if any."""
    paths = current_principal().scope_paths(SCOPE_ACTION)
    node_path = None
    if args.get("node_id") is not None:
        node_path = node_path_of(args["node_id"])
        require_scope(SCOPE_ACTION, node_path)
    flt = service.ActionFilter(
        scope_paths=tuple(paths),
        # Asking for a node narrows to that subtree, which rows without a node are not in.
        root_scope=node_path is None and service.is_root_scope(paths),
        actor_user_id=args.get("actor"), action=args.get("action"),
        target_type=args.get("target_type"), target_id=args.get("target_id"),
        node_path=node_path, start=args.get("start"), end=args.get("end"),
    )
    return flt, args.get("node_id")


@blp.route("/audit/actions")
class Actions(MethodView):
    @blp.arguments(ActionListArgs, location="query")
    @blp.response(200, ActionPage)
    @policy(SCOPE_ACTION)
    def get(self, args):
        """Staff actions in the caller's subtree, newest first, keyset-paginated."""
        flt, _ = _filter(args)
        before_id = decode_id_cursor(args["cursor"]) if args["cursor"] else None
        items, next_cursor = service.search(flt=flt, limit=args["limit"], before_id=before_id)
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/audit/actions/export")
class ActionsExport(MethodView):
    @blp.arguments(ActionExportArgs, location="query")
    @blp.response(200, content_type="text/csv")
    @blp.alt_response(200, content_type="application/x-ndjson", success=True)
    @policy("audit.export")
    def get(self, args):
        """The same search as a streamed CSV (UTF-8 with BOM) or NDJSON file; logged."""
        flt, node_id = _filter(args)
        principal = current_principal()
        paths = principal.scope_paths(SCOPE_ACTION)
        # Logged on the node asked for, else on the caller's highest node, so the export is
        # visible to whoever oversees the exporter.
        home = node_id or (service.node_id_of(min(paths, key=len)) if paths else None)
        service.record_export(actor_user_id=principal.user_id, flt=flt,
                              export_format=args["format"], node_id=home)
        return export_response(export_format=args["format"], columns=service.COLUMNS,
                               rows=service.export_rows(flt=flt), filename="audit-actions")
