"""Leaderboards, my place, badges, designated honours, honours, certificates, public board."""

from __future__ import annotations

from flask import Blueprint as FlaskBlueprint
from flask import make_response, render_template
from flask.views import MethodView
from flask_smorest import Blueprint

from ..errors import wants_english
from ..ledger.awards import get_resident
from ..security.authz import (
    PUBLIC,
    current_principal,
    node_path_of,
    policy,
    require_member_or_scope,
    require_owner_or_scope,
    require_scope,
)
from . import certificate, honours, public, service
from .schemas import (
    BadgeIn,
    BadgeListArgs,
    BadgeOut,
    BoardArgs,
    BoardOut,
    DesignationIn,
    DesignationOut,
    HonoursOut,
    MyPlaceArgs,
    MyPlaceOut,
    VerifyIn,
    VerifyOut,
)

blp = Blueprint("leaderboards", __name__, url_prefix="/api/v1",
                description="Leaderboards, honours and service certificates")
public_bp = FlaskBlueprint("public_board", __name__, template_folder="templates")

PDF_DOC = {"200": {"description": "the A4 certificate", "content": {"application/pdf": {}}}}


@blp.route("/leaderboards")
class Leaderboard(MethodView):
    @blp.arguments(BoardArgs, location="query")
    @blp.response(200, BoardOut)
    @policy("leaderboards.read")
    def get(self, args):
        """A ranked page of a scope's board (masked names; minors and hidden never shown)."""
        require_member_or_scope("leaderboards.read", node_path_of(args["scope"]))
        return service.board(scope_id=args["scope"], period=args["period"], at=args["at"],
                             category=args["category"], metric=args["metric"],
                             limit=args["limit"], cursor=args["cursor"],
                             me=current_principal().resident_id, english=wants_english())


@blp.route("/leaderboards/me")
class MyPlace(MethodView):
    @blp.arguments(MyPlaceArgs, location="query")
    @blp.response(200, MyPlaceOut)
    @policy("resident.self")
    def get(self, args):
        """My rank and my neighbours in my grid, community, street and district."""
        return service.my_place(resident_id=current_principal().resident_id,
                                period=args["period"], at=args["at"],
                                category=args["category"], metric=args["metric"],
                                english=wants_english())


@blp.route("/badges")
class Badges(MethodView):
    @blp.arguments(BadgeListArgs, location="query")
    @blp.response(200, BadgeOut(many=True))
    @policy("honours.read")
    def get(self, args):
        """Badges that apply to me (residents) or that are defined in my scope (staff)."""
        principal = current_principal()
        if args["org_node_id"]:
            path = node_path_of(args["org_node_id"])
            require_member_or_scope("honours.read", path)
            return honours.badges_on(paths=[path])
        return honours.badges_on(paths=principal.scope_paths("honours.read"),
                                 ancestors_of=principal.community_path)

    @blp.arguments(BadgeIn)
    @blp.response(201, BadgeOut)
    @policy("honours.manage")
    def post(self, body):
        """Define a badge granted automatically, once, when a resident meets its condition."""
        require_scope("honours.manage", node_path_of(body["org_node_id"]))
        org_node_id = body.pop("org_node_id")
        return honours.create_badge(org_node_id=org_node_id,
                                    actor_user_id=current_principal().user_id, values=body)


@blp.route("/honours/designations")
class Designations(MethodView):
    @blp.arguments(DesignationIn)
    @blp.response(201, DesignationOut)
    @policy("honours.manage")
    def post(self, body):
        """Confer an honour (e.g. 最美志愿者 of the month) with a citation; logged."""
        resident = get_resident(resident_id=body["resident_id"])
        require_scope("honours.manage", node_path_of(resident.community_id))
        honour = honours.designate(actor_user_id=current_principal().user_id, **body)
        return {"id": honour.id, "title": honour.title, "citation": honour.citation,
                "period_label": honour.period_label,
                "designated_at": honour.created_at.isoformat()}


@blp.route("/residents/<int:resident_id>/honours")
class ResidentHonours(MethodView):
    @blp.response(200, HonoursOut)
    @policy("honours.read")
    def get(self, resident_id):
        """A resident's star level, service hours, badges and designated honours."""
        resident = get_resident(resident_id=resident_id)
        require_owner_or_scope("honours.read", node_path_of(resident.community_id),
                               resident_id=resident.id)
        return honours.honours_of(resident_id=resident.id, english=wants_english())


@blp.route("/me/honours")
class MyHonours(MethodView):
    @blp.response(200, HonoursOut)
    @policy("resident.self")
    def get(self):
        """My star level, service hours, badges and designated honours."""
        return honours.honours_of(resident_id=current_principal().resident_id,
                                  english=wants_english())


@blp.route("/me/service-record.pdf")
class MyServiceRecord(MethodView):
    @blp.doc(responses=PDF_DOC)
    @policy("resident.self")
    def get(self):
        """My printable A4 certificate of service hours, with a signed verification code."""
        pdf = certificate.render_pdf(resident_id=current_principal().resident_id)
        response = make_response(pdf)
        response.headers["Content-Type"] = "application/pdf"
        response.headers["Content-Disposition"] = 'inline; filename="service-record.pdf"'
        response.headers["Cache-Control"] = "private, no-store"
        return response


@blp.route("/certificates/verify")
class VerifyCertificate(MethodView):
    @blp.arguments(VerifyIn)
    @blp.response(200, VerifyOut)
    @policy(PUBLIC)
    def post(self, body):
        """Check a certificate's verification code (no login); 422 for a forged code."""
        return certificate.verify(code=body["code"])


@public_bp.get("/public/communities/<int:community_id>")
def community_board(community_id: int):
    """This month's public board of a community (HTML, no login, masked names only)."""
    facts = public.community_board(community_id=community_id)
    response = make_response(render_template("leaderboards/community.html", **facts))
    response.headers["Cache-Control"] = "public, max-age=30"
    return response
