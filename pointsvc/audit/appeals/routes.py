"""Audit appeals API: residents appeal, reviewers (never the original decider) decide."""

from __future__ import annotations

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from ...common import PageArgs
from ...ledger import idempotency
from ...security.authz import current_principal, policy, require_scope
from . import service
from .schemas import AppealDecisionIn, AppealIn, AppealListArgs, AppealOut, AppealPage

blp = Blueprint("audit_appeals", __name__, url_prefix="/api/v1", description="Audit: appeals")

_KEY_DOC = [{"in": "header", "name": "Idempotency-Key", "required": False,
             "schema": {"type": "string", "maxLength": 128},
             "description": "Optional: a repeat with the same key returns the same appeal"}]


@blp.route("/appeals")
class Appeals(MethodView):
    @blp.arguments(AppealIn)
    @blp.response(201, AppealOut)
    @blp.doc(parameters=_KEY_DOC)
    @policy("appeals.create")
    def post(self, body):
        """Appeal one of my deductions or rejected attendances, within the appeal window."""
        principal = current_principal()

        def work():  # type: ignore[no-untyped-def]
            return service.file_appeal(
                resident_id=principal.resident_id, user_id=principal.user_id,
                kind=body["kind"], transaction_id=body.get("transaction_id"),
                event_id=body.get("event_id"), reason=body["reason"])

        if request.headers.get("Idempotency-Key") is not None:
            return idempotency.respond_once(scope=f"user:{principal.user_id}",
                                            fingerprint_body=body, work=work)
        return service.committed(work)

    @blp.arguments(AppealListArgs, location="query")
    @blp.response(200, AppealPage)
    @policy("appeals.read")
    def get(self, args):
        """Appeals in my subtree, oldest first; filter by status and community."""
        items, next_cursor = service.list_in_scope(
            scope_paths=current_principal().scope_paths("appeals.read"),
            status=args.get("status"), community_id=args.get("community_id"),
            limit=args["limit"], cursor=args["cursor"])
        return {"items": items, "next_cursor": next_cursor}


def _in_scope(appeal_id: int, action: str):  # type: ignore[no-untyped-def]
    appeal = service.get_appeal(appeal_id=appeal_id)
    require_scope(action, service.community_path(appeal))
    return appeal


@blp.route("/appeals/<int:appeal_id>")
class AppealItem(MethodView):
    @blp.response(200, AppealOut)
    @policy("appeals.read")
    def get(self, appeal_id):
        """One appeal (staff in scope)."""
        return service.appeal_json(_in_scope(appeal_id, "appeals.read"))


@blp.route("/appeals/<int:appeal_id>/decision")
class AppealDecision(MethodView):
    @blp.arguments(AppealDecisionIn)
    @blp.response(200, AppealOut)
    @policy("appeals.decide")
    def post(self, body, appeal_id):
        """Uphold (the points come back through the ledger) or dismiss, with a reason.

        The staff member who made the contested decision gets 403 original_decider.
        """
        _in_scope(appeal_id, "appeals.decide")
        return service.decide(appeal_id=appeal_id, actor_user_id=current_principal().user_id,
                              outcome=body["outcome"], reason=body["reason"])


@blp.route("/me/appeals")
class MyAppeals(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, AppealPage)
    @policy("resident.self")
    def get(self, args):
        """My appeals, newest first, with their outcome and the reversal or credit."""
        items, next_cursor = service.list_mine(
            resident_id=current_principal().resident_id, limit=args["limit"],
            cursor=args["cursor"])
        return {"items": items, "next_cursor": next_cursor}
