"""/api/v1/merchants: applications, profiles, the status lifecycle and operators."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from ..common import PageArgs
from ..extensions import client_address, limiter
from ..security.authz import (
    PUBLIC,
    current_principal,
    policy,
    require_owner_or_scope,
    require_scope,
)
from . import service
from .schemas import (
    ApplicationReceipt,
    MerchantApplication,
    MerchantCreate,
    MerchantListArgs,
    MerchantOut,
    MerchantPage,
    MerchantUpdate,
    OperatorCreate,
    OperatorOut,
    OperatorPage,
    ReasonOptional,
    ReasonRequired,
)

blp = Blueprint(
    "merchants", __name__, url_prefix="/api/v1/merchants", description="Merchants and operators"
)

DEFAULT_APPLICATION_LIMIT = "10 per hour"


def _application_limit() -> str:
    return current_app.config.get("MERCHANT_APPLICATION_RATE_LIMIT", DEFAULT_APPLICATION_LIMIT)


@blp.route("/applications")
class MerchantApplications(MethodView):
    # Anyone may apply, so every attempt (valid or not) counts against the caller's address.
    decorators = [limiter.limit(_application_limit, key_func=client_address)]

    @blp.arguments(MerchantApplication)
    @blp.response(201, ApplicationReceipt)
    @policy(PUBLIC)
    def post(self, body):
        """Apply to become a partner merchant; staff covering the node approve or reject it."""
        merchant = service.apply(**body)
        return {"id": merchant.id, "status": merchant.status}


@blp.route("")
class Merchants(MethodView):
    @blp.arguments(MerchantListArgs, location="query")
    @blp.response(200, MerchantPage)
    @policy("merchants.view")
    def get(self, args):
        """Merchants serving nodes in the caller's scope; an operator sees only their own."""
        principal = current_principal()
        scope = principal.scope_paths("merchants.read")
        under_path = None
        if args.get("org_node_id") is not None:
            node = service.node_for_input(node_id=args["org_node_id"])
            if scope:
                require_scope("merchants.read", node.path)
            under_path = node.path
        records, next_cursor = service.list_merchants(
            scope_paths=scope,
            own_merchant_id=principal.merchant_id,
            limit=args["limit"],
            cursor=args["cursor"],
            status=args.get("status"),
            category=args.get("category"),
            under_path=under_path,
        )
        items = [service.present_merchant(record=r, principal=principal) for r in records]
        return {"items": items, "next_cursor": next_cursor}

    @blp.arguments(MerchantCreate)
    @blp.response(201, MerchantOut)
    @policy("merchants.manage")
    def post(self, body):
        """Put a merchant on the books directly (active at once)."""
        principal = current_principal()
        node = service.serving_node_for_input(node_id=body["org_node_id"])
        require_scope("merchants.manage", node.path)
        record = service.create_merchant(**body, created_by=principal.user_id)
        return service.present_merchant(record=record, principal=principal)


@blp.route("/<int:merchant_id>")
class MerchantItem(MethodView):
    @blp.response(200, MerchantOut)
    @policy("merchants.view")
    def get(self, merchant_id):
        """One merchant (staff covering its node, or its own operator)."""
        record = service.get_merchant(merchant_id=merchant_id)
        require_owner_or_scope("merchants.read", record.node_path, merchant_id=merchant_id)
        return service.present_merchant(record=record, principal=current_principal())

    @blp.arguments(MerchantUpdate)
    @blp.response(200, MerchantOut)
    @policy("merchants.manage")
    def patch(self, body, merchant_id):
        """Edit the profile; moving it to another node needs scope over both nodes."""
        require_scope("merchants.manage", service.get_merchant(merchant_id=merchant_id).node_path)
        if "org_node_id" in body:
            node = service.serving_node_for_input(node_id=body["org_node_id"])
            require_scope("merchants.manage", node.path)
        record = service.update_merchant(merchant_id=merchant_id, changes=body)
        return service.present_merchant(record=record, principal=current_principal())


def _change_status(merchant_id: int, action: str, reason: str | None) -> dict:
    require_scope("merchants.manage", service.get_merchant(merchant_id=merchant_id).node_path)
    principal = current_principal()
    record = service.change_status(
        merchant_id=merchant_id, action=action, actor_id=principal.user_id, reason=reason
    )
    return service.present_merchant(record=record, principal=principal)


@blp.route("/<int:merchant_id>/approve")
class MerchantApprove(MethodView):
    @blp.arguments(ReasonOptional)
    @blp.response(200, MerchantOut)
    @policy("merchants.manage")
    def post(self, body, merchant_id):
        """pending → active (else 409 invalid_state)."""
        return _change_status(merchant_id, "approve", body["reason"])


@blp.route("/<int:merchant_id>/reject")
class MerchantReject(MethodView):
    @blp.arguments(ReasonRequired)
    @blp.response(200, MerchantOut)
    @policy("merchants.manage")
    def post(self, body, merchant_id):
        """pending → rejected, with the reason (else 409 invalid_state)."""
        return _change_status(merchant_id, "reject", body["reason"])


@blp.route("/<int:merchant_id>/suspend")
class MerchantSuspend(MethodView):
    @blp.arguments(ReasonRequired)
    @blp.response(200, MerchantOut)
    @policy("merchants.manage")
    def post(self, body, merchant_id):
        """active → suspended, with the reason; it can no longer redeem (else 409)."""
        return _change_status(merchant_id, "suspend", body["reason"])


@blp.route("/<int:merchant_id>/reinstate")
class MerchantReinstate(MethodView):
    @blp.arguments(ReasonOptional)
    @blp.response(200, MerchantOut)
    @policy("merchants.manage")
    def post(self, body, merchant_id):
        """suspended → active (else 409 invalid_state)."""
        return _change_status(merchant_id, "reinstate", body["reason"])


@blp.route("/<int:merchant_id>/operators")
class MerchantOperators(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, OperatorPage)
    @policy("merchants.read")
    def get(self, args, merchant_id):
        """The merchant's operator logins."""
        record = service.get_merchant(merchant_id=merchant_id)
        require_scope("merchants.read", record.node_path)
        principal = current_principal()
        operators, next_cursor = service.list_operators(
            merchant_id=merchant_id, limit=args["limit"], cursor=args["cursor"]
        )
        items = [
            service.present_operator(record=o, node_path=record.node_path, principal=principal)
            for o in operators
        ]
        return {"items": items, "next_cursor": next_cursor}

    @blp.arguments(OperatorCreate)
    @blp.response(201, OperatorOut)
    @policy("merchants.manage")
    def post(self, body, merchant_id):
        """Create a login that operates this merchant (a login operates one merchant only)."""
        record = service.get_merchant(merchant_id=merchant_id)
        require_scope("merchants.manage", record.node_path)
        operator = service.create_operator(merchant_id=merchant_id, **body)
        return service.present_operator(
            record=operator, node_path=record.node_path, principal=current_principal()
        )


@blp.route("/<int:merchant_id>/operators/<int:user_id>")
class MerchantOperatorItem(MethodView):
    @blp.response(204)
    @policy("merchants.manage")
    def delete(self, merchant_id, user_id):
        """Detach an operator; a login that was only an operator is disabled and signed out."""
        require_scope("merchants.manage", service.get_merchant(merchant_id=merchant_id).node_path)
        service.remove_operator(merchant_id=merchant_id, user_id=user_id)
