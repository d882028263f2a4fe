"""The staff console, first part: find a resident, award under a rule, decide approvals
(the rule book is in console_rules.py). Scope is authz's: every object is checked with
require_scope."""

from __future__ import annotations

import json

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError as MaValidationError

from ...errors import ValidationFailed
from ...ledger import awards
from ...ledger import rules as rulebook
from ...ledger.schemas import MAX_QUANTITY, BulkAwardIn
from ...merchants import service as merchants
from ...people import service as people
from ...security.authz import current_principal, require_scope
from .. import actions, bulkcsv
from ..forms import Form, new_form_key
from ..reads import pending_awards
from ..session import login_required
from . import bp

MAX_ID = 2**62
PAGE = 50


def _resident(resident_id: int) -> dict:
    """A resident the staff member covers (403 otherwise), as the page shows them."""
    record = people.get_resident(resident_id=resident_id)
    require_scope("awards.create", record.community_path)
    return {"id": record.resident.id, "name": record.user.display_name,
            "community_path": record.community_path}


def _rules(community_path: str) -> list:
    return [rule for rule in rulebook.effective_rules(node_path=community_path)
            if rulebook.is_active(rule)]


@bp.get("/console")
@login_required("people.read", login_endpoint="web.till_login")
def console():
    principal = current_principal()
    return render_template("web/console/home.html",
                           may_award=principal.may("awards.create"),
                           may_audit=principal.may("audit.search"),
                           pending=len(pending_awards(
                               scope_paths=principal.scope_paths("awards.approve"))))


@bp.get("/console/residents")
@login_required("awards.create", login_endpoint="web.till_login")
def console_residents():
    form = Form(request.args)
    q = form.text("q", max_length=64, required=False)
    records, _cursor = people.list_residents(
        scope_paths=current_principal().scope_paths("awards.create"), limit=PAGE,
        cursor=None, q=q) if form.ok else ([], None)
    found = [{"id": r.resident.id, "name": r.user.display_name} for r in records]
    return render_template("web/console/residents.html", form=form, found=found), (
        200 if form.ok else 422)


def _award_form(resident: dict, form: Form, status: int = 200):  # type: ignore[no-untyped-def]
    return render_template("web/console/award.html", resident=resident, form=form,
                           rules=_rules(resident["community_path"])), status


def _read_award(form: Form, resident: dict):  # type: ignore[no-untyped-def]
    code = form.text("rule_code", max_length=64)
    quantity = form.integer("quantity", maximum=MAX_QUANTITY)
    memo = form.text("memo", max_length=500, required=False)
    rule = next((r for r in _rules(resident["community_path"]) if r.code == code), None)
    if code and rule is None:
        form.errors["rule_code"] = _("No such rule here.")
    return rule, quantity, memo


@bp.route("/console/residents/<int:resident_id>/award", methods=["GET", "POST"])
@login_required("awards.create", login_endpoint="web.till_login")
def console_award(resident_id: int):
    resident = _resident(resident_id)
    form = Form(request.form if request.method == "POST" else {})
    if request.method == "GET":
        return _award_form(resident, form)
    rule, quantity, memo = _read_award(form, resident)
    if not form.ok or rule is None:
        return _award_form(resident, form, 422)
    points = rulebook.points_for(rule=rule, quantity=quantity or 0)
    return render_template("web/console/award_confirm.html", resident=resident, rule=rule,
                           quantity=quantity, memo=memo, points=points, key=new_form_key())


@bp.post("/console/residents/<int:resident_id>/award/post")
@login_required("awards.create", login_endpoint="web.till_login")
def console_award_post(resident_id: int):
    resident = _resident(resident_id)
    form = Form(request.form)
    rule, quantity, memo = _read_award(form, resident)
    if not form.ok or rule is None:
        return _award_form(resident, form, 422)
    status, body = actions.award(key=form.value("key"), resident_id=resident_id,
                                 rule_code=rule.code, quantity=quantity or 0, memo=memo)
    return render_template("web/console/award_done.html", resident=resident, rule=rule,
                           pending=status == 202, body=body)


@bp.get("/console/approvals")
@login_required("awards.approve", login_endpoint="web.till_login")
def console_approvals():
    items = pending_awards(scope_paths=current_principal().scope_paths("awards.approve"))
    return render_template("web/console/approvals.html", items=items, form=Form({}),
                           blank=Form({}), failed=None)


@bp.post("/console/approvals/<int:pending_id>")
@login_required("awards.approve", login_endpoint="web.till_login")
def console_decide(pending_id: int):
    pending = awards.get_pending(pending_id=pending_id)
    require_scope("awards.approve", awards.community_path(community_id=pending.community_id))
    form = Form(request.form)
    decision = form.value("decision")
    reason = form.text("reason", max_length=500, required=decision == "reject")
    if decision not in ("approve", "reject") or not form.ok:
        items = pending_awards(scope_paths=current_principal().scope_paths("awards.approve"))
        return render_template("web/console/approvals.html", items=items, form=form,
                               blank=Form({}), failed=pending_id), 422
    awards.decide(pending_id=pending_id, actor_user_id=current_principal().user_id,
                  approve=decision == "approve", reason=reason)
    return redirect(url_for("web.console_approvals"))


