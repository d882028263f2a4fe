"""Offers, pay codes, merchant codes, redemptions and holds, payments, refunds, settlement."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app, jsonify, make_response, request
from flask.views import MethodView
from flask_smorest import Blueprint

from ..codes import render
from ..common import PageArgs
from ..errors import PROBLEM_MIMETYPE, DomainError
from ..extensions import db
from ..ledger import idempotency
from ..merchants.service import get_merchant
from ..security.authz import (
    AUTHENTICATED,
    current_principal,
    node_path_of,
    policy,
    require_owner_or_scope,
    require_scope,
)
from . import service, sweeper
from .schemas import (
    CaptureIn,
    CodeFormatArgs,
    MerchantCodeOut,
    MyRedemptionArgs,
    OfferIn,
    OfferOut,
    OfferPage,
    OfferPatch,
    PayCodeOut,
    PaymentIn,
    RedemptionIn,
    RedemptionListArgs,
    RedemptionOut,
    RedemptionPage,
    RefundIn,
    RefundResult,
    SettlementIn,
    SettlementOut,
    SettlementPage,
    SpendingPolicyIn,
    SpendingPolicyOut,
    StatementArgs,
    StatementOut,
    VoidIn,
)

blp = Blueprint("redemption", __name__, url_prefix="/api/v1",
                description="Offers, pay codes, redemptions, refunds and settlement")
# Serving processes release expired holds in the background (see sweeper.py).
blp.record_once(lambda state: sweeper.install(state.app))

IDEMPOTENCY_DOC = [{"in": "header", "name": "Idempotency-Key", "required": True,
                    "schema": {"type": "string", "maxLength": 128}}]
IMAGE_DOC = {"200": {"description": "JSON, or the QR code with format=png or svg",
                     "content": {"image/png": {}, "image/svg+xml": {}}}}


def _now() -> datetime | None:
    """The service's clock; tests put a callable under REDEMPTION_CLOCK instead of sleeping."""
    override = current_app.config.get("REDEMPTION_CLOCK")
    return override() if override else None


def _json(status: int, body: Any, *, replayed: bool = False):  # type: ignore[no-untyped-def]
    response = make_response(jsonify(body), status)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _once(fingerprint_body: Any, work):  # type: ignore[no-untyped-def]
    """Run a points-moving request at most once per caller and Idempotency-Key."""
    return idempotency.respond_once(scope=f"user:{current_principal().user_id}",
                                    fingerprint_body=fingerprint_body, work=work)


def _image(text: str, extension: str, *, cache: bool):  # type: ignore[no-untyped-def]
    if extension == "png":
        response = make_response(render.png(text))
        response.mimetype = "image/png"
    else:
        response = make_response(render.svg(text))
        response.mimetype = "image/svg+xml"
    response.headers["Cache-Control"] = "private, max-age=300" if cache else "no-store"
    return response


def _merchant_path(merchant_id: int) -> str:
    return get_merchant(merchant_id=merchant_id).node_path


def _own_redemption(redemption_id: int):  # type: ignore[no-untyped-def]
    """The redemption, if the caller operates its merchant (only operators take payments)."""
    redemption = service.get_redemption(redemption_id=redemption_id)
    require_owner_or_scope("merchant.redeem", _merchant_path(redemption.merchant_id),
                           merchant_id=redemption.merchant_id)
    return redemption


# --- offers -------------------------------------------------------------------------------


@blp.route("/offers")
class Offers(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, OfferPage)
    @policy("resident.self")
    def get(self, args):
        """Offers the resident can redeem now (on their community's branch, merchant active)."""
        items, next_cursor = service.offers_for_resident(
            community_path=current_principal().community_path, limit=args["limit"],
            cursor=args["cursor"], now=_now())
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/merchants/<int:merchant_id>/offers")
class MerchantOffers(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, OfferPage)
    @policy("merchants.view")
    def get(self, args, merchant_id):
        """Every offer of a merchant (its operators, or staff covering it)."""
        require_owner_or_scope("merchants.read", _merchant_path(merchant_id),
                               merchant_id=merchant_id)
        items, next_cursor = service.offers_of_merchant(
            merchant_id=merchant_id, limit=args["limit"], cursor=args["cursor"])
        return {"items": items, "next_cursor": next_cursor}

    @blp.arguments(OfferIn)
    @blp.response(201, OfferOut)
    @policy("offers.manage")
    def post(self, body, merchant_id):
        """List an item for points (stock null = unlimited; per-resident limit per period)."""
        require_owner_or_scope("merchants.manage", _merchant_path(merchant_id),
                               merchant_id=merchant_id)
        offer = service.create_offer(merchant_id=merchant_id, values=body,
                                     actor_user_id=current_principal().user_id)
        return service.offer_json(offer)


