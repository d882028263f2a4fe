"""People: profiles, residents, households, staff and their role grants, CSV import."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from ..audit.actions.service import record_event, record_grant
from ..common import decode_id_cursor, mask_phone, page_of, utcnow
from ..errors import Conflict, DomainError, NotFound, ValidationFailed
from ..extensions import db
from ..orgs.models import OrgNode
from ..security.authz import Principal
from ..security.models import RefreshToken
from ..security.passwords import hash_password
from .models import Household, Resident, RoleGrant, StaffHousehold, User
from .schemas import MAX_ID

# -- the caller ---------------------------------------------------------------------------


def get_user(*, user_id: int) -> User:
    """The user, or 404."""
    user = db.session.get(User, user_id) if 0 < user_id <= MAX_ID else None
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
    if "privacy" in changes and principal.resident_id is None:
        raise ValidationFailed(errors={"privacy": ["Only residents have a privacy choice."]})
    if "display_name" in changes:
        user.display_name = changes["display_name"]
    if "privacy" in changes:
        db.session.get(Resident, principal.resident_id).privacy = changes["privacy"]
    db.session.commit()


def grants_of(*, user_id: int) -> list[RoleGrant]:
    """Every role grant a user holds."""
    return list(db.session.scalars(select(RoleGrant).where(RoleGrant.user_id == user_id)))


# -- input references ---------------------------------------------------------------------


def community_for_input(*, community_id: int, field: str = "community_id") -> OrgNode:
    """The community named in a request body or query, or 422 naming the field."""
    node = db.session.get(OrgNode, community_id) if 0 < community_id <= MAX_ID else None
    if node is None or node.level != "community":
        raise ValidationFailed(errors={field: [f"No community with id {community_id}."]})
    return node


def node_for_input(*, node_id: int, field: str = "org_node_id") -> OrgNode:
    """The organisation node named in a request body, or 422 naming the field."""
    node = db.session.get(OrgNode, node_id) if 0 < node_id <= MAX_ID else None
    if node is None:
        raise ValidationFailed(errors={field: [f"No organisation node with id {node_id}."]})
    return node


def _check_grid(grid_id: int | None, community_id: int) -> None:
    if grid_id is None:
        return
    grid = db.session.get(OrgNode, grid_id)
    if grid is None or grid.level != "grid" or grid.parent_id != community_id:
        raise ValidationFailed(errors={"grid_id": [f"No grid {grid_id} in this community."]})


def _check_household(household_id: int | None, community_id: int) -> None:
    if household_id is None:
        return
    household = db.session.get(Household, household_id)
    if household is None or household.community_id != community_id:
        raise ValidationFailed(
            errors={"household_id": [f"No household {household_id} in this community."]}
        )


def _phone_taken(phone: str, *, except_user_id: int | None = None) -> bool:
    query = select(User.id).where(User.phone == phone)
    if except_user_id is not None:
        query = query.where(User.id != except_user_id)
    return db.session.scalar(query) is not None


def new_initial_password() -> str:
    """A random password a person can type from a slip of paper (no 0/O, 1/l/I)."""
    alphabet = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
    return "".join(secrets.choice(alphabet) for _ in range(12))


# -- residents ----------------------------------------------------------------------------


@dataclass
class ResidentRecord:
    """A resident with the pieces every view of them needs."""

    resident: Resident
    user: User
    community_path: str


def present_resident(*, record: ResidentRecord, principal: Principal) -> dict[str, Any]:
    """A resident as the caller may see them: phone masked unless theirs or an admin's."""
    resident, user = record.resident, record.user
    sees_phone = principal.user_id == user.id or principal.covers(
        "people.phone", record.community_path
    )
    return {
        "id": resident.id,
        "user_id": user.id,
        "name": user.display_name,
        "phone": user.phone if sees_phone else mask_phone(user.phone),
        "community_id": resident.community_id,
        "grid_id": resident.grid_id,
        "household_id": resident.household_id,
        "is_minor": resident.is_minor,
        "privacy": resident.privacy,
        "created_at": resident.created_at,
    }


