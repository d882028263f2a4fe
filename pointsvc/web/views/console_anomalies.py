"""The console's anomaly report: the detectors of pointsvc/audit/anomalies over the staff
member's subtree, in a window of the last 7, 30 or 90 days — the service calls behind
GET /api/v1/audit/anomalies."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, render_template, request
from flask_babel import gettext as _

from ...audit.anomalies import service as anomalies
from ...common import utcnow
from ...security.authz import current_principal
from ..forms import Form
from ..i18n import is_english
from ..session import login_required
from . import bp

WINDOWS = (7, 30, 90)


@bp.get("/console/anomalies")
@login_required("audit.anomalies", login_endpoint="web.till_login")
def console_anomalies():
    form = Form(request.args)
    longest = int(current_app.config["ANOMALY_MAX_DAYS"])
    choices = [days for days in WINDOWS if days <= longest]
    default = int(current_app.config["ANOMALY_DEFAULT_DAYS"])
    days = form.integer("days", maximum=longest, required=False) or default
    if "days" not in form.errors and days not in choices + [default]:
        form.errors["days"] = _("Choose one.")
    detector = form.value("detector") or None
    if detector is not None and detector not in anomalies.DETECTORS:
        form.errors["detector"] = _("Choose one.")
    result = None
    if form.ok:
        end = utcnow()
        start, end = anomalies.resolve_window(start=end - timedelta(days=days), end=end)
        result = anomalies.report(
            start=start, end=end, paths=current_principal().scope_paths("audit.anomalies"),
            english=is_english(), detectors=[detector] if detector else anomalies.DETECTORS)
    return render_template("web/console/anomalies.html", form=form, result=result, days=days,
                           choices=sorted(set(choices + [default])), detector=detector,
                           detectors=anomalies.DETECTORS), (200 if form.ok else 422)
