"""Detectors over the ledger and the action log: each fires on a planted case, stays silent
on a clean one, and follows its settings."""

from __future__ import annotations

from pointsvc.extensions import db
from pointsvc.people.models import Resident, StaffHousehold
from tests.audit.anomalies.conftest import anomalies, award, items_of, today
from tests.factories import auth, make_household, make_resident


def _earn(client, app, world, points_by_resident: dict[int, list[int]]) -> None:
    """Award volunteer hours (10 points each) so each resident earns the listed amounts."""
    for resident, amounts in points_by_resident.items():
        for points in amounts:
            r = award(client, app, world.organizer, resident, "volunteer-hour",
                      quantity=points // 10 * 60)
            assert r.status_code == 201, r.get_json()


# --- 1. high earners ------------------------------------------------------------------------


def test_high_earner_fires_above_k_times_the_median_and_the_floor(app, client, world):
    residents = [rid for _, rid in world.residents]
    _earn(client, app, world, {residents[0]: [10], residents[1]: [10], residents[2]: [20],
                               residents[3]: [150, 150]})
    found = items_of(anomalies(client, app, world.auditor, **today()), "high_earner")
    assert len(found) == 1
    item = found[0]
    assert item["subject"] == {"type": "resident", "id": residents[3]}
    assert item["community_id"] == world.tree.community_a
    evidence = item["evidence"]
    # Earners 10, 10, 20, 300: the median is 15, k × median = 75, the floor 200 wins.
    assert evidence["points"] == 300 and evidence["awards"] == 2
    assert evidence["community_median"] == 15 and evidence["community_earners"] == 4
    assert evidence["threshold"] == 200 and item["severity"] == "medium"
    assert len(evidence["transaction_ids"]) == 2
    assert [a["points"] for a in evidence["largest_awards"]] == [150, 150]
    assert "居民" in item["summary"]


def test_high_earner_silent_when_everyone_earns_alike(app, client, world):
    residents = [rid for _, rid in world.residents]
    _earn(client, app, world, {rid: [150, 100] for rid in residents[:4]})
    assert items_of(anomalies(client, app, world.auditor, **today()), "high_earner") == []


def test_high_earner_thresholds_come_from_settings(app, client, world):
    residents = [rid for _, rid in world.residents]
    _earn(client, app, world, {residents[0]: [10], residents[1]: [10], residents[2]: [10],
                               residents[3]: [150]})
    assert items_of(anomalies(client, app, world.auditor, **today()), "high_earner") == []
    app.config["ANOMALY_EARNER_MIN_POINTS"] = 100
    found = items_of(anomalies(client, app, world.auditor, **today()), "high_earner")
    assert [item["subject"]["id"] for item in found] == [residents[3]]
    # 150 is at least twice the 50 floor: high.
    app.config["ANOMALY_EARNER_MIN_POINTS"] = 50
    found = items_of(anomalies(client, app, world.auditor, **today()), "high_earner")
    assert found[0]["severity"] == "high"
    # Too few earners for a meaningful median: silent.
    app.config["ANOMALY_EARNER_MIN_EARNERS"] = 5
    assert items_of(anomalies(client, app, world.auditor, **today()), "high_earner") == []


# --- 2. the same staff member repeatedly awarding the same resident ------------------------


def test_repeated_awards_fires_for_one_pair_only(app, client, world):
    app.config["ANOMALY_REPEAT_MIN_AWARDS"] = 4
    target, other = world.residents[0][1], world.residents[1][1]
    for _ in range(4):
        assert award(client, app, world.organizer, target).status_code == 201
    for _ in range(3):  # the clean case: under N
        assert award(client, app, world.organizer2, other).status_code == 201
    found = items_of(anomalies(client, app, world.auditor, **today()), "repeated_awards")
    assert len(found) == 1
    item = found[0]
    assert item["subject"] == {"type": "staff", "id": world.organizer}
    assert item["evidence"]["resident_id"] == target
    assert item["evidence"]["awards"] == 4 and item["evidence"]["points"] == 20
    assert len(item["evidence"]["transaction_ids"]) == 4
    assert item["severity"] == "medium"


def test_repeated_awards_default_threshold_is_silent_and_evidence_is_capped(app, client, world):
    target = world.residents[0][1]
    for _ in range(6):
        assert award(client, app, world.organizer, target).status_code == 201
    assert items_of(anomalies(client, app, world.auditor, **today()), "repeated_awards") == []
    app.config["ANOMALY_REPEAT_MIN_AWARDS"] = 3
    app.config["ANOMALY_EVIDENCE_LIMIT"] = 2
    (item,) = items_of(anomalies(client, app, world.auditor, **today()), "repeated_awards")
    assert item["evidence"]["awards"] == 6 and item["severity"] == "high"
    assert len(item["evidence"]["transaction_ids"]) == 2


# --- 3. blocked self-dealing ----------------------------------------------------------------


def _family_of(app, world, staff: int) -> int:
    """A resident in the staff member's own household; returns the resident id."""
    household = make_household(app, community_id=world.tree.community_a)
    _, relative = make_resident(app, community_id=world.tree.community_a,
                                household_id=household)
    with app.app_context():
        db.session.add(StaffHousehold(user_id=staff, household_id=household))
        db.session.commit()
    return relative


def test_blocked_self_dealing_fires_on_a_refused_award(app, client, world):
    relative = _family_of(app, world, world.organizer)
    r = award(client, app, world.organizer, relative)
    assert r.status_code == 403 and r.get_json()["code"] == "self_dealing"
    # Clean: a colleague awarding the same resident is allowed and not an anomaly.
    assert award(client, app, world.organizer2, relative).status_code == 201
    found = items_of(anomalies(client, app, world.auditor, **today()), "blocked_self_dealing")
    assert len(found) == 1
    item = found[0]
    assert item["subject"] == {"type": "staff", "id": world.organizer}
    assert item["community_id"] == world.tree.community_a
    assert item["evidence"]["attempts"] == 1 and item["evidence"]["residents"] == 1
    (attempt,) = item["evidence"]["attempt_details"]
    assert attempt["action"] == "award.blocked_self_dealing"
    assert attempt["target_id"] == str(relative) and attempt["reason"] == "household"
    assert item["evidence"]["audit_event_ids"] == [attempt["audit_event_id"]]


def test_blocked_self_dealing_silent_without_attempts_and_follows_its_setting(app, client,
                                                                            world):
    assert award(client, app, world.organizer, world.residents[0][1]).status_code == 201
    assert items_of(anomalies(client, app, world.auditor, **today()),
                    "blocked_self_dealing") == []
    relative = _family_of(app, world, world.organizer)
    assert award(client, app, world.organizer, relative).status_code == 403
    app.config["ANOMALY_SELF_DEALING_MIN_ATTEMPTS"] = 2
    assert items_of(anomalies(client, app, world.auditor, **today()),
                    "blocked_self_dealing") == []
    assert award(client, app, world.organizer, relative).status_code == 403
    (item,) = items_of(anomalies(client, app, world.auditor, **today()), "blocked_self_dealing")
    assert item["evidence"]["attempts"] == 2


def test_self_award_by_a_staff_member_who_is_a_resident(app, client, world):
    with app.app_context():
        own = Resident(user_id=world.organizer2, community_id=world.tree.community_a)
        db.session.add(own)
        db.session.commit()
        own_id = own.id
    assert award(client, app, world.organizer2, own_id).status_code == 403
    (item,) = items_of(anomalies(client, app, world.auditor, **today()), "blocked_self_dealing")
    assert item["subject"]["id"] == world.organizer2
    assert item["evidence"]["attempt_details"][0]["reason"] == "self"


# --- 6. manual adjustments near the approval threshold --------------------------------------


def _adjust(client, app, actor: int, resident: int, points: int):
    r = award(client, app, actor, resident, code=None, points=points, memo="手工调整")
    assert r.status_code == 202, r.get_json()
    return r.get_json()["id"]


def test_near_threshold_adjustments_fire_and_approval_is_not_counted_twice(app, client, world):
    resident = world.residents[0][1]
    pending = [_adjust(client, app, world.organizer, resident, points)
               for points in (190, 199, 200)]
    # Clean: another staff member's small adjustments, far below the threshold of 200.
    for _ in range(3):
        _adjust(client, app, world.organizer2, resident, 50)
    # Approving one posts an 'adjustment' transaction referencing the approval.
    r = client.post(f"/api/v1/approvals/{pending[0]}/approve", json={},
                    headers=auth(app, world.organizer2, **{"Idempotency-Key": "approve-1"}))
    assert r.status_code == 200, r.get_json()
    found = items_of(anomalies(client, app, world.auditor, **today()),
                     "near_threshold_adjustments")
    assert len(found) == 1
    item = found[0]
    assert item["subject"] == {"type": "staff", "id": world.organizer}
    evidence = item["evidence"]
    assert evidence["adjustments"] == 3 and evidence["points"] == 589
    assert evidence["approval_threshold"] == 200 and evidence["band_low"] == 160
    assert sorted(evidence["pending_award_ids"]) == sorted(pending)
    assert evidence["transaction_ids"] == []


def test_near_threshold_adjustments_follow_the_band_and_the_community_threshold(app, client,
                                                                              world):
    resident = world.residents[0][1]
    for _ in range(3):
        _adjust(client, app, world.organizer, resident, 150)
    assert items_of(anomalies(client, app, world.auditor, **today()),
                    "near_threshold_adjustments") == []
    app.config["ANOMALY_ADJUSTMENT_BAND_PERCENT"] = 30  # band 140–200
    assert len(items_of(anomalies(client, app, world.auditor, **today()),
                        "near_threshold_adjustments")) == 1
    app.config["ANOMALY_ADJUSTMENT_BAND_PERCENT"] = 20
    # The community's own threshold of 160 puts 150 inside its band (128–160).
    r = client.put(f"/api/v1/communities/{world.tree.community_a}/ledger-policy",
                   json={"approval_threshold": 160}, headers=auth(app, world.admin))
    assert r.status_code == 200, r.get_json()
    (item,) = items_of(anomalies(client, app, world.auditor, **today()),
                       "near_threshold_adjustments")
    assert item["evidence"]["approval_threshold"] == 160
    app.config["ANOMALY_ADJUSTMENT_MIN_COUNT"] = 4
    assert items_of(anomalies(client, app, world.auditor, **today()),
                    "near_threshold_adjustments") == []
