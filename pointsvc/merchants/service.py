"""Merchants: public applications, staff creation, the status lifecycle, profiles, operators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from ..audit.actions.service import record_event
from ..common import as_utc, decode_id_cursor, mask_phone, page_of, utcnow
from ..errors import Conflict, NotFound, ValidationFailed
from ..extensions import db
from ..orgs.models import OrgNode
from ..people.models import Merchant, MerchantOperator, Resident, RoleGrant, User
from ..people.schemas import MAX_ID
from ..security.authz import Principal
from ..security.models import RefreshToken
from ..security.passwords import hash_password

# A merchant serves a street, a community or a grid; a whole district is too broad to approve.
SERVING_LEVELS = ("street", "community", "grid")

# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "approve": (frozenset({"pending"}), "active"),
    "reject": (frozenset({"pending"}), "rejected"),
    "suspend": (frozenset({"active"}), "suspended"),
    "reinstate": (frozenset({"suspended"}), "active"),
}


@dataclass
class MerchantRecord:
    """A merchant with the path of the node it serves (what scope checks need)."""

    merchant: Merchant
    node_path: str


# -- reading ------------------------------------------------------------------------------


def get_merchant(*, merchant_id: int) -> MerchantRecord:
    """The merchant and its node's path, or 404."""
    row = None
    if 0 < merchant_id <= MAX_ID:
        row = db.session.execute(
            select(Merchant, OrgNode.path)
            .join(OrgNode, OrgNode.id == Merchant.org_node_id)
            .where(Merchant.id == merchant_id)
        ).first()
    if row is None:
        raise NotFound("not_found", f"merchant {merchant_id} does not exist")
    return MerchantRecord(row[0], row[1])


def node_for_input(*, node_id: int, field: str = "org_node_id") -> OrgNode:
    """Any organisation node named in a request, or 422 naming the field."""
    node = db.session.get(OrgNode, node_id) if 0 < node_id <= MAX_ID else None
    if node is None:
        raise ValidationFailed(errors={field: [f"No organisation node with id {node_id}."]})
    return node


def serving_node_for_input(*, node_id: int, field: str = "org_node_id") -> OrgNode:
    """The street, community or grid a merchant is to serve, or 422 naming the field."""
    node = node_for_input(node_id=node_id, field=field)
    if node.level not in SERVING_LEVELS:
        raise ValidationFailed(
            errors={field: ["A merchant serves a street, a community or a grid."]}
        )
    return node


def present_merchant(*, record: MerchantRecord, principal: Principal) -> dict[str, Any]:
    """A merchant as the caller may see it: contact phone masked unless an admin covers it."""
    merchant = record.merchant
    sees_phone = principal.covers("merchants.phone", record.node_path)
    return {
        "id": merchant.id,
        "name": merchant.name,
        "address": merchant.address,
        "category": merchant.category,
        "org_node_id": merchant.org_node_id,
        "status": merchant.status,
        "status_reason": merchant.status_reason,
        "contact_name": merchant.contact_name,
        "contact_phone": (
            merchant.contact_phone if sees_phone else mask_phone(merchant.contact_phone)
        ),
        "created_by": merchant.created_by,
        "status_changed_by": merchant.status_changed_by,
        "status_changed_at": as_utc(merchant.status_changed_at),
        "created_at": as_utc(merchant.created_at),
        "updated_at": as_utc(merchant.updated_at),
    }


def list_merchants(
    *,
    scope_paths: list[str],
    own_merchant_id: int | None,
    limit: int,
    cursor: str | None,
    status: str | None = None,
    category: str | None = None,
    under_path: str | None = None,
) -> tuple[list[MerchantRecord], str | None]:
    """Merchants serving nodes in scope (plus the caller's own), by id, keyset-paginated."""
    visible = [OrgNode.path.startswith(path, autoescape=True) for path in scope_paths]
    if own_merchant_id is not None:
        visible.append(Merchant.id == own_merchant_id)
    if not visible:
        return [], None
    query = (
        select(Merchant, OrgNode.path)
        .join(OrgNode, OrgNode.id == Merchant.org_node_id)
        .where(or_(*visible))
    )
    if status is not None:
        query = query.where(Merchant.status == status)
    if category is not None:
        query = query.where(Merchant.category == category)
    if under_path is not None:
        query = query.where(OrgNode.path.startswith(under_path, autoescape=True))
    if cursor:
        query = query.where(Merchant.id > decode_id_cursor(cursor))
    rows = [
        MerchantRecord(merchant, path)
        for merchant, path in db.session.execute(query.order_by(Merchant.id).limit(limit + 1))
    ]
    return page_of(rows, limit=limit, key=lambda record: [record.merchant.id])


