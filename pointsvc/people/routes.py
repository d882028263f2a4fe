"""/api/v1/me, /residents, /households and /staff."""

from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from .. import UPLOAD_ENDPOINTS
from ..common import PageArgs
from ..errors import NotFound, ValidationFailed
from ..security.authz import AUTHENTICATED, current_principal, policy, require_scope
from . import service
from .schemas import (
    GrantCreate,
    HouseholdCreate,
    HouseholdDetailOut,
    HouseholdListArgs,
    HouseholdOut,
    HouseholdPage,
    ImportArgs,
    ImportResult,
    MeOut,
    MeUpdate,
    PasswordResetOut,
    ResidentCreate,
    ResidentCreated,
    ResidentListArgs,
    ResidentOut,
    ResidentPage,
    ResidentUpdate,
    StaffCreate,
    StaffGrantOut,
    StaffHouseholdOut,
    StaffHouseholdSet,
    StaffOut,
    StaffPage,
)

me_blp = Blueprint("me", __name__, url_prefix="/api/v1/me", description="The caller")
residents_blp = Blueprint(
    "residents", __name__, url_prefix="/api/v1/residents", description="Residents"
)
households_blp = Blueprint(
    "households", __name__, url_prefix="/api/v1/households", description="Households"
)
staff_blp = Blueprint(
    "staff", __name__, url_prefix="/api/v1/staff", description="Staff and role grants"
)


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


# -- residents ----------------------------------------------------------------------------


@residents_blp.route("")
class Residents(MethodView):
    @residents_blp.arguments(ResidentListArgs, location="query")
    @residents_blp.response(200, ResidentPage)
    @policy("people.read")
    def get(self, args):
        """Residents of the communities in the caller's scope (filter by community, name)."""
        principal = current_principal()
        if args.get("community_id") is not None:
            community = service.community_for_input(community_id=args["community_id"])
            require_scope("people.read", community.path)
        records, next_cursor = service.list_residents(
            scope_paths=principal.scope_paths("people.read"),
            limit=args["limit"],
            cursor=args["cursor"],
            community_id=args.get("community_id"),
            q=args.get("q"),
        )
        items = [service.present_resident(record=r, principal=principal) for r in records]
        return {"items": items, "next_cursor": next_cursor}

    @residents_blp.arguments(ResidentCreate)
    @residents_blp.response(201, ResidentCreated)
    @policy("people.manage")
    def post(self, body):
        """Register a resident; without a password one is generated and returned once."""
        community = service.community_for_input(community_id=body["community_id"])
        require_scope("people.manage", community.path)
        record, generated = service.create_resident(**body)
        out = service.present_resident(record=record, principal=current_principal())
        if generated:
            out["initial_password"] = generated
        return out


@residents_blp.route("/<int:resident_id>")
class ResidentItem(MethodView):
    @residents_blp.response(200, ResidentOut)
    @policy("people.read")
    def get(self, resident_id):
        """One resident."""
        record = service.get_resident(resident_id=resident_id)
        require_scope("people.read", record.community_path)
        return service.present_resident(record=record, principal=current_principal())

    @residents_blp.arguments(ResidentUpdate)
    @residents_blp.response(200, ResidentOut)
    @policy("people.manage")
    def patch(self, body, resident_id):
        """Change a resident's name, phone, grid, household, minor flag or privacy choice."""
        require_scope("people.manage", service.get_resident(resident_id=resident_id).community_path)
        record = service.update_resident(resident_id=resident_id, changes=body)
        return service.present_resident(record=record, principal=current_principal())


@residents_blp.route("/<int:resident_id>/password")
class ResidentPasswordReset(MethodView):
    @residents_blp.response(200, PasswordResetOut)
    @policy("people.manage")
    def post(self, resident_id):
        """Give the resident a new random password (shown once); their sessions end."""
        require_scope("people.manage", service.get_resident(resident_id=resident_id).community_path)
        return {"initial_password": service.reset_resident_password(resident_id=resident_id)}


_CSV_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
        "text/csv": {"schema": {"type": "string"}},
    },
    "description": "CSV (UTF-8, UTF-8 with BOM, or GBK) with the header "
    "name,phone,community_id,grid_id,household,is_minor",
}


def _upload() -> bytes:
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise ValidationFailed(errors={"file": ["Send the CSV in the form field 'file'."]})
        return upload.read()
    if request.mimetype == "text/csv":
        return request.get_data(cache=False)
    raise ValidationFailed(errors={"file": ["Send a CSV as multipart 'file' or as text/csv."]})


@residents_blp.route("/import")
class ResidentImport(MethodView):
    @residents_blp.arguments(ImportArgs, location="query")
    @residents_blp.response(200, ImportResult)
    @residents_blp.doc(requestBody=_CSV_BODY)
    @policy("people.manage")
    def post(self, args):
        """Import residents from CSV: all or nothing, or (partial=true) the good rows only."""
        if args.get("community_id") is not None:
            community = service.community_for_input(community_id=args["community_id"])
            require_scope("people.manage", community.path)
        return service.import_residents(
            data=_upload(),
            default_community_id=args.get("community_id"),
            partial=args["partial"],
            scope_paths=current_principal().scope_paths("people.manage"),
            max_rows=current_app.config["IMPORT_MAX_ROWS"],
        )


