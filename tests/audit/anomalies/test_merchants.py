"""Merchants: redemption volume against the subtree's median, and the refund ratio."""

from __future__ import annotations

import pytest

from tests.audit.anomalies.conftest import anomalies, items_of, today
from tests.factories import make_merchant, make_operator
from tests.redemption.conftest import fund, paycode, post_with_key, redeem


@pytest.fixture
def shops(app, world):
    app.config["REDEMPTION_DAILY_LIMIT"] = 100_000
    made = {}
    for name, node in (("m1", world.tree.community_a), ("m2", world.tree.community_a),
                       ("m3", world.tree.street), ("big", world.tree.community_a),
                       ("b", world.tree.community_b)):
        merchant = make_merchant(app, node_id=node, name=f"商户{name}")
        made[name] = (merchant, make_operator(app, merchant_id=merchant))
    resident_user, resident = world.residents[0]
    fund(app, resident, 10_000)
    b_user, b_resident = world.resident_b
    fund(app, b_resident, 10_000)
    made["payer"] = resident_user
    made["payer_b"] = b_user
    return made


def _sell(client, app, shops, name: str, points: int, payer: str = "payer") -> int:
    _, operator = shops[name]
    r = redeem(client, app, operator, paycode(client, app, shops[payer]), points=points)
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def _refund(client, app, shops, name: str, redemption_id: int, points: int) -> int:
    _, operator = shops[name]
    r = post_with_key(client, app, operator, f"/api/v1/redemptions/{redemption_id}/refunds",
                      {"points": points, "reason": "退货"})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["refund"]["id"]


def test_volume_far_above_the_median_fires_for_that_merchant_only(app, client, world, shops):
    for name, points in (("m1", 20), ("m2", 30), ("m3", 40)):
        _sell(client, app, shops, name, points)
    big = [_sell(client, app, shops, "big", points) for points in (700, 500)]
    # The district admin's subtree holds all four merchants (m3 is on the street).
    found = items_of(anomalies(client, app, world.admin, **today()), "merchant_volume")
    assert len(found) == 1
    item = found[0]
    assert item["subject"] == {"type": "merchant", "id": shops["big"][0]}
    assert item["community_id"] == world.tree.community_a
    evidence = item["evidence"]
    # 20, 30, 40, 1200: the median is 35; 5 × 35 = 175, so the floor of 1000 decides.
    assert evidence["redeemed_points"] == 1200 and evidence["redemptions"] == 2
    assert evidence["merchants_median"] == 35 and evidence["merchants"] == 4
    assert evidence["threshold"] == 1000 and item["severity"] == "medium"
    assert evidence["redemption_ids"] == big  # largest first
    # Community A's auditor does not cover the street's merchant: 20, 30, 1200 → median 30.
    (mine,) = items_of(anomalies(client, app, world.auditor, **today()), "merchant_volume")
    assert mine["evidence"]["merchants_median"] == 30 and mine["evidence"]["merchants"] == 3
    assert items_of(anomalies(client, app, world.auditor, **today()),
                    "merchant_refund_ratio") == []
    app.config["ANOMALY_MERCHANT_MIN_POINTS"] = 1500
    assert items_of(anomalies(client, app, world.auditor, **today()), "merchant_volume") == []


def test_volume_silent_when_merchants_are_alike_or_too_few(app, client, world, shops):
    for name in ("m1", "m2", "m3", "big"):
        _sell(client, app, shops, name, 300)
    assert items_of(anomalies(client, app, world.auditor, **today()), "merchant_volume") == []
    app.config["ANOMALY_MERCHANT_MIN_POINTS"] = 100
    app.config["ANOMALY_MERCHANT_FACTOR"] = 1
    app.config["ANOMALY_MERCHANT_MIN_PEERS"] = 5  # four merchants: no meaningful median
    assert items_of(anomalies(client, app, world.auditor, **today()), "merchant_volume") == []


def test_refund_ratio_fires_above_the_share_with_enough_volume(app, client, world, shops):
    high = _sell(client, app, shops, "m2", 300)
    refunds = [_refund(client, app, shops, "m2", high, 100),
               _refund(client, app, shops, "m2", high, 50)]
    low = _sell(client, app, shops, "m3", 300)
    _refund(client, app, shops, "m3", low, 30)  # 10%: clean
    small = _sell(client, app, shops, "m1", 20)
    _refund(client, app, shops, "m1", small, 20)  # 100%, but too little volume to mean much
    found = items_of(anomalies(client, app, world.auditor, **today()), "merchant_refund_ratio")
    assert [item["subject"]["id"] for item in found] == [shops["m2"][0]]
    evidence = found[0]["evidence"]
    assert evidence["redeemed_points"] == 300 and evidence["refunded_points"] == 150
    assert evidence["refund_percent"] == 50.0 and evidence["threshold_percent"] == 30
    assert sorted(evidence["refund_ids"]) == sorted(refunds)
    assert found[0]["severity"] == "medium"
    app.config["ANOMALY_REFUND_MIN_POINTS"] = 10
    found = items_of(anomalies(client, app, world.auditor, **today()), "merchant_refund_ratio")
    by_merchant = {item["subject"]["id"]: item for item in found}
    assert set(by_merchant) == {shops["m1"][0], shops["m2"][0]}
    assert by_merchant[shops["m1"][0]]["severity"] == "high"  # 100% ≥ 2 × 30%
    app.config["ANOMALY_REFUND_PERCENT"] = 60
    assert [item["subject"]["id"] for item in items_of(
        anomalies(client, app, world.auditor, **today()), "merchant_refund_ratio")] == [
        shops["m1"][0]]


def test_merchants_of_another_community_are_outside_the_scope_and_its_median(
        app, client, world, shops):
    sale = _sell(client, app, shops, "b", 400, payer="payer_b")
    _refund(client, app, shops, "b", sale, 300)
    assert items_of(anomalies(client, app, world.organizer, **today()),
                    "merchant_refund_ratio") == []
    (item,) = items_of(anomalies(client, app, world.organizer_b, **today()),
                       "merchant_refund_ratio")
    assert item["subject"]["id"] == shops["b"][0]
    assert item["community_id"] == world.tree.community_b
