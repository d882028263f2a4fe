"""Refused geofence check-ins: recorded without coordinates, deduplicated per code step,
deletable per resident, and reported per event when many come from far away."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import inspect

from pointsvc import sql
from pointsvc.extensions import db
from tests.audit.anomalies.conftest import anomalies, around, items_of
from tests.events.conftest import START, Clock, checkin, code_of, make_event

CENTRE = {"latitude": 30.2084, "longitude": 120.2119}
FAR = {"latitude": 30.2200, "longitude": 120.2119}  # about 1.3 km north
NEAR_OUTSIDE = {"latitude": 30.2109, "longitude": 120.2119}  # about 280 m: outside, not far


@pytest.fixture
def event(app, client, world):
    app.config["EVENTS_CLOCK"] = Clock(START - timedelta(minutes=5))
    made = make_event(client, app, world, radius_m=100, **CENTRE)
    return {"id": made["id"], "code": code_of(client, app, world, made["id"])["code"]}


def _scan_all(client, app, world, code: str, where: dict | None) -> None:
    for user, _ in world.residents:
        r = checkin(client, app, user, code, **(where or {}))
        assert r.status_code == 422 and r.get_json()["code"] == "outside_geofence"


def _refusals(app) -> list[tuple]:
    with app.app_context():
        found = sql.rows("SELECT resident_id, direction, distance_m, radius_m FROM "
                         "anomaly_geofence_refusals ORDER BY id")
        db.session.remove()
        return found


def test_far_refusals_fire_for_the_event_and_keep_no_coordinates(app, client, world, event):
    _scan_all(client, app, world, event["code"], FAR)
    stored = _refusals(app)
    assert [row[0] for row in stored] == [rid for _, rid in world.residents]
    assert all(1250 < row[2] < 1330 and row[3] == 100 and row[1] == "in" for row in stored)
    with app.app_context():
        columns = {c["name"] for c in inspect(db.engine).get_columns("anomaly_geofence_refusals")}
    assert not columns & {"latitude", "longitude", "lat", "lon"}

    found = items_of(anomalies(client, app, world.auditor, **around(START)), "geofence_refusals")
    assert len(found) == 1
    item = found[0]
    assert item["subject"] == {"type": "event", "id": event["id"]}
    assert item["community_id"] == world.tree.community_a
    evidence = item["evidence"]
    assert evidence["far_refusals"] == 5 and evidence["residents"] == 5
    assert evidence["radius_m"] == 100 and 1250 < evidence["farthest_m"] < 1330
    assert len(evidence["refusal_ids"]) == 5
    assert {r["resident_id"] for r in evidence["refusals"]} == {rid for _, rid in world.residents}
    # Outside the window: nothing.
    assert items_of(anomalies(client, app, world.auditor, **around(START + timedelta(days=3))),
                    "geofence_refusals") == []


def test_refusals_just_outside_or_without_location_are_not_far(app, client, world, event):
    _scan_all(client, app, world, event["code"], NEAR_OUTSIDE)
    app.config["EVENTS_CLOCK"].advance(seconds=30)  # the screen's next code: not a retry
    code = code_of(client, app, world, event["id"])["code"]
    r = checkin(client, app, world.residents[0][0], code)  # no location at all
    assert r.get_json()["code"] == "outside_geofence"
    inside = checkin(client, app, world.residents[1][0], code, **CENTRE)
    assert inside.status_code in (200, 201), inside.get_json()
    distances = [row[2] for row in _refusals(app)]
    assert len(distances) == 6 and distances.count(None) == 1
    report = anomalies(client, app, world.auditor, **around(START))
    assert items_of(report, "geofence_refusals") == []
    # The same refusals count as far once "far" means more than 100 m past the fence.
    app.config["ANOMALY_GEOFENCE_FAR_METERS"] = 100
    (item,) = items_of(anomalies(client, app, world.auditor, **around(START)),
                       "geofence_refusals")
    assert item["evidence"]["far_refusals"] == 5
    app.config["ANOMALY_GEOFENCE_MIN_SCANS"] = 6
    assert items_of(anomalies(client, app, world.auditor, **around(START)),
                    "geofence_refusals") == []


def test_a_retry_in_the_same_code_step_is_one_refusal_and_rows_delete_per_resident(
        app, client, world, event):
    user, resident = world.residents[0]
    for _ in range(3):
        assert checkin(client, app, user, event["code"], **FAR).status_code == 422
    assert len(_refusals(app)) == 1
    # Erasure deletes a resident's rows: no append-only trigger stands in the way.
    with app.app_context():
        sql.rows("DELETE FROM anomaly_geofence_refusals WHERE resident_id = %(r)s",
                 {"r": resident})
        db.session.commit()
    assert _refusals(app) == []


def test_a_failure_to_record_still_answers_outside_geofence(app, client, world, event,
                                                            monkeypatch):
    from pointsvc.audit.anomalies import service

    monkeypatch.setattr(service, "_INSERT_REFUSAL", "INSERT INTO no_such_table VALUES (1)")
    r = checkin(client, app, world.residents[0][0], event["code"], **FAR)
    assert r.status_code == 422 and r.get_json()["code"] == "outside_geofence"
    assert _refusals(app) == []
    # ... and the next scan of the same resident is handled normally.
    inside = checkin(client, app, world.residents[0][0], event["code"], **CENTRE)
    assert inside.status_code in (200, 201), inside.get_json()