def _resident_query():  # type: ignore[no-untyped-def]
    return (
        select(Resident, User, OrgNode.path)
        .join(User, User.id == Resident.user_id)
        .join(OrgNode, OrgNode.id == Resident.community_id)
    )


def get_resident(*, resident_id: int) -> ResidentRecord:
    """The resident, or 404."""
    row = None
    if 0 < resident_id <= MAX_ID:
        row = db.session.execute(_resident_query().where(Resident.id == resident_id)).first()
    if row is None:
        raise NotFound("not_found", f"resident {resident_id} does not exist")
    return ResidentRecord(*row)


def create_resident(
    *,
    name: str,
    phone: str,
    community_id: int,
    is_minor: bool,
    grid_id: int | None = None,
    household_id: int | None = None,
    privacy: str = "public",
    password: str | None = None,
) -> tuple[ResidentRecord, str | None]:
    """A resident and their phone login; returns the generated password when none was given."""
    community = community_for_input(community_id=community_id)
    _check_grid(grid_id, community.id)
    _check_household(household_id, community.id)
    if _phone_taken(phone):
        raise Conflict("duplicate_phone", f"{mask_phone(phone)} is already registered")
    generated = None if password else new_initial_password()
    user = User(
        username=None,
        phone=phone,
        display_name=name,
        password_hash=hash_password(password or generated),
    )
    db.session.add(user)
    try:
        db.session.flush()
        resident = Resident(
            user_id=user.id,
            community_id=community.id,
            grid_id=grid_id,
            household_id=household_id,
            is_minor=is_minor,
            privacy=privacy,
        )
        db.session.add(resident)
        db.session.commit()
    except IntegrityError as exc:
        # Lost a race with another request registering the same phone.
        db.session.rollback()
        raise Conflict("duplicate_phone", f"{mask_phone(phone)} is already registered") from exc
    return ResidentRecord(resident, user, community.path), generated


def update_resident(*, resident_id: int, changes: dict[str, Any]) -> ResidentRecord:
    """Change a resident's name, phone, grid, household, minor flag or privacy choice."""
    record = get_resident(resident_id=resident_id)
    resident, user = record.resident, record.user
    if "grid_id" in changes:
        _check_grid(changes["grid_id"], resident.community_id)
    if "household_id" in changes:
        _check_household(changes["household_id"], resident.community_id)
    phone = changes.get("phone")
    if phone is not None and phone != user.phone and _phone_taken(phone, except_user_id=user.id):
        raise Conflict("duplicate_phone", f"{mask_phone(phone)} is already registered")
    if "name" in changes:
        user.display_name = changes["name"]
    if phone is not None:
        user.phone = phone
    for key in ("grid_id", "household_id", "is_minor", "privacy"):
        if key in changes:
            setattr(resident, key, changes[key])
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict("duplicate_phone", "the phone number is already registered") from exc
    return record


def list_residents(
    *,
    scope_paths: list[str],
    limit: int,
    cursor: str | None,
    community_id: int | None = None,
    q: str | None = None,
) -> tuple[list[ResidentRecord], str | None]:
    """Residents of the communities in scope, by id, keyset-paginated."""
    if not scope_paths:
        return [], None
    query = _resident_query().where(
        or_(*[OrgNode.path.startswith(path, autoescape=True) for path in scope_paths])
    )
    if community_id is not None:
        query = query.where(Resident.community_id == community_id)
    if q:
        query = query.where(User.display_name.contains(q, autoescape=True))
    if cursor:
        query = query.where(Resident.id > decode_id_cursor(cursor))
    rows = [
        ResidentRecord(*row)
        for row in db.session.execute(query.order_by(Resident.id).limit(limit + 1))
    ]
    return page_of(rows, limit=limit, key=lambda record: [record.resident.id])


def _revoke_sessions(user_id: int) -> None:
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def reset_resident_password(*, resident_id: int) -> str:
    """Give a resident a new random password (shown once) and end their sessions."""
    record = get_resident(resident_id=resident_id)
    password = new_initial_password()
    record.user.password_hash = hash_password(password)
    record.user.password_changed_at = utcnow()
    record.user.failed_logins = 0
    record.user.locked_until = None
    _revoke_sessions(record.user.id)
    db.session.commit()
    return password


