"""Personal-data requests: the resident's export, and erasure by an admin (PIPL)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from pointsvc.extensions import db
from tests.audit.privacy.conftest import PASSWORD, erase, find_everywhere, key
from tests.factories import auth, make_resident


def _export(client, app, user_id: int):
    return client.get("/api/v1/me/export", headers=auth(app, user_id))


def _seal(app) -> int:
    from pointsvc.ledger.seals import seal

    with app.app_context():
        made = seal()
        size = made.tree_size if made is not None else 0
        db.session.remove()
        return size


def _cli(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


# --------------------------------------------------------------------------- export

def test_export_holds_my_data_and_none_of_another_resident(app, client, world):
    lin, ou = world.lin, world.ou
    r = _export(client, app, lin.user_id)
    assert r.status_code == 200
    assert r.mimetype == "application/json"
    assert "attachment" in r.headers["Content-Disposition"]
    raw = r.get_data(as_text=True)
    document = json.loads(raw)
    sections = document["sections"]
    assert document["resident_id"] == lin.resident_id
    assert sections["user"][0]["display_name"] == lin.name
    assert sections["user"][0]["phone"] == lin.phone
    assert sections["resident"][0]["id"] == lin.resident_id
    assert sections["household"][0]["label"] == lin.household
    # 6 x 5 awarded, 20 deducted, 4 spent, 1 refunded.
    assert [a["balance"] for a in sections["accounts"]] == [7]
    memos = {t["memo"] for t in sections["transactions"]}
    assert lin.memo in memos
    assert {t["evidence_ref"] for t in sections["transactions"]} >= {lin.evidence}
    kinds = sorted(t["kind"] for t in sections["transactions"])
    assert kinds == ["award", "deduction", "redemption", "refund"]
    assert sum(e["amount"] for e in sections["entries"]) == 7
    assert [p["memo"] for p in sections["pending_awards"]] == [lin.pending_memo]
    assert [(s["latitude"], s["longitude"]) for s in sections["event_scans"]] == [
        (lin.latitude, lin.longitude)]
    assert len(sections["event_presence"]) == 1
    assert [d["citation"] for d in sections["designations"]] == [lin.citation]
    assert [f["reason"] for f in sections["refunds"]] == [lin.refund_reason]
    assert [a["reason"] for a in sections["appeals"]] == [lin.appeal_reason]
    assert len(sections["redemptions"]) == 1 and len(sections["paycodes"]) == 1
    assert {row["target_id"] for row in sections["action_log"]} >= {
        str(lin.resident_id), str(lin.transactions[0])}
    # Secrets are not part of it.
    assert "password_hash" not in raw and "token_hash" not in raw and '"salt"' not in raw
    # Nothing of the other resident.
    for value in (ou.name, ou.phone, ou.username, ou.memo, ou.household, ou.citation,
                  ou.pending_memo, ou.refund_reason, ou.appeal_reason, str(ou.latitude)):
        assert value not in raw
    for t in sections["transactions"]:
        assert t["subject_resident_id"] in (lin.resident_id, None)


def test_every_reader_section_is_present_and_ordered(app, client, world):
    from pointsvc.audit.privacy.service import READERS

    document = _export(client, app, world.ou.user_id).get_json()
    expected = [reader.section for reader in READERS if reader.table is None]
    assert [s for s in document["sections"] if s in expected] == expected
    assert document["sections"]["user"][0]["display_name"] == world.ou.name


def test_export_streams_a_long_history_in_batches(app, client, world, monkeypatch):
    from pointsvc.audit.privacy import service

    monkeypatch.setattr(service, "FETCH_ROWS", 2)
    r = client.get("/api/v1/me/export", headers=auth(app, world.lin.user_id),
                   buffered=False)
    assert r.is_streamed
    chunks = list(r.response)
    assert len(chunks) > len(service.READERS)  # row batches, not one string
    document = json.loads(b"".join(chunks))
    assert len(document["sections"]["entries"]) == 4  # award, deduction, spend, refund
    assert len(document["sections"]["transactions"]) == 4


def test_export_only_for_a_signed_in_resident(app, client, world):
    assert client.get("/api/v1/me/export").status_code == 401
    for staff in (world.organizer, world.admin, world.auditor, world.shop_operator):
        r = client.get("/api/v1/me/export", headers=auth(app, staff))
        assert r.status_code == 403
        assert r.mimetype == "application/problem+json"


# --------------------------------------------------------------------------- erasure

def test_erasure_refused_unless_admin_in_scope(app, client, world):
    rid = world.lin.resident_id
    for actor in (world.organizer, world.auditor, world.ou.user_id, world.shop_operator):
        r = erase(client, app, actor, rid)
        assert r.status_code == 403 and r.get_json()["code"] == "forbidden"
    r = erase(client, app, world.admin_b, rid)
    assert r.status_code == 403 and r.get_json()["code"] == "not_in_scope"
    assert client.post(f"/api/v1/residents/{rid}/erasure",
                       json={"reason_code": "resident_request"}).status_code == 401
    # Nothing happened.
    assert _export(client, app, world.lin.user_id).get_json()["sections"]["user"][0][
        "display_name"] == world.lin.name


def test_erasure_bad_input_is_a_clear_4xx(app, client, world):
    rid = world.lin.resident_id
    headers = auth(app, world.admin)
    url = f"/api/v1/residents/{rid}/erasure"
    r = client.post(url, json={"reason_code": "because"}, headers=headers)
    assert r.status_code == 422 and "reason_code" in r.get_json()["errors"]
    # No free text about the person travels with the request.
    r = client.post(url, json={"reason_code": "resident_request", "note": "蔺霄翎要求"},
                    headers=headers)
    assert r.status_code == 422
    assert client.post(url, json={}, headers=headers).status_code == 422
    r = erase(client, app, world.admin, 999_999)
    assert r.status_code == 404 and r.mimetype == "application/problem+json"
    assert erase(client, app, world.admin, 2**62).status_code in (404, 422)


def test_erasure_then_ledger_verifies_and_no_personal_field_remains(app, client, world):
    lin, ou = world.lin, world.ou
    numbers = [lin.latitude, lin.longitude]
    # The planting reached the database (else the final scan would prove nothing).
    before = {needle for _, _, needle in find_everywhere(app, lin.texts, numbers)}
    assert before == set(lin.texts) | {str(n) for n in numbers}
    # Sealed first: verification then covers sealed transactions whose memos are blanked.
    assert _seal(app) >= 8
    r = erase(client, app, world.admin, lin.resident_id)
    assert r.status_code == 201, r.get_json()
    out = r.get_json()
    assert out["pseudonym"].startswith("已注销用户 ") and len(out["pseudonym"]) == 10
    assert out["residual"] == {}
    # The award's memo and the refund's reason (kept as the refund transaction's memo).
    assert out["summary"]["ledger_memos"] == 2 and out["summary"]["users"] == 1
    # Every hash, seal and invariant still holds, before and after a further seal.
    for command in (("ledger", "verify"), ("ledger", "check")):
        result = _cli(app, *command)
        assert result.exit_code == 0, result.output
    assert "every seal verify" in _cli(app, "ledger", "verify").output
    client.post("/api/v1/awards", json={"resident_id": ou.resident_id,
                                        "rule_code": "garbage-sorting", "quantity": 1},
                headers=auth(app, world.organizer, **{"Idempotency-Key": key()}))
    assert _seal(app) > 0
    assert _cli(app, "ledger", "verify").exit_code == 0
    # No personal field of the erased resident anywhere; the other resident untouched.
    assert find_everywhere(app, lin.texts, numbers) == []
    kept = {needle for _, _, needle in find_everywhere(app, ou.texts, [ou.latitude])}
    assert kept == set(ou.texts) | {str(ou.latitude)}


def test_erased_resident_cannot_sign_in_and_balance_stays(app, client, world):
    lin = world.lin
    old_token = auth(app, lin.user_id)
    r = client.post("/api/v1/auth/token", json={"username": lin.phone, "password": PASSWORD})
    assert r.status_code == 200
    refresh = r.get_json()["refresh_token"]
    balance = _export(client, app, lin.user_id).get_json()["sections"]["accounts"][0]["balance"]
    assert erase(client, app, world.admin, lin.resident_id).status_code == 201
    r = client.post("/api/v1/auth/token", json={"username": lin.phone, "password": PASSWORD})
    assert r.status_code == 401
    assert client.get("/api/v1/me/export", headers=old_token).status_code == 401
    assert client.post("/api/v1/auth/refresh",
                       json={"refresh_token": refresh}).status_code == 401
    with app.app_context():
        from pointsvc.ledger.reading import find_account
        from pointsvc.people.models import User

        assert find_account(kind="resident", owner_id=lin.resident_id).balance == balance
        user = db.session.get(User, lin.user_id)
        assert (user.username, user.phone, user.is_active) == (None, None, False)
        # Off every board: their tally rows are queued to be re-listed as hidden.
        params = {"rid": lin.resident_id}
        queued = db.session.execute(text(
            "SELECT COUNT(*) FROM leaderboard_relist WHERE resident_id = :rid"), params).scalar()
        listed = db.session.execute(text(
            "SELECT COUNT(*) FROM leaderboard_tallies WHERE resident_id = :rid AND listed"),
            params).scalar()
        assert queued == 1 or listed == 0
        db.session.remove()
    # Staff now see the pseudonym where the name was.
    r = client.get(f"/api/v1/residents/{lin.resident_id}", headers=auth(app, world.admin))
    assert r.get_json()["name"].startswith("已注销用户")


def test_erasure_is_idempotent_and_recorded_without_personal_data(app, client, world):
    rid = world.lin.resident_id
    first = erase(client, app, world.admin, rid)
    second = erase(client, app, world.admin, rid, reason="deceased")
    assert first.status_code == 201 and second.status_code == 200
    a, b = first.get_json(), second.get_json()
    assert (a["id"], a["pseudonym"], a["reason_code"], a["erased_at"]) == (
        b["id"], b["pseudonym"], b["reason_code"], b["erased_at"])
    with app.app_context():
        rows = db.session.execute(text(
            "SELECT resident_id, erased_by, reason_code FROM privacy_erasures")).all()
        assert [tuple(r) for r in rows] == [(rid, world.admin, "resident_request")]
        logged = db.session.execute(text(
            "SELECT actor_user_id, target_id, detail FROM audit_events "
            "WHERE action = 'privacy.erased'")).all()
        assert len(logged) == 1 and logged[0][:2] == (world.admin, str(rid))
        assert json.loads(logged[0][2]) == {"erasure_id": a["id"],
                                            "reason_code": "resident_request"}
        db.session.remove()


def test_erasure_record_is_append_only(app, client, world):
    assert erase(client, app, world.admin, world.lin.resident_id).status_code == 201
    with app.app_context():
        for statement in ("UPDATE privacy_erasures SET reason_code = 'deceased'",
                          "DELETE FROM privacy_erasures"):
            with pytest.raises(Exception, match="append-only"):
                db.session.execute(text(statement))
            db.session.rollback()
        db.session.remove()


def test_cli_erase_and_repeat(app, client, world):
    rid = world.lin.resident_id
    result = _cli(app, "audit", "erase", str(rid), "--reason", "moved_away",
                  "--admin", str(world.admin), "--yes")
    assert result.exit_code == 0, result.output
    assert f"resident {rid} erased: now shown as 已注销用户" in result.output
    again = _cli(app, "audit", "erase", str(rid), "--yes")
    assert again.exit_code == 0 and "already erased" in again.output
    assert _cli(app, "audit", "erase", "999999", "--yes").exit_code == 1
    assert _cli(app, "audit", "erase", str(world.ou.resident_id)).exit_code != 0  # no --yes
    assert find_everywhere(app, world.lin.texts) == []
    assert _cli(app, "ledger", "verify").exit_code == 0


def test_household_shared_with_others_keeps_its_label_unless_it_names_them(app, client, world):
    from tests.factories import make_household

    shared = make_household(app, community_id=world.tree.community_a, label="幸福里 3 号")
    _, first = make_resident(app, community_id=world.tree.community_a, name="甲某",
                             household_id=shared)
    make_resident(app, community_id=world.tree.community_a, name="乙某", household_id=shared)
    assert erase(client, app, world.admin, first).status_code == 201
    with app.app_context():
        label = db.session.execute(text("SELECT label FROM households WHERE id = :id"),
                                   {"id": shared}).scalar()
        assert label == "幸福里 3 号"
        db.session.remove()


def test_a_reversal_reason_naming_them_is_erased_with_the_memos(app, client, world):
    lin = world.lin
    r = client.post("/api/v1/awards", json={"resident_id": lin.resident_id,
                                             "rule_code": "garbage-sorting", "quantity": 1},
                    headers=auth(app, world.organizer, **{"Idempotency-Key": key()}))
    assert r.status_code == 201, r.get_json()
    reason = f"{lin.name}重复录入 rev-3390"
    r = client.post(f"/api/v1/transactions/{r.get_json()['id']}/reversal",
                    json={"reason": reason},
                    headers=auth(app, world.organizer2, **{"Idempotency-Key": key()}))
    assert r.status_code == 201, r.get_json()
    assert find_everywhere(app, [reason])
    _seal(app)
    out = erase(client, app, world.admin, lin.resident_id).get_json()
    assert out["residual"] == {}
    assert find_everywhere(app, [reason, *lin.texts]) == []
    assert _cli(app, "ledger", "verify").exit_code == 0


def test_personal_data_left_in_the_append_only_action_log_is_reported(app, client, world):
    """Should an area ever copy a name into audit_events (append-only, cannot be blanked),
    the erasure says so instead of claiming a clean result."""
    # Written straight to the table: record_event() itself scrubs free text.
    with app.app_context():
        db.session.execute(text(
            "INSERT INTO audit_events (action, target_type, target_id, community_id, detail, "
            "created_at) VALUES ('careless.action', 'resident', :rid, :community, :detail, "
            "CURRENT_TIMESTAMP)"),
            {"rid": str(world.lin.resident_id), "community": world.tree.community_a,
             "detail": json.dumps({"note": world.lin.name}, ensure_ascii=False)})
        # An action the resident took themselves, with their client address.
        db.session.execute(text(
            "INSERT INTO audit_events (actor_user_id, action, target_type, target_id, "
            "client_address, detail, created_at) VALUES (:uid, 'own.action', 'resident', :rid, "
            "'203.0.113.7', '{}', CURRENT_TIMESTAMP)"),
            {"uid": world.lin.user_id, "rid": str(world.lin.resident_id)})
        db.session.commit()
    out = erase(client, app, world.admin, world.lin.resident_id).get_json()
    assert out["residual"] == {"audit_events": 1, "audit_events_client_address": 1}
    result = _cli(app, "audit", "erase", str(world.ou.resident_id), "--yes")
    assert result.exit_code == 0, result.output  # nothing of the other resident is stuck


def test_refused_check_ins_outside_the_geofence_are_exported_then_deleted(app, client, world):
    from sqlalchemy import inspect

    from tests.events.conftest import checkin, code_of

    with app.app_context():
        present = inspect(db.engine).has_table("anomaly_geofence_refusals")
        db.session.remove()
    if not present:
        pytest.skip("the anomalies work has not added its refusal table yet")
    with app.app_context():
        event_id = db.session.execute(text("SELECT MIN(id) FROM events")).scalar()
        db.session.remove()
    code = code_of(client, app, world, event_id, "out")["code"]
    r = checkin(client, app, world.lin.user_id, code, latitude=30.0, longitude=120.0)
    assert r.status_code == 422 and r.get_json()["code"] == "outside_geofence"
    sections = _export(client, app, world.lin.user_id).get_json()["sections"]
    assert len(sections["geofence_refusals"]) == 1
    assert erase(client, app, world.admin, world.lin.resident_id).status_code == 201
    with app.app_context():
        left = db.session.execute(text(
            "SELECT resident_id FROM anomaly_geofence_refusals")).scalars().all()
        db.session.remove()
    assert world.lin.resident_id not in left
