"""Awards, deductions, caps, approvals and reversals over the API."""

from __future__ import annotations

from tests.factories import auth
from tests.ledger.conftest import award, balance_of, new_key


def test_award_posts_points_and_entries(app, client, world):
    r = award(client, app, world.organizer, world.resident, "garbage-sorting", 2,
              memo="分类准确", evidence_ref="photo:123")
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["kind"] == "award"
    assert body["points"] == 10
    assert body["rule_code"] == "garbage-sorting" and body["rule_version"] == 1
    assert sum(e["amount"] for e in body["entries"]) == 0
    assert balance_of(app, world.resident) == 10
    # The resident sees it in their statement with the rule title and memo.
    r = client.get("/api/v1/me/entries", headers=auth(app, world.resident_user))
    assert r.status_code == 200
    item = r.get_json()["items"][0]
    assert item["amount"] == 10 and item["rule_title"] == "规则garbage-sorting"
    assert item["memo"] == "分类准确" and item["balance_after"] == 10
    assert item["counterparty"]["kind"] == "issuance"


def test_hourly_rule_rounds_minutes_down(app, client, world):
    r = award(client, app, world.organizer, world.resident, "volunteer-hour", 95)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["points"] == 15  # 10 points/h × 95 min = 15.8 → 15


def test_deduction_never_goes_below_zero_and_records_shortfall(app, client, world):
    assert award(client, app, world.organizer, world.resident, "garbage-sorting", 1
                 ).status_code == 201
    r = award(client, app, world.organizer, world.resident, "litter", 1)
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["kind"] == "deduction"
    assert body["points"] == -5 and body["shortfall"] == 15
    assert balance_of(app, world.resident) == 0


def test_cap_holds(app, client, world):
    statuses = [award(client, app, world.organizer, world.resident, "garbage-sorting", 1
                      ).status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 409]
    assert balance_of(app, world.resident) == 15


def test_approval_flow_requires_a_second_staff_member(app, client, world):
    r = award(client, app, world.organizer, world.resident, "mediation", 1)
    assert r.status_code == 202, r.get_json()
    pending = r.get_json()
    assert pending["status"] == "pending" and pending["reason_required"] == "rule_requires_approval"
    assert balance_of(app, world.resident) == 0
    # The requester cannot approve their own request.
    r = client.post(f"/api/v1/approvals/{pending['id']}/approve", json={},
                    headers=auth(app, world.organizer))
    assert r.status_code == 403
    # Staff of another community cannot see or decide it.
    r = client.post(f"/api/v1/approvals/{pending['id']}/approve", json={},
                    headers=auth(app, world.organizer_b))
    assert r.status_code == 403 and r.get_json()["code"] == "not_in_scope"
    r = client.get("/api/v1/approvals", headers=auth(app, world.organizer2))
    assert [p["id"] for p in r.get_json()["items"]] == [pending["id"]]
    r = client.post(f"/api/v1/approvals/{pending['id']}/approve", json={"reason": "核实"},
                    headers=auth(app, world.organizer2))
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "approved" and r.get_json()["transaction_id"]
    assert balance_of(app, world.resident) == 50
    # Deciding twice is refused.
    r = client.post(f"/api/v1/approvals/{pending['id']}/reject", json={"reason": "x"},
                    headers=auth(app, world.admin))
    assert r.status_code == 409


def test_manual_adjustment_needs_approval_and_rejection_posts_nothing(app, client, world):
    r = client.post("/api/v1/awards", json={"resident_id": world.resident, "points": 30},
                    headers=auth(app, world.organizer, **{"Idempotency-Key": new_key()}))
    assert r.status_code == 202 and r.get_json()["reason_required"] == "manual_adjustment"
    pid = r.get_json()["id"]
    r = client.post(f"/api/v1/approvals/{pid}/reject", json={},
                    headers=auth(app, world.organizer2))
    assert r.status_code == 422  # a rejection needs a reason
    r = client.post(f"/api/v1/approvals/{pid}/reject", json={"reason": "证据不足"},
                    headers=auth(app, world.organizer2))
    assert r.status_code == 200 and r.get_json()["status"] == "rejected"
    assert balance_of(app, world.resident) == 0