# -- households ---------------------------------------------------------------------------


@dataclass
class HouseholdRecord:
    household: Household
    community_path: str


def get_household(*, household_id: int) -> HouseholdRecord:
    """The household, or 404."""
    row = None
    if 0 < household_id <= MAX_ID:
        row = db.session.execute(
            select(Household, OrgNode.path)
            .join(OrgNode, OrgNode.id == Household.community_id)
            .where(Household.id == household_id)
        ).first()
    if row is None:
        raise NotFound("not_found", f"household {household_id} does not exist")
    return HouseholdRecord(*row)


def household_for_input(*, household_id: int, field: str = "household_id") -> HouseholdRecord:
    """The household named in a request body, or 422 naming the field."""
    try:
        return get_household(household_id=household_id)
    except NotFound as exc:
        raise ValidationFailed(errors={field: [f"No household with id {household_id}."]}) from exc


def create_household(*, community_id: int, label: str) -> Household:
    """A household in a community; labels are unique per community."""
    community = community_for_input(community_id=community_id)
    duplicate = Conflict("duplicate_household", f"the community already has a household {label!r}")
    taken = db.session.scalar(
        select(Household.id).where(Household.community_id == community.id, Household.label == label)
    )
    if taken is not None:
        raise duplicate
    household = Household(community_id=community.id, label=label)
    db.session.add(household)
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise duplicate from exc
    return household


def household_detail(*, household_id: int) -> dict[str, Any]:
    """A household with its resident members and the staff linked to it."""
    household = get_household(household_id=household_id).household
    members = [
        {"resident_id": rid, "name": name, "is_minor": minor}
        for rid, name, minor in db.session.execute(
            select(Resident.id, User.display_name, Resident.is_minor)
            .join(User, User.id == Resident.user_id)
            .where(Resident.household_id == household.id)
            .order_by(Resident.id)
        )
    ]
    staff = list(
        db.session.scalars(
            select(StaffHousehold.user_id)
            .where(StaffHousehold.household_id == household.id)
            .order_by(StaffHousehold.user_id)
        )
    )
    return {
        "id": household.id,
        "community_id": household.community_id,
        "label": household.label,
        "created_at": household.created_at,
        "members": members,
        "staff_user_ids": staff,
    }


def list_households(
    *,
    scope_paths: list[str],
    limit: int,
    cursor: str | None,
    community_id: int | None = None,
    q: str | None = None,
) -> tuple[list[Household], str | None]:
    """Households of the communities in scope, by id, keyset-paginated."""
    if not scope_paths:
        return [], None
    query = (
        select(Household)
        .join(OrgNode, OrgNode.id == Household.community_id)
        .where(or_(*[OrgNode.path.startswith(path, autoescape=True) for path in scope_paths]))
    )
    if community_id is not None:
        query = query.where(Household.community_id == community_id)
    if q:
        query = query.where(Household.label.contains(q, autoescape=True))
    if cursor:
        query = query.where(Household.id > decode_id_cursor(cursor))
    rows = list(db.session.scalars(query.order_by(Household.id).limit(limit + 1)))
    return page_of(rows, limit=limit, key=lambda household: [household.id])


def household_of_user(user_id: int) -> int | None:
    """The household a user belongs to: a staff link wins, else their resident household."""
    # Positional on purpose: other domains call household_of_user(uid) in their guards.
    linked = db.session.scalar(
        select(StaffHousehold.household_id).where(StaffHousehold.user_id == user_id)
    )
    if linked is not None:
        return linked
    return db.session.scalar(select(Resident.household_id).where(Resident.user_id == user_id))


def set_staff_household(*, user_id: int, household_id: int | None) -> int | None:
    """Link a staff member to a household (None unlinks); returns the household id."""
    get_user(user_id=user_id)
    link = db.session.get(StaffHousehold, user_id)
    if household_id is None:
        if link is not None:
            db.session.delete(link)
    elif link is None:
        db.session.add(StaffHousehold(user_id=user_id, household_id=household_id))
    else:
        link.household_id = household_id
    db.session.commit()
    return household_id


