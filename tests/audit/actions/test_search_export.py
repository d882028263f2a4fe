"""GET /api/v1/audit/actions and its export: filters, pagination, scope, bad input."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.audit.actions.helpers import logged
from tests.factories import PASSWORD, auth, make_user
from tests.ledger.conftest import award, world  # noqa: F401

URL = "/api/v1/audit/actions"


def _activity(client, app, world):  # noqa: F811
    """Awards in A and B, a threshold change in B and a failed login of an unknown account."""
    for _ in range(3):
        assert award(client, app, world.organizer, world.resident, "garbage-sorting"
                     ).status_code == 201
    assert award(client, app, world.organizer_b, world.resident_b, "garbage-sorting"
                 ).status_code == 201
    r = client.put(f"/api/v1/communities/{world.tree.community_b}/ledger-policy",
                   json={"approval_threshold": 120}, headers=auth(app, world.admin))
    assert r.status_code == 200
    client.post("/api/v1/auth/token", json={"username": "nobody", "password": "x-123456"})


def test_filters_and_keyset_pages(app, client, world):  # noqa: F811
    _activity(client, app, world)
    admin_rows = logged(client, app, world.admin)
    ids = [row["id"] for row in admin_rows]
    assert ids == sorted(ids, reverse=True)
    assert {"award.posted", "ledger.threshold_changed", "login.failed"} <= {
        row["action"] for row in admin_rows}
    # Exact name, prefix, actor, target and node.
    assert {row["action"] for row in logged(client, app, world.admin, action="award.")} == {
        "award.posted"}
    assert logged(client, app, world.admin, action="award") == []
    mine = logged(client, app, world.admin, actor=world.organizer_b)
    assert [row["action"] for row in mine] == ["award.posted"]
    target = logged(client, app, world.admin, target_type="community",
                    target_id=str(world.tree.community_b))
    assert [row["action"] for row in target] == ["ledger.threshold_changed"]
    in_b = logged(client, app, world.admin, node_id=world.tree.community_b)
    assert {row["community_id"] for row in in_b} == {world.tree.community_b}
    # Time range: nothing before the first row, everything from it.
    first = min(admin_rows, key=lambda row: row["id"])["created_at"]
    assert logged(client, app, world.admin, to=first) == []
    assert len(logged(client, app, world.admin, **{"from": first})) == len(admin_rows)
    # Pages of two walk the same rows without gaps or repeats.
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get(URL, query_string=query, headers=auth(app, world.admin)).get_json()
        seen += [row["id"] for row in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == ids


def test_scope_isolation(app, client, world):  # noqa: F811
    _activity(client, app, world)
    rows = logged(client, app, world.auditor)  # auditor of community A
    assert rows and {row["community_id"] for row in rows} == {world.tree.community_a}
    # B's awards and policy change, and the login with no node, are out of A's subtree.
    assert not [row for row in rows if row["action"] in ("ledger.threshold_changed",
                                                         "login.failed")]
    r = client.get(URL, query_string={"node_id": world.tree.community_b},
                   headers=auth(app, world.auditor))
    assert r.status_code == 403 and r.get_json()["code"] == "not_in_scope"
    r = client.get(f"{URL}/export", query_string={"node_id": world.tree.community_b},
                   headers=auth(app, world.auditor))
    assert r.status_code == 403
    # Organisers and residents may not read the log at all.
    for user in (world.organizer, world.resident_user):
        assert client.get(URL, headers=auth(app, user)).status_code == 403
        assert client.get(f"{URL}/export", headers=auth(app, user)).status_code == 403
    assert client.get(URL).status_code == 401


@pytest.mark.parametrize("query", [
    {"action": "Award.Posted"}, {"action": "award..posted"}, {"action": "a" * 70},
    {"actor": "abc"}, {"actor": 0}, {"node_id": -1}, {"limit": 0}, {"limit": 1000},
    {"cursor": "not-a-cursor"}, {"from": "2026-13-01T00:00:00Z"},
    {"from": "yesterday"},
    {"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
    {"target_id": "5"}, {"target_type": "Bad Type"}, {"surprise": "1"},
])
def test_bad_input_is_422(app, client, world, query):  # noqa: F811
    r = client.get(URL, query_string=query, headers=auth(app, world.admin))
    assert r.status_code == 422, (query, r.get_json())
    assert r.mimetype == "application/problem+json"


def test_a_time_without_offset_is_utc(app, client, world):  # noqa: F811
    _activity(client, app, world)
    first = min(logged(client, app, world.admin), key=lambda row: row["id"])["created_at"]
    naive = first.split("+")[0]
    assert logged(client, app, world.admin, to=naive) == []
    assert logged(client, app, world.admin, **{"from": naive})


def test_unknown_node_is_404_and_bad_format_422(app, client, world):  # noqa: F811
    r = client.get(URL, query_string={"node_id": 987654}, headers=auth(app, world.admin))
    assert r.status_code == 404
    r = client.get(f"{URL}/export", query_string={"format": "xlsx"},
                   headers=auth(app, world.admin))
    assert r.status_code == 422


def test_export_csv_and_ndjson_and_is_itself_logged(app, client, world):  # noqa: F811
    _activity(client, app, world)
    expected = logged(client, app, world.auditor, action="award.")
    r = client.get(f"{URL}/export", query_string={"format": "csv", "action": "award."},
                   headers=auth(app, world.auditor))
    assert r.status_code == 200 and r.mimetype == "text/csv"
    text = r.get_data(as_text=True)
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert table[0][:4] == ["id", "created_at", "actor_user_id", "action"]
    assert [int(line[0]) for line in table[1:]] == [row["id"] for row in expected]
    r = client.get(f"{URL}/export", query_string={"format": "ndjson", "action": "award."},
                   headers=auth(app, world.auditor))
    assert r.status_code == 200 and r.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in r.get_data(as_text=True).splitlines()]
    assert [line["id"] for line in lines] == [row["id"] for row in expected]
    assert json.loads(lines[0]["detail"])["resident_id"] == world.resident
    exports = logged(client, app, world.auditor, action="audit.export")
    assert len(exports) == 2
    assert exports[0]["actor_user_id"] == world.auditor
    assert exports[0]["community_id"] == world.tree.community_a
    assert exports[0]["detail"]["format"] == "ndjson"
    assert exports[0]["detail"]["filters"]["action"] == "award."


def test_staff_login_is_visible_to_auditors_above_it(app, client, world):  # noqa: F811
    make_user(app, username="a-organiser", role="organizer", node_id=world.tree.community_a)
    r = client.post("/api/v1/auth/token", json={"username": "a-organiser", "password": PASSWORD})
    assert r.status_code == 200
    assert [row["action"] for row in logged(client, app, world.auditor, action="login.")] == [
        "login.succeeded"]
