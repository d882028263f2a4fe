"""GET /api/v1/audit/transactions: filters, keyset pages, totals, scope and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import auth

from .conftest import MEMO

URL = "/api/v1/audit/transactions"


def _search(client, app, user: int, **params):  # type: ignore[no-untyped-def]
    response = client.get(URL, query_string=params, headers=auth(app, user))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _ids(body: dict) -> set[int]:
    return {item["id"] for item in body["items"]}


def test_admin_sees_everything_newest_first_with_entries(app, client, planted):
    body = _search(client, app, planted.w.admin)
    ids = [item["id"] for item in body["items"]]
    assert set(ids) == planted.all_ids
    assert ids == sorted(ids, reverse=True)
    by_id = {item["id"]: item for item in body["items"]}
    sorting = by_id[planted.sorting]
    assert sorting["kind"] == "award" and sorting["rule_code"] == "garbage-sorting"
    assert sorting["rule_version"] == 1 and sorting["amount"] == 5
    assert sorting["actor_user_id"] == planted.w.organizer
    assert sorting["resident_id"] == planted.w.resident
    assert sorting["community_id"] == planted.w.tree.community_a
    assert sorting["community_name"] == "甲社区"
    assert sorting["memo"] == MEMO
    assert sorted(e["amount"] for e in sorting["entries"]) == [-5, 5]
    assert {e["account_kind"] for e in sorting["entries"]} == {"issuance", "resident"}
    reversal = by_id[planted.reversal]
    assert reversal["reverses_id"] == planted.hours and reversal["amount"] == 20
    litter = by_id[planted.litter]
    assert litter["kind"] == "deduction" and litter["amount"] == 5
    assert litter["shortfall"] == 15


@pytest.mark.parametrize("name", [
    "node", "resident", "merchant", "account", "kind", "kinds", "rule", "actor", "amount",
    "reference", "reference_type",
])
def test_each_filter_narrows(app, client, planted, name):
    p, w = planted, planted.w
    cases = {
        "node": ({"node_id": w.tree.community_b}, {p.b_sorting}),
        "resident": ({"resident_id": w.resident}, {p.sorting, p.hours, p.litter, p.reversal}),
        "merchant": ({"merchant_id": p.merchant}, {p.redemption}),
        "account": ({"account_id": p.resident_account},
                    {p.sorting, p.hours, p.litter, p.reversal}),
        "kind": ({"kind": "award"}, {p.sorting, p.hours, p.hours2, p.b_sorting}),
        "kinds": ({"kind": ["reversal", "deduction"]}, {p.reversal, p.litter}),
        # A reversal carries the rule of the posting it reverses.
        "rule": ({"rule": "volunteer-hour"}, {p.hours, p.hours2, p.reversal}),
        "actor": ({"actor_id": w.organizer2}, {p.hours2}),
        "amount": ({"min_amount": 6, "max_amount": 20}, {p.hours, p.hours2, p.reversal}),
        "reference": ({"reference_type": "redemption", "reference_id": "R-1"},
                      {p.redemption}),
        "reference_type": ({"reference_type": "redemption"}, {p.redemption}),
    }
    params, expected = cases[name]
    body = _search(client, app, w.admin, **params)
    assert _ids(body) == expected
    assert body["totals"]["count"] == len(expected)


def test_filters_combine(app, client, planted):
    w = planted.w
    body = _search(client, app, w.admin, resident_id=w.resident, kind="award",
                   rule="garbage-sorting")
    assert _ids(body) == {planted.sorting}


def test_time_range(app, client, planted):
    w = planted.w
    now = datetime.now(UTC)
    past = _search(client, app, w.admin, to=(now - timedelta(days=1)).isoformat())
    assert past["items"] == [] and past["totals"]["count"] == 0
    window = _search(client, app, w.admin, **{"from": (now - timedelta(hours=1)).isoformat(),
                                              "to": (now + timedelta(hours=1)).isoformat()})
    assert _ids(window) == planted.all_ids
    # from is inclusive and to exclusive: a window starting after the first posting's
    # time drops it.
    first = min(window["items"], key=lambda item: item["id"])
    after_first = datetime.fromisoformat(first["created_at"]) + timedelta(microseconds=1)
    later = _search(client, app, w.admin, **{"from": after_first.isoformat()})
    assert first["id"] not in _ids(later)
    exact = _search(client, app, w.admin, **{"from": first["created_at"],
                                             "to": after_first.isoformat()})
    assert first["id"] in _ids(exact)


@pytest.mark.parametrize("window_days", [None, 1, 30])  # none, narrow (sorted), wide (walk)
def test_keyset_pages_cover_every_row_once(app, client, planted, window_days):
    seen: list[int] = []
    cursor = None
    pages = 0
    now = datetime.now(UTC)
    window = {} if window_days is None else {
        "from": (now - timedelta(days=window_days - 0.5)).isoformat(),
        "to": (now + timedelta(days=0.5)).isoformat()}
    while True:
        params = {"limit": 2, **window, **({"cursor": cursor} if cursor else {})}
        body = _search(client, app, planted.w.admin, **params)
        if pages == 0:
            assert body["totals"]["count"] == len(planted.all_ids)
        else:
            assert body["totals"] is None  # totals come with the first page only
        seen.extend(item["id"] for item in body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == len(planted.all_ids)
    assert set(seen) == planted.all_ids and seen == sorted(seen, reverse=True)
    assert pages == 4  # 7 rows, 2 per page


def test_totals_match_items(app, client, planted):
    body = _search(client, app, planted.w.admin, limit=200)
    totals = body["totals"]
    assert totals["count"] == len(body["items"])
    assert totals["amount"] == sum(item["amount"] for item in body["items"])
    assert totals["amount"] == 5 + 20 + 10 + 20 + 5 + 5 + 4
    assert totals["by_kind"]["award"] == {"count": 4, "amount": 40}
    assert totals["by_kind"]["deduction"] == {"count": 1, "amount": 5}
    assert totals["by_kind"]["reversal"] == {"count": 1, "amount": 20}
    assert totals["by_kind"]["redemption"] == {"count": 1, "amount": 4}
    assert _search(client, app, planted.w.admin, totals="false")["totals"] is None


# --- scope ------------------------------------------------------------------------------------


def test_auditor_sees_only_their_community(app, client, planted):
    assert _ids(_search(client, app, planted.w.auditor, limit=200)) == planted.a_ids
    assert _ids(_search(client, app, planted.auditor_b, limit=200)) == {planted.b_sorting}
    # A filter naming the other community's resident finds nothing (not an error, no leak).
    body = _search(client, app, planted.w.auditor, resident_id=planted.w.resident_b)
    assert body["items"] == [] and body["totals"]["count"] == 0


def test_node_outside_scope_is_403(app, client, planted):
    response = client.get(URL, query_string={"node_id": planted.w.tree.community_b},
                          headers=auth(app, planted.w.auditor))
    assert response.status_code == 403
    assert response.get_json()["code"] == "not_in_scope"
    assert response.mimetype == "application/problem+json"
    # Their own community is fine, and a node above it is not theirs either.
    assert _search(client, app, planted.w.auditor, node_id=planted.w.tree.community_a)
    above = client.get(URL, query_string={"node_id": planted.w.tree.street},
                       headers=auth(app, planted.w.auditor))
    assert above.status_code == 403


def test_unknown_node_is_404(app, client, planted):
    response = client.get(URL, query_string={"node_id": 999_999},
                          headers=auth(app, planted.w.admin))
    assert response.status_code == 404


@pytest.mark.parametrize("who", ["resident", "merchant_operator", "organizer"])
def test_other_roles_are_refused(app, client, planted, who):
    user = {"resident": planted.w.resident_user, "merchant_operator": planted.merchant_operator,
            "organizer": planted.w.organizer}[who]
    response = client.get(URL, headers=auth(app, user))
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"


def test_anonymous_is_401(client, planted):
    assert client.get(URL).status_code == 401


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("params,field", [
    ({"from": "yesterday"}, "from"),
    ({"to": "2026-13-01T00:00:00Z"}, "to"),
    ({"parnet_id": 3}, "parnet_id"),
    ({"min_amount": 10, "max_amount": 5}, "min_amount"),
    ({"min_amount": -1}, "min_amount"),
    ({"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, "from"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"cursor": "WyJ4Il0"}, "cursor"),  # base64 of ["x"]: well-formed, not an id
    ({"limit": 201}, "limit"),
    ({"limit": 0}, "limit"),
    ({"kind": "gift"}, "kind"),
    ({"resident_id": "abc"}, "resident_id"),
    ({"node_id": 2**63}, "node_id"),
    ({"rule": "x" * 65}, "rule"),
])
def test_bad_input_is_422_problem(app, client, planted, params, field):
    response = client.get(URL, query_string=params, headers=auth(app, planted.w.admin))
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["code"] == "validation_failed"
    assert field in body["errors"], body