# -- staff and grants ---------------------------------------------------------------------


def grant_paths(*, user_id: int) -> list[str]:
    """Paths of the nodes on which a user holds a staff role (empty: not staff)."""
    return list(
        db.session.scalars(
            select(OrgNode.path)
            .join(RoleGrant, RoleGrant.org_node_id == OrgNode.id)
            .where(RoleGrant.user_id == user_id)
            .order_by(RoleGrant.id)
        )
    )


def create_staff(
    *,
    username: str,
    display_name: str,
    password: str,
    role: str,
    org_node_id: int,
    phone: str | None = None,
    granted_by: int | None = None,
) -> User:
    """A staff login with one role granted on a node."""
    node = node_for_input(node_id=org_node_id)
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict("duplicate_username", f"username {username!r} is taken")
    if phone is not None and _phone_taken(phone):
        raise Conflict("duplicate_phone", f"{mask_phone(phone)} is already registered")
    user = User(
        username=username,
        phone=phone,
        display_name=display_name,
        password_hash=hash_password(password),
    )
    db.session.add(user)
    try:
        db.session.flush()
        grant = RoleGrant(user_id=user.id, role=role, org_node_id=node.id, granted_by=granted_by)
        db.session.add(grant)
        db.session.flush()
        record_grant(granted=True, user_id=user.id, grant_id=grant.id, role=role,
                     node_id=node.id, actor_user_id=granted_by)
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict("conflict", "the username or phone was registered meanwhile") from exc
    return user


def present_staff(*, user: User, principal: Principal, scope_paths: list[str]) -> dict[str, Any]:
    """A staff member with the grants inside the caller's scope; phone masked unless allowed."""
    rows = db.session.execute(
        select(RoleGrant, OrgNode.path)
        .join(OrgNode, OrgNode.id == RoleGrant.org_node_id)
        .where(RoleGrant.user_id == user.id)
        .order_by(RoleGrant.id)
    ).all()
    visible = [grant for grant, path in rows if any(path.startswith(p) for p in scope_paths)]
    sees_phone = principal.user_id == user.id or any(
        principal.covers("people.phone", path) for _, path in rows
    )
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "phone": user.phone if sees_phone else mask_phone(user.phone),
        "is_active": user.is_active,
        "household_id": db.session.scalar(
            select(StaffHousehold.household_id).where(StaffHousehold.user_id == user.id)
        ),
        "grants": visible,
    }


def list_staff(
    *, scope_paths: list[str], limit: int, cursor: str | None
) -> tuple[list[User], str | None]:
    """Users holding a staff role on a node in scope, by id, keyset-paginated."""
    if not scope_paths:
        return [], None
    in_scope = (
        select(RoleGrant.id)
        .join(OrgNode, OrgNode.id == RoleGrant.org_node_id)
        .where(
            RoleGrant.user_id == User.id,
            or_(*[OrgNode.path.startswith(path, autoescape=True) for path in scope_paths]),
        )
    )
    query = select(User).where(exists(in_scope))
    if cursor:
        query = query.where(User.id > decode_id_cursor(cursor))
    rows = list(db.session.scalars(query.order_by(User.id).limit(limit + 1)))
    return page_of(rows, limit=limit, key=lambda user: [user.id])


def add_grant(
    *, user_id: int, role: str, org_node_id: int, granted_by: int | None = None
) -> RoleGrant:
    """Grant a staff role on a node to an existing user."""
    get_user(user_id=user_id)
    node = node_for_input(node_id=org_node_id)
    duplicate = Conflict("duplicate_grant", f"user {user_id} already holds {role} on that node")
    existing = db.session.scalar(
        select(RoleGrant.id).where(
            RoleGrant.user_id == user_id, RoleGrant.role == role, RoleGrant.org_node_id == node.id
        )
    )
    if existing is not None:
        raise duplicate
    grant = RoleGrant(user_id=user_id, role=role, org_node_id=node.id, granted_by=granted_by)
    db.session.add(grant)
    try:
        db.session.flush()
        record_grant(granted=True, user_id=user_id, grant_id=grant.id, role=role,
                     node_id=node.id, actor_user_id=granted_by)
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise duplicate from exc
    return grant


