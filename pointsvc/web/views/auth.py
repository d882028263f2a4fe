"""Signing in and out, the landing redirect, and the visitor's preferences."""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, session, url_for

from ...errors import DomainError
from ...extensions import client_address, limiter
from .. import LANGUAGES
from .. import session as pages
from ..forms import Form
from ..messages import explain
from . import bp


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _failed(response) -> bool:  # type: ignore[no-untyped-def]
    return response.status_code in (401, 422)


def _home_of(principal) -> str:  # type: ignore[no-untyped-def]
    if principal is not None and principal.may("merchant.redeem"):
        return url_for("web.till")
    if principal is not None and principal.may("resident.self"):
        return url_for("web.wallet")
    if principal is not None and principal.may("people.read"):
        return url_for("web.console")
    return url_for("web.login")


@bp.get("/")
def home():
    principal = pages.page_principal()
    return redirect(_home_of(principal))


def _login(audience: str):  # type: ignore[no-untyped-def]
    """One sign-in for both doors: residents type a phone number, merchants a user name."""
    template = "web/till/login.html" if audience == "till" else "web/login.html"
    target = pages.safe_next(request.values.get("next"), "")
    if request.method == "GET":
        return render_template(template, form=Form({}), next=target)
    form = Form(request.form)
    identifier = form.text("identifier", max_length=64)
    password = form.text("password", max_length=256)
    if not form.ok:
        return render_template(template, form=form, next=target), 422
    try:
        principal = pages.sign_in(identifier=identifier or "", password=password or "")
    except DomainError as err:
        if err.code not in ("invalid_credentials", "account_locked", "account_disabled"):
            raise
        form.errors["password"] = explain(err.code)
        form.raw.pop("password", None)  # never echo a password back
        return render_template(template, form=form, next=target), err.status, err.headers
    return redirect(target or _home_of(principal))


# The same limit as POST /api/v1/auth/token: failed attempts per client address.
login_limit = limiter.limit(_login_limit, key_func=client_address, deduct_when=_failed)


@bp.route("/login", methods=["GET", "POST"])
@login_limit
def login():
    return _login("resident")


@bp.route("/till/login", methods=["GET", "POST"])
@login_limit
def till_login():
    return _login("till")


@bp.post("/logout")
def logout():
    pages.sign_out()
    return redirect(url_for("web.login"))


@bp.post("/prefs")
def prefs():
    """Language and large-text mode, kept in the session cookie (work without JavaScript)."""
    lang = request.form.get("lang")
    if lang in LANGUAGES:
        session["lang"] = lang
    if "large" in request.form:
        session["large"] = request.form.get("large") == "1"
    return redirect(pages.safe_next(request.form.get("next"), url_for("web.home")))
