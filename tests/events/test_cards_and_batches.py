"""Resident cards (Ed25519), organiser card scans, and offline batches of both kinds."""

from __future__ import annotations

import base64
from collections import Counter
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pointsvc.codes import CARD, CHECKIN, issue_code
from pointsvc.codes.envelope import _message
from pointsvc.events.service import step_of
from tests.events.conftest import START, checkin, close, code_of, make_event, nonce, scan_card
from tests.factories import auth
from tests.ledger.conftest import balance_of
from tests.ledger.test_concurrency import race


def my_card(client, app, user):
    r = client.get("/api/v1/me/card", headers=auth(app, user))
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_card_verifies_offline_with_the_published_key(app, client, world):
    card = my_card(client, app, world.resident_user)
    assert card["serial"] == 1 and card["code"].startswith("PSC1")
    assert len(card["code"]) == CARD.token_length
    keys = client.get("/api/v1/keys").get_json()["keys"]
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(keys[0]["public_key"]))
    payload = card["code"][4:]
    raw = base64.b32decode(payload + "=" * (-len(payload) % 8))
    body, signature = raw[:CARD.body_size], raw[CARD.body_size:]
    public.verify(signature, _message(CARD, body))  # raises if it does not verify
    assert int.from_bytes(body[:8], "big") == world.resident


def test_reissue_revokes_the_old_card(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world)
    old = my_card(client, app, world.resident_user)["code"]
    r = client.post(f"/api/v1/residents/{world.resident}/card/reissue",
                    headers=auth(app, world.organizer))
    assert r.status_code == 201 and r.get_json()["serial"] == 2
    new = r.get_json()["code"]
    assert my_card(client, app, world.resident_user)["code"] == new
    r = scan_card(client, app, world.organizer, event["id"], old)
    assert r.status_code == 410 and r.get_json()["code"] == "revoked"
    assert scan_card(client, app, world.organizer, event["id"], new).status_code == 201
    with app.app_context():
        future = issue_code(CARD, resident_id=world.resident, serial=7)
    assert scan_card(client, app, world.organizer, event["id"], future).get_json()[
        "code"] == "invalid"
    # staff of B cannot reissue A's cards; residents cannot at all
    assert client.post(f"/api/v1/residents/{world.resident}/card/reissue",
                       headers=auth(app, world.organizer_b)).status_code == 403
    assert client.post(f"/api/v1/residents/{world.resident}/card/reissue",
                       headers=auth(app, world.resident_user)).status_code == 403


def test_card_scans_in_and_out_earn_hours(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world)
    card = my_card(client, app, world.resident_user)["code"]
    assert scan_card(client, app, world.organizer, event["id"], card).status_code == 201
    again = scan_card(client, app, world.organizer2, event["id"], card)
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    world.clock.advance(minutes=60)
    r = scan_card(client, app, world.organizer, event["id"], card, "out")
    assert r.status_code == 201 and r.get_json()["source"] == "card"
    world.clock.set(START + timedelta(hours=3))
    close(client, app, world.organizer, event["id"])
    assert balance_of(app, world.resident) == 10


def test_card_scan_refusals(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world)
    check_code = code_of(client, app, world, event["id"])["code"]
    r = scan_card(client, app, world.organizer, event["id"], check_code)
    assert r.status_code == 422 and r.get_json()["code"] == "wrong_type"
    card_b = my_card(client, app, world.resident_b_user)["code"]
    r = scan_card(client, app, world.organizer, event["id"], card_b)
    assert r.get_json()["code"] == "wrong_event"
    card = my_card(client, app, world.resident_user)["code"]
    r = scan_card(client, app, world.organizer, event["id"], card, "out")
    assert r.status_code == 409 and r.get_json()["code"] == "not_checked_in"
    assert scan_card(client, app, world.organizer_b, event["id"], card).status_code == 403
    assert scan_card(client, app, world.auditor, event["id"], card).status_code == 403


def test_concurrent_card_scans_by_two_organisers_count_once(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world)
    card = my_card(client, app, world.resident_user)["code"]

    def one(i):
        staff = world.organizer if i % 2 else world.organizer2
        r = scan_card(app.test_client(), app, staff, event["id"], card)
        return r.status_code

    assert Counter(race(8, one)) == {201: 1, 200: 7}


def code_at(app, event_id, direction, at):
    with app.app_context():
        return issue_code(CHECKIN, event_id=event_id, direction=direction, step=step_of(at))