def get_grant(*, user_id: int, grant_id: int) -> tuple[RoleGrant, str]:
    """A user's grant and the path of its node, or 404."""
    row = None
    if 0 < grant_id <= MAX_ID and 0 < user_id <= MAX_ID:
        row = db.session.execute(
            select(RoleGrant, OrgNode.path)
            .join(OrgNode, OrgNode.id == RoleGrant.org_node_id)
            .where(RoleGrant.id == grant_id, RoleGrant.user_id == user_id)
        ).first()
    if row is None:
        raise NotFound("not_found", f"user {user_id} has no grant {grant_id}")
    return row[0], row[1]


def revoke_grant(*, user_id: int, grant_id: int) -> None:
    """Remove a role grant."""
    grant, _ = get_grant(user_id=user_id, grant_id=grant_id)
    record_grant(granted=False, user_id=user_id, grant_id=grant.id, role=grant.role,
                 node_id=grant.org_node_id)
    db.session.delete(grant)
    db.session.commit()


def ensure_admin(
    *, username: str, password: str, display_name: str, district_zh: str, district_en: str
) -> dict[str, Any]:
    """Create (or find) a district and an admin on it; running it again changes nothing."""
    from ..orgs import service as orgs

    district = db.session.scalar(
        select(OrgNode).where(OrgNode.parent_id.is_(None), OrgNode.name_zh == district_zh)
    )
    district_created = district is None
    if district is None:
        district = orgs.create_district(name_zh=district_zh, name_en=district_en)
    user = db.session.scalar(select(User).where(User.username == username))
    user_created = user is None
    if user is None:
        user = User(
            username=username, display_name=display_name, password_hash=hash_password(password)
        )
        db.session.add(user)
        db.session.flush()
    has_grant = db.session.scalar(
        select(RoleGrant.id).where(
            RoleGrant.user_id == user.id,
            RoleGrant.role == "admin",
            RoleGrant.org_node_id == district.id,
        )
    )
    if has_grant is None:
        db.session.add(RoleGrant(user_id=user.id, role="admin", org_node_id=district.id))
    db.session.commit()
    return {
        "district_id": district.id,
        "district_created": district_created,
        "user_id": user.id,
        "user_created": user_created,
        "grant_created": has_grant is None,
    }


# -- CSV import ---------------------------------------------------------------------------

INSERT_CHUNK = 1000


