"""Audit search API: search the ledger in one's subtree, and export any search."""

from __future__ import annotations

from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from ...errors import wants_english
from ...security.authz import current_principal, node_path_of, policy, require_scope
from . import service
from .schemas import AuditTransactionPage, ExportArgs, SearchArgs

blp = Blueprint("audit_search", __name__, url_prefix="/api/v1", description="Audit: search")


def _roots(action: str, node_id: int | None) -> list[str]:
    """The subtrees searched: the node's (which must be in scope) or all the caller's."""
    if node_id is not None:
        path = node_path_of(node_id)
        require_scope(action, path)
        return [path]
    return current_principal().scope_paths(action)


def _may_read_memos(roots: list[str]) -> bool:
    principal = current_principal()
    return all(principal.covers("ledger.read", root) for root in roots)


@blp.route("/audit/transactions")
class AuditTransactions(MethodView):
    @blp.arguments(SearchArgs, location="query")
    @blp.response(200, AuditTransactionPage)
    @policy("audit.search")
    def get(self, args):
        """Search the ledger of your subtree: newest first, keyset pages, totals of the set."""
        roots = _roots("audit.search", args.get("node_id"))
        page = service.search(
            filters=service.Filters.from_args(args), roots=roots, limit=args["limit"],
            cursor=args["cursor"], with_totals=args["totals"],
            with_memos=_may_read_memos(roots), english=wants_english(),
        )
        # The service builds exactly the documented shape from plain values; dumping 200
        # nested items through marshmallow again cost more than the SQL (profiled).
        return jsonify(page)


@blp.route("/audit/transactions/export")
class AuditTransactionsExport(MethodView):
    @blp.arguments(ExportArgs, location="query")
    @blp.response(200, description="text/csv (UTF-8 with BOM) or application/x-ndjson, "
                                    "streamed; one row per transaction, oldest first")
    @policy("audit.export")
    def get(self, args):
        """Export a search as CSV (opens in Excel) or NDJSON, streamed; logged as audit.export."""
        roots = _roots("audit.export", args.get("node_id"))
        return service.logged_export(
            filters=service.Filters.from_args(args), roots=roots,
            export_format=args["format"], with_memos=_may_read_memos(roots),
            actor_user_id=current_principal().user_id, node_id=args.get("node_id"))
