"""Rule validation and windows, statement filters, idempotency retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pointsvc.extensions import db
from tests.factories import auth
from tests.ledger.conftest import award, make_rule, new_key


def rule_body(world, **overrides):
    return {"org_node_id": world.tree.community_a, "code": "tree-planting", "title_zh": "植树",
            "title_en": "Tree planting", "category": "environment", "points": 4, **overrides}


def test_rule_validation(app, client, world):
    headers = auth(app, world.organizer)
    for bad in ({"points": 0}, {"points": 1.5}, {"points": "4"}, {"category": "sports"},
                {"unit": "day"}, {"code": "Has Space"}, {"cap_day": 0}, {"title_zh": ""},
                {"title_zh": "长" * 201}, {"surprise": True},
                {"active_from": "2026-12-01T00:00:00+08:00",
                 "active_until": "2026-11-01T00:00:00+08:00"},
                {"active_from": "2026-12-01T00:00:00"}):
        r = client.post("/api/v1/rules", json=rule_body(world, **bad), headers=headers)
        assert r.status_code == 422, (bad, r.get_json())
        assert r.get_json()["code"] == "validation_failed"
    assert client.post("/api/v1/rules", json=rule_body(world), headers=headers).status_code == 201
    r = client.post("/api/v1/rules", json=rule_body(world), headers=headers)
    assert r.status_code == 409
    # Staff of community B cannot define rules for A; auditors cannot define rules at all.
    assert client.post("/api/v1/rules", json=rule_body(world, code="x1"),
                       headers=auth(app, world.organizer_b)).status_code == 403
    assert client.post("/api/v1/rules", json=rule_body(world, code="x2"),
                       headers=auth(app, world.auditor)).status_code == 403


def test_a_window_with_an_offset_is_kept_as_the_same_instant(app, client, world):
    headers = auth(app, world.organizer)
    body = rule_body(world, active_from="2026-12-01T00:00:00+08:00",
                     active_until="2026-12-31T16:00:00+00:00")
    created = client.post("/api/v1/rules", json=body, headers=headers)
    assert created.status_code == 201, created.get_json()
    read = client.get(f"/api/v1/rules/{created.get_json()['id']}", headers=headers).get_json()
    assert datetime.fromisoformat(read["active_from"]) == datetime(2026, 11, 30, 16, tzinfo=UTC)
    edited = client.patch(f"/api/v1/rules/{read['id']}", headers=headers,
                          json={"active_from": "2026-12-02T08:00:00+08:00"})
    assert edited.status_code == 200, edited.get_json()
    after = client.get(f"/api/v1/rules/{edited.get_json()['id']}", headers=headers).get_json()
    assert datetime.fromisoformat(after["active_from"]) == datetime(2026, 12, 2, 0, tzinfo=UTC)
    assert datetime.fromisoformat(after["active_until"]) == datetime(2026, 12, 31, 16,
                                                                     tzinfo=UTC)


def test_inactive_retired_and_foreign_rules_cannot_be_used(app, client, world):
    future = datetime.now(UTC) + timedelta(days=3)
    make_rule(app, node_id=world.tree.community_a, code="future-rule", points=3,
              active_from=future)
    make_rule(app, node_id=world.tree.community_b, code="b-only", points=3)
    assert award(client, app, world.organizer, world.resident, "future-rule"
                 ).get_json()["code"] == "rule_not_found"
    assert award(client, app, world.organizer, world.resident, "b-only"
                 ).get_json()["code"] == "rule_not_found"
    rules = client.get("/api/v1/rules", headers=auth(app, world.resident_user)).get_json()
    codes = {r["code"] for r in rules["items"]}
    assert "b-only" not in codes and "garbage-sorting" in codes
    retired = make_rule(app, node_id=world.tree.community_a, code="old-rule", points=3)
    r = client.patch(f"/api/v1/rules/{retired}", json={"retired": True},
                     headers=auth(app, world.organizer))
    assert r.status_code == 200
    assert award(client, app, world.organizer, world.resident, "old-rule"
                 ).get_json()["code"] == "rule_not_found"
    # A resident of B cannot read A's rule versions.
    assert client.get(f"/api/v1/rules/{retired}", headers=auth(app, world.resident_b_user)
                      ).status_code == 403


def test_statement_filters_and_pagination(app, client, world):
    award(client, app, world.organizer, world.resident, "garbage-sorting")
    award(client, app, world.organizer, world.resident, "volunteer-hour", 60)
    award(client, app, world.organizer, world.resident, "garbage-sorting")
    headers = auth(app, world.resident_user)
    items = client.get("/api/v1/me/entries?category=environment", headers=headers
                       ).get_json()["items"]
    assert [i["rule_code"] for i in items] == ["garbage-sorting", "garbage-sorting"]
    page1 = client.get("/api/v1/me/entries?limit=2", headers=headers).get_json()
    assert len(page1["items"]) == 2 and page1["next_cursor"]
    page2 = client.get(f"/api/v1/me/entries?limit=2&cursor={page1['next_cursor']}",
                       headers=headers).get_json()
    assert len(page2["items"]) == 1 and page2["next_cursor"] is None
    ids = [i["entry_id"] for i in page1["items"] + page2["items"]]
    assert ids == sorted(ids, reverse=True)
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    empty = client.get("/api/v1/me/entries", query_string={"from": later}, headers=headers)
    assert empty.status_code == 200 and empty.get_json()["items"] == []
    assert client.get("/api/v1/me/entries?cursor=@@@", headers=headers).status_code == 422
    assert client.get("/api/v1/me/entries?limit=1000", headers=headers).status_code == 422
    english = client.get("/api/v1/me/entries?limit=1",
                         headers={**headers, "Accept-Language": "en"}).get_json()["items"][0]
    assert english["rule_title"] == "Rule garbage-sorting"


def test_idempotency_keys_are_kept_then_purged(app, client, world):
    from pointsvc.ledger.models import IdempotencyKey

    award(client, app, world.organizer, world.resident, "garbage-sorting", key="keep-me")
    runner = app.test_cli_runner()
    assert "purged 0" in runner.invoke(args=["ledger", "purge-idempotency"]).output
    with app.app_context():
        row = db.session.query(IdempotencyKey).one()
        row.created_at = datetime.now(UTC) - timedelta(hours=49)
        db.session.commit()
    assert "purged 1" in runner.invoke(args=["ledger", "purge-idempotency"]).output


def test_transaction_visibility(app, client, world):
    tx = award(client, app, world.organizer, world.resident, "garbage-sorting",
               memo="按时投放").get_json()
    own = client.get(f"/api/v1/transactions/{tx['id']}", headers=auth(app, world.resident_user))
    assert own.status_code == 200 and own.get_json()["memo"] == "按时投放"
    for outsider in (world.resident2_user, world.organizer_b):
        r = client.get(f"/api/v1/transactions/{tx['id']}", headers=auth(app, outsider))
        assert r.status_code == 403
    assert client.get("/api/v1/transactions/987654", headers=auth(app, world.admin)
                      ).status_code == 404
    assert client.get(f"/api/v1/transactions/{tx['id']}").status_code == 401
    headers = auth(app, world.organizer, **{"Idempotency-Key": new_key()})
    assert client.post(f"/api/v1/transactions/{tx['id']}/reversal", json={},
                       headers=headers).status_code == 422