# --- merchants ------------------------------------------------------------------------------

# action -> whether a reason is required (as the API's ReasonRequired / ReasonOptional)
MERCHANT_ACTIONS = {"approve": False, "reject": True, "suspend": True, "reinstate": False}


def _merchant_list(form: Form, failed: int | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    principal = current_principal()
    records, _cursor = merchants.list_merchants(
        scope_paths=principal.scope_paths("merchants.read"), own_merchant_id=None,
        limit=PAGE, cursor=None)
    return render_template("web/console/merchants.html", records=records, form=form,
                           blank=Form({}), failed=failed,
                           may_manage=principal.may("merchants.manage")), status


@bp.get("/console/merchants")
@login_required("merchants.read", login_endpoint="web.till_login")
def console_merchants():
    return _merchant_list(Form({}))


@bp.post("/console/merchants/<int:merchant_id>/status")
@login_required("merchants.manage", login_endpoint="web.till_login")
def console_merchant_status(merchant_id: int):
    require_scope("merchants.manage", merchants.get_merchant(merchant_id=merchant_id).node_path)
    form = Form(request.form)
    action = form.value("action")
    if action not in MERCHANT_ACTIONS:
        form.errors["action"] = _("Choose what to do.")
    reason = form.text("reason", max_length=500, required=MERCHANT_ACTIONS.get(action, False))
    if not form.ok:
        return _merchant_list(form, failed=merchant_id, status=422)
    merchants.change_status(merchant_id=merchant_id, action=action,
                            actor_id=current_principal().user_id, reason=reason)
    return redirect(url_for("web.console_merchants"))


@bp.get("/console/merchants/<int:merchant_id>/sticker.<any(png, svg, pdf):extension>")
@login_required("merchants.read", login_endpoint="web.till_login")
def console_sticker(merchant_id: int, extension: str):
    """The merchant's code sticker to print (as GET /api/v1/merchants/{id}/code?format=…)."""
    require_scope("merchants.read", merchants.get_merchant(merchant_id=merchant_id).node_path)
    return sticker_response(merchant_id, extension)


def sticker_response(merchant_id: int, extension: str):  # type: ignore[no-untyped-def]
    from flask import make_response

    from ...codes import render
    from ...redemption import service as redemption

    if extension == "pdf":
        from ..sticker import render_pdf

        response = make_response(render_pdf(merchant_id=merchant_id))
        response.mimetype = "application/pdf"
        response.headers["Content-Disposition"] = (
            f'attachment; filename="merchant-{merchant_id}-code.pdf"')
        return response
    link = redemption.merchant_code(merchant_id=merchant_id)["link"]
    response = make_response(render.png(link, box_size=12) if extension == "png"
                             else render.svg(link))
    response.mimetype = "image/png" if extension == "png" else "image/svg+xml"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="merchant-{merchant_id}-code.{extension}"')
    return response


# --- bulk awards from a CSV file -------------------------------------------------------------


def _bulk_page(status: int = 200, **context):  # type: ignore[no-untyped-def]
    return render_template("web/console/bulk.html", **context), status


@bp.get("/console/awards/bulk")
@login_required("awards.create", login_endpoint="web.till_login")
def console_bulk():
    return _bulk_page()


@bp.post("/console/awards/bulk")
@login_required("awards.create", login_endpoint="web.till_login")
def console_bulk_preview():
    """Read the file and show every bad row before anything posts."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _bulk_page(422, problem=_("Choose a CSV file."))
    parsed = bulkcsv.parse(upload.read())
    if parsed.problem:
        return _bulk_page(422, problem=parsed.problem)
    errors = dict(parsed.errors)
    if parsed.items:
        for index, message in actions.bulk_preview(items=parsed.items).items():
            errors[parsed.lines[index]] = bulkcsv.row_message(message)
    if errors:
        return _bulk_page(422, errors=sorted(errors.items()), rows=len(parsed.items) + len(
            parsed.errors))
    return _bulk_page(items=parsed.items, payload=json.dumps(parsed.items, ensure_ascii=False),
                      lines=json.dumps(parsed.lines), key=new_form_key())


@bp.post("/console/awards/bulk/post")
@login_required("awards.create", login_endpoint="web.till_login")
def console_bulk_post():
    form = Form(request.form)
    try:
        items = BulkAwardIn().load({"items": json.loads(form.value("items") or "null")})["items"]
    except (ValueError, MaValidationError):
        return _bulk_page(422, problem=_("The form has expired. Go back and try again."))
    try:
        lines = [int(line) for line in json.loads(form.value("lines") or "[]")]
    except (ValueError, TypeError):
        lines = []
    if len(lines) != len(items):
        lines = list(range(2, len(items) + 2))
    try:
        result = actions.bulk_award(key=form.value("key"), items=items)
    except ValidationFailed as err:  # something changed since the preview
        rows = (err.errors or {}).get("items", {})
        return _bulk_page(422, errors=[(lines[int(index)], bulkcsv.row_message(messages[0]))
                                       for index, messages in rows.items()],
                          rows=len(items))
    return _bulk_page(done=result)
