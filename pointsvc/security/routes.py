"""/api/v1/auth: token, refresh, logout, password."""

from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from ..extensions import client_address, limiter
from . import service
from .authz import AUTHENTICATED, PUBLIC, current_principal, policy
from .schemas import LogoutRequest, PasswordChange, RefreshRequest, TokenRequest, TokenResponse

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Sign-in and sessions")


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _account_key() -> str:
    body = request.get_json(silent=True)
    account = body.get("username") if isinstance(body, dict) else None
    return f"login-account:{str(account)[:64]}"


def _failed(response) -> bool:  # type: ignore[no-untyped-def]
    return response.status_code in (401, 422)


@blp.route("/token")
class Token(MethodView):
    decorators = [
        limiter.limit(_login_limit, key_func=client_address, deduct_when=_failed),
        limiter.limit(_login_limit, key_func=_account_key, deduct_when=_failed),
    ]

    @blp.arguments(TokenRequest)
    @blp.response(200, TokenResponse)
    @policy(PUBLIC)
    def post(self, body):
        """Sign in with username or phone and password."""
        return service.sign_in(identifier=body["username"], password=body["password"])


@blp.route("/refresh")
class Refresh(MethodView):
    decorators = [limiter.limit(_login_limit, key_func=client_address, deduct_when=_failed)]

    @blp.arguments(RefreshRequest)
    @blp.response(200, TokenResponse)
    @policy(PUBLIC)
    def post(self, body):
        """Rotate a refresh token; reusing an old one revokes the whole session family."""
        return service.rotate_refresh_token(refresh_token=body["refresh_token"])


@blp.route("/logout")
class Logout(MethodView):
    @blp.arguments(LogoutRequest)
    @blp.response(204)
    @policy(AUTHENTICATED)
    def post(self, body):
        """End this session (given its refresh token) or every session of the caller."""
        service.sign_out(
            user_id=current_principal().user_id, refresh_token=body.get("refresh_token")
        )


@blp.route("/password")
class Password(MethodView):
    @blp.arguments(PasswordChange)
    @blp.response(204)
    @policy(AUTHENTICATED)
    def post(self, body):
        """Change the caller's password; every session ends."""
        service.change_password(
            user_id=current_principal().user_id,
            current_password=body["current_password"],
            new_password=body["new_password"],
        )
