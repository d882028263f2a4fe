"""Staff actions on the ledger side are logged with actor, target, address and before/after."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from pointsvc.extensions import db
from tests.audit.actions.helpers import all_audit_text, logged, one
from tests.factories import PASSWORD, auth, make_user
from tests.ledger.conftest import award, new_key, world  # noqa: F401


@pytest.mark.parametrize("statement", ["UPDATE audit_events SET action = 'x'",
                                       "UPDATE audit_events SET before_values = NULL",
                                       "DELETE FROM audit_events"])
def test_the_log_is_append_only(app, client, world, statement):  # noqa: F811
    r = client.put(f"/api/v1/communities/{world.tree.community_a}/ledger-policy",
                   json={"approval_threshold": 150}, headers=auth(app, world.admin))
    assert r.status_code == 200
    with app.app_context():
        with pytest.raises(DatabaseError, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()
        assert db.session.scalar(text("SELECT count(*) FROM audit_events")) >= 1
        db.session.remove()


def test_staff_logins_and_failed_logins(app, client, world):  # noqa: F811
    make_user(app, username="ops-lead", role="organizer", node_id=world.tree.community_a)
    ok = client.post("/api/v1/auth/token", json={"username": "ops-lead", "password": PASSWORD})
    assert ok.status_code == 200
    bad = client.post("/api/v1/auth/token", json={"username": "ops-lead", "password": "nope-x1"})
    assert bad.status_code == 401
    ghost = client.post("/api/v1/auth/token",
                        json={"username": "13800001111", "password": "whatever-1"})
    assert ghost.status_code == 401
    rows = logged(client, app, world.admin, action="login.")
    by_reason = {(row["action"], (row["detail"] or {}).get("reason")): row for row in rows}
    success = by_reason[("login.succeeded", None)]
    assert success["target_type"] == "user" and success["actor_user_id"] is not None
    assert success["community_id"] == world.tree.community_a
    assert success["client_address"]
    failed = by_reason[("login.failed", "wrong_password")]
    assert failed["target_id"] == success["target_id"]
    unknown = by_reason[("login.failed", "unknown_account")]
    assert unknown["actor_user_id"] is None and unknown["target_id"] is None
    # Neither the typed username nor the typed phone is ever stored.
    stored = all_audit_text(app)
    assert "ops-lead" not in stored and "13800001111" not in stored


def test_resident_logins_are_not_logged(app, client, world):  # noqa: F811
    with app.app_context():
        from pointsvc.people.models import User

        phone = db.session.get(User, world.resident_user).phone
        db.session.remove()
    r = client.post("/api/v1/auth/token", json={"username": phone, "password": PASSWORD})
    assert r.status_code == 200
    assert logged(client, app, world.admin, action="login.") == []


def test_rule_created_and_edited_with_versions(app, client, world):  # noqa: F811
    r = client.post("/api/v1/rules", json={
        "org_node_id": world.tree.community_a, "code": "tree-planting", "title_zh": "植树",
        "title_en": "Tree planting", "category": "environment", "points": 8},
        headers=auth(app, world.organizer))
    assert r.status_code == 201, r.get_json()
    rule_id = r.get_json()["id"]
    created = one(client, app, world.admin, action="rule.created", actor=world.organizer)
    assert created["actor_user_id"] == world.organizer
    assert created["target_id"] == str(rule_id) and created["before"] is None
    assert created["after"]["points"] == 8 and created["after"]["version"] == 1
    r = client.patch(f"/api/v1/rules/{rule_id}", json={"points": 12},
                     headers=auth(app, world.organizer))
    assert r.status_code == 200
    edited = one(client, app, world.admin, action="rule.edited")
    assert edited["before"] == {"version": 1, "points": 8}
    assert edited["after"] == {"version": 2, "points": 12}
    assert edited["detail"]["previous_rule_id"] == rule_id


def test_award_approval_rejection_and_reversal(app, client, world):  # noqa: F811
    posted = award(client, app, world.organizer, world.resident, "garbage-sorting",
                   memo="张小明 sorted the bins of 3号楼")
    assert posted.status_code == 201
    tx = posted.get_json()["id"]
    row = one(client, app, world.auditor, action="award.posted")
    assert row["target_type"] == "transaction" and row["target_id"] == str(tx)
    assert row["actor_user_id"] == world.organizer
    assert row["detail"]["resident_id"] == world.resident

    first = award(client, app, world.organizer, world.resident, "mediation").get_json()
    second = award(client, app, world.organizer, world.resident2, "mediation").get_json()
    r = client.post(f"/api/v1/approvals/{first['id']}/approve", json={},
                    headers=auth(app, world.organizer2))
    assert r.status_code == 200, r.get_json()
    r = client.post(f"/api/v1/approvals/{second['id']}/reject",
                    json={"reason": "李华 was not there that day"},
                    headers=auth(app, world.organizer2))
    assert r.status_code == 200, r.get_json()
    approved = one(client, app, world.auditor, action="award.approved")
    assert approved["actor_user_id"] == world.organizer2
    assert approved["before"] == {"status": "pending"}
    assert approved["after"] == {"status": "approved"}
    rejected = one(client, app, world.auditor, action="award.rejected")
    assert rejected["after"] == {"status": "rejected"} and rejected["detail"]["reason"] == "given"

    r = client.post(f"/api/v1/transactions/{tx}/reversal",
                    json={"reason": "张小明 asked twice"},
                    headers=auth(app, world.organizer2, **{"Idempotency-Key": new_key()}))
    assert r.status_code == 201, r.get_json()
    reversed_ = one(client, app, world.auditor, action="transaction.reversed")
    assert reversed_["target_id"] == str(tx)
    assert reversed_["before"] == {"reversed_by": None}
    assert reversed_["after"] == {"reversed_by": r.get_json()["id"]}
    # Free text typed about residents stays out of the append-only rows.
    stored = all_audit_text(app)
    for text_ in ("张小明", "李华", "3号楼", "was not there", "asked twice"):
        assert text_ not in stored


def test_threshold_change_has_before_and_after(app, client, world):  # noqa: F811
    r = client.put(f"/api/v1/communities/{world.tree.community_a}/ledger-policy",
                   json={"approval_threshold": 150}, headers=auth(app, world.admin))
    assert r.status_code == 200
    row = one(client, app, world.auditor, action="ledger.threshold_changed")
    assert row["before"] == {"approval_threshold": 200}
    assert row["after"] == {"approval_threshold": 150}
    assert row["actor_user_id"] == world.admin


def test_role_granted_and_revoked(app, client, world):  # noqa: F811
    user = make_user(app, name="新审计")
    r = client.post(f"/api/v1/staff/{user}/grants",
                    json={"role": "auditor", "org_node_id": world.tree.community_a},
                    headers=auth(app, world.admin))
    assert r.status_code in (200, 201), r.get_json()
    grant_id = r.get_json()["id"]
    granted = one(client, app, world.admin, action="role.granted", target_type="user",
                  target_id=str(user))
    assert granted["actor_user_id"] == world.admin
    assert granted["before"]["role"] is None
    assert granted["after"] == {"grant_id": grant_id, "role": "auditor",
                                "org_node_id": world.tree.community_a}
    r = client.delete(f"/api/v1/staff/{user}/grants/{grant_id}", headers=auth(app, world.admin))
    assert r.status_code == 204
    revoked = one(client, app, world.admin, action="role.revoked")
    assert revoked["actor_user_id"] == world.admin
    assert revoked["before"]["role"] == "auditor" and revoked["after"]["role"] is None


def test_card_reissue(app, client, world):  # noqa: F811
    r = client.post(f"/api/v1/residents/{world.resident}/card/reissue",
                    headers=auth(app, world.organizer))
    assert r.status_code in (200, 201), r.get_json()
    row = one(client, app, world.auditor, action="resident.card_reissued")
    assert row["before"] == {"serial": 1} and row["after"] == {"serial": 2}
    assert row["target_id"] == str(world.resident)


def test_resident_import_logs_counts_only(app, client, world):  # noqa: F811
    data = "name,phone\n赵六,13912340001\n钱七,13912340002\n".encode()
    r = client.post("/api/v1/residents/import",
                    query_string={"community_id": world.tree.community_a}, data=data,
                    content_type="text/csv", headers=auth(app, world.organizer))
    assert r.status_code == 200, r.get_json()
    row = one(client, app, world.auditor, action="resident.imported")
    assert row["actor_user_id"] == world.organizer
    assert row["detail"]["created"] == 2 and row["community_id"] == world.tree.community_a
    stored = all_audit_text(app)
    assert "赵六" not in stored and "13912340001" not in stored
