"""Who may see and decide appeals, bad input, and two reviewers deciding at once."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from pointsvc.extensions import db
from pointsvc.ledger.models import LedgerTransaction
from tests.audit.appeals.conftest import decide, deduction, file
from tests.factories import auth, make_user
from tests.ledger.conftest import balance_of
from tests.ledger.test_concurrency import race


def test_scope_isolation_for_every_appeal_endpoint(app, client, world):
    tx = deduction(client, app, world)
    appeal = file(client, app, world.resident_user, kind="deduction",
                  transaction_id=tx).get_json()
    a = appeal["id"]
    # Staff of community B: not this appeal, not in their list.
    r = client.get(f"/api/v1/appeals/{a}", headers=auth(app, world.organizer_b))
    assert r.status_code == 403 and r.get_json()["code"] == "not_in_scope"
    r = decide(client, app, world.organizer_b, a, "upheld")
    assert r.status_code == 403 and r.get_json()["code"] == "not_in_scope"
    listing = client.get("/api/v1/appeals", headers=auth(app, world.organizer_b)).get_json()
    assert listing["items"] == []
    assert balance_of(app, world.resident) == 0
    # Staff of A read it; an auditor reads but may not decide.
    for staff in (world.organizer2, world.auditor, world.admin):
        r = client.get("/api/v1/appeals?status=open", headers=auth(app, staff))
        assert [i["id"] for i in r.get_json()["items"]] == [a]
        assert client.get(f"/api/v1/appeals/{a}", headers=auth(app, staff)).status_code == 200
    r = decide(client, app, world.auditor, a, "upheld")
    assert r.status_code == 403 and r.get_json()["code"] == "forbidden"
    # Residents: only their own, only through /me.
    assert client.get(f"/api/v1/appeals/{a}",
                      headers=auth(app, world.resident_user)).status_code == 403
    assert client.get("/api/v1/appeals", headers=auth(app, world.resident_user)).status_code == 403
    other = client.get("/api/v1/me/appeals", headers=auth(app, world.resident2_user)).get_json()
    assert other["items"] == []
    assert client.get("/api/v1/me/appeals", headers=auth(app, world.organizer)).status_code == 403
    assert client.get("/api/v1/me/appeals").status_code == 401
    assert client.get(f"/api/v1/appeals/{10**9}", headers=auth(app, world.admin)).status_code \
        == 404


def test_status_filter_and_keyset_pages(app, client, world):
    ids = []
    for _ in range(3):
        tx = deduction(client, app, world, earned_minutes=120)
        ids.append(file(client, app, world.resident_user, kind="deduction",
                        transaction_id=tx).get_json()["id"])
    decide(client, app, world.organizer2, ids[1], "dismissed")
    headers = auth(app, world.admin)
    page = client.get("/api/v1/appeals?limit=2", headers=headers).get_json()
    assert [i["id"] for i in page["items"]] == ids[:2] and page["next_cursor"]
    rest = client.get(f"/api/v1/appeals?limit=2&cursor={page['next_cursor']}",
                      headers=headers).get_json()
    assert [i["id"] for i in rest["items"]] == ids[2:] and rest["next_cursor"] is None
    open_ = client.get("/api/v1/appeals?status=open", headers=headers).get_json()
    assert [i["id"] for i in open_["items"]] == [ids[0], ids[2]]
    dismissed = client.get("/api/v1/appeals?status=dismissed", headers=headers).get_json()
    assert [i["id"] for i in dismissed["items"]] == [ids[1]]
    b = client.get(f"/api/v1/appeals?community_id={world.tree.community_b}",
                   headers=headers).get_json()
    assert b["items"] == []
    mine = client.get("/api/v1/me/appeals?limit=2",
                      headers=auth(app, world.resident_user)).get_json()
    assert [i["id"] for i in mine["items"]] == [ids[2], ids[1]]
    more = client.get(f"/api/v1/me/appeals?limit=2&cursor={mine['next_cursor']}",
                      headers=auth(app, world.resident_user)).get_json()
    assert [i["id"] for i in more["items"]] == [ids[0]]


@pytest.mark.parametrize("body, field", [
    ({"kind": "deduction", "transaction_id": 1}, "reason"),
    ({"kind": "deduction", "transaction_id": 1, "reason": "   "}, "reason"),
    ({"kind": "deduction", "transaction_id": 1, "reason": "x" * 1001}, "reason"),
    ({"kind": "deduction", "reason": "x"}, "transaction_id"),
    ({"kind": "deduction", "transaction_id": 1, "event_id": 2, "reason": "x"}, "event_id"),
    ({"kind": "attendance", "reason": "x"}, "event_id"),
    ({"kind": "award", "transaction_id": 1, "reason": "x"}, "kind"),
    ({"kind": "deduction", "transaction_id": "1", "reason": "x"}, "transaction_id"),
    ({"kind": "deduction", "transaction_id": 0, "reason": "x"}, "transaction_id"),
    ({"kind": "deduction", "transaction_id": 2**70, "reason": "x"}, "transaction_id"),
    ({"kind": "deduction", "transaction_id": 1, "reason": "x", "points": 5}, "points"),
])
def test_bad_appeals_are_422(app, client, world, body, field):
    r = client.post("/api/v1/appeals", json=body, headers=auth(app, world.resident_user))
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["code"] == "validation_failed" and field in r.get_json()["errors"]


def test_bad_decisions_are_422(app, client, world):
    tx = deduction(client, app, world)
    a = file(client, app, world.resident_user, kind="deduction", transaction_id=tx).get_json()
    url = f"/api/v1/appeals/{a['id']}/decision"
    headers = auth(app, world.organizer2)
    for body, field in [({"outcome": "maybe", "reason": "x"}, "outcome"),
                        ({"outcome": "upheld"}, "reason"),
                        ({"outcome": "upheld", "reason": ""}, "reason"),
                        ({"outcome": "upheld", "reason": "x", "points": 3}, "points")]:
        r = client.post(url, json=body, headers=headers)
        assert r.status_code == 422 and field in r.get_json()["errors"], r.get_json()
    r = client.post(url, data="{", headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.get_json()["code"] == "malformed_json"
    assert client.get("/api/v1/appeals?status=closed", headers=headers).status_code == 422
    assert client.get("/api/v1/appeals?cursor=%%%", headers=headers).status_code == 422
    assert balance_of(app, world.resident) == 0


def test_two_reviewers_deciding_at_once_one_wins(app, world):
    client = app.test_client()
    tx = deduction(client, app, world)
    a = file(client, app, world.resident_user, kind="deduction", transaction_id=tx).get_json()
    reviewers = [world.organizer2, world.admin,
                 make_user(app, role="organizer", node_id=world.tree.community_a),
                 make_user(app, role="admin", node_id=world.tree.district)]
    outcomes = ["upheld", "dismissed", "upheld", "dismissed"]

    def one(i):
        r = decide(app.test_client(), app, reviewers[i], a["id"], outcomes[i])
        return r.status_code, r.get_json().get("status") or r.get_json().get("code")

    results = race(4, one)
    assert Counter(status for status, _ in results) == {200: 1, 409: 3}, results
    winner = next(outcome for status, outcome in results if status == 200)
    with app.app_context():
        reversals = db.session.scalar(select(func.count()).select_from(LedgerTransaction)
                                      .where(LedgerTransaction.reverses_id == tx))
        db.session.remove()
    assert reversals == (1 if winner == "upheld" else 0)
    assert balance_of(app, world.resident) == (20 if winner == "upheld" else 0)
    final = client.get(f"/api/v1/appeals/{a['id']}", headers=auth(app, world.admin)).get_json()
    assert final["status"] == winner
