"""A worker's copy of board pages: repeats served from memory within the bound, emptied by
its own drains and by identity changes, never mixing callers or scopes. Shown names live on
the tally rows, so a name change reaches the boards with the drain of its re-listing."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import select

from pointsvc.extensions import db
from pointsvc.leaderboards import cache
from pointsvc.leaderboards.models import RelistOutbox
from pointsvc.people.models import User
from tests.leaderboards.conftest import board, drain, give, ranks, resident

NOV = datetime(2026, 11, 10, 3, 0, tzinfo=UTC)
PARAMS = {"period": "month", "at": "2026-11-20"}


def _statements(app, client, user, **params) -> tuple[dict, int]:
    """A board read and how many SQL statements it sent."""
    from sqlalchemy import event

    seen = []
    with app.app_context():
        engine = db.engine

    def count(*_args):
        seen.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        body = board(client, app, user, **params)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return body, len(seen)


def test_a_repeat_is_served_from_memory_until_the_bound(app, client, world):
    app.config["LEADERBOARD_CACHE_SECONDS"] = 1
    _, first = resident(app, world, "张三丰")
    _, second = resident(app, world, "李四")  # (a new resident empties the copies: now)
    give(app, first, "garbage-sorting", 2, at=NOV)
    drain(app)
    params = {"scope": world.tree.community_a, **PARAMS}
    cold, cold_statements = _statements(app, client, world.organizer, **params)
    warm, warm_statements = _statements(app, client, world.organizer, **params)
    assert ranks(warm) == ranks(cold) == [(1, "张*丰", 10)]
    assert warm_statements < cold_statements  # the page's own statement was not sent again

    # A posting drained by ANOTHER worker (simulated: straight into the tallies, this
    # worker's copy untouched) shows once the copy is older than the bound, not before.
    give(app, second, "garbage-sorting", 4, at=NOV)
    pages = app.extensions[cache.BOARD_PAGES].copy()
    drain(app)
    app.extensions[cache.BOARD_PAGES] = pages  # as if the drain had run elsewhere
    assert ranks(board(client, app, world.organizer, **params)) == [(1, "张*丰", 10)]
    time.sleep(1.05)
    assert ranks(board(client, app, world.organizer, **params)) == [
        (1, "李*", 20), (2, "张*丰", 10)]


def test_this_workers_drain_empties_it_at_once(app, client, world):
    app.config["LEADERBOARD_CACHE_SECONDS"] = 60
    _, first = resident(app, world, "张三丰")
    give(app, first, "garbage-sorting", 2, at=NOV)
    drain(app)
    params = {"scope": world.tree.community_a, **PARAMS}
    assert ranks(board(client, app, world.organizer, **params)) == [(1, "张*丰", 10)]
    give(app, first, "garbage-sorting", 1, at=NOV)
    drain(app)
    assert ranks(board(client, app, world.organizer, **params)) == [(1, "张*丰", 15)]


def test_a_name_change_reaches_the_boards_with_the_next_drain(app, client, world):
    app.config["LEADERBOARD_CACHE_SECONDS"] = 60
    user_id, first = resident(app, world, "张三丰")
    give(app, first, "garbage-sorting", 2, at=NOV)
    drain(app)
    params = {"scope": world.tree.community_a, **PARAMS}
    assert ranks(board(client, app, world.organizer, **params)) == [(1, "张*丰", 10)]
    with app.app_context():
        db.session.get(User, user_id).display_name = "王小五"
        db.session.commit()
        # the tally rows carry the shown name: the change is queued as a re-listing
        assert list(db.session.scalars(select(RelistOutbox.resident_id))) == [first]
    drain(app)
    assert ranks(board(client, app, world.organizer, **params)) == [(1, "王*五", 10)]


def test_cached_rows_are_marked_for_each_caller_and_kept_per_scope(app, client, world):
    app.config["LEADERBOARD_CACHE_SECONDS"] = 60
    first_user, first = resident(app, world, "张三丰")
    second_user, second = resident(app, world, "李四")
    _, other = resident(app, world, "王芳", community="b")
    give(app, first, "garbage-sorting", 2, at=NOV)
    give(app, second, "garbage-sorting", 1, at=NOV)
    give(app, other, "garbage-sorting", 3, at=NOV)
    drain(app)
    params = {"scope": world.tree.community_a, **PARAMS}
    mine = board(client, app, first_user, **params)
    theirs = board(client, app, second_user, **params)
    assert [row["is_me"] for row in mine["items"]] == [True, False]
    assert [row["is_me"] for row in theirs["items"]] == [False, True]
    # Another scope, period or category is another page, never this one's copy.
    assert ranks(board(client, app, world.admin, scope=world.tree.community_b, **PARAMS)) == [
        (1, "王*", 15)]
    assert board(client, app, world.organizer, scope=world.tree.community_a, period="month",
                 at="2026-10-20")["items"] == []
    assert board(client, app, world.organizer, category="volunteer", **params)["items"] == []


def test_zero_turns_it_off(app, client, world):
    app.config["LEADERBOARD_CACHE_SECONDS"] = 0
    _, first = resident(app, world, "张三丰")
    give(app, first, "garbage-sorting", 2, at=NOV)
    drain(app)
    params = {"scope": world.tree.community_a, **PARAMS}
    board(client, app, world.organizer, **params)
    assert cache.BOARD_PAGES not in app.extensions
