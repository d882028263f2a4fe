"""People: profiles, residents, staff, households, merchants."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..errors import NotFound
from ..extensions import db
from ..security.authz import Principal
from .models import Resident, RoleGrant, User


def get_user(*, user_id: int) -> User:
    """The user, or 404."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("not_found", f"user {user_id} does not exist")
    return user


def describe_me(*, principal: Principal) -> dict[str, Any]:
    """Everything the caller may know about themselves."""
    user = get_user(user_id=principal.user_id)
    resident = None
    if principal.resident_id is not None:
        resident = db.session.get(Resident, principal.resident_id)
    return {
        "id": user.id,
        "username": user.username,
        "phone": user.phone,
        "display_name": user.display_name,
        "roles": sorted(principal.roles),
        "grants": [{"role": g.role, "org_node_id": g.node_id} for g in principal.grants],
        "resident": resident,
        "merchant_id": principal.merchant_id,
    }


def update_me(*, principal: Principal, changes: dict[str, Any]) -> None:
    """A user edits their display name; a resident also their leaderboard privacy choice."""
    user = get_user(user_id=principal.user_id)
    if "display_name" in changes:
        user.display_name = changes["display_name"]
    if "privacy" in changes:
        if principal.resident_id is None:
            from ..errors import ValidationFailed

            raise ValidationFailed(errors={"privacy": ["Only residents have a privacy choice."]})
        db.session.get(Resident, principal.resident_id).privacy = changes["privacy"]
    db.session.commit()


def grants_of(*, user_id: int) -> list[RoleGrant]:
    return list(db.session.scalars(select(RoleGrant).where(RoleGrant.user_id == user_id)))
