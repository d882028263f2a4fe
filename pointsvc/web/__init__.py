"""Pages for people: the resident's wallet, the merchant's till (server-rendered, Jinja).

Pages call the same service functions as the API and authorise through security.authz;
they differ from the API only in how a caller proves who they are (a signed, HttpOnly
session cookie instead of a bearer token) and so need CSRF protection, which the API does
not (a bearer token is never sent by a browser on its own).
"""

from __future__ import annotations

import os

from flask import Flask, request
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
babel = Babel()

LANGUAGES = ("zh_CN", "en")
DEFAULT_LANGUAGE = "zh_CN"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _env_flag(name: str) -> bool | None:
    raw = os.environ.get(f"POINTSVC_{name}")
    if raw is None or raw.strip() == "":
        return None
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _configure(app: Flask) -> None:
    """Cookie and CSRF settings; the Secure flag is on unless debugging or testing.

    POINTSVC_COOKIE_SECURE (or the COOKIE_SECURE key of the config) overrides it, e.g. to
    try the pages from a phone over plain http on a LAN.
    """
    secure = app.config.get("COOKIE_SECURE")
    if secure is None:
        secure = _env_flag("COOKIE_SECURE")
    if secure is None:
        secure = not (app.debug or app.testing)
    if not secure and app.config.get("ENV_NAME") == "production":
        from ..config import ConfigError

        raise ConfigError("POINTSVC_COOKIE_SECURE=0 is refused in production: session "
                          "cookies must be Secure (serve the pages over HTTPS)")
    app.config["SESSION_COOKIE_SECURE"] = bool(secure)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config.setdefault("WEB_SESSION_HOURS", int(os.environ.get("POINTSVC_WEB_SESSION_HOURS",
                                                                  "12")))
    from datetime import timedelta

    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=app.config["WEB_SESSION_HOURS"])
    # CSRF is enforced by our own hook below, only off /api/ (see _protect_pages).
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    # The token lives as long as the page session: a till left open all day keeps working.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai")
    app.config.setdefault(
        "BABEL_TRANSLATION_DIRECTORIES",
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "translations"),
    )


def _protect_pages() -> None:
    """CSRF check for every state-changing request outside /api/.

    The API authenticates with bearer tokens and must never see this check; everything
    else that a browser can POST to (our pages, and any page another package adds later)
    is protected by default rather than by remembering to opt in.
    """
    if request.method in UNSAFE_METHODS and not request.path.startswith("/api/"):
        csrf.protect()


# URLs that belong to the pages even when no route matches (a mistyped id): their 404s are
# HTML pages. Every other unknown URL keeps the API's problem+json answer.
PAGE_PREFIXES = ("/wallet", "/till", "/M/", "/K/", "/console", "/account", "/login", "/logout",
                 "/prefs")


def _not_found(error):  # type: ignore[no-untyped-def]
    from ..errors import handle_http_exception
    from .views import error_page

    if request.path.startswith(PAGE_PREFIXES):
        return error_page("not_found", 404)
    return handle_http_exception(error)


def init_web(app: Flask) -> None:
    """Register the pages, CSRF, languages and time zones on the app."""
    from .i18n import select_locale, select_timezone
    from .views import bp

    _configure(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.before_request(_protect_pages)
    app.register_error_handler(404, _not_found)
    app.register_blueprint(bp)
