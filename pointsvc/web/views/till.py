"""The merchant's till: scan a pay code, confirm, receipt; today's takings, refunds, statements."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import make_response, render_template, request

from ...codes import PAYCODE, CodeError, parse_code
from ...merchants.service import get_merchant
from ...redemption import service as redemption
from ...redemption.schemas import MAX_POINTS
from ...security.authz import current_principal, require_owner_or_scope
from .. import actions
from ..forms import Form, new_form_key, read_spend
from ..i18n import select_timezone
from ..messages import explain
from ..reads import todays_redemptions
from ..session import login_required
from . import bp

OFFER_PAGE = 200
MAX_CODE_LENGTH = 400  # as RedemptionIn.pay_code


def _merchant() -> dict:
    merchant = get_merchant(merchant_id=current_principal().merchant_id).merchant
    return {"id": merchant.id, "name": merchant.name, "status": merchant.status}


def _offers() -> list[dict]:
    """The merchant's active offers (withdrawn ones stay off the till)."""
    items, _cursor = redemption.offers_of_merchant(
        merchant_id=current_principal().merchant_id, limit=OFFER_PAGE, cursor=None)
    return [item for item in items if item["status"] == "active"]


def _till(form: Form, status: int = 200):  # type: ignore[no-untyped-def]
    return render_template("web/till/scan.html", merchant=_merchant(), offers=_offers(),
                           form=form), status


def _read_charge(form: Form):  # type: ignore[no-untyped-def]
    """The pay code (shape checked before anything else, as the API does) and the spend."""
    code = form.text("pay_code", max_length=MAX_CODE_LENGTH)
    if code is not None:
        code = code.upper()
        try:
            parse_code(code, expected=PAYCODE)
        except CodeError as err:
            form.errors["pay_code"] = explain(err.reason)
    spend = read_spend(form)
    return code, spend


@bp.get("/till")
@login_required("merchant.redeem", login_endpoint="web.till_login")
def till():
    return _till(Form({}))


@bp.post("/till/confirm")
@login_required("merchant.redeem", login_endpoint="web.till_login")
def till_confirm():
    form = Form(request.form)
    code, spend = _read_charge(form)
    if not form.ok or spend is None:
        return _till(form, 422)
    offer = None
    if spend.offer_id is not None:
        offer = next((o for o in _offers() if o["id"] == spend.offer_id), None)
        if offer is None:
            form.errors["offer_id"] = explain("offer_not_available")
            return _till(form, 422)
    total = spend.points if offer is None else offer["points_price"] * (spend.quantity or 1)
    return render_template("web/till/confirm.html", merchant=_merchant(), code=code,
                           offer=offer, spend=spend, total=total, key=new_form_key())


@bp.post("/till/charge")
@login_required("merchant.redeem", login_endpoint="web.till_login")
def till_charge():
    form = Form(request.form)
    code, spend = _read_charge(form)
    if not form.ok or spend is None:
        return _till(form, 422)
    receipt = actions.charge_paycode(key=form.value("key"), pay_code=code or "",
                                     offer_id=spend.offer_id, quantity=spend.quantity,
                                     points=spend.points)
    return render_template("web/till/receipt.html", receipt=receipt)


@bp.get("/till/today")
@login_required("merchant.redeem", login_endpoint="web.till_login")
def till_today():
    items = todays_redemptions(merchant_id=current_principal().merchant_id,
                               timezone=select_timezone())
    total = sum(item["captured_points"] - item["refunded_points"] for item in items)
    return render_template("web/till/today.html", merchant=_merchant(), items=items,
                           total=total)


def _own(redemption_id: int) -> dict:
    """A redemption of this merchant; another merchant's is refused (authz, 403)."""
    found = redemption.get_redemption(redemption_id=redemption_id)
    require_owner_or_scope("merchants.read", get_merchant(merchant_id=found.merchant_id)
                           .node_path, merchant_id=found.merchant_id)
    redemption.expire_holds(now=actions._now(), redemption_id=redemption_id)
    return redemption.redemption_detail(redemption_id=redemption_id)


@bp.get("/till/redemptions/<int:redemption_id>")
@login_required("merchant.redeem", login_endpoint="web.till_login")
def till_redemption(redemption_id: int):
    return render_template("web/till/redemption.html", item=_own(redemption_id),
                           form=Form({}), key=new_form_key(), done=None)


@bp.post("/till/redemptions/<int:redemption_id>/refund")
@login_required("merchant.redeem", login_endpoint="web.till_login")
def till_refund(redemption_id: int):
    item = _own(redemption_id)
    form = Form(request.form)
    points = form.integer("points", maximum=MAX_POINTS)
    reason = form.text("reason", max_length=500)
    if not form.ok:
        return render_template("web/till/redemption.html", item=item, form=form,
                               key=form.value("key") or new_form_key(), done=None), 422
    result = actions.refund(key=form.value("key"), redemption_id=redemption_id,
                            points=points or 0, reason=reason or "")
    return render_template("web/till/redemption.html", item=_own(redemption_id),
                           form=Form({}), key=new_form_key(), done=result["refund"])


def _month(form: Form) -> str:
    month = form.value("month")
    if not month:
        month = datetime.now(ZoneInfo(select_timezone())).strftime("%Y-%m")
        form.raw["month"] = month
        return month
    if not redemption.MONTH.match(month):
        form.errors["month"] = explain("validation_failed")
    return month


@bp.get("/till/statement")
@login_required("merchant.redeem", login_endpoint="web.till_login")
def till_statement():
    form = Form(request.args)
    month = _month(form)
    body = None if not form.ok else redemption.statement(
        merchant_id=current_principal().merchant_id, month=month)
    return render_template("web/till/statement.html", merchant=_merchant(), month=month,
                           form=form, statement=body), (200 if form.ok else 422)


@bp.get("/till/sticker.<any(png, svg, pdf):extension>")
@login_required("merchant.redeem", login_endpoint="web.till_login")
def till_sticker(extension: str):
    """The merchant's own code sticker, to print and put up by the till."""
    from .console import sticker_response

    return sticker_response(current_principal().merchant_id, extension)


@bp.get("/till/statement.csv")
@login_required("merchant.redeem", login_endpoint="web.till_login")
def till_statement_csv():
    form = Form(request.args)
    month = _month(form)
    if not form.ok:
        return till_statement()
    merchant_id = current_principal().merchant_id
    body = redemption.statement(merchant_id=merchant_id, month=month)
    response = make_response(redemption.statement_csv(body))
    response.mimetype = "text/csv"
    response.charset = "utf-8"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="merchant-{merchant_id}-{month}.csv"')
    return response
