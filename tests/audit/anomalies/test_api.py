"""GET /api/v1/audit/anomalies: who may ask, over which subtree, the window, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pointsvc.extensions import db
from pointsvc.people.models import StaffHousehold
from tests.audit.anomalies.conftest import URL, anomalies, award, items_of, today
from tests.factories import auth, make_household, make_merchant, make_operator, make_resident


def _block(app, client, world, staff: int, community: int) -> int:
    """Plant one refused self-dealing award by `staff` in `community`; the relative's id."""
    household = make_household(app, community_id=community)
    _, relative = make_resident(app, community_id=community, household_id=household)
    with app.app_context():
        db.session.add(StaffHousehold(user_id=staff, household_id=household))
        db.session.commit()
    assert award(client, app, staff, relative).status_code == 403
    return relative


@pytest.fixture
def planted(app, client, world):
    _block(app, client, world, world.organizer, world.tree.community_a)
    _block(app, client, world, world.organizer_b, world.tree.community_b)
    return world


def _subjects(response) -> set[tuple[str, int, int]]:
    return {(i["detector"], i["subject"]["id"], i["community_id"]) for i in items_of(response)}


def test_each_community_sees_only_its_own_anomalies(app, client, planted):
    w = planted
    mine = {("blocked_self_dealing", w.organizer, w.tree.community_a)}
    theirs = {("blocked_self_dealing", w.organizer_b, w.tree.community_b)}
    for user in (w.organizer, w.organizer2, w.auditor):
        assert _subjects(anomalies(client, app, user, **today())) == mine
    for user in (w.organizer_b, w.auditor_b):
        assert _subjects(anomalies(client, app, user, **today())) == theirs
    assert _subjects(anomalies(client, app, w.admin, **today())) == mine | theirs
    # A node filter narrows the admin's report to that subtree.
    assert _subjects(anomalies(client, app, w.admin, node_id=w.tree.community_b,
                               **today())) == theirs
    assert _subjects(anomalies(client, app, w.auditor, node_id=w.tree.grid_a, **today())) == set()


def test_a_node_outside_the_scope_is_403_and_a_missing_node_404(app, client, planted):
    w = planted
    r = anomalies(client, app, w.organizer_b, node_id=w.tree.community_a)
    assert r.status_code == 403 and r.get_json()["code"] == "not_in_scope"
    assert r.mimetype == "application/problem+json"
    r = anomalies(client, app, w.auditor, node_id=w.tree.street)  # above the grant: not covered
    assert r.status_code == 403 and r.get_json()["code"] == "not_in_scope"
    r = anomalies(client, app, w.admin, node_id=987654)
    assert r.status_code == 404 and r.get_json()["code"] == "not_found"


def test_residents_merchants_and_strangers_are_refused(app, client, planted):
    w = planted
    r = anomalies(client, app, w.residents[0][0])
    assert r.status_code == 403 and r.get_json()["code"] == "forbidden"
    operator = make_operator(app, merchant_id=make_merchant(app, node_id=w.tree.community_a))
    assert anomalies(client, app, operator).status_code == 403
    r = client.get(URL)
    assert r.status_code == 401 and r.mimetype == "application/problem+json"