def import_residents(
    *,
    data: bytes,
    default_community_id: int | None,
    partial: bool,
    scope_paths: list[str] | None,
    max_rows: int,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Import residents from CSV; all or nothing unless partial. scope_paths None = no limit."""
    from . import importer
    from .models import UNUSABLE_PASSWORD

    plan = importer.plan_import(
        data=data,
        default_community_id=default_community_id,
        scope_paths=scope_paths,
        max_rows=max_rows,
    )
    errors = [error.as_dict() for error in plan.errors]
    failed_rows = plan.failed
    if errors and not partial:
        raise DomainError(
            "import_failed",
            f"{failed_rows} of {plan.rows} rows have errors; nothing was imported",
            status=422,
            rows=plan.rows,
            failed=failed_rows,
            row_errors=errors,
        )
    total, done = plan.rows, plan.rows - len(plan.new_rows)
    if progress:
        progress(done, total)
    households_created = 0
    try:
        household_ids, households_created = _households_for(plan.household_keys())
        for start in range(0, len(plan.new_rows), INSERT_CHUNK):
            chunk = plan.new_rows[start : start + INSERT_CHUNK]
            user_ids = _insert_users(chunk, password_hash=UNUSABLE_PASSWORD)
            _insert_residents(
                [
                    {
                        "user_id": user_ids[row.phone],
                        "community_id": row.community_id,
                        "grid_id": row.grid_id,
                        "household_id": household_ids.get((row.community_id, row.household))
                        if row.household
                        else None,
                        "is_minor": row.is_minor,
                    }
                    for row in chunk
                ]
            )
            done += len(chunk)
            if progress:
                progress(done, total)
        # Counts only: the imported names and phones stay in the people tables.
        communities = {row.community_id for row in plan.new_rows} or {default_community_id}
        community = communities.pop() if len(communities) == 1 else None
        record_event(action="resident.imported", target_type="community",
                     target_id=community, community_id=community,
                     detail={"rows": plan.rows, "created": len(plan.new_rows),
                             "unchanged": plan.unchanged, "failed": failed_rows,
                             "partial": partial})
        db.session.commit()
    except IntegrityError as exc:
        # Another import or request registered one of these phones meanwhile.
        db.session.rollback()
        raise Conflict("conflict", "the data changed during the import; run it again") from exc
    return {
        "rows": plan.rows,
        "created": len(plan.new_rows),
        "unchanged": plan.unchanged,
        "failed": failed_rows,
        "households_created": households_created,
        "errors": errors,
    }


def _on_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _insert_users(rows: list, *, password_hash: str) -> dict[str, int]:
    """Insert login rows for import rows; returns phone -> new user id."""
    now = utcnow()
    if _on_postgresql():
        # One statement with one array per column: psycopg need not rewrite thousands of
        # placeholders, which is most of the cost of a multi-row VALUES insert.
        result = db.session.execute(
            text(
                "INSERT INTO users (phone, display_name, password_hash, is_active,"
                " failed_logins, password_changed_at, created_at)"
                " SELECT phone, name, :hash, true, 0, :now, :now"
                " FROM unnest(CAST(:phones AS text[]), CAST(:names AS text[])) AS t(phone, name)"
                " RETURNING phone, id"
            ),
            {
                "hash": password_hash,
                "now": now,
                "phones": [row.phone for row in rows],
                "names": [row.name for row in rows],
            },
        )
        return dict(result.all())
    users = User.__table__
    result = db.session.execute(
        insert(users).returning(users.c.phone, users.c.id),
        [
            {
                "phone": row.phone,
                "display_name": row.name,
                "password_hash": password_hash,
                "password_changed_at": now,
                "created_at": now,
            }
            for row in rows
        ],
    )
    return dict(result.all())


def _insert_residents(rows: list[dict[str, Any]]) -> None:
    now = utcnow()
    if _on_postgresql():
        db.session.execute(
            text(
                "INSERT INTO residents (user_id, community_id, grid_id, household_id, is_minor,"
                " privacy, created_at)"
                " SELECT u, c, g, h, m, 'public', :now FROM unnest(CAST(:u AS bigint[]),"
                " CAST(:c AS bigint[]), CAST(:g AS bigint[]), CAST(:h AS bigint[]),"
                " CAST(:m AS boolean[])) AS t(u, c, g, h, m)"
            ),
            {
                "now": now,
                **{
                    key: [row[column] for row in rows]
                    for key, column in (
                        ("u", "user_id"),
                        ("c", "community_id"),
                        ("g", "grid_id"),
                        ("h", "household_id"),
                        ("m", "is_minor"),
                    )
                },
            },
        )
        return
    db.session.execute(
        insert(Resident.__table__),
        [{**row, "privacy": "public", "created_at": now} for row in rows],
    )


def _households_for(keys: set[tuple[int, str]]) -> tuple[dict[tuple[int, str], int], int]:
    """Ids of the households named (community, label), creating the missing ones."""
    if not keys:
        return {}, 0

    def load() -> dict[tuple[int, str], int]:
        found: dict[tuple[int, str], int] = {}
        for community_id in {community for community, _ in keys}:
            labels = [label for community, label in keys if community == community_id]
            for start in range(0, len(labels), INSERT_CHUNK):
                found.update(
                    ((community_id, label), hid)
                    for hid, label in db.session.execute(
                        select(Household.id, Household.label).where(
                            Household.community_id == community_id,
                            Household.label.in_(labels[start : start + INSERT_CHUNK]),
                        )
                    )
                )
        return found

    known = load()
    missing = sorted(keys - known.keys())
    if missing:
        now = utcnow()
        db.session.execute(
            insert(Household.__table__),
            [{"community_id": c, "label": label, "created_at": now} for c, label in missing],
        )
        known = load()
    return known, len(missing)
