"""The resident's wallet: home, pay code, history."""

from __future__ import annotations

import base64

from flask import jsonify, render_template, request

from ...codes import render
from ...ledger import reading
from ...redemption import service as redemption
from ...security.authz import current_principal
from ..forms import Form
from ..i18n import is_english, select_timezone
from ..reads import earned_this_month
from ..session import display_name, login_required
from ..standing import resident_standing
from . import bp

HISTORY_PAGE = 20


def _account():  # type: ignore[no-untyped-def]
    principal = current_principal()
    account = reading.find_account(kind="resident", owner_id=principal.resident_id)
    return account, reading.account_json(account, owner_id=principal.resident_id,
                                         community_id=principal.community_id or 0)


@bp.get("/wallet")
@login_required("resident.self")
def wallet():
    account, summary = _account()
    earned = 0 if account is None else earned_this_month(account_id=account.id,
                                                         timezone=select_timezone())
    return render_template(
        "web/wallet/home.html", name=display_name(), summary=summary, earned=earned,
        standing=resident_standing(resident_id=current_principal().resident_id))


def _fresh_code() -> dict:
    """A new pay code (the same service as GET /api/v1/me/paycode) with its QR as SVG."""
    code = redemption.issue_paycode(resident_id=current_principal().resident_id,
                                    now=None)
    svg = base64.b64encode(render.svg(code["token"])).decode()
    return {**code, "image": f"data:image/svg+xml;base64,{svg}"}


@bp.get("/wallet/paycode")
@login_required("resident.self")
def paycode():
    return render_template("web/wallet/paycode.html", code=_fresh_code())


@bp.get("/wallet/paycode.json")
@login_required("resident.self")
def paycode_json():
    """What paycode.js fetches when the countdown runs out (a GET: same-origin read only)."""
    response = jsonify(_fresh_code())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/wallet/history")
@login_required("resident.self")
def history():
    form = Form(request.args)
    cursor = form.text("cursor", max_length=200, required=False)
    account, _summary = _account()
    items, next_cursor = [], None
    if account is not None:
        items, next_cursor = reading.statement(account_id=account.id, limit=HISTORY_PAGE,
                                               cursor=cursor, english=is_english())
    return render_template("web/wallet/history.html", items=items, next_cursor=next_cursor,
                           first_page=cursor is None)
