"""Residents: create, read, update, validation, phone masking and community scope."""

from __future__ import annotations

import pytest

from pointsvc.extensions import db
from pointsvc.people.models import Resident, User
from tests.factories import auth, make_household, make_resident

URL = "/api/v1/residents"


def _body(world, **overrides):
    body = {
        "name": "王小二",
        "phone": "13812345678",
        "community_id": world.tree.community_a,
        "is_minor": False,
    }
    body.update(overrides)
    return body


def _count_residents(app) -> int:
    with app.app_context():
        return db.session.query(Resident).count()


def test_create_generates_initial_password_that_signs_in(app, client, world):
    r = client.post(URL, json=_body(world), headers=auth(app, world.organizer_a))
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["name"] == "王小二"
    assert body["community_id"] == world.tree.community_a
    assert body["privacy"] == "public"
    password = body["initial_password"]
    assert len(password) >= 12
    # the organizer is not an admin: the phone comes back masked
    assert body["phone"] == "138****5678"

    login = client.post(
        "/api/v1/auth/token", json={"username": "13812345678", "password": password}
    )
    assert login.status_code == 200, login.get_json()
    me = client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {login.get_json()['access_token']}"}
    )
    assert me.get_json()["resident"]["id"] == body["id"]
    assert me.get_json()["phone"] == "13812345678"


def test_create_with_password_returns_no_initial_password(app, client, world):
    household = make_household(app, community_id=world.tree.community_a)
    r = client.post(
        URL,
        json=_body(
            world,
            password="my-own-pass-1",
            grid_id=world.tree.grid_a,
            household_id=household,
            is_minor=True,
            privacy="anonymous",
        ),
        headers=auth(app, world.admin),
    )
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert "initial_password" not in body
    assert body["grid_id"] == world.tree.grid_a
    assert body["household_id"] == household
    assert body["is_minor"] is True
    assert body["privacy"] == "anonymous"
    assert body["phone"] == "13812345678"  # admins see phones
    login = client.post(
        "/api/v1/auth/token", json={"username": "13812345678", "password": "my-own-pass-1"}
    )
    assert login.status_code == 200


def test_duplicate_phone_is_409_and_creates_nothing(app, client, world):
    make_resident(app, community_id=world.tree.community_b, phone="13812345678")
    before = _count_residents(app)
    r = client.post(URL, json=_body(world), headers=auth(app, world.admin))
    assert r.status_code == 409
    assert r.get_json()["code"] == "duplicate_phone"
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert _count_residents(app) == before


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"phone": "12812345678"}, "phone"),
        ({"phone": "1381234567"}, "phone"),
        ({"phone": "138123456789"}, "phone"),
        ({"phone": 13812345678}, "phone"),
        ({"name": "长" * 101}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "王\x00二"}, "name"),
        ({"community_id": "1"}, "community_id"),
        ({"community_id": True}, "community_id"),
        ({"community_id": 2**70}, "community_id"),
        ({"is_minor": "yes"}, "is_minor"),
        ({"is_minor": 1}, "is_minor"),
        ({"privacy": "everyone"}, "privacy"),
        ({"password": "short"}, "password"),
        ({"nickname": "小二"}, "nickname"),
        ({"grid_id": 1.5}, "grid_id"),
    ],
)
def test_bad_input_is_422_naming_the_field(app, client, world, overrides, field):
    r = client.post(URL, json=_body(world, **overrides), headers=auth(app, world.admin))
    assert r.status_code == 422, r.get_json()
    body = r.get_json()
    assert body["code"] == "validation_failed"
    assert field in body["errors"]
    assert _count_residents(app) == 0


def test_missing_fields_are_named(app, client, world):
    r = client.post(URL, json={}, headers=auth(app, world.admin))
    assert r.status_code == 422
    assert {"name", "phone", "community_id", "is_minor"} <= set(r.get_json()["errors"])


@pytest.mark.parametrize(
    ("field", "value_of"),
    [
        ("community_id", lambda w: w.tree.grid_a),  # a grid is not a community
        ("community_id", lambda w: 999999),
        ("grid_id", lambda w: w.tree.grid_b),  # grid of community B
        ("grid_id", lambda w: w.tree.community_a),  # not a grid
        ("grid_id", lambda w: 999999),
        ("household_id", lambda w: 999999),
    ],
)
def test_unknown_or_foreign_ids_are_422(app, client, world, field, value_of):
    r = client.post(
        URL, json=_body(world, **{field: value_of(world)}), headers=auth(app, world.admin)
    )
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["errors"]
    assert _count_residents(app) == 0


