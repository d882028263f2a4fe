"""The pages blueprint: security headers, HTML error pages, template helpers."""

from __future__ import annotations

import logging

from flask import Blueprint, g, render_template, request, session
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException

from ...errors import DomainError
from ...extensions import db
from .. import format as fmt
from ..i18n import html_lang
from ..labels import (
    appeal_label,
    approval_reason,
    board_label,
    event_label,
    kind_label,
    merchant_status,
    signup_label,
    status_label,
)
from ..messages import explain

log = logging.getLogger(__name__)

bp = Blueprint("web", __name__, template_folder="../templates", static_folder="../static",
               static_url_path="/assets/web")

# No inline script or style anywhere: every script is a file of ours (script-src 'self').
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")

for name, function in (("local_time", fmt.local_time), ("points", fmt.points),
                       ("signed_points", fmt.signed_points)):
    bp.add_app_template_filter(function, name)


@bp.after_request
def _headers(response):  # type: ignore[no-untyped-def]
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    # The /M/<token> link and pay codes must not leak to other sites through Referer.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    # The till may use the camera to scan; nothing else may.
    response.headers["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=()"
    if request.endpoint != "web.static":
        # Pages show balances and pay codes: never kept in a shared cache or history.
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_context_processor
def _template_globals():  # type: ignore[no-untyped-def]
    from sqlalchemy.exc import SQLAlchemyError

    from ..session import page_principal

    try:
        principal = page_principal() if request.blueprint == "web" else g.get("principal")
    except SQLAlchemyError:  # an error page while the database is down still renders
        db.session.rollback()
        principal = None
    return {
        "html_lang": html_lang(),
        "large_text": bool(session.get("large")),
        "signed_in": principal is not None,
        "is_resident": bool(principal and principal.may("resident.self")),
        "is_merchant": bool(principal and principal.may("merchant.redeem")),
        "is_staff": bool(principal and principal.may("people.read")),
        "kind_label": kind_label,
        "approval_reason": approval_reason,
        "event_label": event_label,
        "appeal_label": appeal_label,
        "board_label": board_label,
        "merchant_status": merchant_status,
        "signup_label": signup_label,
        "message_for": explain,
        "status_label": status_label,
    }


def error_page(code: str, status: int, detail: str | None = None):  # type: ignore[no-untyped-def]
    db.session.rollback()
    return render_template("web/error.html", code=code, message=explain(code),
                           detail=detail, status=status), status


@bp.errorhandler(DomainError)
def _domain_error(error: DomainError):  # type: ignore[no-untyped-def]
    page, status = error_page(error.code, error.status)
    return page, status, error.headers


@bp.errorhandler(CSRFError)
def _csrf_error(_error: CSRFError):  # type: ignore[no-untyped-def]
    return error_page("csrf", 400)


_HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "bad_request",
               413: "payload_too_large", 429: "rate_limited"}


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):  # type: ignore[no-untyped-def]
    status = error.code or 500
    if status >= 500:
        return _unexpected(error)
    return error_page(_HTTP_CODES.get(status, "bad_request"), status)


@bp.errorhandler(DataError)
@bp.errorhandler(OverflowError)
def _out_of_range(_error: Exception):  # type: ignore[no-untyped-def]
    return error_page("validation_failed", 422)


@bp.errorhandler(Exception)
def _unexpected(error: Exception):  # type: ignore[no-untyped-def]
    log.error("unhandled page error path=%s", request.path, exc_info=error)
    return error_page("internal_error", 500)


from . import (  # noqa: E402,F401  (routes register on bp)
    account,
    appeals,
    auth,
    checkin,
    console,
    console_anomalies,
    console_audit,
    console_events,
    console_people,
    console_rules,
    console_seals,
    events,
    honours,
    leaderboards,
    pay,
    till,
    wallet,
)