def test_above_threshold_goes_to_approval(app, client, world):
    r = client.put(f"/api/v1/communities/{world.tree.community_a}/ledger-policy",
                   json={"approval_threshold": 12}, headers=auth(app, world.admin))
    assert r.status_code == 200
    r = award(client, app, world.organizer, world.resident, "volunteer-hour", 120)
    assert r.status_code == 202 and r.get_json()["reason_required"] == "above_threshold"


def test_staff_cannot_award_themselves_or_their_household(app, client, world):
    from pointsvc.extensions import db
    from pointsvc.ledger.models import AuditEvent
    from pointsvc.people.models import Household, Resident, StaffHousehold

    with app.app_context():
        household = Household(community_id=world.tree.community_a, label="幸福里 3-201")
        db.session.add(household)
        db.session.flush()
        db.session.get(Resident, world.resident).household_id = household.id
        db.session.add(StaffHousehold(user_id=world.organizer, household_id=household.id))
        db.session.commit()
    r = award(client, app, world.organizer, world.resident, "garbage-sorting", 1)
    assert r.status_code == 403 and r.get_json()["code"] == "self_dealing"
    assert balance_of(app, world.resident) == 0
    with app.app_context():
        from sqlalchemy import select

        actions = list(db.session.scalars(select(AuditEvent.action)))
    assert "award.blocked_self_dealing" in actions
    # Another organizer may award them.
    assert award(client, app, world.organizer2, world.resident, "garbage-sorting", 1
                 ).status_code == 201


def test_reversal_once_and_idempotent(app, client, world):
    tx = award(client, app, world.organizer, world.resident, "garbage-sorting", 3).get_json()
    headers = auth(app, world.organizer2, **{"Idempotency-Key": new_key()})
    r = client.post(f"/api/v1/transactions/{tx['id']}/reversal", json={"reason": "录入错误"},
                    headers=headers)
    assert r.status_code == 201, r.get_json()
    reversal = r.get_json()
    assert reversal["reverses_id"] == tx["id"] and reversal["points"] == -15
    assert balance_of(app, world.resident) == 0
    # Same key: the same answer. Another key: the first reversal, not a second one.
    again = client.post(f"/api/v1/transactions/{tx['id']}/reversal", json={"reason": "录入错误"},
                        headers=headers)
    assert again.status_code == 201 and again.get_json()["id"] == reversal["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = client.post(f"/api/v1/transactions/{tx['id']}/reversal", json={"reason": "again"},
                        headers=auth(app, world.organizer2, **{"Idempotency-Key": new_key()}))
    assert other.status_code == 200 and other.get_json()["id"] == reversal["id"]
    # A reversal cannot be reversed.
    r = client.post(f"/api/v1/transactions/{reversal['id']}/reversal", json={"reason": "x"},
                    headers=auth(app, world.organizer2, **{"Idempotency-Key": new_key()}))
    assert r.status_code == 422 and r.get_json()["code"] == "not_reversible"
    # The cap room came back with the reversal.
    assert award(client, app, world.organizer, world.resident, "garbage-sorting", 3
                 ).status_code == 201


def test_reversal_that_would_overdraw_is_refused(app, client, world):
    tx = award(client, app, world.organizer, world.resident, "garbage-sorting", 2).get_json()
    assert award(client, app, world.organizer, world.resident, "litter", 1).status_code == 201
    r = client.post(f"/api/v1/transactions/{tx['id']}/reversal", json={"reason": "错误"},
                    headers=auth(app, world.organizer2, **{"Idempotency-Key": new_key()}))
    assert r.status_code == 409
    body = r.get_json()
    assert body["code"] == "insufficient_points" and body["needed"] == 10
    assert body["available"] == 0


def test_idempotent_replay_and_key_reuse(app, client, world):
    first = award(client, app, world.organizer, world.resident, "garbage-sorting", 1, key="k-1")
    replay = award(client, app, world.organizer, world.resident, "garbage-sorting", 1, key="k-1")
    assert first.status_code == replay.status_code == 201
    assert first.get_json() == replay.get_json()
    other = award(client, app, world.organizer, world.resident, "garbage-sorting", 2, key="k-1")
    assert other.status_code == 409 and other.get_json()["code"] == "idempotency_key_reused"
    assert balance_of(app, world.resident) == 5