def ensure_active(merchant_id: int, *, lock: bool = False) -> Merchant:
    """The merchant if it may trade now; else 409 merchant_suspended / merchant_not_active.

    Takes the id positionally too: redemption code calls it as a guard. With lock=True the
    row is share-locked on PostgreSQL, so a suspension waits for the caller's transaction
    (SQLite serialises writers anyway).
    """
    query = select(Merchant).where(Merchant.id == merchant_id)
    if lock:
        query = query.with_for_update(read=True)
    merchant = db.session.scalar(query) if 0 < merchant_id <= MAX_ID else None
    if merchant is None:
        raise NotFound("not_found", f"merchant {merchant_id} does not exist")
    if merchant.status == "suspended":
        raise Conflict("merchant_suspended", f"merchant {merchant_id} is suspended")
    if merchant.status != "active":
        raise Conflict(
            "merchant_not_active", f"merchant {merchant_id} is {merchant.status}, not active"
        )
    return merchant


# -- creating and editing -----------------------------------------------------------------


def apply(
    *,
    name: str,
    address: str,
    category: str,
    org_node_id: int,
    contact_name: str,
    contact_phone: str,
) -> Merchant:
    """A public application: a merchant waiting for staff approval."""
    node = serving_node_for_input(node_id=org_node_id)
    duplicate = db.session.scalar(
        select(Merchant.id).where(
            Merchant.status == "pending",
            Merchant.org_node_id == node.id,
            Merchant.name == name,
            Merchant.contact_phone == contact_phone,
        )
    )
    if duplicate is not None:
        raise Conflict(
            "duplicate_application", "an application for this merchant is already pending"
        )
    now = utcnow()
    merchant = Merchant(
        name=name,
        address=address,
        category=category,
        org_node_id=node.id,
        status="pending",
        contact_name=contact_name,
        contact_phone=contact_phone,
        created_at=now,
        updated_at=now,
    )
    db.session.add(merchant)
    db.session.commit()
    return merchant


def create_merchant(
    *,
    name: str,
    address: str,
    category: str,
    org_node_id: int,
    created_by: int,
    contact_name: str | None = None,
    contact_phone: str | None = None,
) -> MerchantRecord:
    """A merchant put on the books by staff, active at once."""
    node = serving_node_for_input(node_id=org_node_id)
    now = utcnow()
    merchant = Merchant(
        name=name,
        address=address,
        category=category,
        org_node_id=node.id,
        status="active",
        contact_name=contact_name,
        contact_phone=contact_phone,
        created_by=created_by,
        status_changed_by=created_by,
        status_changed_at=now,
        created_at=now,
        updated_at=now,
    )
    db.session.add(merchant)
    db.session.commit()
    return MerchantRecord(merchant, node.path)


def update_merchant(*, merchant_id: int, changes: dict[str, Any]) -> MerchantRecord:
    """Edit a merchant's profile (name, address, category, node, contact)."""
    if not changes:
        raise ValidationFailed(errors={"_schema": ["Nothing to change."]})
    record = get_merchant(merchant_id=merchant_id)
    if "org_node_id" in changes:
        record.node_path = serving_node_for_input(node_id=changes["org_node_id"]).path
    for key, value in changes.items():
        setattr(record.merchant, key, value)
    record.merchant.updated_at = utcnow()
    db.session.commit()
    return record