@blp.route("/offers/<int:offer_id>")
class OfferItem(MethodView):
    @blp.response(200, OfferOut)
    @policy(AUTHENTICATED)
    def get(self, offer_id):
        """One offer: to residents it is offered to, its merchant's operators, staff in scope."""
        offer = service.get_offer(offer_id=offer_id)
        principal = current_principal()
        offered_here = principal.community_path is not None and service.on_branch(
            offer_node_id=offer.org_node_id, community_path=principal.community_path)
        if not offered_here:
            require_owner_or_scope("merchants.read", _merchant_path(offer.merchant_id),
                                   merchant_id=offer.merchant_id)
        return service.offer_json(offer)

    @blp.arguments(OfferPatch)
    @blp.response(200, OfferOut)
    @policy("offers.manage")
    def patch(self, body, offer_id):
        """Edit an offer: price, stock, limits, window, node; status withdraws it."""
        offer = service.get_offer(offer_id=offer_id)
        require_owner_or_scope("merchants.manage", _merchant_path(offer.merchant_id),
                               merchant_id=offer.merchant_id)
        return service.offer_json(service.update_offer(offer_id=offer_id, changes=body))


# --- pay codes ----------------------------------------------------------------------------


@blp.route("/me/paycode")
class MyPayCode(MethodView):
    @blp.arguments(CodeFormatArgs, location="query")
    @blp.response(200, PayCodeOut)
    @blp.doc(responses=IMAGE_DOC)
    @policy("resident.self")
    def get(self, args):
        """A new one-time pay code, valid 60 s (format=png|svg: as a QR image, token in
        X-Pay-Code); show it to the merchant's scanner."""
        code = service.issue_paycode(resident_id=current_principal().resident_id, now=_now())
        if args["format"] == "json":
            response = _json(200, code)
            response.headers["Cache-Control"] = "no-store"
            return response
        response = _image(code["token"], args["format"], cache=False)
        response.headers["X-Pay-Code"] = code["token"]
        response.headers["X-Pay-Code-Expires"] = code["expires_at"]
        return response


# --- merchant codes -----------------------------------------------------------------------


@blp.route("/merchants/<int:merchant_id>/code")
class MerchantCode(MethodView):
    @blp.arguments(CodeFormatArgs, location="query")
    @blp.response(200, MerchantCodeOut)
    @blp.doc(responses=IMAGE_DOC)
    @policy("merchants.view")
    def get(self, args, merchant_id):
        """The merchant's printable code (token and link) for residents to scan and pay;
        format=png|svg gives the QR image of the link for the sticker."""
        require_owner_or_scope("merchants.read", _merchant_path(merchant_id),
                               merchant_id=merchant_id)
        code = service.merchant_code(merchant_id=merchant_id)
        if args["format"] == "json":
            return code
        return _image(code["link"], args["format"], cache=True)


@blp.route("/merchants/<int:merchant_id>/code/reissue")
class MerchantCodeReissue(MethodView):
    @blp.response(201, MerchantCodeOut)
    @policy("offers.manage")
    def post(self, merchant_id):
        """Print a new code: the version goes up and every older sticker is revoked."""
        require_owner_or_scope("merchants.manage", _merchant_path(merchant_id),
                               merchant_id=merchant_id)
        return service.reissue_merchant_code(merchant_id=merchant_id,
                                             actor_user_id=current_principal().user_id)


# --- redemptions --------------------------------------------------------------------------


