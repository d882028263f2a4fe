"""Households: create, list, detail with members, staff links, household_of_user."""

from __future__ import annotations

from pointsvc.people.service import household_of_user
from tests.factories import auth, make_household, make_resident

URL = "/api/v1/households"


def test_create_list_and_detail_with_members(app, client, world):
    r = client.post(
        URL,
        json={"community_id": world.tree.community_a, "label": "3幢201室"},
        headers=auth(app, world.organizer_a),
    )
    assert r.status_code == 201, r.get_json()
    household = r.get_json()["id"]
    assert r.get_json()["created_at"].endswith("+00:00")
    make_resident(app, community_id=world.tree.community_a, name="户主", household_id=household)
    make_resident(
        app, community_id=world.tree.community_a, name="孩子", household_id=household, is_minor=True
    )
    make_resident(app, community_id=world.tree.community_a, name="邻居")

    detail = client.get(f"{URL}/{household}", headers=auth(app, world.auditor)).get_json()
    assert detail["label"] == "3幢201室"
    assert [(m["name"], m["is_minor"]) for m in detail["members"]] == [
        ("户主", False),
        ("孩子", True),
    ]
    listed = client.get(URL, headers=auth(app, world.organizer_a)).get_json()
    assert [h["label"] for h in listed["items"]] == ["3幢201室"]
    assert client.get(URL, headers=auth(app, world.organizer_b)).get_json()["items"] == []


def test_duplicate_label_is_409_but_fine_in_another_community(app, client, world):
    headers = auth(app, world.admin)
    body = {"community_id": world.tree.community_a, "label": "1幢101室"}
    assert client.post(URL, json=body, headers=headers).status_code == 201
    r = client.post(URL, json=body, headers=headers)
    assert r.status_code == 409
    assert r.get_json()["code"] == "duplicate_household"
    other = {"community_id": world.tree.community_b, "label": "1幢101室"}
    assert client.post(URL, json=other, headers=headers).status_code == 201


def test_household_validation_and_scope(app, client, world):
    headers = auth(app, world.admin)
    for body, field in [
        ({"community_id": world.tree.community_a, "label": ""}, "label"),
        ({"community_id": world.tree.community_a, "label": "x" * 201}, "label"),
        ({"community_id": world.tree.grid_a, "label": "x"}, "community_id"),
        ({"community_id": 424242, "label": "x"}, "community_id"),
        ({"community_id": world.tree.community_a, "label": "x", "size": 3}, "size"),
    ]:
        r = client.post(URL, json=body, headers=headers)
        assert r.status_code == 422, body
        assert field in r.get_json()["errors"]
    r = client.post(
        URL,
        json={"community_id": world.tree.community_a, "label": "x"},
        headers=auth(app, world.organizer_b),
    )
    assert (r.status_code, r.get_json()["code"]) == (403, "not_in_scope")
    household_a = make_household(app, community_id=world.tree.community_a)
    r = client.get(f"{URL}/{household_a}", headers=auth(app, world.organizer_b))
    assert (r.status_code, r.get_json()["code"]) == (403, "not_in_scope")
    assert client.get(f"{URL}/999999", headers=headers).status_code == 404


def test_staff_household_link_and_household_of_user(app, client, world):
    household = make_household(app, community_id=world.tree.community_a)
    resident_user, _ = make_resident(
        app, community_id=world.tree.community_a, household_id=household
    )
    url = f"/api/v1/staff/{world.organizer_a}/household"
    r = client.put(url, json={"household_id": household}, headers=auth(app, world.admin))
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {"user_id": world.organizer_a, "household_id": household}
    with app.app_context():
        assert household_of_user(world.organizer_a) == household
        assert household_of_user(user_id=resident_user) == household
        assert household_of_user(world.auditor) is None
    detail = client.get(f"/api/v1/households/{household}", headers=auth(app, world.admin))
    assert detail.get_json()["staff_user_ids"] == [world.organizer_a]

    r = client.put(url, json={"household_id": None}, headers=auth(app, world.admin))
    assert r.status_code == 200
    with app.app_context():
        assert household_of_user(world.organizer_a) is None


def test_staff_household_link_rules(app, client, world):
    household = make_household(app, community_id=world.tree.community_a)
    # Only admins (roles.manage) may link.
    r = client.put(
        f"/api/v1/staff/{world.organizer_a}/household",
        json={"household_id": household},
        headers=auth(app, world.organizer_a),
    )
    assert r.status_code == 403
    # Residents are not staff.
    resident_user, _ = make_resident(app, community_id=world.tree.community_a)
    r = client.put(
        f"/api/v1/staff/{resident_user}/household",
        json={"household_id": household},
        headers=auth(app, world.admin),
    )
    assert r.status_code == 404
    r = client.put(
        f"/api/v1/staff/{world.organizer_a}/household",
        json={"household_id": 999999},
        headers=auth(app, world.admin),
    )
    assert r.status_code == 422
    assert "household_id" in r.get_json()["errors"]
    r = client.put(
        f"/api/v1/staff/{world.organizer_a}/household", json={}, headers=auth(app, world.admin)
    )
    assert r.status_code == 422