def test_household_of_another_community_is_422(app, client, world):
    household_b = make_household(app, community_id=world.tree.community_b)
    r = client.post(
        URL, json=_body(world, household_id=household_b), headers=auth(app, world.admin)
    )
    assert r.status_code == 422
    assert "household_id" in r.get_json()["errors"]


def test_staff_of_another_community_cannot_create_there(app, client, world):
    r = client.post(URL, json=_body(world), headers=auth(app, world.organizer_b))
    assert r.status_code == 403
    assert r.get_json()["code"] == "not_in_scope"
    assert _count_residents(app) == 0


def test_auditor_and_resident_cannot_create(app, client, world):
    r = client.post(URL, json=_body(world), headers=auth(app, world.auditor))
    assert r.status_code == 403
    assert r.get_json()["code"] == "forbidden"
    resident_user, _ = make_resident(app, community_id=world.tree.community_a)
    r = client.post(URL, json=_body(world), headers=auth(app, resident_user))
    assert r.status_code == 403
    assert client.post(URL, json=_body(world)).status_code == 401


def test_read_and_update_are_scoped_to_the_community(app, client, world):
    _, resident_b = make_resident(app, community_id=world.tree.community_b, name="乙居民")
    item = f"{URL}/{resident_b}"
    assert client.get(item, headers=auth(app, world.organizer_b)).status_code == 200
    assert client.get(item, headers=auth(app, world.auditor)).status_code == 200
    r = client.get(item, headers=auth(app, world.organizer_a))
    assert r.status_code == 403
    assert r.get_json()["code"] == "not_in_scope"
    r = client.patch(item, json={"name": "改名"}, headers=auth(app, world.organizer_a))
    assert r.status_code == 403
    assert r.get_json()["code"] == "not_in_scope"
    with app.app_context():
        user = db.session.get(User, db.session.get(Resident, resident_b).user_id)
        assert user.display_name == "乙居民"
    r = client.post(f"{item}/password", headers=auth(app, world.organizer_a))
    assert r.status_code == 403


def test_list_is_scoped_filtered_and_paginated(app, client, world):
    for n in range(3):
        make_resident(app, community_id=world.tree.community_a, name=f"甲居民{n}")
    make_resident(app, community_id=world.tree.community_b, name="乙居民")

    r = client.get(URL, headers=auth(app, world.organizer_a))
    names = [item["name"] for item in r.get_json()["items"]]
    assert names == ["甲居民0", "甲居民1", "甲居民2"]

    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(URL, query_string=query, headers=auth(app, world.auditor)).get_json()
        seen += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["甲居民0", "甲居民1", "甲居民2", "乙居民"]

    r = client.get(URL, query_string={"q": "居民1"}, headers=auth(app, world.admin))
    assert [item["name"] for item in r.get_json()["items"]] == ["甲居民1"]
    r = client.get(
        URL, query_string={"community_id": world.tree.community_b}, headers=auth(app, world.admin)
    )
    assert [item["name"] for item in r.get_json()["items"]] == ["乙居民"]
    r = client.get(
        URL,
        query_string={"community_id": world.tree.community_b},
        headers=auth(app, world.organizer_a),
    )
    assert r.status_code == 403
    assert r.get_json()["code"] == "not_in_scope"
    r = client.get(URL, query_string={"cursor": "not-a-cursor"}, headers=auth(app, world.admin))
    assert r.status_code == 422
    r = client.get(URL, query_string={"limit": 0}, headers=auth(app, world.admin))
    assert r.status_code == 422


def test_unknown_resident_is_404(app, client, world):
    assert client.get(f"{URL}/999999", headers=auth(app, world.admin)).status_code == 404
    assert client.get(f"{URL}/{2**70}", headers=auth(app, world.admin)).status_code == 404
    r = client.patch(f"{URL}/999999", json={"name": "x"}, headers=auth(app, world.admin))
    assert r.status_code == 404


