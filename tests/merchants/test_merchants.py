"""Merchants over the API: applications, staff creation, listing, profiles and scope."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from pointsvc.errors import TITLES
from pointsvc.extensions import db
from pointsvc.people.models import Merchant
from tests.factories import auth, make_merchant, make_operator, make_resident

URL = "/api/v1/merchants"
PHONE = "13912345678"
MASKED = "139****5678"


def application(node_id: int, **changes) -> dict:
    body = {
        "name": "老街坊面馆",
        "address": "春晓路 12 号",
        "category": "restaurant",
        "org_node_id": node_id,
        "contact_name": "周海燕",
        "contact_phone": PHONE,
    }
    body.update(changes)
    return body


def apply(client, body: dict, ip: str = "198.51.100.1"):
    return client.post(f"{URL}/applications", json=body, environ_base={"REMOTE_ADDR": ip})


def create(app, client, actor: int, node_id: int, **changes) -> int:
    body = application(node_id, **{"name": "便民超市", "category": "grocery", **changes})
    r = client.post(URL, json=body, headers=auth(app, actor))
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def count_merchants(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Merchant))


def assert_problem(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.mimetype == "application/problem+json"
    body = r.get_json()
    assert body["code"] == code
    assert body["title"] == TITLES[code][0]
    return body


# -- public applications ------------------------------------------------------------------


def test_public_application_is_pending_and_needs_no_login(app, client, staff):
    r = apply(client, application(staff.tree.grid_a))
    assert r.status_code == 201
    body = r.get_json()
    assert body == {"id": body["id"], "status": "pending"}

    admin_view = client.get(f"{URL}/{body['id']}", headers=auth(app, staff.admin)).get_json()
    assert admin_view["status"] == "pending"
    assert admin_view["created_by"] is None
    assert admin_view["contact_phone"] == PHONE
    assert admin_view["org_node_id"] == staff.tree.grid_a
    organizer_view = client.get(f"{URL}/{body['id']}", headers=auth(app, staff.organizer_a))
    assert organizer_view.get_json()["contact_phone"] == MASKED


def test_the_same_pending_application_twice_is_409(app, client, staff):
    assert apply(client, application(staff.tree.community_a)).status_code == 201
    assert_problem(apply(client, application(staff.tree.community_a)), 409, "duplicate_application")
    # another shop of the same name elsewhere is a different application
    assert apply(client, application(staff.tree.community_b)).status_code == 201
    assert count_merchants(app) == 2


BAD_APPLICATIONS = [
    ("contact_phone", {"contact_phone": "12345678901"}),
    ("contact_phone", {"contact_phone": "1391234567"}),
    ("contact_phone", {"contact_phone": 13912345678}),
    ("category", {"category": "bakery"}),
    ("website", {"website": "https://example.cn"}),
    ("org_node_id", {"org_node_id": "NODE"}),
    ("org_node_id", {"org_node_id": True}),
    ("org_node_id", {"org_node_id": 2**70}),
    ("org_node_id", {"org_node_id": 987654}),
    ("org_node_id", {"org_node_id": "DISTRICT"}),
    ("name", {"name": 123}),
    ("name", {"name": "店" * 201}),
    ("name", {"name": "   "}),
    ("name", {"name": "好\x00店"}),
    ("name", {"name": None}),
    ("address", {"address": "路" * 301}),
    ("contact_name", {"contact_name": "张" * 101}),
    ("contact_name", {"contact_name": None}),
]


@pytest.mark.parametrize(("field", "changes"), BAD_APPLICATIONS)
def test_bad_applications_are_422_and_create_nothing(app, client, staff, field, changes):
    if changes.get("org_node_id") == "NODE":
        changes = {"org_node_id": str(staff.tree.community_a)}
    if changes.get("org_node_id") == "DISTRICT":
        changes = {"org_node_id": staff.tree.district}
    body = assert_problem(
        apply(client, application(staff.tree.community_a, **changes)), 422, "validation_failed"
    )
    assert field in body["errors"]
    assert count_merchants(app) == 0


@pytest.mark.parametrize(
    "missing", ["name", "address", "category", "org_node_id", "contact_name", "contact_phone"]
)
def test_every_application_field_is_required(app, client, staff, missing):
    body = application(staff.tree.community_a)
    del body[missing]
    problem = assert_problem(apply(client, body), 422, "validation_failed")
    assert missing in problem["errors"]
    assert count_merchants(app) == 0


def test_applications_are_rate_limited_per_client_address(make_app):
    from tests.merchants.conftest import make_staff

    app = make_app(MERCHANT_APPLICATION_RATE_LIMIT="3 per hour")
    client = app.test_client()
    tree = make_staff(app).tree
    assert (
        apply(client, application(tree.community_a, name="一号店"), ip="203.0.113.7").status_code
        == 201
    )
    # a rejected attempt counts too: probing is what the limit is for
    r = apply(client, application(tree.community_a, contact_phone="1"), ip="203.0.113.7")
    assert r.status_code == 422 and "Retry-After" not in r.headers
    assert (
        apply(client, application(tree.community_a, name="二号店"), ip="203.0.113.7").status_code
        == 201
    )
    r = apply(client, application(tree.community_a, name="三号店"), ip="203.0.113.7")
    assert_problem(r, 429, "rate_limited")
    assert 0 < int(r.headers["Retry-After"]) <= 3600
    assert count_merchants(app) == 2
    # another address is not affected
    assert (
        apply(client, application(tree.community_a, name="三号店"), ip="198.51.100.9").status_code
        == 201
    )


# -- staff creation -----------------------------------------------------------------------


def test_staff_create_is_active_at_once(app, client, staff):
    r = client.post(
        URL,
        json=application(staff.tree.grid_a, contact_name=None, contact_phone=None),
        headers=auth(app, staff.organizer_a),
    )
    assert r.status_code == 201
    body = r.get_json()
    assert body["status"] == "active"
    assert body["created_by"] == staff.organizer_a
    assert body["status_changed_by"] == staff.organizer_a
    assert body["contact_phone"] is None
    assert body["created_at"].endswith("+00:00")


def test_staff_create_outside_the_subtree_is_403(app, client, staff):
    r = client.post(
        URL, json=application(staff.tree.community_b), headers=auth(app, staff.organizer_a)
    )
    assert_problem(r, 403, "not_in_scope")
    # a grid organizer does not cover the community above it
    r = client.post(
        URL, json=application(staff.tree.community_a), headers=auth(app, staff.organizer_grid_a)
    )
    assert_problem(r, 403, "not_in_scope")
    assert count_merchants(app) == 0


def test_staff_create_needs_manage_rights(app, client, staff):
    body = application(staff.tree.community_a)
    assert_problem(client.post(URL, json=body), 401, "unauthorized")
    assert_problem(
        client.post(URL, json=body, headers=auth(app, staff.auditor_a)), 403, "forbidden"
    )
    resident, _ = make_resident(app, community_id=staff.tree.community_a)
    assert_problem(client.post(URL, json=body, headers=auth(app, resident)), 403, "forbidden")
    assert count_merchants(app) == 0


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("org_node_id", {"org_node_id": 987654}),
        ("org_node_id", {"org_node_id": "DISTRICT"}),
        ("category", {"category": "casino"}),
        ("contact_phone", {"contact_phone": "021-5555555"}),
        ("status", {"status": "active"}),
    ],
)
def test_staff_create_validation(app, client, staff, field, changes):
    if changes.get("org_node_id") == "DISTRICT":
        changes = {"org_node_id": staff.tree.district}
    r = client.post(
        URL, json=application(staff.tree.community_a, **changes), headers=auth(app, staff.admin)
    )
    assert field in assert_problem(r, 422, "validation_failed")["errors"]
    assert count_merchants(app) == 0


# -- listing ------------------------------------------------------------------------------


def _listing(app, client, user: int, query: str = "") -> list[int]:
    r = client.get(f"{URL}{query}", headers=auth(app, user))
    assert r.status_code == 200, r.get_json()
    return [item["id"] for item in r.get_json()["items"]]


def test_list_is_scoped_and_filtered(app, client, staff):
    tree = staff.tree
    shop_a = create(app, client, staff.admin, tree.community_a)
    applied_a = apply(client, application(tree.grid_a)).get_json()["id"]
    shop_b = create(app, client, staff.admin, tree.community_b)

    assert _listing(app, client, staff.admin) == [shop_a, applied_a, shop_b]
    assert _listing(app, client, staff.organizer_a) == [shop_a, applied_a]
    assert _listing(app, client, staff.auditor_a) == [shop_a, applied_a]
    assert _listing(app, client, staff.organizer_b) == [shop_b]
    assert _listing(app, client, staff.organizer_grid_a) == [applied_a]

    assert _listing(app, client, staff.admin, "?status=pending") == [applied_a]
    assert _listing(app, client, staff.admin, "?category=grocery") == [shop_a, shop_b]
    assert _listing(app, client, staff.admin, f"?org_node_id={tree.community_a}") == [
        shop_a,
        applied_a,
    ]
    assert _listing(app, client, staff.admin, f"?org_node_id={tree.grid_a}") == [applied_a]
    assert _listing(app, client, staff.organizer_a, "?status=active&category=grocery") == [shop_a]


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("?status=closed", 422, "validation_failed"),
        ("?category=casino", 422, "validation_failed"),
        ("?org_node_id=987654", 422, "validation_failed"),
        ("?org_node_id=abc", 422, "validation_failed"),
        ("?sort=name", 422, "validation_failed"),
        ("?limit=0", 422, "validation_failed"),
        ("?cursor=%%%", 422, "validation_failed"),
        ("?org_node_id=COMMUNITY_B", 403, "not_in_scope"),
    ],
)
def test_bad_list_queries(app, client, staff, query, status, code):
    query = query.replace("COMMUNITY_B", str(staff.tree.community_b))
    assert_problem(client.get(f"{URL}{query}", headers=auth(app, staff.organizer_a)), status, code)


def test_list_pages_by_keyset(app, client, staff):
    ids = [
        create(app, client, staff.admin, staff.tree.community_a, name=f"店{n}") for n in range(5)
    ]
    seen, cursor, pages = [], None, 0
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(f"{URL}{query}", headers=auth(app, staff.organizer_a)).get_json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ids and pages == 3


def test_an_operator_lists_only_their_own_merchant(app, client, staff):
    mine = make_merchant(app, node_id=staff.tree.community_a)
    make_merchant(app, node_id=staff.tree.community_a, name="隔壁店")
    operator = make_operator(app, merchant_id=mine)
    assert _listing(app, client, operator) == [mine]
    assert _listing(app, client, operator, "?status=suspended") == []
    resident, _ = make_resident(app, community_id=staff.tree.community_a)
    assert_problem(client.get(URL, headers=auth(app, resident)), 403, "forbidden")


# -- one merchant -------------------------------------------------------------------------


def test_get_is_scoped_and_masks_the_phone_except_for_admins(app, client, staff):
    shop = create(app, client, staff.admin, staff.tree.community_a, contact_phone=PHONE)
    get = lambda user: client.get(f"{URL}/{shop}", headers=auth(app, user))  # noqa: E731
    assert get(staff.admin).get_json()["contact_phone"] == PHONE
    assert get(staff.organizer_a).get_json()["contact_phone"] == MASKED
    assert get(staff.auditor_a).get_json()["contact_phone"] == MASKED
    assert_problem(get(staff.organizer_b), 403, "not_in_scope")
    assert_problem(get(staff.organizer_grid_a), 403, "not_in_scope")
    # an admin of a community (not the district) sees it unmasked inside their community only
    from tests.factories import make_user

    admin_b = make_user(app, role="admin", node_id=staff.tree.community_b)
    assert_problem(get(admin_b), 403, "not_in_scope")


def test_an_operator_reads_their_own_merchant_and_no_other(app, client, staff):
    x = create(app, client, staff.admin, staff.tree.community_a, contact_phone=PHONE)
    y = create(app, client, staff.admin, staff.tree.community_a, name="隔壁店")
    operator_x = make_operator(app, merchant_id=x)
    r = client.get(f"{URL}/{x}", headers=auth(app, operator_x))
    assert r.status_code == 200 and r.get_json()["contact_phone"] == MASKED
    assert_problem(client.get(f"{URL}/{y}", headers=auth(app, operator_x)), 403, "not_in_scope")
    me = client.get("/api/v1/me", headers=auth(app, operator_x)).get_json()
    assert me["merchant_id"] == x and "merchant_operator" in me["roles"]


@pytest.mark.parametrize("merchant_id", ["987654", str(2**70)])
def test_unknown_merchant_is_404(app, client, staff, merchant_id):
    assert_problem(
        client.get(f"{URL}/{merchant_id}", headers=auth(app, staff.admin)), 404, "not_found"
    )
    r = client.post(f"{URL}/{merchant_id}/approve", json={}, headers=auth(app, staff.admin))
    assert_problem(r, 404, "not_found")


# -- profile edits ------------------------------------------------------------------------


def test_patch_edits_the_profile(app, client, staff):
    shop = create(app, client, staff.admin, staff.tree.community_a)
    before = client.get(f"{URL}/{shop}", headers=auth(app, staff.admin)).get_json()
    changes = {
        "name": "春晓便民超市",
        "address": "春晓路 99 号",
        "category": "supermarket",
        "contact_name": "李四",
        "contact_phone": "13700001111",
        "org_node_id": staff.tree.grid_a,
    }
    r = client.patch(f"{URL}/{shop}", json=changes, headers=auth(app, staff.organizer_a))
    assert r.status_code == 200
    after = client.get(f"{URL}/{shop}", headers=auth(app, staff.admin)).get_json()
    for key, value in changes.items():
        assert after[key] == value
    assert after["updated_at"] > before["updated_at"]
    assert after["status"] == "active"
    r = client.patch(f"{URL}/{shop}", json={"contact_phone": None}, headers=auth(app, staff.admin))
    assert r.get_json()["contact_phone"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "_schema"),
        ({"status": "active"}, "status"),
        ({"contact_phone": "1234"}, "contact_phone"),
        ({"category": "casino"}, "category"),
        ({"name": "x" * 201}, "name"),
        ({"name": ""}, "name"),
        ({"org_node_id": 987654}, "org_node_id"),
        ({"org_node_id": "1"}, "org_node_id"),
    ],
)
def test_bad_patches_are_422_and_change_nothing(app, client, staff, body, field):
    shop = create(app, client, staff.admin, staff.tree.community_a)
    before = client.get(f"{URL}/{shop}", headers=auth(app, staff.admin)).get_json()
    r = client.patch(f"{URL}/{shop}", json=body, headers=auth(app, staff.organizer_a))
    assert field in assert_problem(r, 422, "validation_failed")["errors"]
    assert client.get(f"{URL}/{shop}", headers=auth(app, staff.admin)).get_json() == before


def test_patch_needs_scope_and_manage_rights(app, client, staff):
    shop = create(app, client, staff.admin, staff.tree.community_a)
    operator = make_operator(app, merchant_id=shop)
    body = {"name": "改名"}
    assert_problem(
        client.patch(f"{URL}/{shop}", json=body, headers=auth(app, staff.organizer_b)),
        403,
        "not_in_scope",
    )
    assert_problem(
        client.patch(f"{URL}/{shop}", json=body, headers=auth(app, staff.auditor_a)),
        403,
        "forbidden",
    )
    assert_problem(
        client.patch(f"{URL}/{shop}", json=body, headers=auth(app, operator)), 403, "forbidden"
    )
    assert (
        client.get(f"{URL}/{shop}", headers=auth(app, staff.admin)).get_json()["name"] == "便民超市"
    )


def test_moving_a_merchant_needs_scope_over_both_nodes(app, client, staff):
    shop = create(app, client, staff.admin, staff.tree.community_a)
    move = {"org_node_id": staff.tree.community_b}
    r = client.patch(f"{URL}/{shop}", json=move, headers=auth(app, staff.organizer_a))
    assert_problem(r, 403, "not_in_scope")
    assert _listing(app, client, staff.organizer_b) == []
    r = client.patch(f"{URL}/{shop}", json=move, headers=auth(app, staff.admin))
    assert r.status_code == 200 and r.get_json()["org_node_id"] == staff.tree.community_b
    assert _listing(app, client, staff.organizer_b) == [shop]
    assert _listing(app, client, staff.organizer_a) == []
    r = client.patch(
        f"{URL}/{shop}", json={"org_node_id": staff.tree.district}, headers=auth(app, staff.admin)
    )
    assert "org_node_id" in assert_problem(r, 422, "validation_failed")["errors"]