@blp.route("/redemptions")
class Redemptions(MethodView):
    @blp.arguments(RedemptionIn)
    @blp.response(201, RedemptionOut)
    @blp.doc(parameters=IDEMPOTENCY_DOC)
    @policy("merchant.redeem")
    def post(self, body):
        """Take a payment: scan the resident's pay code; spend (or hold) their points.

        The pay code is spent in the same database transaction as the payment and the
        Idempotency-Key: a second request with the same key (a till retrying, or racing
        itself) waits for the first and answers with its receipt. A refusal after the code
        was read (out of stock, insufficient points, ...) is stored under the key too."""
        principal = current_principal()
        now = _now()
        spend = service.SpendRequest(
            channel="paycode", resident_id=0, merchant_id=principal.merchant_id,
            actor_user_id=principal.user_id, offer_id=body.get("offer_id"),
            quantity=body.get("quantity"), points=body.get("points"),
            order_ref=body.get("order_ref"), capture=body["capture"])
        key = idempotency.key_from_request()
        try:
            result, replayed = idempotency.run_once(
                scope=f"user:{principal.user_id}", key=key,
                fingerprint=idempotency.request_fingerprint(route=request.path, body=body),
                work=lambda: service.redeem_paycode(text=body["pay_code"], spend=spend,
                                                    now=now))
        except DomainError:
            raise
        except Exception:
            # A crash (not a refusal) rolled everything back: the till saw the code, so it
            # must not be good again.
            db.session.rollback()
            service.burn_paycode(text=body["pay_code"], actor_user_id=principal.user_id,
                                 now=now)
            raise
        response = _json(result.status, result.body, replayed=replayed)
        if result.status >= 400:
            response.mimetype = PROBLEM_MIMETYPE
        return response

    @blp.arguments(RedemptionListArgs, location="query")
    @blp.response(200, RedemptionPage)
    @policy("merchants.view")
    def get(self, args):
        """Redemptions newest first: an operator's merchant's, or merchants in staff scope."""
        principal = current_principal()
        scope = principal.scope_paths("merchants.read")
        merchant_ids = None
        if args.get("merchant_id") is not None:
            require_owner_or_scope("merchants.read", _merchant_path(args["merchant_id"]),
                                   merchant_id=args["merchant_id"])
            merchant_ids = [args["merchant_id"]]
        elif not scope:
            merchant_ids = [principal.merchant_id]
        items, next_cursor = service.list_redemptions(
            limit=args["limit"], cursor=args["cursor"], merchant_ids=merchant_ids,
            scope_paths=scope if merchant_ids is None else None, status=args.get("status"))
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/redemptions/<int:redemption_id>")
class RedemptionItem(MethodView):
    @blp.response(200, RedemptionOut)
    @policy(AUTHENTICATED)
    def get(self, redemption_id):
        """A redemption with its refunds: its resident, its merchant, or staff in scope."""
        redemption = service.get_redemption(redemption_id=redemption_id)
        require_owner_or_scope("merchants.read", _merchant_path(redemption.merchant_id),
                               resident_id=redemption.resident_id,
                               merchant_id=redemption.merchant_id)
        service.expire_holds(now=_now(), redemption_id=redemption_id)
        return service.redemption_detail(redemption_id=redemption_id)


@blp.route("/redemptions/<int:redemption_id>/capture")
class RedemptionCapture(MethodView):
    @blp.arguments(CaptureIn)
    @blp.response(200, RedemptionOut)
    @blp.doc(parameters=IDEMPOTENCY_DOC)
    @policy("merchant.redeem")
    def post(self, body, redemption_id):
        """Spend a hold: up to the held points; the rest goes back to the resident."""
        _own_redemption(redemption_id)
        now = _now()
        service.expire_holds(now=now, redemption_id=redemption_id)
        actor = current_principal().user_id
        return _once({"redemption_id": redemption_id, **body},
                     lambda: service.capture(redemption_id=redemption_id,
                                             points=body.get("points"), actor_user_id=actor,
                                             now=now))


@blp.route("/redemptions/<int:redemption_id>/void")
class RedemptionVoid(MethodView):
    @blp.arguments(VoidIn)
    @blp.response(200, RedemptionOut)
    @blp.doc(parameters=IDEMPOTENCY_DOC)
    @policy("merchant.redeem")
    def post(self, body, redemption_id):
        """Cancel a hold: the points, stock and limits it reserved come back."""
        _own_redemption(redemption_id)
        now = _now()
        service.expire_holds(now=now, redemption_id=redemption_id)
        return _once({"redemption_id": redemption_id},
                     lambda: service.void(redemption_id=redemption_id, now=now))


@blp.route("/redemptions/<int:redemption_id>/refunds")
class RedemptionRefunds(MethodView):
    @blp.arguments(RefundIn)
    @blp.response(201, RefundResult)
    @blp.doc(parameters=IDEMPOTENCY_DOC)
    @policy("merchant.redeem")
    def post(self, body, redemption_id):
        """Refund part or all of a redemption (within the refund window)."""
        _own_redemption(redemption_id)
        actor = current_principal().user_id
        now = _now()
        return _once({"redemption_id": redemption_id, **body},
                     lambda: service.refund(redemption_id=redemption_id, points=body["points"],
                                            reason=body["reason"], actor_user_id=actor,
                                            now=now))