def test_phone_masking_rules(app, client, world):
    user_id, resident_id = make_resident(
        app, community_id=world.tree.community_a, phone="13912345678"
    )
    item = f"{URL}/{resident_id}"
    assert client.get(item, headers=auth(app, world.admin)).get_json()["phone"] == "13912345678"
    for staff in (world.organizer_a, world.auditor):
        assert client.get(item, headers=auth(app, staff)).get_json()["phone"] == "139****5678"
    listed = client.get(URL, headers=auth(app, world.organizer_a)).get_json()["items"]
    assert listed[0]["phone"] == "139****5678"
    # The resident themself sees their own number.
    assert client.get("/api/v1/me", headers=auth(app, user_id)).get_json()["phone"] == (
        "13912345678"
    )


def test_update_resident(app, client, world):
    _, resident_id = make_resident(app, community_id=world.tree.community_a)
    household = make_household(app, community_id=world.tree.community_a)
    item = f"{URL}/{resident_id}"
    r = client.patch(
        item,
        json={
            "name": "新名字",
            "phone": "13700000001",
            "grid_id": world.tree.grid_a,
            "household_id": household,
            "is_minor": True,
            "privacy": "hidden",
        },
        headers=auth(app, world.organizer_a),
    )
    assert r.status_code == 200, r.get_json()
    body = client.get(item, headers=auth(app, world.admin)).get_json()
    assert body["name"] == "新名字"
    assert body["phone"] == "13700000001"
    assert (body["grid_id"], body["household_id"]) == (world.tree.grid_a, household)
    assert (body["is_minor"], body["privacy"]) == (True, "hidden")

    r = client.patch(
        item, json={"grid_id": None, "household_id": None}, headers=auth(app, world.admin)
    )
    assert (r.get_json()["grid_id"], r.get_json()["household_id"]) == (None, None)


def test_update_rejects_bad_input_and_changes_nothing(app, client, world):
    make_resident(app, community_id=world.tree.community_b, phone="13700000009")
    _, resident_id = make_resident(app, community_id=world.tree.community_a, name="原名")
    item = f"{URL}/{resident_id}"
    headers = auth(app, world.admin)
    cases = [
        ({"name": "新名", "phone": "13700000009"}, 409, "duplicate_phone"),
        ({"name": "新名", "grid_id": world.tree.grid_b}, 422, "validation_failed"),
        ({"name": "新名", "community_id": world.tree.community_b}, 422, "validation_failed"),
        ({"name": "新名", "phone": "bad"}, 422, "validation_failed"),
    ]
    for body, status, code in cases:
        r = client.patch(item, json=body, headers=headers)
        assert (r.status_code, r.get_json()["code"]) == (status, code), body
    assert client.get(item, headers=headers).get_json()["name"] == "原名"


def test_resident_updates_own_profile_and_privacy(app, client, world):
    user_id, resident_id = make_resident(app, community_id=world.tree.community_a)
    r = client.patch(
        "/api/v1/me",
        json={"display_name": "自己改名", "privacy": "hidden"},
        headers=auth(app, user_id),
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["display_name"] == "自己改名"
    assert r.get_json()["resident"]["privacy"] == "hidden"
    body = client.get(f"{URL}/{resident_id}", headers=auth(app, world.admin)).get_json()
    assert (body["name"], body["privacy"]) == ("自己改名", "hidden")
    # Residents cannot use the staff endpoints, not even on themselves.
    assert client.get(f"{URL}/{resident_id}", headers=auth(app, user_id)).status_code == 403
    r = client.patch("/api/v1/me", json={"privacy": "hidden"}, headers=auth(app, world.admin))
    assert r.status_code == 422
    r = client.patch("/api/v1/me", json={"display_name": " "}, headers=auth(app, user_id))
    assert r.status_code == 422


def test_password_reset_returns_a_new_password_once(app, client, world):
    user_id, resident_id = make_resident(
        app, community_id=world.tree.community_a, phone="13600000001"
    )
    r = client.post(f"{URL}/{resident_id}/password", headers=auth(app, world.organizer_a))
    assert r.status_code == 200
    password = r.get_json()["initial_password"]
    login = client.post(
        "/api/v1/auth/token", json={"username": "13600000001", "password": password}
    )
    assert login.status_code == 200
