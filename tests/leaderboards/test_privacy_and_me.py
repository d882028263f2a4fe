"""Privacy: anonymous residents show as 匿名居民, hidden ones and minors never appear on boards
others see, yet each keeps their own rank; /leaderboards/me per scope with neighbours."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.factories import auth
from tests.leaderboards.conftest import board, drain, give, ranks, resident

NOV = datetime(2026, 11, 10, 3, 0, tzinfo=UTC)
MONTH = {"period": "month", "at": "2026-11-15"}


def me(client, app, user: int, **params):
    response = client.get("/api/v1/leaderboards/me", query_string=params,
                          headers=auth(app, user))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_anonymous_hidden_and_minors(app, client, world):
    _, public = resident(app, world, "公开者")
    _, anonymous = resident(app, world, "匿名者", privacy="anonymous")
    hidden_user, hidden = resident(app, world, "隐身者", privacy="hidden")
    minor_user, minor = resident(app, world, "小朋友", is_minor=True)
    for rid, actions in ((minor, 9), (hidden, 8), (anonymous, 5), (public, 3)):
        give(app, rid, "garbage-sorting", actions, at=NOV)
    drain(app)

    for viewer in (world.organizer, world.admin, world.auditor):
        body = board(client, app, viewer, scope=world.tree.community_a, **MONTH)
        assert ranks(body) == [(1, "匿名居民", 25), (2, "公*者", 15)]
    page = client.get(f"/public/communities/{world.tree.community_a}").get_data(as_text=True)
    assert "隐身者" not in page and "隐*者" not in page and "小*友" not in page

    # Each keeps their own rank: where they would stand among the listed residents.
    for user, value in ((hidden_user, 40), (minor_user, 45)):
        mine = me(client, app, user, **MONTH)
        assert mine["listed"] is False and mine["shown_as"] is None
        community = next(s for s in mine["scopes"] if s["scope"]["level"] == "community")
        assert (community["rank"], community["value"]) == (1, value)
        assert [r["name"] for r in community["below"]] == ["匿名居民", "公*者"]


def test_privacy_changes_move_rows_on_and_off_the_boards(app, client, world):
    user, rid = resident(app, world, "郑变化")
    _, other = resident(app, world, "王常在")
    give(app, rid, "garbage-sorting", 4, at=NOV)
    give(app, other, "garbage-sorting", 2, at=NOV)
    drain(app)
    scope = {"scope": world.tree.community_a, **MONTH}
    assert ranks(board(client, app, world.organizer, **scope)) == [(1, "郑*化", 20),
                                                                   (2, "王*在", 10)]
    for choice, expected in (
        ("hidden", [(1, "王*在", 10)]),
        ("anonymous", [(1, "匿名居民", 20), (2, "王*在", 10)]),
        ("public", [(1, "郑*化", 20), (2, "王*在", 10)]),
    ):
        response = client.patch("/api/v1/me", json={"privacy": choice}, headers=auth(app, user))
        assert response.status_code == 200, response.get_json()
        drain(app)
        assert ranks(board(client, app, world.organizer, **scope)) == expected, choice
    # Staff marking a resident as a minor takes them off every board as well.
    response = client.patch(f"/api/v1/residents/{rid}", json={"is_minor": True},
                            headers=auth(app, world.organizer))
    assert response.status_code == 200, response.get_json()
    drain(app)
    assert ranks(board(client, app, world.admin, scope=world.tree.district, **MONTH)) == [
        (1, "王*在", 10)]


def test_me_gives_rank_and_two_neighbours_each_way_in_every_scope(app, client, world):
    people = {}
    for name, actions, community in (("甲一", 9, "a"), ("甲二", 8, "a"), ("甲三", 7, "a"),
                                     ("甲四", 6, "a"), ("甲五", 5, "a"), ("甲六", 4, "a"),
                                     ("乙一", 10, "b"), ("乙二", 6, "b")):
        people[name] = resident(app, world, name, community=community)
        give(app, people[name][1], "garbage-sorting", actions, at=NOV)
    drain(app)

    mine = me(client, app, people["甲四"][0], **MONTH)
    assert mine["listed"] is True and mine["shown_as"] == "甲*"
    by_level = {s["scope"]["level"]: s for s in mine["scopes"]}
    assert list(by_level) == ["grid", "community", "street", "district"]
    community = by_level["community"]
    assert community["rank"] == 4 and community["value"] == 30
    assert [(r["rank"], r["value"]) for r in community["above"]] == [(2, 40), (3, 35)]
    assert [(r["rank"], r["value"]) for r in community["below"]] == [(5, 25), (6, 20)]
    district = by_level["district"]
    # 乙二 ties with 甲四 at 30 points: both rank 5 in the district.
    assert district["rank"] == 5
    neighbours = district["above"] + district["below"]
    assert all(not r["is_me"] for r in neighbours)
    assert {r["rank"] for r in neighbours} >= {4, 5}

    # Someone with nothing this period has no rank but still sees the scopes.
    idle_user, _ = resident(app, world, "闲人")
    idle = me(client, app, idle_user, **MONTH)
    assert [s["rank"] for s in idle["scopes"]] == [None, None, None, None]

    # Staff are not residents: /me is refused, the board is not.
    response = client.get("/api/v1/leaderboards/me", headers=auth(app, world.organizer))
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