@blp.route("/me/redemptions")
class MyRedemptions(MethodView):
    @blp.arguments(MyRedemptionArgs, location="query")
    @blp.response(200, RedemptionPage)
    @policy("resident.self")
    def get(self, args):
        """The resident's own redemptions, newest first."""
        resident_id = current_principal().resident_id
        service.expire_holds(now=_now(), resident_id=resident_id)
        items, next_cursor = service.list_redemptions(
            limit=args["limit"], cursor=args["cursor"], resident_id=resident_id,
            status=args.get("status"))
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/payments")
class Payments(MethodView):
    @blp.arguments(PaymentIn)
    @blp.response(201, RedemptionOut)
    @blp.doc(parameters=IDEMPOTENCY_DOC)
    @policy("resident.self")
    def post(self, body):
        """Pay at a merchant by scanning its printed code (token or link)."""
        principal = current_principal()
        now = _now()

        def work() -> tuple[int, dict[str, Any]]:
            merchant_id = service.read_merchant_code(text=body["merchant_code"])
            return service.redeem(request=service.SpendRequest(
                channel="merchant_code", resident_id=principal.resident_id,
                merchant_id=merchant_id, actor_user_id=principal.user_id,
                offer_id=body.get("offer_id"), quantity=body.get("quantity"),
                points=body.get("points")), now=now)

        return _once(body, work)


# --- settlement and statements --------------------------------------------------------------


@blp.route("/merchants/<int:merchant_id>/settlements")
class MerchantSettlements(MethodView):
    @blp.arguments(SettlementIn)
    @blp.response(201, SettlementOut)
    @blp.doc(parameters=IDEMPOTENCY_DOC)
    @policy("merchants.settle")
    def post(self, body, merchant_id):
        """Pay a merchant out: its points move to the district's settlement account."""
        require_scope("merchants.settle", _merchant_path(merchant_id))
        actor = current_principal().user_id
        return _once({"merchant_id": merchant_id, **body},
                     lambda: service.settle(merchant_id=merchant_id, points=body.get("points"),
                                            payment_reference=body["payment_reference"],
                                            actor_user_id=actor))

    @blp.arguments(PageArgs, location="query")
    @blp.response(200, SettlementPage)
    @policy("merchants.view")
    def get(self, args, merchant_id):
        """The merchant's settlements, newest first."""
        require_owner_or_scope("merchants.read", _merchant_path(merchant_id),
                               merchant_id=merchant_id)
        items, next_cursor = service.list_settlements(
            merchant_id=merchant_id, limit=args["limit"], cursor=args["cursor"])
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/merchants/<int:merchant_id>/statements")
class MerchantStatements(MethodView):
    @blp.arguments(StatementArgs, location="query")
    @blp.response(200, StatementOut)
    @blp.doc(responses={"200": {"description": "JSON, or CSV (UTF-8 with BOM) with format=csv",
                                "content": {"text/csv": {}}}})
    @policy("merchants.view")
    def get(self, args, merchant_id):
        """A monthly statement: opening, redemptions, refunds, settlements, closing."""
        require_owner_or_scope("merchants.read", _merchant_path(merchant_id),
                               merchant_id=merchant_id)
        body = service.statement(merchant_id=merchant_id, month=args["month"])
        if args["format"] == "csv":
            response = make_response(service.statement_csv(body))
            response.mimetype = "text/csv"
            response.charset = "utf-8"
            response.headers["Content-Disposition"] = (
                f'attachment; filename="merchant-{merchant_id}-{args["month"]}.csv"')
            return response
        return body


# --- community spending policy ---------------------------------------------------------------


@blp.route("/communities/<int:community_id>/redemption-policy")
class SpendingPolicy(MethodView):
    @blp.response(200, SpendingPolicyOut)
    @policy("ledger.read")
    def get(self, community_id):
        """The community's daily spending limit per resident."""
        require_scope("ledger.read", node_path_of(community_id))
        return {"community_id": community_id,
                "daily_limit": service.daily_limit(community_id=community_id)}

    @blp.arguments(SpendingPolicyIn)
    @blp.response(200, SpendingPolicyOut)
    @policy("ledger.policy")
    def put(self, body, community_id):
        """Set how many points a resident of the community may spend per day."""
        require_scope("ledger.policy", node_path_of(community_id))
        limit = service.set_daily_limit(community_id=community_id, limit=body["daily_limit"],
                                        actor_user_id=current_principal().user_id)
        return {"community_id": community_id, "daily_limit": limit}

