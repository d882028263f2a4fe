"""Operator logins: created by staff covering the merchant, one merchant each, removable."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from pointsvc.extensions import db
from pointsvc.people.models import MerchantOperator, User
from tests.factories import auth, make_merchant, make_resident, make_user
from tests.merchants.test_merchants import assert_problem

URL = "/api/v1/merchants"
PASSWORD = "shop-password-1"


def _operator(username: str = "clerk01", **changes) -> dict:
    return {"username": username, "display_name": "店员小王", "password": PASSWORD, **changes}


def _sign_in(client, username: str, password: str = PASSWORD):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def _count_users(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def test_staff_create_an_operator_who_can_sign_in(app, client, staff):
    shop = make_merchant(app, node_id=staff.tree.community_a)
    r = client.post(
        f"{URL}/{shop}/operators",
        json=_operator(phone="13711112222"),
        headers=auth(app, staff.organizer_a),
    )
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["merchant_id"] == shop and body["username"] == "clerk01"
    assert body["phone"] == "137****2222" and body["is_active"] is True
    assert "password" not in body and "password_hash" not in body

    token = _sign_in(client, "clerk01").get_json()["access_token"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert me["id"] == body["user_id"]
    assert me["merchant_id"] == shop
    assert me["roles"] == ["merchant_operator"]
    # the phone works as a login too
    assert _sign_in(client, "13711112222").status_code == 200


def test_operator_duplicates_are_409(app, client, staff):
    shop = make_merchant(app, node_id=staff.tree.community_a)
    other = make_merchant(app, node_id=staff.tree.community_a, name="隔壁店")
    headers = auth(app, staff.organizer_a)
    first = client.post(
        f"{URL}/{shop}/operators", json=_operator(phone="13711112222"), headers=headers
    )
    assert first.status_code == 201
    users = _count_users(app)
    # the same login cannot be attached again, here or to another merchant
    for target in (shop, other):
        r = client.post(f"{URL}/{target}/operators", json=_operator(), headers=headers)
        assert_problem(r, 409, "duplicate_username")
    r = client.post(
        f"{URL}/{other}/operators", json=_operator("clerk02", phone="13711112222"), headers=headers
    )
    assert_problem(r, 409, "duplicate_phone")
    assert _count_users(app) == users
    with app.app_context():
        assert db.session.get(MerchantOperator, first.get_json()["user_id"]).merchant_id == shop


def test_a_rejected_merchant_gets_no_operators(app, client, staff):
    shop = make_merchant(app, node_id=staff.tree.community_a, status="rejected")
    r = client.post(f"{URL}/{shop}/operators", json=_operator(), headers=auth(app, staff.admin))
    assert_problem(r, 409, "invalid_state")
    assert _sign_in(client, "clerk01").status_code == 401


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"username": "店员"}, "username"),
        ({"username": "ab"}, "username"),
        ({"username": "x" * 65}, "username"),
        ({"password": "short"}, "password"),
        ({"password": 12345678}, "password"),
        ({"phone": "1234"}, "phone"),
        ({"display_name": ""}, "display_name"),
        ({"display_name": "名" * 101}, "display_name"),
        ({"role": "admin"}, "role"),
        ({"merchant_id": 7}, "merchant_id"),
    ],
)
def test_bad_operator_input_is_422(app, client, staff, changes, field):
    shop = make_merchant(app, node_id=staff.tree.community_a)
    users = _count_users(app)
    r = client.post(
        f"{URL}/{shop}/operators", json=_operator(**changes), headers=auth(app, staff.admin)
    )
    assert field in assert_problem(r, 422, "validation_failed")["errors"]
    assert _count_users(app) == users


def test_operator_management_is_scoped(app, client, staff):
    shop = make_merchant(app, node_id=staff.tree.community_a)
    url = f"{URL}/{shop}/operators"
    assert_problem(
        client.post(url, json=_operator(), headers=auth(app, staff.organizer_b)),
        403,
        "not_in_scope",
    )
    assert_problem(
        client.post(url, json=_operator(), headers=auth(app, staff.auditor_a)), 403, "forbidden"
    )
    assert_problem(client.get(url, headers=auth(app, staff.organizer_b)), 403, "not_in_scope")
    created = client.post(url, json=_operator(), headers=auth(app, staff.organizer_a)).get_json()
    # an operator cannot add colleagues or list them
    operator = created["user_id"]
    r = client.post(url, json=_operator("clerk02"), headers=auth(app, operator))
    assert_problem(r, 403, "forbidden")
    assert_problem(client.get(url, headers=auth(app, operator)), 403, "forbidden")
    r = client.delete(f"{url}/{operator}", headers=auth(app, staff.organizer_b))
    assert_problem(r, 403, "not_in_scope")
    assert_problem(
        client.post(
            f"{URL}/987654/operators", json=_operator("x99"), headers=auth(app, staff.admin)
        ),
        404,
        "not_found",
    )


def test_list_operators_masks_phones_except_for_admins_and_pages(app, client, staff):
    shop = make_merchant(app, node_id=staff.tree.community_a)
    other = make_merchant(app, node_id=staff.tree.community_a, name="隔壁店")
    url = f"{URL}/{shop}/operators"
    headers = auth(app, staff.organizer_a)
    ids = [
        client.post(
            url, json=_operator(f"clerk{n}", phone=f"1371111222{n}"), headers=headers
        ).get_json()["user_id"]
        for n in range(3)
    ]
    client.post(f"{URL}/{other}/operators", json=_operator("elsewhere"), headers=headers)

    body = client.get(url, headers=auth(app, staff.auditor_a)).get_json()
    assert [item["user_id"] for item in body["items"]] == ids
    assert [item["phone"] for item in body["items"]] == [f"137****222{n}" for n in range(3)]
    body = client.get(url, headers=auth(app, staff.admin)).get_json()
    assert [item["phone"] for item in body["items"]] == [f"1371111222{n}" for n in range(3)]

    seen, cursor = [], None
    for _ in range(3):
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url + query, headers=headers).get_json()
        seen += [item["user_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids and cursor is None
    assert_problem(client.get(url + "?limit=500", headers=headers), 422, "validation_failed")


def test_removing_an_operator_ends_their_access(app, client, staff):
    shop = make_merchant(app, node_id=staff.tree.community_a)
    url = f"{URL}/{shop}/operators"
    headers = auth(app, staff.organizer_a)
    user_id = client.post(url, json=_operator(), headers=headers).get_json()["user_id"]
    tokens = _sign_in(client, "clerk01").get_json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get(f"{URL}/{shop}", headers=bearer).status_code == 200

    assert client.delete(f"{url}/{user_id}", headers=headers).status_code == 204
    assert client.get(url, headers=headers).get_json()["items"] == []
    assert_problem(client.get(f"{URL}/{shop}", headers=bearer), 401, "invalid_token")
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401
    assert _sign_in(client, "clerk01").status_code in (401, 403)
    assert_problem(client.delete(f"{url}/{user_id}", headers=headers), 404, "not_found")


def test_removing_checks_the_operator_belongs_to_that_merchant(app, client, staff):
    shop = make_merchant(app, node_id=staff.tree.community_a)
    other = make_merchant(app, node_id=staff.tree.community_a, name="隔壁店")
    headers = auth(app, staff.admin)
    user_id = client.post(f"{URL}/{other}/operators", json=_operator(), headers=headers).get_json()[
        "user_id"
    ]
    r = client.delete(f"{URL}/{shop}/operators/{user_id}", headers=headers)
    assert_problem(r, 404, "not_found")
    r = client.delete(f"{URL}/{shop}/operators/{2**70}", headers=headers)
    assert_problem(r, 404, "not_found")
    assert _sign_in(client, "clerk01").status_code == 200


def test_removing_an_operator_who_is_also_a_resident_keeps_their_login(app, client, staff):
    shop = make_merchant(app, node_id=staff.tree.community_a)
    user_id, _ = make_resident(app, community_id=staff.tree.community_a, phone="13655556666")
    staff_user = make_user(app, role="auditor", node_id=staff.tree.community_b)
    with app.app_context():
        db.session.add_all(
            [
                MerchantOperator(user_id=user_id, merchant_id=shop),
                MerchantOperator(user_id=staff_user, merchant_id=shop),
            ]
        )
        db.session.commit()
    headers = auth(app, staff.organizer_a)
    for person in (user_id, staff_user):
        assert client.delete(f"{URL}/{shop}/operators/{person}", headers=headers).status_code == 204
    me = client.get("/api/v1/me", headers=auth(app, user_id)).get_json()
    assert me["merchant_id"] is None and me["resident"] is not None
    me = client.get("/api/v1/me", headers=auth(app, staff_user)).get_json()
    assert me["merchant_id"] is None and me["roles"] == ["auditor"]
