"""/api/v1/me and the people endpoints."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from ..security.authz import AUTHENTICATED, current_principal, policy
from . import service
from .schemas import MeOut, MeUpdate

me_blp = Blueprint("me", __name__, url_prefix="/api/v1/me", description="The caller")


@me_blp.route("")
class Me(MethodView):
    @me_blp.response(200, MeOut)
    @policy(AUTHENTICATED)
    def get(self):
        """Who am I: profile, roles and memberships."""
        return service.describe_me(principal=current_principal())

    @me_blp.arguments(MeUpdate)
    @me_blp.response(200, MeOut)
    @policy(AUTHENTICATED)
    def patch(self, body):
        """Update my display name or (residents) my leaderboard privacy choice."""
        service.update_me(principal=current_principal(), changes=body)
        return service.describe_me(principal=current_principal())


blueprints = [me_blp]