def change_status(
    *, merchant_id: int, action: str, actor_id: int, reason: str | None = None
) -> MerchantRecord:
    """Approve, reject, suspend or reinstate; any other move is 409 invalid_state."""
    sources, target = TRANSITIONS[action]
    record = get_merchant(merchant_id=merchant_id)
    now = utcnow()
    # Conditional on the current status, so two staff racing cannot both move it.
    result = db.session.execute(
        update(Merchant)
        .where(Merchant.id == merchant_id, Merchant.status.in_(sorted(sources)))
        .values(
            status=target,
            status_reason=reason,
            status_changed_by=actor_id,
            status_changed_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        current = get_merchant(merchant_id=merchant_id).merchant.status
        raise Conflict(
            "invalid_state",
            f"cannot {action} a {current} merchant (allowed from: {', '.join(sorted(sources))})",
            current_status=current,
        )
    # The reason is free text: it stays on the merchant row (status_reason), not in the log.
    past = {"approve": "approved", "reject": "rejected", "suspend": "suspended",
            "reinstate": "reinstated"}[action]
    record_event(actor_user_id=actor_id, action=f"merchant.{past}",
                 target_type="merchant", target_id=merchant_id,
                 community_id=record.merchant.org_node_id,
                 detail={"reason": "given" if reason else None},
                 before={"status": record.merchant.status}, after={"status": target})
    db.session.commit()
    db.session.refresh(record.merchant)
    return record


# -- operators ----------------------------------------------------------------------------


@dataclass
class OperatorRecord:
    operator: MerchantOperator
    user: User


def present_operator(
    *, record: OperatorRecord, node_path: str, principal: Principal
) -> dict[str, Any]:
    """An operator login; phone masked unless it is the caller's own or an admin covers it."""
    user = record.user
    sees_phone = principal.user_id == user.id or principal.covers("merchants.phone", node_path)
    return {
        "user_id": user.id,
        "merchant_id": record.operator.merchant_id,
        "username": user.username,
        "display_name": user.display_name,
        "phone": user.phone if sees_phone else mask_phone(user.phone),
        "is_active": user.is_active,
        "created_at": as_utc(record.operator.created_at),
    }


def create_operator(
    *,
    merchant_id: int,
    username: str,
    display_name: str,
    password: str,
    phone: str | None = None,
) -> OperatorRecord:
    """A new login that operates this merchant (and no other)."""
    merchant = get_merchant(merchant_id=merchant_id).merchant
    if merchant.status == "rejected":
        raise Conflict("invalid_state", "a rejected merchant cannot have operators")
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict("duplicate_username", f"username {username!r} is taken")
    if phone is not None and db.session.scalar(select(User.id).where(User.phone == phone)):
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
        operator = MerchantOperator(user_id=user.id, merchant_id=merchant.id, created_at=utcnow())
        db.session.add(operator)
        db.session.commit()
    except IntegrityError as exc:
        # Lost a race with another request taking the same username or phone.
        db.session.rollback()
        raise Conflict("conflict", "the username or phone was registered meanwhile") from exc
    return OperatorRecord(operator, user)


def list_operators(
    *, merchant_id: int, limit: int, cursor: str | None
) -> tuple[list[OperatorRecord], str | None]:
    """The merchant's operators, by user id, keyset-paginated."""
    query = (
        select(MerchantOperator, User)
        .join(User, User.id == MerchantOperator.user_id)
        .where(MerchantOperator.merchant_id == merchant_id)
    )
    if cursor:
        query = query.where(MerchantOperator.user_id > decode_id_cursor(cursor))
    rows = [
        OperatorRecord(operator, user)
        for operator, user in db.session.execute(
            query.order_by(MerchantOperator.user_id).limit(limit + 1)
        )
    ]
    return page_of(rows, limit=limit, key=lambda record: [record.user.id])


def remove_operator(*, merchant_id: int, user_id: int) -> None:
    """Detach an operator; a login that was only an operator is disabled and signed out."""
    operator = None
    if 0 < user_id <= MAX_ID:
        operator = db.session.scalar(
            select(MerchantOperator).where(
                MerchantOperator.user_id == user_id, MerchantOperator.merchant_id == merchant_id
            )
        )
    if operator is None:
        raise NotFound("not_found", f"user {user_id} does not operate merchant {merchant_id}")
    db.session.delete(operator)
    # The same person may also be staff or a resident; only a pure operator login goes.
    other_roles = db.session.scalar(
        select(RoleGrant.id).where(RoleGrant.user_id == user_id)
    ) or db.session.scalar(select(Resident.id).where(Resident.user_id == user_id))
    if not other_roles:
        db.session.get(User, user_id).is_active = False
        db.session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    db.session.commit()