UPLOAD_ENDPOINTS["residents.ResidentImport"] = (
    frozenset({"multipart/form-data", "text/csv"}),
    "IMPORT_MAX_BYTES",
)


# -- households ---------------------------------------------------------------------------


@households_blp.route("")
class Households(MethodView):
    @households_blp.arguments(HouseholdListArgs, location="query")
    @households_blp.response(200, HouseholdPage)
    @policy("people.read")
    def get(self, args):
        """Households of the communities in the caller's scope."""
        if args.get("community_id") is not None:
            community = service.community_for_input(community_id=args["community_id"])
            require_scope("people.read", community.path)
        items, next_cursor = service.list_households(
            scope_paths=current_principal().scope_paths("people.read"),
            limit=args["limit"],
            cursor=args["cursor"],
            community_id=args.get("community_id"),
            q=args.get("q"),
        )
        return {"items": items, "next_cursor": next_cursor}

    @households_blp.arguments(HouseholdCreate)
    @households_blp.response(201, HouseholdOut)
    @policy("people.manage")
    def post(self, body):
        """Create a household (label unique within its community)."""
        community = service.community_for_input(community_id=body["community_id"])
        require_scope("people.manage", community.path)
        return service.create_household(community_id=community.id, label=body["label"])


@households_blp.route("/<int:household_id>")
class HouseholdItem(MethodView):
    @households_blp.response(200, HouseholdDetailOut)
    @policy("people.read")
    def get(self, household_id):
        """A household with its members."""
        require_scope(
            "people.read", service.get_household(household_id=household_id).community_path
        )
        return service.household_detail(household_id=household_id)


# -- staff and grants ---------------------------------------------------------------------


@staff_blp.route("")
class Staff(MethodView):
    @staff_blp.arguments(PageArgs, location="query")
    @staff_blp.response(200, StaffPage)
    @policy("people.read")
    def get(self, args):
        """Staff holding a role somewhere in the caller's scope."""
        principal = current_principal()
        scope = principal.scope_paths("people.read")
        users, next_cursor = service.list_staff(
            scope_paths=scope, limit=args["limit"], cursor=args["cursor"]
        )
        items = [
            service.present_staff(user=user, principal=principal, scope_paths=scope)
            for user in users
        ]
        return {"items": items, "next_cursor": next_cursor}

    @staff_blp.arguments(StaffCreate)
    @staff_blp.response(201, StaffOut)
    @policy("roles.manage")
    def post(self, body):
        """Create a staff login with one role on a node inside the caller's subtree."""
        principal = current_principal()
        require_scope("roles.manage", service.node_for_input(node_id=body["org_node_id"]).path)
        user = service.create_staff(**body, granted_by=principal.user_id)
        return service.present_staff(
            user=user, principal=principal, scope_paths=principal.scope_paths("roles.manage")
        )


@staff_blp.route("/<int:user_id>/grants")
class StaffGrants(MethodView):
    @staff_blp.arguments(GrantCreate)
    @staff_blp.response(201, StaffGrantOut)
    @policy("roles.manage")
    def post(self, body, user_id):
        """Grant a role on a node inside the caller's subtree."""
        require_scope("roles.manage", service.node_for_input(node_id=body["org_node_id"]).path)
        return service.add_grant(
            user_id=user_id,
            role=body["role"],
            org_node_id=body["org_node_id"],
            granted_by=current_principal().user_id,
        )


@staff_blp.route("/<int:user_id>/grants/<int:grant_id>")
class StaffGrantItem(MethodView):
    @staff_blp.response(204)
    @policy("roles.manage")
    def delete(self, user_id, grant_id):
        """Revoke a grant on a node inside the caller's subtree."""
        _, path = service.get_grant(user_id=user_id, grant_id=grant_id)
        require_scope("roles.manage", path)
        service.revoke_grant(user_id=user_id, grant_id=grant_id)


@staff_blp.route("/<int:user_id>/household")
class StaffHouseholdLink(MethodView):
    @staff_blp.arguments(StaffHouseholdSet)
    @staff_blp.response(200, StaffHouseholdOut)
    @policy("roles.manage")
    def put(self, body, user_id):
        """Record which household a staff member belongs to (null unlinks)."""
        principal = current_principal()
        paths = service.grant_paths(user_id=user_id)
        if not paths:
            raise NotFound("not_found", f"user {user_id} is not a staff member")
        # In scope when any of the member's grants lies in the caller's subtree.
        require_scope(
            "roles.manage",
            next((p for p in paths if principal.covers("roles.manage", p)), paths[0]),
        )
        household_id = body["household_id"]
        if household_id is not None:
            household = service.household_for_input(household_id=household_id)
            require_scope("roles.manage", household.community_path)
        service.set_staff_household(user_id=user_id, household_id=household_id)
        return {"user_id": user_id, "household_id": household_id}


blueprints = [me_blp, residents_blp, households_blp, staff_blp]
