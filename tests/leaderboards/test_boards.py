"""Ranks, masking, periods in Asia/Shanghai, reversals, deductions, pagination, bad input."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.factories import auth
from tests.leaderboards.conftest import board, drain, give, ranks, resident, reverse

NOV = datetime(2026, 11, 10, 3, 0, tzinfo=UTC)


def test_ties_share_a_rank_and_names_are_masked(app, client, world):
    people = [resident(app, world, name) for name in ("张三丰", "李四", "王小五", "赵六")]
    for (_, rid), actions in zip(people, (6, 4, 4, 2), strict=True):
        give(app, rid, "garbage-sorting", actions, at=NOV)
    drain(app)

    body = board(client, app, world.organizer, scope=world.tree.community_a, period="month",
                 at="2026-11-20")
    # Ties share a rank; within a tie the newer resident is listed first (a stable order).
    assert ranks(body) == [(1, "张*丰", 30), (2, "王*五", 20), (2, "李*", 20), (4, "赵*", 10)]
    assert body["period_key"] == "m:2026-11"
    row = body["items"][0]
    assert set(row) == {"rank", "name", "value", "is_me"}  # no id, no phone
    # The same board a level up (district) and under the environment category.
    district = board(client, app, world.admin, scope=world.tree.district, period="month",
                     at="2026-11-01", category="environment")
    assert [r[0] for r in ranks(district)] == [1, 2, 2, 4]
    assert board(client, app, world.admin, scope=world.tree.district, period="month",
                 at="2026-11-01", category="volunteer")["items"] == []


def test_periods_break_at_midnight_in_shanghai(app, client, world):
    _, early = resident(app, world, "早起者")
    _, late = resident(app, world, "夜猫子")
    # 2026-11-30 23:59:59 and 2026-12-01 00:00:00 in Asia/Shanghai (UTC+8).
    give(app, early, "garbage-sorting", 1, at=datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC))
    give(app, late, "garbage-sorting", 2, at=datetime(2026, 11, 30, 16, 0, 0, tzinfo=UTC))
    # Sunday 2026-11-29 23:59:59 local closes ISO week 48; Monday 00:00:00 opens week 49.
    _, sunday = resident(app, world, "周日者")
    give(app, sunday, "garbage-sorting", 1, at=datetime(2026, 11, 29, 15, 59, 59, tzinfo=UTC))
    give(app, sunday, "garbage-sorting", 3, at=datetime(2026, 11, 29, 16, 0, 0, tzinfo=UTC))
    # 2026-12-31 23:30 local is still 2026; 2027-01-01 00:00 local is the new year.
    give(app, early, "garbage-sorting", 1, at=datetime(2026, 12, 31, 15, 30, tzinfo=UTC))
    give(app, late, "garbage-sorting", 1, at=datetime(2026, 12, 31, 16, 0, tzinfo=UTC))
    drain(app)

    def names(**params):
        return [r[1] for r in ranks(board(client, app, world.organizer,
                                          scope=world.tree.community_a, **params))]

    def values(**params):
        return [r[2] for r in ranks(board(client, app, world.organizer,
                                          scope=world.tree.community_a, **params))]

    assert names(period="month", at="2026-11-30") == ["周*者", "早*者"]
    assert values(period="month", at="2026-11-30") == [20, 5]
    assert names(period="month", at="2026-12-01") == ["夜*子", "早*者"]
    assert values(period="week", at="2026-11-29") == [5]  # week 48: the Sunday posting
    assert names(period="week", at="2026-12-06") == ["周*者", "夜*子", "早*者"]
    assert values(period="week", at="2026-12-06") == [15, 10, 5]
    assert names(period="year", at="2027-01-01") == ["夜*子"]
    assert ranks(board(client, app, world.organizer, scope=world.tree.community_a,
                       period="year", at="2026-06-01")) == [(1, "周*者", 20), (2, "夜*子", 10),
                                                            (2, "早*者", 10)]
    assert values(period="all") == [20, 15, 10]


def test_a_reversal_moves_ranks_in_the_period_the_points_were_earned(app, client, world):
    _, first = resident(app, world, "钱一")
    _, second = resident(app, world, "孙二")
    big = give(app, first, "garbage-sorting", 4, at=NOV)
    give(app, first, "garbage-sorting", 1, at=NOV)
    give(app, second, "garbage-sorting", 3, at=NOV)
    drain(app)
    november = {"scope": world.tree.community_a, "period": "month", "at": "2026-11-15"}
    assert ranks(board(client, app, world.organizer, **november)) == [(1, "钱*", 25),
                                                                      (2, "孙*", 15)]
    reverse(app, world, big)  # posted today, in December or later
    drain(app)
    assert ranks(board(client, app, world.organizer, **november)) == [(1, "孙*", 15),
                                                                      (2, "钱*", 5)]
    this_month = board(client, app, world.organizer, scope=world.tree.community_a,
                       period="month")
    assert this_month["items"] == []


def test_deductions_lower_the_conduct_and_all_boards(app, client, world):
    _, good = resident(app, world, "周好")
    _, rude = resident(app, world, "吴差")
    give(app, good, "civility", 1, at=NOV)
    give(app, rude, "civility", 3, at=NOV)
    give(app, rude, "garbage-sorting", 2, at=NOV)
    give(app, rude, "litter", 1, at=NOV)  # -20
    drain(app)
    params = {"scope": world.tree.community_a, "period": "month", "at": "2026-11-15"}
    conduct = ranks(board(client, app, world.organizer, category="conduct", **params))
    assert sorted(conduct) == [(1, "吴*", 10), (1, "周*", 10)]
    assert ranks(board(client, app, world.organizer, category="environment", **params)) == [
        (1, "吴*", 10)]
    assert ranks(board(client, app, world.organizer, category="all", **params)) == [
        (1, "吴*", 20), (2, "周*", 10)]
    give(app, rude, "litter", 1, at=NOV)  # another -20: 10 environment + 10 conduct - 40
    drain(app)
    assert ranks(board(client, app, world.organizer, category="all", **params)) == [
        (1, "周*", 10), (2, "吴*", 0)]


def test_hours_metric_ranks_service_minutes(app, client, world):
    _, a = resident(app, world, "冯志愿")
    _, b = resident(app, world, "陈志愿")
    give(app, a, "volunteer-hour", 90, at=NOV)
    give(app, b, "volunteer-hour", 150, at=NOV)
    give(app, b, "garbage-sorting", 1, at=NOV)
    drain(app)
    body = board(client, app, world.organizer, scope=world.tree.community_a, period="month",
                 at="2026-11-15", metric="hours")
    assert ranks(body) == [(1, "陈*愿", 2.5), (2, "冯*愿", 1.5)]


def test_keyset_pages_keep_ranks_and_cursors_reveal_nothing(app, client, world):
    people = [resident(app, world, f"居民{n:02d}")[1] for n in range(7)]
    for rid, actions in zip(people, (5, 4, 4, 4, 3, 2, 1), strict=True):
        give(app, rid, "garbage-sorting", actions, at=NOV)
    drain(app)
    seen, cursor = [], None
    while True:
        params = {"scope": world.tree.community_a, "period": "all", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = board(client, app, world.organizer, **params)
        seen.extend(r[0] for r in ranks(body))
        cursor = body["next_cursor"]
        if not cursor:
            break
        assert "居民" not in cursor and len(cursor) == 22
    assert seen == [1, 2, 2, 2, 5, 6, 7]


def test_bad_input_is_a_clear_4xx(app, client, world):
    headers = auth(app, world.organizer)
    cases = [
        ({"scope": world.tree.community_a, "period": "fortnight"}, 422, "validation_failed"),
        ({"scope": world.tree.community_a, "limit": 101}, 422, "validation_failed"),
        ({"scope": world.tree.community_a, "cursor": "not-a-cursor"}, 422, "validation_failed"),
        ({"scope": world.tree.community_a, "cursor": "A" * 22}, 422, "validation_failed"),
        ({"scope": world.tree.community_a, "at": "2026-13-01"}, 422, "validation_failed"),
        ({"scope": world.tree.community_a, "colour": "red"}, 422, "validation_failed"),
        ({}, 422, "validation_failed"),
        ({"scope": 999999}, 404, "not_found"),
        ({"scope": world.tree.community_b}, 403, "not_in_scope"),
    ]
    for params, status, code in cases:
        response = client.get("/api/v1/leaderboards", query_string=params, headers=headers)
        assert response.status_code == status, (params, response.get_json())
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["code"] == code
    assert client.get("/api/v1/leaderboards",
                      query_string={"scope": world.tree.community_a}).status_code == 401
