"""Appeals: the resident files one against a deduction or a rejected attendance and follows
it; staff in scope decide (uphold: the points come back through the ledger; dismiss) — the
service calls of /api/v1/appeals, /appeals/{id}/decision and /me/appeals."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _

from ...audit.appeals import service as appeals
from ...audit.appeals.models import OUTCOMES, REASON_MAX, STATUSES
from ...errors import DomainError
from ...ledger import idempotency
from ...security.authz import current_principal, require_scope
from ..forms import MAX_ID, Form, new_form_key
from ..session import login_required
from . import bp

PAGE = 20


def _file_page(form: Form, status: int = 200):  # type: ignore[no-untyped-def]
    return render_template("web/wallet/appeal_new.html", form=form, key=new_form_key(),
                           max_reason=REASON_MAX), status


@bp.get("/wallet/appeals")
@login_required("resident.self")
def my_appeals():
    form = Form(request.args)
    cursor = form.text("cursor", max_length=100, required=False)
    items, next_cursor = [], None
    if form.ok:
        try:
            items, next_cursor = appeals.list_mine(
                resident_id=current_principal().resident_id, limit=PAGE, cursor=cursor)
        except DomainError:
            form.errors["cursor"] = _("This page link is no longer valid. Start again.")
    return render_template("web/wallet/appeals.html", items=items, next_cursor=next_cursor,
                           first=not cursor, form=form), (200 if form.ok else 422)


@bp.route("/wallet/appeals/new", methods=["GET", "POST"])
@login_required("appeals.create")
def appeal_new():
    """GET ?transaction_id= (from the history) or ?event_id=; POST files it, once per form."""
    if request.method == "GET":
        return _file_page(Form(request.args))
    form = Form(request.form)
    kind = "attendance" if form.value("event_id") else "deduction"
    subject = form.integer("event_id" if kind == "attendance" else "transaction_id",
                           maximum=MAX_ID)
    reason = form.text("reason", max_length=REASON_MAX)
    key = form.value("key")
    if not form.ok:
        return _file_page(form, 422)
    if not idempotency.KEY_PATTERN.match(key or ""):
        raise DomainError("idempotency_key_required", "the form lost its key", status=400)
    principal = current_principal()
    body = {"kind": kind, "transaction_id": subject if kind == "deduction" else None,
            "event_id": subject if kind == "attendance" else None, "reason": reason}
    try:
        idempotency.run_once(
            scope=f"user:{principal.user_id}", key=key,
            fingerprint=idempotency.request_fingerprint(route="web:appeals", body=body),
            work=lambda: appeals.file_appeal(resident_id=principal.resident_id,
                                             user_id=principal.user_id, **body))
    except DomainError as err:
        if err.code not in ("appeal_window_closed", "already_appealed", "not_appealable",
                            "already_reversed"):
            raise
        form.errors["reason"] = _appeal_refusal(err.code)
        return _file_page(form, err.status)
    return redirect(url_for("web.my_appeals"))


def _appeal_refusal(code: str) -> str:
    return {
        "appeal_window_closed": _("The time to appeal this decision has passed."),
        "already_appealed": _("This decision has already been appealed."),
        "not_appealable": _("Only deductions and rejected attendance can be appealed."),
        "already_reversed": _("This deduction has already been reversed."),
    }[code]


# --- the console's review ---------------------------------------------------------------------


def _review_page(form: Form, failed: int | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    query = Form(request.args)
    wanted = query.value("status") or "open"
    if wanted not in STATUSES:
        query.errors["status"] = _("Choose one.")
        wanted = "open"
    cursor = query.text("cursor", max_length=100, required=False)
    items, next_cursor = [], None
    if query.ok:
        try:
            items, next_cursor = appeals.list_in_scope(
                scope_paths=current_principal().scope_paths("appeals.read"), status=wanted,
                community_id=None, limit=PAGE, cursor=cursor)
        except DomainError:
            query.errors["cursor"] = _("This page link is no longer valid. Start again.")
    return render_template("web/console/appeals.html", items=items, next_cursor=next_cursor,
                           first=not cursor, status=wanted, statuses=STATUSES, query=query,
                           form=form, blank=Form({}), failed=failed,
                           may_decide=current_principal().may("appeals.decide")), (
        status if query.ok else 422)


@bp.get("/console/appeals")
@login_required("appeals.read", login_endpoint="web.till_login")
def console_appeals():
    return _review_page(Form({}))


@bp.post("/console/appeals/<int:appeal_id>")
@login_required("appeals.decide", login_endpoint="web.till_login")
def console_appeal_decide(appeal_id: int):
    appeal = appeals.get_appeal(appeal_id=appeal_id)
    require_scope("appeals.decide", appeals.community_path(appeal))
    form = Form(request.form)
    outcome = form.value("outcome")
    if outcome not in OUTCOMES:
        form.errors["outcome"] = _("Choose what to do.")
    reason = form.text("reason", max_length=REASON_MAX)
    if not form.ok:
        return _review_page(form, failed=appeal_id, status=422)
    appeals.decide(appeal_id=appeal_id, actor_user_id=current_principal().user_id,
                   outcome=outcome, reason=reason)
    return redirect(url_for("web.console_appeals"))