def test_offline_batch_out_of_order_with_duplicates_and_stale_items(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world)
    e = event["id"]
    t_in, t_out = START + timedelta(minutes=1), START + timedelta(minutes=91)
    t_in2, t_out2 = START + timedelta(minutes=95), START + timedelta(minutes=110)
    n_in = nonce()
    items = [
        {"code": code_at(app, e, 1, t_out2), "nonce": nonce(), "scanned_at": t_out2.isoformat()},
        {"code": code_at(app, e, 1, t_out), "nonce": nonce(), "scanned_at": t_out.isoformat()},
        {"code": code_at(app, e, 0, t_in), "nonce": n_in, "scanned_at": t_in.isoformat()},
        {"code": code_at(app, e, 0, t_in), "nonce": n_in, "scanned_at": t_in.isoformat()},
        {"code": code_at(app, e, 0, t_in2), "nonce": nonce(), "scanned_at": t_in2.isoformat()},
        # a code shown at 0:10 but claimed to be scanned at 1:00: the step gives it away
        {"code": code_at(app, e, 0, START + timedelta(minutes=10)), "nonce": nonce(),
         "scanned_at": (START + timedelta(minutes=60)).isoformat()},
        {"code": "garbage", "nonce": nonce(), "scanned_at": t_in.isoformat()},
    ]
    world.clock.set(START + timedelta(hours=2, minutes=30))
    r = client.post("/api/v1/checkins/batch", json={"items": items},
                    headers=auth(app, world.resident_user))
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    by_index = {item["index"]: item for item in body["results"]}
    assert [by_index[i]["status"] for i in range(7)] == [
        "accepted", "accepted", "accepted", "duplicate", "accepted", "rejected", "rejected"]
    assert by_index[5]["reason"] == "expired" and by_index[6]["reason"] == "invalid"
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (4, 1, 2)
    # uploading the same batch again changes nothing
    again = client.post("/api/v1/checkins/batch", json={"items": items},
                        headers=auth(app, world.resident_user)).get_json()
    assert again["accepted"] == 0 and again["duplicates"] == 5
    world.clock.set(START + timedelta(hours=3))
    close(client, app, world.organizer, e)
    # 90 + 15 = 105 minutes -> 105 (granularity 15) -> 17 points
    assert balance_of(app, world.resident) == 17


def test_offline_batch_limits_and_clock_skew_correction(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world)
    e = event["id"]
    old = START - timedelta(hours=25)
    world.clock.set(START + timedelta(minutes=20))
    items = [{"code": code_at(app, e, 0, old), "nonce": nonce(), "scanned_at": old.isoformat()},
             {"code": code_at(app, e, 0, START), "nonce": nonce(),
              "scanned_at": (START + timedelta(hours=1)).isoformat()}]
    results = client.post("/api/v1/checkins/batch", json={"items": items},
                          headers=auth(app, world.resident_user)).get_json()["results"]
    assert [item["reason"] for item in results] == ["expired", "not_yet_valid"]
    # the phone's clock runs 10 minutes fast: sent_at lets the server correct it
    fast = timedelta(minutes=10)
    items = [{"code": code_at(app, e, 0, START + timedelta(minutes=2)), "nonce": nonce(),
              "scanned_at": (START + timedelta(minutes=2) + fast).isoformat()}]
    skewed = client.post("/api/v1/checkins/batch",
                         json={"items": items, "sent_at": (world.clock() + fast).isoformat()},
                         headers=auth(app, world.resident_user)).get_json()["results"][0]
    assert skewed["status"] == "accepted", skewed
    assert skewed["at"] == (START + timedelta(minutes=2)).isoformat()
    too_many = [{"code": "x", "nonce": nonce(), "scanned_at": START.isoformat()}] * 201
    r = client.post("/api/v1/checkins/batch", json={"items": too_many},
                    headers=auth(app, world.resident_user))
    assert r.status_code == 422


def test_an_offline_entry_uploaded_after_the_exit_still_pairs(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world)
    e = event["id"]
    world.clock.set(START + timedelta(minutes=60))
    assert checkin(client, app, world.resident_user, code_of(client, app, world, e)[
        "code"]).status_code == 201
    world.clock.set(START + timedelta(minutes=90))
    assert checkin(client, app, world.resident_user, code_of(client, app, world, e, "out")[
        "code"]).status_code == 201
    t = START + timedelta(minutes=5)
    r = client.post("/api/v1/checkins/batch", json={"items": [
        {"code": code_at(app, e, 0, t), "nonce": nonce(), "scanned_at": t.isoformat()}]},
        headers=auth(app, world.resident_user))
    assert r.get_json()["accepted"] == 1
    world.clock.set(START + timedelta(hours=3))
    close(client, app, world.organizer, e)
    # the pair is 0:05-1:30 (85 min), not 1:00-1:30: 75 credited -> 12 points
    assert balance_of(app, world.resident) == 12


def test_card_batch(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world)
    card = my_card(client, app, world.resident_user)["code"]
    t1, t2 = START + timedelta(minutes=3), START + timedelta(minutes=63)
    n = nonce()
    items = [{"card_code": card, "direction": "out", "nonce": nonce(),
              "scanned_at": t2.isoformat()},
             {"card_code": card, "direction": "in", "nonce": n, "scanned_at": t1.isoformat()},
             {"card_code": card, "direction": "in", "nonce": n, "scanned_at": t1.isoformat()}]
    world.clock.set(START + timedelta(hours=2))
    r = client.post(f"/api/v1/events/{event['id']}/attendance/scans/batch",
                    json={"items": items}, headers=auth(app, world.organizer))
    assert r.status_code == 200, r.get_json()
    assert [i["status"] for i in sorted(r.get_json()["results"], key=lambda i: i["index"])] == [
        "accepted", "accepted", "duplicate"]
