"""Staff accounts and role grants: admin only, inside the admin's subtree."""

from __future__ import annotations

from pointsvc.extensions import db
from pointsvc.people.models import RoleGrant, User
from tests.factories import auth, make_resident, make_tree, make_user

URL = "/api/v1/staff"


def _staff(world, **overrides):
    body = {
        "username": "newstaff",
        "display_name": "新同事",
        "password": "long-enough-1",
        "phone": "13512345678",
        "role": "organizer",
        "org_node_id": world.tree.community_a,
    }
    body.update(overrides)
    return body


def test_admin_creates_staff_who_can_sign_in_and_act(app, client, world):
    r = client.post(URL, json=_staff(world), headers=auth(app, world.admin))
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["username"] == "newstaff"
    assert body["phone"] == "13512345678"  # an admin in scope sees it
    assert [(g["role"], g["org_node_id"]) for g in body["grants"]] == [
        ("organizer", world.tree.community_a)
    ]
    assert body["grants"][0]["granted_by"] == world.admin
    login = client.post(
        "/api/v1/auth/token", json={"username": "newstaff", "password": "long-enough-1"}
    )
    assert login.status_code == 200
    token = login.get_json()["access_token"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert me["roles"] == ["organizer"]


def test_only_admins_create_staff(app, client, world):
    for who in (world.organizer_a, world.auditor):
        r = client.post(URL, json=_staff(world), headers=auth(app, who))
        assert (r.status_code, r.get_json()["code"]) == (403, "forbidden")


def test_admin_cannot_create_or_grant_outside_subtree(app, client, world):
    other = make_tree(app)
    r = client.post(
        URL, json=_staff(world, org_node_id=other.community_a), headers=auth(app, world.admin)
    )
    assert (r.status_code, r.get_json()["code"]) == (403, "not_in_scope")
    community_admin = make_user(app, role="admin", node_id=world.tree.community_a)
    r = client.post(
        f"{URL}/{world.auditor}/grants",
        json={"role": "admin", "org_node_id": world.tree.street},
        headers=auth(app, community_admin),
    )
    assert (r.status_code, r.get_json()["code"]) == (403, "not_in_scope")
    with app.app_context():
        assert db.session.query(RoleGrant).filter_by(user_id=world.auditor).count() == 1
        assert db.session.query(User).filter_by(username="newstaff").count() == 0


def test_staff_validation(app, client, world):
    make_user(app, username="taken")
    make_resident(app, community_id=world.tree.community_a, phone="13500000000")
    headers = auth(app, world.admin)
    cases = [
        (_staff(world, username="taken"), 409, "duplicate_username"),
        (_staff(world, phone="13500000000"), 409, "duplicate_phone"),
        (_staff(world, role="superuser"), 422, "validation_failed"),
        (_staff(world, role="resident"), 422, "validation_failed"),
        (_staff(world, password="short"), 422, "validation_failed"),
        (_staff(world, username="有空格 的名字"), 422, "validation_failed"),
        (_staff(world, org_node_id=999999), 422, "validation_failed"),
        (_staff(world, org_node_id="1"), 422, "validation_failed"),
        (_staff(world, is_boss=True), 422, "validation_failed"),
    ]
    for body, status, code in cases:
        r = client.post(URL, json=body, headers=headers)
        assert (r.status_code, r.get_json()["code"]) == (status, code), body


def test_grant_and_revoke(app, client, world):
    headers = auth(app, world.admin)
    url = f"{URL}/{world.organizer_a}/grants"
    r = client.post(
        url, json={"role": "auditor", "org_node_id": world.tree.street}, headers=headers
    )
    assert r.status_code == 201, r.get_json()
    grant_id = r.get_json()["id"]
    me = client.get("/api/v1/me", headers=auth(app, world.organizer_a)).get_json()
    assert sorted(me["roles"]) == ["auditor", "organizer"]

    r = client.post(
        url, json={"role": "auditor", "org_node_id": world.tree.street}, headers=headers
    )
    assert (r.status_code, r.get_json()["code"]) == (409, "duplicate_grant")
    r = client.post(
        f"{URL}/999999/grants",
        json={"role": "auditor", "org_node_id": world.tree.street},
        headers=headers,
    )
    assert r.status_code == 404

    # An organizer cannot revoke; an admin of a sibling subtree cannot either.
    assert (
        client.delete(f"{url}/{grant_id}", headers=auth(app, world.organizer_b)).status_code == 403
    )
    community_admin = make_user(app, role="admin", node_id=world.tree.community_b)
    r = client.delete(f"{url}/{grant_id}", headers=auth(app, community_admin))
    assert (r.status_code, r.get_json()["code"]) == (403, "not_in_scope")

    assert client.delete(f"{url}/{grant_id}", headers=headers).status_code == 204
    me = client.get("/api/v1/me", headers=auth(app, world.organizer_a)).get_json()
    assert me["roles"] == ["organizer"]
    assert client.delete(f"{url}/{grant_id}", headers=headers).status_code == 404
    # A grant id of another user is not found under this user.
    with app.app_context():
        auditor_grant = db.session.query(RoleGrant).filter_by(user_id=world.auditor).one().id
    assert client.delete(f"{url}/{auditor_grant}", headers=headers).status_code == 404


def test_staff_list_is_scoped_and_masks_phones(app, client, world):
    make_user(
        app, role="organizer", node_id=world.tree.community_b, phone="13511112222", name="乙二"
    )
    other = make_tree(app)
    make_user(app, role="admin", node_id=other.district, name="外区管理员")

    def names(user_id):
        items = client.get(URL, headers=auth(app, user_id)).get_json()["items"]
        return {item["display_name"]: item for item in items}

    seen_by_admin = names(world.admin)
    assert set(seen_by_admin) == {"区管理员", "甲组织者", "乙组织者", "审计员", "乙二"}
    assert seen_by_admin["乙二"]["phone"] == "13511112222"
    seen_by_organizer = names(world.organizer_b)
    assert set(seen_by_organizer) == {"乙组织者", "乙二"}
    assert seen_by_organizer["乙二"]["phone"] == "135****2222"
    # Grants outside the caller's scope are not shown.
    assert [g["org_node_id"] for g in seen_by_organizer["乙组织者"]["grants"]] == [
        world.tree.community_b
    ]
    resident_user, _ = make_resident(app, community_id=world.tree.community_a)
    assert client.get(URL, headers=auth(app, resident_user)).status_code == 403

    page = client.get(URL, query_string={"limit": 2}, headers=auth(app, world.admin)).get_json()
    assert len(page["items"]) == 2 and page["next_cursor"]
