"""Audit anomalies API: GET /api/v1/audit/anomalies over the caller's subtree."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from ...errors import wants_english
from ...security.authz import current_principal, node_path_of, policy, require_scope
from . import service
from .schemas import AnomalyArgs, AnomalyReportOut

blp = Blueprint("audit_anomalies", __name__, url_prefix="/api/v1", description="Audit: anomalies")

ACTION = "audit.anomalies"


@blp.route("/audit/anomalies")
class Anomalies(MethodView):
    @blp.arguments(AnomalyArgs, location="query")
    @blp.response(200, AnomalyReportOut)
    @policy(ACTION)
    def get(self, args):
        """Anomalies in a window (default: the last 30 days), each with its evidence."""
        start, end = service.resolve_window(start=args["start"], end=args["end"])
        if args["node_id"] is not None:
            path = node_path_of(args["node_id"])
            require_scope(ACTION, path)
            paths = [path]
        else:
            paths = current_principal().scope_paths(ACTION)
        result = service.report(start=start, end=end, paths=paths, english=wants_english(),
                                detectors=args["detector"] or service.DETECTORS)
        return {**result, "node_id": args["node_id"]}
