"""Rate limits: routes carry their own limits; an application-wide limit, if configured, holds.

create_app drops Flask-Limiter's before_request pass when no limit is application-wide (it
only cost time on every request); the routes' decorators still check their own limits
(tests/security/test_auth.py: logins are limited per address and per account).
"""

from __future__ import annotations

from pointsvc import create_app
from pointsvc.extensions import limiter
from tests import conftest


def test_without_application_wide_limits_no_request_pays_for_the_limiter(app, client):
    assert limiter._check_request_limit not in app.before_request_funcs[None]
    assert all(client.get("/healthz").status_code == 200 for _ in range(30))


def test_a_route_limit_still_holds_without_the_before_request_pass(app, client):
    app.config["LOGIN_RATE_LIMIT"] = "2 per minute"
    body = {"username": "nobody", "password": "wrong-password-1"}
    statuses = [client.post("/api/v1/auth/token", json=body).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


def test_a_default_limit_keeps_the_before_request_pass(database_url):
    assert not limiter.limit_manager.default_limits
    app = create_app(conftest.test_config(database_url, RATELIMIT_DEFAULT="2 per minute"))
    try:
        assert limiter._check_request_limit in app.before_request_funcs[None]
        client = app.test_client()
        statuses = [client.get("/api/v1/openapi.json").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
    finally:
        # The limiter is a module-level singleton: later apps must not inherit the default.
        limiter.limit_manager.set_default_limits([])
    assert limiter._check_request_limit not in create_app(
        conftest.test_config(database_url)).before_request_funcs[None]
