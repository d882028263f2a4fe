"""Shown names live on the tally rows: any characters survive the drainer's set-based
upsert, erasure blanks them at once, and the check compares them with the people tables."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, text

from pointsvc.common import mask_name
from pointsvc.extensions import db
from pointsvc.leaderboards.models import Tally
from pointsvc.leaderboards.tallies import check_tallies
from tests.factories import auth
from tests.leaderboards.conftest import board, drain, give, ranks, resident

NOV = datetime(2026, 11, 10, 3, 0, tzinfo=UTC)
MONTH = {"period": "month", "at": "2026-11-20"}


def test_any_characters_of_a_name_reach_the_board_masked(app, client, world):
    # The first and last characters survive masking: quotes, backslashes, commas, braces,
    # a name that reads NULL and a one-character name must all come back exactly.
    names = ['"引号\\', "{逗,号}", "NULL", "\\", '李"', "王 五"]
    for actions, name in enumerate(names, start=1):
        _, rid = resident(app, world, name)
        give(app, rid, "garbage-sorting", actions, at=NOV)
    drain(app)
    body = board(client, app, world.organizer, scope=world.tree.community_a, **MONTH)
    expected = [mask_name(name) for name in reversed(names)]
    assert [row["name"] for row in body["items"]] == expected
    assert expected[-1] == '"**\\' and expected[3] == "N**L"


def test_erasure_blanks_the_boards_copy_of_the_name_at_once(app, client, world):
    _, rid = resident(app, world, "蔺霄翎")
    _, other = resident(app, world, "欧阳娜")
    give(app, rid, "garbage-sorting", 3, at=NOV)
    give(app, other, "garbage-sorting", 1, at=NOV)
    drain(app)
    response = client.post(f"/api/v1/residents/{rid}/erasure",
                           json={"reason_code": "resident_request"},
                           headers=auth(app, world.admin))
    assert response.status_code == 201, response.get_json()
    with app.app_context():
        names = set(db.session.scalars(select(Tally.shown_name).where(Tally.resident_id == rid)))
    assert names == {None}  # before any drain
    body = board(client, app, world.organizer, scope=world.tree.community_a, **MONTH)
    assert "蔺*翎" not in [row["name"] for row in body["items"]]
    drain(app)  # the re-listing takes them off the board
    body = board(client, app, world.organizer, scope=world.tree.community_a, **MONTH)
    assert ranks(body) == [(1, "欧*娜", 5)]


def test_the_check_names_rows_whose_shown_name_differs(app, world):
    _, rid = resident(app, world, "张三丰")
    give(app, rid, "garbage-sorting", 2, at=NOV)
    drain(app)
    with app.app_context():
        assert check_tallies() == []
        db.session.execute(text("UPDATE leaderboard_tallies SET shown_name = '李*四' "
                                "WHERE resident_id = :rid"), {"rid": rid})
        db.session.commit()
        problems = check_tallies()
        assert problems == [f"tally rows of resident {rid} differ from the people tables in "
                            "listing or shown name"]
        # Queued for re-listing, the row is on its way to right: not reported.
        db.session.execute(text("INSERT INTO leaderboard_relist (resident_id) VALUES (:rid)"),
                           {"rid": rid})
        db.session.commit()
        assert check_tallies() == []
        db.session.remove()
    drain(app)
    with app.app_context():
        assert set(db.session.scalars(
            select(Tally.shown_name).where(Tally.resident_id == rid))) == {"张*丰"}
        assert check_tallies() == []
