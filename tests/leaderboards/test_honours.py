"""Honours: star levels, badges granted automatically exactly once (real threads), designated
honours with citations (logged), and who may read them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import func, select

from pointsvc.extensions import db
from pointsvc.leaderboards.honours import STAR_HOURS, evaluate_badges, next_star_hours, star_level
from pointsvc.leaderboards.models import BadgeGrant
from pointsvc.leaderboards.tallies import drain, ranked_rows
from pointsvc.ledger.models import AuditEvent
from tests.factories import auth
from tests.leaderboards.conftest import drain as drain_all
from tests.leaderboards.conftest import give, resident, reverse
from tests.ledger.test_concurrency import race

NOV = datetime(2026, 11, 10, 3, 0, tzinfo=UTC)


def define_badge(client, app, world, **values):
    body = {"org_node_id": world.tree.district, "code": "sorter", "title_zh": "垃圾分类达人",
            "title_en": "Sorting star", "rule_code": "garbage-sorting", "metric": "actions",
            "threshold": 3, "period": "month", **values}
    response = client.post("/api/v1/badges", json=body, headers=auth(app, world.admin))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def grants(app, badge_id: int) -> list[tuple[int, str]]:
    with app.app_context():
        rows = db.session.execute(select(BadgeGrant.resident_id, BadgeGrant.period)
                                  .where(BadgeGrant.badge_id == badge_id)).all()
        db.session.remove()
        return [tuple(row) for row in rows]


def test_star_levels_follow_the_national_hours():
    assert STAR_HOURS == (100, 300, 600, 1000, 1500)
    assert [star_level(minutes=h * 60) for h in (0, 99, 100, 299, 300, 600, 1000, 1499, 1500,
                                                 9999)] == [0, 0, 1, 1, 2, 3, 4, 4, 5, 5]
    assert next_star_hours(minutes=0) == 100 and next_star_hours(minutes=1500 * 60) is None


def test_a_badge_is_granted_once_when_its_condition_is_met(app, client, world):
    badge = define_badge(client, app, world)
    user, rid = resident(app, world, "分类者")
    _, other = resident(app, world, "旁观者")
    first = give(app, rid, "garbage-sorting", 1, at=NOV)
    give(app, rid, "garbage-sorting", 1, at=NOV)
    give(app, other, "garbage-sorting", 1, at=NOV)
    drain_all(app)
    assert grants(app, badge["id"]) == []
    reverse(app, world, first)  # reversed actions do not count
    give(app, rid, "garbage-sorting", 1, at=NOV)
    drain_all(app)
    assert grants(app, badge["id"]) == []
    give(app, rid, "garbage-sorting", 1, at=NOV)
    give(app, rid, "garbage-sorting", 1, at=NOV)
    drain_all(app)
    assert grants(app, badge["id"]) == [(rid, "m:2026-11")]
    give(app, rid, "garbage-sorting", 1, at=NOV)
    drain_all(app)
    assert grants(app, badge["id"]) == [(rid, "m:2026-11")]

    mine = client.get("/api/v1/me/honours", headers=auth(app, user)).get_json()
    assert [(b["code"], b["title"], b["period"]) for b in mine["badges"]] == [
        ("sorter", "垃圾分类达人", "m:2026-11")]
    english = client.get("/api/v1/me/honours",
                         headers=auth(app, user, **{"Accept-Language": "en"})).get_json()
    assert english["badges"][0]["title"] == "Sorting star"
    with app.app_context():
        logged = db.session.scalar(select(func.count()).select_from(AuditEvent)
                                   .where(AuditEvent.action == "badge.granted"))
        assert logged == 1


def test_badge_exactly_once_under_concurrent_postings(app, client, world):
    badge = define_badge(client, app, world, threshold=5)
    _, rid = resident(app, world, "并发者")

    def one(_):
        give(app, rid, "garbage-sorting", 1, at=NOV)
        with app.app_context():  # every worker's drainer races for the same outbox
            moved = drain()
            db.session.remove()
        return moved

    race(16, one)
    drain_all(app)
    assert grants(app, badge["id"]) == [(rid, "m:2026-11")]

    # Even two evaluations of the same postings racing outside the drain lock grant once:
    # the unique (badge, resident) pair and INSERT … ON CONFLICT DO NOTHING decide.
    second = define_badge(client, app, world, code="sorter-2", threshold=2)
    with app.app_context():
        rows = ranked_rows(where="t.subject_resident_id = :r", params={"r": rid})
        db.session.remove()

    def evaluate(_):
        with app.app_context():
            granted = evaluate_badges(rows=rows)
            db.session.commit()
            db.session.remove()
            return granted

    outcomes = race(8, evaluate)
    assert grants(app, second["id"]) == [(rid, "m:2026-11")], outcomes
    assert sum(outcomes) == 1
    assert grants(app, second["id"]) == [(rid, "m:2026-11")]


def test_hours_badges_and_scope(app, client, world):
    badge = define_badge(client, app, world, code="helper", rule_code=None,
                         category="volunteer", metric="hours", threshold=2, period="all",
                         org_node_id=world.tree.community_b)
    _, in_a = resident(app, world, "甲志愿")
    _, in_b = resident(app, world, "乙志愿", community="b")
    for rid in (in_a, in_b):
        give(app, rid, "volunteer-hour", 150, at=NOV)
    drain_all(app)
    assert grants(app, badge["id"]) == [(in_b, "all")]  # only residents under community B


def test_designated_honours_are_logged_and_scoped(app, client, world):
    user, rid = resident(app, world, "林美")
    body = {"resident_id": rid, "title": "最美志愿者", "citation": "连续三个月坚持照护独居老人。",
            "period_label": "2026年11月"}
    refused = client.post("/api/v1/honours/designations", json=body,
                          headers=auth(app, world.organizer_b))
    assert refused.status_code == 403 and refused.get_json()["code"] == "not_in_scope"
    response = client.post("/api/v1/honours/designations", json=body,
                           headers=auth(app, world.organizer))
    assert response.status_code == 201, response.get_json()
    with app.app_context():
        event = db.session.scalars(select(AuditEvent)
                                   .where(AuditEvent.action == "honour.designated")).one()
        assert event.actor_user_id == world.organizer and event.target_id == str(rid)
        # Free text about a person stays out of the append-only log (the audit privacy rule).
        assert json.loads(event.detail)["title"] == "given"
    give(app, rid, "volunteer-hour", 100 * 60 + 30, at=NOV)
    drain_all(app)

    for viewer in (user, world.organizer, world.auditor, world.admin):
        response = client.get(f"/api/v1/residents/{rid}/honours", headers=auth(app, viewer))
        assert response.status_code == 200, response.get_json()
        honours = response.get_json()
        assert honours["star_level"] == 1 and honours["service_hours"] == 100.5
        assert honours["next_star_hours"] == 300
        assert [(d["title"], d["citation"]) for d in honours["designations"]] == [
            ("最美志愿者", "连续三个月坚持照护独居老人。")]
    other_user, _ = resident(app, world, "邻居")
    for viewer in (other_user, world.organizer_b):
        response = client.get(f"/api/v1/residents/{rid}/honours", headers=auth(app, viewer))
        assert response.status_code == 403
    assert client.get("/api/v1/residents/999999/honours",
                      headers=auth(app, world.admin)).status_code == 404


def test_badge_definitions_are_validated(app, client, world):
    headers = auth(app, world.admin)
    base = {"org_node_id": world.tree.district, "code": "x", "title_zh": "徽章",
            "title_en": "Badge", "metric": "actions", "threshold": 1, "period": "month"}
    for change, field in (({}, "rule_code"), ({"metric": "likes", "category": "volunteer"},
                                             "metric"),
                          ({"threshold": 0, "category": "volunteer"}, "threshold"),
                          ({"period": "decade", "category": "volunteer"}, "period")):
        response = client.post("/api/v1/badges", json={**base, **change}, headers=headers)
        assert response.status_code == 422, (change, response.get_json())
        assert field in response.get_json()["errors"]
    created = client.post("/api/v1/badges", json={**base, "category": "volunteer"},
                          headers=headers)
    assert created.status_code == 201
    again = client.post("/api/v1/badges", json={**base, "category": "volunteer"},
                        headers=headers)
    assert again.status_code == 409
    user, _ = resident(app, world, "看徽章")
    listed = client.get("/api/v1/badges", headers=auth(app, user))
    assert [b["code"] for b in listed.get_json()] == ["x"]
    assert client.post("/api/v1/badges", json=base, headers=auth(app, user)).status_code == 403
