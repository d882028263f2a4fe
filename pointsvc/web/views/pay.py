"""/M/<token>: the merchant's sticker, opened by a resident's phone camera, and paying there.

The merchant's name on every step is the one the server has for the merchant the code
names — the resident sees whom they really pay, whatever the sticker says.
"""

from __future__ import annotations

from flask import render_template, request

from ...ledger import reading
from ...merchants.service import get_merchant
from ...redemption import service as redemption
from ...security.authz import current_principal
from .. import actions
from ..forms import Form, new_form_key, read_spend
from ..messages import explain
from ..session import login_required
from . import bp

OFFER_PAGE = 200


def _merchant(token: str) -> dict:
    """The merchant the code names (invalid / revoked codes raise their own errors)."""
    merchant_id = redemption.read_merchant_code(text=token)
    merchant = get_merchant(merchant_id=merchant_id).merchant
    return {"id": merchant.id, "name": merchant.name, "status": merchant.status}


def _offers(merchant_id: int) -> list[dict]:
    """The offers of this merchant the resident may redeem now (as GET /api/v1/offers)."""
    items, _cursor = redemption.offers_for_resident(
        community_path=current_principal().community_path, limit=OFFER_PAGE, cursor=None,
        now=actions._now())
    return [item for item in items if item["merchant_id"] == merchant_id]


def _spendable() -> int:
    principal = current_principal()
    account = reading.find_account(kind="resident", owner_id=principal.resident_id)
    return reading.account_json(account)["spendable"]


def _choose(token: str, form: Form, status: int = 200):  # type: ignore[no-untyped-def]
    merchant = _merchant(token)
    return render_template("web/pay/choose.html", token=token, merchant=merchant,
                           offers=_offers(merchant["id"]), spendable=_spendable(),
                           form=form), status


@bp.get("/M/<token>")
@login_required("resident.self")
def merchant_link(token: str):
    return _choose(token, Form({}))


@bp.post("/M/<token>/confirm")
@login_required("resident.self")
def pay_confirm(token: str):
    form = Form(request.form)
    spend = read_spend(form)
    if spend is None:
        return _choose(token, form, 422)
    merchant = _merchant(token)
    offer = None
    if spend.offer_id is not None:
        offer = next((o for o in _offers(merchant["id"]) if o["id"] == spend.offer_id), None)
        if offer is None:
            form.errors["offer_id"] = explain("offer_not_available")
            return _choose(token, form, 422)
    total = spend.points if offer is None else offer["points_price"] * (spend.quantity or 1)
    return render_template("web/pay/confirm.html", token=token, merchant=merchant, offer=offer,
                           spend=spend, total=total, spendable=_spendable(),
                           key=new_form_key())


@bp.post("/M/<token>/pay")
@login_required("resident.self")
def pay(token: str):
    form = Form(request.form)
    spend = read_spend(form)
    if spend is None:
        return _choose(token, form, 422)
    receipt = actions.pay_merchant(key=form.value("key"), merchant_code=token,
                                   offer_id=spend.offer_id, quantity=spend.quantity,
                                   points=spend.points)
    return render_template("web/pay/receipt.html", receipt=receipt)
