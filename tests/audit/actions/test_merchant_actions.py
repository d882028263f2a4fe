"""Merchant approve/suspend, code reissue, settlement and the daily limit are logged."""

from __future__ import annotations

from tests.audit.actions.helpers import all_audit_text, one
from tests.factories import auth, make_merchant
from tests.redemption.conftest import fund, paycode, post_with_key, redeem, world  # noqa: F401


def test_merchant_approve_and_suspend(app, client, world):  # noqa: F811
    pending = make_merchant(app, node_id=world.tree.community_a, name="待批小店",
                            status="pending")
    r = client.post(f"/api/v1/merchants/{pending}/approve", json={},
                    headers=auth(app, world.organizer_a))
    assert r.status_code == 200, r.get_json()
    r = client.post(f"/api/v1/merchants/{pending}/suspend",
                    json={"reason": "店主王老板 refused to honour offers"},
                    headers=auth(app, world.organizer_a))
    assert r.status_code == 200, r.get_json()
    approved = one(client, app, world.auditor_a, action="merchant.approved")
    assert approved["target_id"] == str(pending) and approved["actor_user_id"] == world.organizer_a
    assert approved["before"] == {"status": "pending"} and approved["after"] == {"status": "active"}
    suspended = one(client, app, world.auditor_a, action="merchant.suspended")
    assert suspended["before"] == {"status": "active"}
    assert suspended["after"] == {"status": "suspended"}
    assert suspended["detail"] == {"reason": "given"}
    assert "王老板" not in all_audit_text(app) and "待批小店" not in all_audit_text(app)


def test_code_reissue_settlement_and_daily_limit(app, client, world):  # noqa: F811
    r = client.post(f"/api/v1/merchants/{world.shop}/code/reissue",
                    headers=auth(app, world.organizer_a))
    assert r.status_code == 201, r.get_json()
    reissued = one(client, app, world.auditor_a, action="merchant.code_reissued")
    assert reissued["before"] == {"version": 1} and reissued["after"] == {"version": 2}

    fund(app, world.resident, 100)
    sale = redeem(client, app, world.shop_operator, paycode(client, app, world.resident_user),
                  points=60)
    assert sale.status_code == 201, sale.get_json()
    r = post_with_key(client, app, world.admin, f"/api/v1/merchants/{world.shop}/settlements",
                      {"points": 50, "payment_reference": "BANK-7"})
    assert r.status_code == 201, r.get_json()
    settled = one(client, app, world.auditor_a, action="merchant.settled")
    assert settled["actor_user_id"] == world.admin and settled["target_id"] == str(world.shop)
    assert settled["before"] == {"available": 60} and settled["after"] == {"available": 10}
    assert settled["detail"]["transaction_id"] == r.get_json()["transaction_id"]

    r = client.put(f"/api/v1/communities/{world.tree.community_a}/redemption-policy",
                   json={"daily_limit": 300}, headers=auth(app, world.admin))
    assert r.status_code == 200, r.get_json()
    limit = one(client, app, world.auditor_a, action="redemption.daily_limit_changed")
    assert limit["after"] == {"daily_limit": 300}
    assert limit["before"]["daily_limit"] != 300