@pytest.mark.parametrize("params, field", [
    ({"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "to"),
    ({"from": "2026-11-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "to"),
    ({"from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),
    ({"from": "2026-11-01T00:00:00"}, "from"),  # no offset: ambiguous
    ({"from": "yesterday"}, "from"),
    ({"to": "2026-13-01T00:00:00Z"}, "to"),
    ({"node_id": "abc"}, "node_id"),
    ({"node_id": "0"}, "node_id"),
    ({"node_id": str(2**64)}, "node_id"),
    ({"detector": "astrology"}, "detector"),
    ({"color": "red"}, "color"),
])
def test_bad_input_is_422_problem_json(app, client, planted, params, field):
    r = anomalies(client, app, planted.auditor, **params)
    assert r.status_code == 422, r.get_json()
    body = r.get_json()
    assert r.mimetype == "application/problem+json" and body["code"] == "validation_failed"
    assert field in body["errors"]


def test_the_window_defaults_to_the_last_30_days_and_follows_the_settings(app, client, planted):
    w = planted
    r = anomalies(client, app, w.auditor)
    assert r.status_code == 200
    body = r.get_json()
    start = datetime.fromisoformat(body["from"])
    end = datetime.fromisoformat(body["to"])
    assert end - start == timedelta(days=30)
    assert abs((end - datetime.now(UTC)).total_seconds()) < 60
    assert len(body["items"]) == 1 and body["truncated"] == []
    assert body["settings"]["ANOMALY_REPEAT_MIN_AWARDS"] == 10
    # `to` alone: the 30 days before it (last week: nothing planted yet).
    week_ago = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert items_of(anomalies(client, app, w.auditor, to=week_ago)) == []
    app.config["ANOMALY_MAX_DAYS"] = 7
    r = anomalies(client, app, w.auditor)
    assert r.status_code == 422 and "to" in r.get_json()["errors"]
    app.config["ANOMALY_DEFAULT_DAYS"] = 7
    assert len(items_of(anomalies(client, app, w.auditor))) == 1


def test_detector_filter_language_and_item_cap(app, client, planted):
    w = planted
    assert anomalies(client, app, w.auditor, detector="high_earner",
                     **today()).get_json()["items"] == []
    (item,) = items_of(anomalies(client, app, w.auditor, detector=["blocked_self_dealing",
                                                                    "high_earner"], **today()))
    assert "拦截" in item["summary"]
    (item,) = items_of(anomalies(client, app, w.auditor, lang="en", **today()))
    assert item["summary"].startswith(f"Staff user {w.organizer}: 1 blocked attempts")
    assert item["severity"] == "medium"
    # More anomalies than ANOMALY_MAX_ITEMS: the largest are kept and the detector is named.
    _block(app, client, w, w.organizer2, w.tree.community_a)
    app.config["ANOMALY_MAX_ITEMS"] = 1
    body = anomalies(client, app, w.auditor, **today()).get_json()
    assert len(body["items"]) == 1 and body["truncated"] == ["blocked_self_dealing"]


def test_an_organizer_with_grants_on_two_communities_sees_both(app, client, planted):
    from pointsvc.people.models import RoleGrant

    w = planted
    with app.app_context():
        db.session.add(RoleGrant(user_id=w.organizer2, role="organizer",
                                 org_node_id=w.tree.community_b))
        db.session.add(RoleGrant(user_id=w.organizer2, role="organizer",
                                 org_node_id=w.tree.grid_b))  # covered by B already
        db.session.commit()
    assert {s[2] for s in _subjects(anomalies(client, app, w.organizer2, **today()))} == {
        w.tree.community_a, w.tree.community_b}
    r = client.get(URL, query_string=today(), headers=auth(app, w.organizer2,
                                                            **{"Accept-Language": "en"}))
    assert all(item["summary"].startswith("Staff user") for item in r.get_json()["items"])


def test_the_cli_prints_one_json_line_per_anomaly(app, planted):
    import json

    w = planted
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "anomalies", "--english"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert {(i["subject"]["id"], i["community_id"]) for i in lines} == {
        (w.organizer, w.tree.community_a), (w.organizer_b, w.tree.community_b)}
    assert all(i["summary"].startswith("Staff user") for i in lines)
    result = runner.invoke(args=["audit", "anomalies", "--node", str(w.tree.community_b),
                                 "--detector", "blocked_self_dealing"])
    assert result.exit_code == 0, result.output
    (line,) = result.output.splitlines()
    assert json.loads(line)["subject"]["id"] == w.organizer_b and "拦截" in line
    assert runner.invoke(args=["audit", "anomalies", "--node", "987654"]).exit_code == 2
    bad = runner.invoke(args=["audit", "anomalies", "--from", "2026-11-02T00:00:00Z",
                              "--to", "2026-11-01T00:00:00Z"])
    assert bad.exit_code == 2 and "to" in bad.output
