"""The appeal lifecycle: file, refuse the original decider, uphold (remedy via the ledger),
dismiss, decide once; the resident sees the outcome."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from pointsvc.audit.appeals import service
from pointsvc.audit.appeals.models import Appeal
from pointsvc.common import utcnow
from pointsvc.events.models import AttendanceLine
from pointsvc.extensions import db
from pointsvc.ledger.models import AuditEvent, LedgerTransaction, Memo
from tests.audit.appeals.conftest import decide, deduction, file, rejected_attendance
from tests.factories import auth
from tests.ledger.conftest import award, balance_of, make_rule, new_key

REASON = "我当天没有乱扔垃圾，有邻居可以作证"


def audit_rows(app, action_prefix: str) -> list[AuditEvent]:
    with app.app_context():
        rows = list(db.session.scalars(select(AuditEvent).where(
            AuditEvent.action.startswith(action_prefix)).order_by(AuditEvent.id)))
        db.session.expunge_all()
        db.session.remove()
        return rows


def test_deduction_appeal_upheld_gives_the_points_back(app, client, world):
    tx = deduction(client, app, world)
    assert balance_of(app, world.resident) == 0
    r = file(client, app, world.resident_user, kind="deduction", transaction_id=tx)
    assert r.status_code == 201, r.get_json()
    appeal = r.get_json()
    assert (appeal["status"], appeal["kind"], appeal["transaction_id"]) == ("open", "deduction",
                                                                           tx)
    assert appeal["reason"] == REASON
    mine = client.get("/api/v1/me/appeals", headers=auth(app, world.resident_user)).get_json()
    assert [a["id"] for a in mine["items"]] == [appeal["id"]]

    # The organiser who deducted may not judge their own deduction: refused and logged.
    r = decide(client, app, world.organizer, appeal["id"], "upheld")
    assert r.status_code == 403 and r.get_json()["code"] == "original_decider"
    blocked = audit_rows(app, "appeal.decide.blocked")
    assert [(b.actor_user_id, b.target_id) for b in blocked] == [
        (world.organizer, str(appeal["id"]))]
    assert balance_of(app, world.resident) == 0

    r = decide(client, app, world.organizer2, appeal["id"], "upheld", "监控显示并非本人")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "upheld" and body["reviewer_user_id"] == world.organizer2
    reversal = body["reversal_transaction_id"]
    assert reversal is not None and body["credit_transaction_id"] is None
    assert balance_of(app, world.resident) == 20
    with app.app_context():
        rev = db.session.get(LedgerTransaction, reversal)
        assert (rev.kind, rev.reverses_id, rev.actor_user_id) == ("reversal", tx,
                                                                  world.organizer2)
        memos = [m.memo for m in db.session.scalars(select(Memo))]
        db.session.remove()
    # The resident's words and the reviewer's stay on the appeal: not in the ledger ...
    assert not any(m and (REASON in m or "监控" in m) for m in memos)
    upheld = audit_rows(app, "appeal.upheld")
    assert len(upheld) == 1 and upheld[0].actor_user_id == world.organizer2
    # ... nor in the action log, which records the status change only.
    for row in audit_rows(app, ""):
        text = json.dumps([row.detail, getattr(row, "before_values", None),
                           getattr(row, "after_values", None)], ensure_ascii=False)
        assert REASON not in text and "监控" not in text
    assert "open" in json.dumps([upheld[0].detail, getattr(upheld[0], "before_values", None)])

    mine = client.get("/api/v1/me/appeals", headers=auth(app, world.resident_user)).get_json()
    assert mine["items"][0]["status"] == "upheld"
    assert mine["items"][0]["decision_reason"] == "监控显示并非本人"
    assert mine["items"][0]["reversal_transaction_id"] == reversal

    # Decided once: a second decision (either outcome) is refused, and nothing moves.
    r = decide(client, app, world.admin, appeal["id"], "dismissed")
    assert r.status_code == 409 and r.get_json()["code"] == "invalid_state"
    assert balance_of(app, world.resident) == 20
    # The deduction is reversed now and was appealed: no second appeal.
    r = file(client, app, world.resident_user, kind="deduction", transaction_id=tx)
    assert r.status_code == 409 and r.get_json()["code"] in ("already_reversed",
                                                             "already_appealed")


def test_dismissed_appeal_keeps_the_deduction_and_its_reason(app, client, world):
    tx = deduction(client, app, world)
    appeal = file(client, app, world.resident_user, kind="deduction",
                  transaction_id=tx).get_json()
    r = decide(client, app, world.admin, appeal["id"], "dismissed", "有现场照片")
    assert r.status_code == 200
    body = r.get_json()
    assert (body["status"], body["decision_reason"], body["reversal_transaction_id"]) == (
        "dismissed", "有现场照片", None)
    assert balance_of(app, world.resident) == 0
    with app.app_context():
        assert db.session.scalar(select(LedgerTransaction.id).where(
            LedgerTransaction.reverses_id == tx)) is None
        db.session.remove()
    assert len(audit_rows(app, "appeal.dismissed")) == 1
    # One appeal per decision: a dismissed one is final.
    r = file(client, app, world.resident_user, kind="deduction", transaction_id=tx)
    assert r.status_code == 409 and r.get_json()["code"] == "already_appealed"
    assert decide(client, app, world.organizer2, appeal["id"], "upheld").status_code == 409
    assert balance_of(app, world.resident) == 0


def test_rejected_attendance_appeal_upheld_credits_the_hours(app, client, world, clock):
    event_id = rejected_attendance(client, app, world, clock)
    assert balance_of(app, world.resident) == 0
    r = file(client, app, world.resident_user, kind="attendance", event_id=event_id,
             reason="我全程在场，签退时手机没电")
    assert r.status_code == 201, r.get_json()
    appeal = r.get_json()
    # The organiser who rejected the line is the original decider.
    r = decide(client, app, world.organizer, appeal["id"], "upheld")
    assert r.status_code == 403 and r.get_json()["code"] == "original_decider"
    r = decide(client, app, world.organizer2, appeal["id"], "upheld")
    assert r.status_code == 200, r.get_json()
    credit = r.get_json()["credit_transaction_id"]
    assert credit is not None and r.get_json()["reversal_transaction_id"] is None
    assert balance_of(app, world.resident) == 20  # 2 hours at 10 points an hour
    with app.app_context():
        line = db.session.get(AttendanceLine, (event_id, world.resident))
        tx = db.session.get(LedgerTransaction, credit)
        assert (line.status, line.transaction_id, line.points) == ("posted", credit, 20)
        assert (tx.kind, tx.reference_type, tx.reference_id) == (
            "award", "event_attendance", f"{event_id}:{world.resident}")
        db.session.remove()
    mine = client.get("/api/v1/me/appeals", headers=auth(app, world.resident_user)).get_json()
    assert mine["items"][0]["credit_transaction_id"] == credit


def test_attendance_not_rejected_or_still_under_review_cannot_be_appealed(app, client, world,
                                                                          clock):
    event_id = rejected_attendance(client, app, world, clock)
    # resident2 never attended; the resident's own line is appealable, resident2's is not.
    r = file(client, app, world.resident2_user, kind="attendance", event_id=event_id)
    assert r.status_code == 404
    r = file(client, app, world.resident_user, kind="attendance", event_id=10**9)
    assert r.status_code == 404


def test_the_approver_behind_a_deduction_cannot_decide_either(app, client, world):
    make_rule(app, node_id=world.tree.district, code="big-fine", points=-15,
              category="conduct", approval_required=True)
    award(client, app, world.organizer, world.resident, "volunteer-hour", 120)
    r = award(client, app, world.organizer, world.resident, "big-fine")
    assert r.status_code == 202
    r = client.post(f"/api/v1/approvals/{r.get_json()['id']}/approve", json={},
                    headers=auth(app, world.organizer2))
    tx = r.get_json()["transaction_id"]
    assert balance_of(app, world.resident) == 5
    appeal = file(client, app, world.resident_user, kind="deduction",
                  transaction_id=tx).get_json()
    for staff in (world.organizer, world.organizer2):
        r = decide(client, app, staff, appeal["id"], "dismissed")
        assert r.status_code == 403 and r.get_json()["code"] == "original_decider"
    assert len(audit_rows(app, "appeal.decide.blocked")) == 2
    assert decide(client, app, world.admin, appeal["id"], "upheld").status_code == 200
    assert balance_of(app, world.resident) == 20


def test_what_cannot_be_appealed(app, client, world):
    tx = deduction(client, app, world)
    # Someone else's deduction looks like a missing one.
    r = file(client, app, world.resident2_user, kind="deduction", transaction_id=tx)
    assert r.status_code == 404
    r = file(client, app, world.resident_user, kind="deduction", transaction_id=10**12)
    assert r.status_code == 404
    # An award is not a decision against the resident.
    earned = award(client, app, world.organizer, world.resident2, "garbage-sorting").get_json()
    r = file(client, app, world.resident2_user, kind="deduction", transaction_id=earned["id"])
    assert r.status_code == 422 and r.get_json()["code"] == "not_appealable"
    # A deduction staff already reversed has nothing left to appeal.
    r = client.post(f"/api/v1/transactions/{tx}/reversal", json={"reason": "误扣"},
                    headers=auth(app, world.organizer2, **{"Idempotency-Key": new_key()}))
    assert r.status_code == 201
    r = file(client, app, world.resident_user, kind="deduction", transaction_id=tx)
    assert r.status_code == 409 and r.get_json()["code"] == "already_reversed"
    # Staff do not file appeals.
    assert file(client, app, world.organizer, kind="deduction",
                transaction_id=tx).status_code == 403


def test_the_appeal_window(app, client, world, clock):
    tx = deduction(client, app, world)
    app.config["APPEAL_WINDOW_DAYS"] = 0
    r = file(client, app, world.resident_user, kind="deduction", transaction_id=tx)
    assert r.status_code == 409 and r.get_json()["code"] == "appeal_window_closed"
    assert "deadline" in r.get_json()
    app.config["APPEAL_WINDOW_DAYS"] = 30
    assert file(client, app, world.resident_user, kind="deduction",
                transaction_id=tx).status_code == 201
    # An attendance rejection made final 31 days ago is out of time; 29 days ago is not.
    old = rejected_attendance(client, app, world, clock,
                              approved_at=utcnow() - timedelta(days=31))
    r = file(client, app, world.resident_user, kind="attendance", event_id=old)
    assert r.status_code == 409 and r.get_json()["code"] == "appeal_window_closed"
    recent = rejected_attendance(client, app, world, clock,
                                 approved_at=utcnow() - timedelta(days=29))
    assert file(client, app, world.resident_user, kind="attendance",
                event_id=recent).status_code == 201


def test_idempotency_key_returns_the_same_appeal(app, client, world):
    tx = deduction(client, app, world)
    headers = auth(app, world.resident_user, **{"Idempotency-Key": "appeal-once"})
    body = {"kind": "deduction", "transaction_id": tx, "reason": REASON}
    first = client.post("/api/v1/appeals", json=body, headers=headers)
    again = client.post("/api/v1/appeals", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.get_json()["id"] == again.get_json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = client.post("/api/v1/appeals", json={**body, "reason": "另一个理由"},
                        headers=headers)
    assert other.status_code == 409 and other.get_json()["code"] == "idempotency_key_reused"
    with app.app_context():
        assert len(list(db.session.scalars(select(Appeal.id)))) == 1
        db.session.remove()


def test_erasure_blanks_the_appeal_text(app, client, world):
    tx = deduction(client, app, world)
    appeal = file(client, app, world.resident_user, kind="deduction",
                  transaction_id=tx).get_json()
    decide(client, app, world.admin, appeal["id"], "dismissed", "有现场照片")
    with app.app_context():
        assert service.erase_resident(resident_id=world.resident) == 1
        db.session.commit()
        row = db.session.get(Appeal, appeal["id"])
        assert (row.reason, row.decision_reason, row.status) == (None, None, "dismissed")
        assert row.erased_at is not None
        db.session.remove()