def test_bad_award_input(app, client, world):
    def post(body, key=True):
        headers = auth(app, world.organizer)
        if key is True:
            headers["Idempotency-Key"] = new_key()
        elif key:
            headers["Idempotency-Key"] = key
        return client.post("/api/v1/awards", json=body, headers=headers)

    base = {"resident_id": world.resident, "rule_code": "garbage-sorting"}
    for quantity in (0, -1, 1.5, "3", 2**70, None):
        r = post({**base, "quantity": quantity})
        assert r.status_code == 422, (quantity, r.get_json())
    assert post({**base, "quantity": 1, "extra": 1}).status_code == 422
    assert post({**base, "rule_code": "no-such-rule", "quantity": 1}).get_json()["code"] == (
        "rule_not_found")
    assert post({"resident_id": 999999, "rule_code": "garbage-sorting", "quantity": 1}
                ).status_code == 404
    r = post({"resident_id": world.resident_b, "rule_code": "garbage-sorting", "quantity": 1})
    assert r.status_code == 403 and r.get_json()["code"] == "not_in_scope"
    assert post({**base, "quantity": 1}, key=False).status_code == 400
    assert post({**base, "quantity": 1}, key="x" * 129).status_code == 400
    assert post({**base, "quantity": 1}, key="bad key!").status_code == 400
    assert balance_of(app, world.resident) == 0


def test_residents_and_auditors_cannot_award(app, client, world):
    assert award(client, app, world.resident_user, world.resident2, "garbage-sorting"
                 ).status_code == 403
    assert award(client, app, world.auditor, world.resident, "garbage-sorting").status_code == 403


def test_rule_edit_makes_new_version_and_old_postings_keep_theirs(app, client, world):
    tx1 = award(client, app, world.organizer, world.resident, "garbage-sorting").get_json()
    rules = client.get(f"/api/v1/rules?node_id={world.tree.community_a}",
                       headers=auth(app, world.organizer)).get_json()["items"]
    rule = next(r for r in rules if r["code"] == "garbage-sorting")
    r = client.patch(f"/api/v1/rules/{rule['id']}", json={"points": 6},
                     headers=auth(app, world.admin))
    assert r.status_code == 200 and r.get_json()["version"] == 2
    tx2 = award(client, app, world.organizer, world.resident, "garbage-sorting").get_json()
    assert (tx1["rule_version"], tx1["points"]) == (1, 5)
    assert (tx2["rule_version"], tx2["points"]) == (2, 6)
    versions = client.get(f"/api/v1/rules/{rule['id']}/versions",
                          headers=auth(app, world.auditor)).get_json()["items"]
    assert [v["version"] for v in versions] == [2, 1]
    # Editing the old version is refused; organizers of community A cannot edit district rules.
    assert client.patch(f"/api/v1/rules/{rule['id']}", json={"points": 7},
                        headers=auth(app, world.admin)).status_code == 409
    assert client.patch(f"/api/v1/rules/{r.get_json()['id']}", json={"points": 7},
                        headers=auth(app, world.organizer)).status_code == 403


def test_rule_override_lower_down(app, client, world):
    r = client.post("/api/v1/rules", json={
        "org_node_id": world.tree.community_a, "code": "garbage-sorting", "title_zh": "垃圾分类",
        "title_en": "Garbage sorting", "category": "environment", "points": 8,
    }, headers=auth(app, world.organizer))
    assert r.status_code == 201, r.get_json()
    assert award(client, app, world.organizer, world.resident, "garbage-sorting"
                 ).get_json()["points"] == 8
    assert award(client, app, world.organizer_b, world.resident_b, "garbage-sorting"
                 ).get_json()["points"] == 5


def test_account_reading_and_scope(app, client, world):
    award(client, app, world.organizer, world.resident, "garbage-sorting", 2)
    me = client.get("/api/v1/me/account", headers=auth(app, world.resident_user)).get_json()
    assert me["balance"] == 10 and me["total_earned"] == 10 and me["spendable"] == 10
    account_id = me["id"]
    assert client.get(f"/api/v1/accounts/{account_id}", headers=auth(app, world.auditor)
                      ).status_code == 200
    assert client.get(f"/api/v1/accounts/{account_id}", headers=auth(app, world.organizer_b)
                      ).status_code == 403
    assert client.get(f"/api/v1/accounts/{account_id}", headers=auth(app, world.resident2_user)
                      ).status_code == 403
    r = client.get(f"/api/v1/accounts/{account_id}/entries?limit=1",
                   headers=auth(app, world.auditor))
    assert r.status_code == 200 and len(r.get_json()["items"]) == 1
