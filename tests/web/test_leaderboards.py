"""The resident's leaderboards: the boards of their own branch (community, street,
district) by period and category, "my place", and bad filters shown inline."""

from __future__ import annotations

import re

from tests.leaderboards.conftest import drain, give
from tests.ledger.conftest import make_rule

from .conftest import Page, text_of


def _points(app, world) -> None:  # type: ignore[no-untyped-def]
    make_rule(app, node_id=world.tree.district, code="civility", points=10, category="conduct")
    make_rule(app, node_id=world.tree.district, code="sorting", points=5,
              category="environment")
    give(app, world.resident, "civility", 3)
    give(app, world.resident2, "civility", 1)
    give(app, world.resident_b, "civility", 5)
    give(app, world.resident2, "sorting", 20)
    drain(app)


def _rows(response) -> list[str]:  # type: ignore[no-untyped-def]
    board = re.search(r'data-testid="board">(.*?)</ol>', response.get_data(as_text=True), re.S)
    assert board, "no board on the page"
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", item)).strip()
            for item in re.findall(r"<li[^>]*>(.*?)</li>", board.group(1), re.S)]


def test_the_community_board_and_my_place(app, world, resident_page):
    _points(app, world)
    home = resident_page.get("/wallet")
    assert 'href="/wallet/leaderboards"' in home.get_data(as_text=True)
    page = resident_page.get("/wallet/leaderboards")
    assert page.status_code == 200
    rows = _rows(page)
    assert rows[0].startswith("1 李*") and rows[1].startswith("2 张*明 (我)")
    assert not any("王" in row for row in rows)  # community B is not on A's board
    assert "我的名次" in text_of(page) and "第 2 名" in text_of(page)
    # By category: only conduct points count.
    conduct = _rows(resident_page.get("/wallet/leaderboards?category=conduct"))
    assert conduct[0].startswith("1 张*明") and conduct[1].startswith("2 李*")
    # The district board includes community B.
    district = _rows(resident_page.get("/wallet/leaderboards?level=district&category=conduct"))
    assert district[0].startswith("1 王*")


def test_bad_filters_are_inline_and_others_are_refused(app, world, resident_page, till_page):
    bad = resident_page.get("/wallet/leaderboards?period=decade")
    assert bad.status_code == 422 and "请选择一项" in text_of(bad)
    assert resident_page.get("/wallet/leaderboards?cursor=garbage").status_code == 422
    # An unknown level falls back to the resident's community, never another branch.
    assert resident_page.get("/wallet/leaderboards?level=planet").status_code == 422
    assert till_page.get("/wallet/leaderboards").status_code == 403
    assert Page(app.test_client()).get("/wallet/leaderboards").status_code == 302


def test_english_and_hidden_residents(app, world, resident_page):
    from pointsvc.extensions import db
    from pointsvc.people.models import Resident

    _points(app, world)
    with app.app_context():
        db.session.get(Resident, world.resident2).privacy = "hidden"
        db.session.commit()
        db.session.remove()
    drain(app)
    resident_page.post("/prefs", {"lang": "en"})
    page = resident_page.get("/wallet/leaderboards")
    assert "My place" in text_of(page) and "Leaderboards" in text_of(page)
    assert not any(row.startswith("1 李") for row in _rows(page))
