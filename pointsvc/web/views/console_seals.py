"""The staff console's ledger seals: recent signed tree heads (as GET /api/v1/ledger/seals,
newest first, keyset-paged), the result of the last full verification, and "verify now"
for admins (ledger.checks.verify_ledger, what `flask ledger verify` runs)."""

from __future__ import annotations

import json
import time
from typing import Any

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from ...common import decode_id_cursor, page_of
from ...errors import DomainError, Forbidden
from ...extensions import db
from ...ledger import seals
from ...ledger.awards import record_event
from ...ledger.checks import verify_ledger
from ...ledger.models import AuditEvent, LedgerTransaction, Seal
from ...security.authz import current_principal
from ..forms import Form
from ..session import login_required
from . import bp

PAGE = 20
VERIFIED = "ledger.verified"  # the action-log entry each verification leaves


def last_verification() -> dict[str, Any] | None:
    """The newest verification recorded in the action log (who, when, what it found)."""
    row = db.session.scalar(select(AuditEvent).where(AuditEvent.action == VERIFIED)
                            .order_by(AuditEvent.id.desc()).limit(1))
    if row is None:
        return None
    try:
        detail = json.loads(row.detail or "{}")
    except ValueError:
        detail = {}
    return {"at": row.created_at, "ok": bool(detail.get("ok")),
            "problems": detail.get("problems") or [],
            "transactions": detail.get("transactions"), "seconds": detail.get("seconds")}


@bp.get("/console/seals")
@login_required("ledger.read", login_endpoint="web.till_login")
def console_seals():
    form = Form(request.args)
    cursor = form.text("cursor", max_length=100, required=False)
    query = select(Seal)
    if cursor:
        try:
            query = query.where(Seal.seq < decode_id_cursor(cursor))
        except DomainError:
            form.errors["cursor"] = _("This page link is no longer valid. Start again.")
    rows: list[Seal] = []
    next_cursor = None
    if form.ok:
        found = list(db.session.scalars(query.order_by(Seal.seq.desc()).limit(PAGE + 1)))
        rows, next_cursor = page_of(found, limit=PAGE, key=lambda s: [s.seq])
    items = [{**seals.seal_json(row), "signature_ok": seals.verify_seal_signature(row)}
             for row in rows]
    return render_template("web/console/seals.html", items=items, next_cursor=next_cursor,
                           first=not cursor, form=form, last=last_verification(),
                           key_id=seals.signing_key_id(),
                           may_verify=current_principal().may("ledger.policy")), (
        200 if form.ok else 422)


@bp.post("/console/seals/verify")
@login_required("ledger.read", login_endpoint="web.till_login")
def console_seals_verify():
    """Recompute every content hash and seal now (admins); the result goes to the log."""
    principal = current_principal()
    if not principal.may("ledger.policy"):
        raise Forbidden("forbidden", "only an admin may run a full verification")
    started = time.perf_counter()
    count = db.session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0
    problems = verify_ledger()
    elapsed = round(time.perf_counter() - started, 3)
    record_event(actor_user_id=principal.user_id, action=VERIFIED, target_type="ledger",
                 target_id=None, community_id=None,
                 detail={"ok": not problems, "problems": problems[:10],
                         "transactions": int(count), "seconds": elapsed})
    db.session.commit()
    return redirect(url_for("web.console_seals"))
