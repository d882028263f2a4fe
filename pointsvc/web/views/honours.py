"""The resident's honours: star level, service hours, badges, designations, and the
printable certificate — the leaderboards package's calls behind /api/v1/me/honours and
/api/v1/me/service-record.pdf."""

from __future__ import annotations

from flask import make_response, render_template

from ...security.authz import current_principal
from ..i18n import is_english
from ..session import login_required
from . import bp


@bp.get("/wallet/honours")
@login_required("resident.self")
def my_honours():
    from ...leaderboards import honours

    record = honours.honours_of(resident_id=current_principal().resident_id,
                                english=is_english())
    return render_template("web/wallet/honours.html", record=record)


@bp.get("/wallet/certificate.pdf")
@login_required("resident.self")
def my_certificate():
    from ...leaderboards import certificate

    response = make_response(certificate.render_pdf(resident_id=current_principal().resident_id))
    response.mimetype = "application/pdf"
    response.headers["Content-Disposition"] = 'attachment; filename="service-record.pdf"'
    return response
