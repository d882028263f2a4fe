"""The merchant status lifecycle: only the allowed moves, by staff covering the merchant."""

from __future__ import annotations

import pytest

from pointsvc.errors import Conflict, NotFound
from pointsvc.merchants import service
from pointsvc.people.models import MERCHANT_STATUSES
from tests.factories import auth, make_merchant, make_operator
from tests.merchants.test_merchants import assert_problem

URL = "/api/v1/merchants"
ACTIONS = ("approve", "reject", "suspend", "reinstate")
VALID = {
    ("pending", "approve"): "active",
    ("pending", "reject"): "rejected",
    ("active", "suspend"): "suspended",
    ("suspended", "reinstate"): "active",
}
INVALID = [
    (status, action)
    for status in MERCHANT_STATUSES
    for action in ACTIONS
    if (status, action) not in VALID
]


def _body(action: str) -> dict:
    return {"reason": "证照过期"} if action in ("reject", "suspend") else {}


def _status(app, client, merchant_id: int, user: int) -> dict:
    return client.get(f"{URL}/{merchant_id}", headers=auth(app, user)).get_json()


@pytest.mark.parametrize(("start", "action"), list(VALID))
def test_each_valid_transition(app, client, staff, start, action):
    shop = make_merchant(app, node_id=staff.tree.grid_a, status=start)
    r = client.post(
        f"{URL}/{shop}/{action}", json=_body(action), headers=auth(app, staff.organizer_a)
    )
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == VALID[(start, action)]
    assert body["status_reason"] == _body(action).get("reason")
    assert body["status_changed_by"] == staff.organizer_a
    assert body["status_changed_at"] is not None
    assert _status(app, client, shop, staff.admin)["status"] == VALID[(start, action)]


@pytest.mark.parametrize(("start", "action"), INVALID)
def test_each_invalid_transition_is_409_and_changes_nothing(app, client, staff, start, action):
    shop = make_merchant(app, node_id=staff.tree.community_a, status=start)
    before = _status(app, client, shop, staff.admin)
    r = client.post(
        f"{URL}/{shop}/{action}", json=_body(action), headers=auth(app, staff.organizer_a)
    )
    body = assert_problem(r, 409, "invalid_state")
    assert body["current_status"] == start
    assert _status(app, client, shop, staff.admin) == before


def test_a_full_life_records_the_latest_reason(app, client, staff):
    shop = client.post(
        f"{URL}/applications",
        json={
            "name": "好邻居便利店",
            "address": "江南大道 1024 号",
            "category": "grocery",
            "org_node_id": staff.tree.community_a,
            "contact_name": "刘德胜",
            "contact_phone": "13900000102",
        },
    ).get_json()["id"]
    headers = auth(app, staff.organizer_a)
    assert client.post(f"{URL}/{shop}/approve", json={}, headers=headers).status_code == 200
    r = client.post(f"{URL}/{shop}/suspend", json={"reason": "投诉核查中"}, headers=headers)
    assert r.get_json()["status_reason"] == "投诉核查中"
    r = client.post(f"{URL}/{shop}/reinstate", json={"reason": "核查完毕"}, headers=headers)
    assert r.get_json()["status"] == "active"
    assert r.get_json()["status_reason"] == "核查完毕"
    # approving needs no body at all
    r = client.post(f"{URL}/{shop}/suspend", json={"reason": "再次投诉"}, headers=headers)
    assert r.get_json()["status"] == "suspended"
    r = client.post(f"{URL}/{shop}/reinstate", headers=headers)
    assert r.status_code == 200 and r.get_json()["status_reason"] is None


@pytest.mark.parametrize("action", ["reject", "suspend"])
@pytest.mark.parametrize(
    "body",
    [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}, {"reason": 5}, {"why": "x"}],
)
def test_reject_and_suspend_need_a_reason(app, client, staff, action, body):
    start = "pending" if action == "reject" else "active"
    shop = make_merchant(app, node_id=staff.tree.community_a, status=start)
    r = client.post(f"{URL}/{shop}/{action}", json=body, headers=auth(app, staff.organizer_a))
    assert_problem(r, 422, "validation_failed")
    assert _status(app, client, shop, staff.admin)["status"] == start


@pytest.mark.parametrize(("start", "action"), list(VALID))
def test_staff_of_another_community_cannot_move_it(app, client, staff, start, action):
    shop = make_merchant(app, node_id=staff.tree.community_a, status=start)
    url = f"{URL}/{shop}/{action}"
    r = client.post(url, json=_body(action), headers=auth(app, staff.organizer_b))
    assert_problem(r, 403, "not_in_scope")
    # a grid organizer does not cover the community's own merchants
    r = client.post(url, json=_body(action), headers=auth(app, staff.organizer_grid_a))
    assert_problem(r, 403, "not_in_scope")
    r = client.post(url, json=_body(action), headers=auth(app, staff.auditor_a))
    assert_problem(r, 403, "forbidden")
    operator = make_operator(app, merchant_id=shop)
    r = client.post(url, json=_body(action), headers=auth(app, operator))
    assert_problem(r, 403, "forbidden")
    assert _status(app, client, shop, staff.admin)["status"] == start


# -- the guard later code uses -------------------------------------------------------------


def test_ensure_active_guards_trading(app, staff):
    ids = {
        status: make_merchant(app, node_id=staff.tree.community_a, status=status)
        for status in MERCHANT_STATUSES
    }
    with app.app_context():
        assert service.ensure_active(ids["active"]).id == ids["active"]
        assert service.ensure_active(ids["active"], lock=True).status == "active"
        with pytest.raises(Conflict) as caught:
            service.ensure_active(ids["suspended"])
        assert (caught.value.code, caught.value.status) == ("merchant_suspended", 409)
        for status in ("pending", "rejected"):
            with pytest.raises(Conflict) as caught:
                service.ensure_active(merchant_id=ids[status])
            assert caught.value.code == "merchant_not_active"
        for missing in (987654, 0, 2**70):
            with pytest.raises(NotFound):
                service.ensure_active(missing)


def test_ensure_active_follows_suspension_and_reinstatement(app, client, staff):
    shop = make_merchant(app, node_id=staff.tree.community_a)
    headers = auth(app, staff.organizer_a)
    client.post(f"{URL}/{shop}/suspend", json={"reason": "整改"}, headers=headers)
    with app.app_context(), pytest.raises(Conflict, match="suspended"):
        service.ensure_active(shop)
    client.post(f"{URL}/{shop}/reinstate", json={}, headers=headers)
    with app.app_context():
        assert service.ensure_active(shop).status == "active"


def test_racing_decisions_on_one_application_let_exactly_one_win(app, staff):
    from concurrent.futures import ThreadPoolExecutor

    shop = make_merchant(app, node_id=staff.tree.community_a, status="pending")
    headers = auth(app, staff.organizer_a)
    moves = [("approve", {}), ("reject", {"reason": "重复申请"})] * 4

    def decide(move):  # type: ignore[no-untyped-def]
        action, body = move
        return app.test_client().post(f"{URL}/{shop}/{action}", json=body, headers=headers)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(decide, moves))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 7, codes
    winner = next(r.get_json() for r in responses if r.status_code == 200)
    final = app.test_client().get(f"{URL}/{shop}", headers=auth(app, staff.admin)).get_json()
    assert final["status"] == winner["status"] in ("active", "rejected")
