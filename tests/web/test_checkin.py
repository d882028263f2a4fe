"""/K/<token>: a resident's phone opens an event's check-in link; the page records the scan
and says what happened — checked in at 10:02, already checked in, or why not."""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest

from tests.events.conftest import START, Clock, code_of, make_event
from tests.ledger.conftest import make_rule

from .conftest import Page, login_name, text_of


@pytest.fixture
def event_setup(app, world):  # type: ignore[no-untyped-def]
    make_rule(app, node_id=world.tree.district, code="volunteer-hour", points=10, unit="hour")
    clock = Clock(START + timedelta(minutes=2))  # 10:02 in Shanghai
    app.config["EVENTS_CLOCK"] = clock
    events_world = SimpleNamespace(tree=world.tree, organizer=world.organizer_a)
    event = make_event(app.test_client(), app, events_world)
    return SimpleNamespace(event=event, clock=clock, world=events_world)


def _path(link: str) -> str:
    return re.sub(r"^HTTPS://[^/]+", "", link)


def test_check_in_by_link_after_signing_in(app, world, event_setup):
    code = code_of(app.test_client(), app, event_setup.world, event_setup.event["id"])
    path = _path(code["url"])
    assert path.startswith("/K/")
    page = Page(app.test_client())
    bounced = page.get(path)
    assert bounced.status_code == 302 and "next=" in bounced.location
    page.get(bounced.location)
    back = page.post("/login", {"identifier": login_name(app, world.resident_user),
                                "password": "correct-horse-9", "next": path})
    assert back.location == path
    done = page.get(path)
    assert done.status_code == 201, text_of(done)
    assert "10:02 签到成功" in text_of(done) and "社区清洁日" in text_of(done)
    again = page.get(path)
    assert again.status_code == 200 and "已于 10:02 签到" in text_of(again)


def test_an_old_code_says_why_not(app, world, event_setup, resident_page):
    code = code_of(app.test_client(), app, event_setup.world, event_setup.event["id"])
    event_setup.clock.advance(minutes=5)
    refused = resident_page.get(_path(code["url"]))
    assert refused.status_code == 410
    assert "未能签到" in text_of(refused) and "屏幕上的码已经更新" in text_of(refused)


@pytest.mark.parametrize("token", ["NOT-A-CODE", "PSK1" + "A" * 40, "PSP1" + "A" * 50])
def test_bad_check_in_links_are_plain_pages(resident_page, token):
    response = resident_page.get(f"/K/{token}")
    assert 400 <= response.status_code < 500
    assert response.mimetype == "text/html" and "未能签到" in text_of(response)


def test_check_out_without_check_in_is_refused(app, world, event_setup, resident_page):
    code = code_of(app.test_client(), app, event_setup.world, event_setup.event["id"],
                   direction="out")
    refused = resident_page.get(_path(code["url"]))
    assert refused.status_code == 409 and "您还没有签到这个活动" in text_of(refused)


def test_merchants_cannot_check_in(app, world, event_setup, till_page):
    code = code_of(app.test_client(), app, event_setup.world, event_setup.event["id"])
    response = till_page.get(_path(code["url"]))
    assert response.status_code == 403 and "这个页面是给居民用的" in text_of(response)


def test_events_list_sign_up_and_cancel(app, world, event_setup, resident_page):
    from tests.events.conftest import make_event

    full = make_event(app.test_client(), app, event_setup.world, title="读书会", capacity=1)
    listing = resident_page.get("/wallet/events")
    assert "社区清洁日" in text_of(listing) and "读书会" in text_of(listing)
    assert "我的报名" not in text_of(listing)
    url = f"/wallet/events/{event_setup.event['id']}"
    assert "未报名" in text_of(resident_page.get(url))
    assert resident_page.post(f"{url}/signup").status_code == 302
    assert "已报名" in text_of(resident_page.get(url))
    assert "社区清洁日 已报名" in text_of(resident_page.get("/wallet/events"))
    assert resident_page.post(f"{url}/cancel").status_code == 302
    assert "未报名" in text_of(resident_page.get(url))
    # A full event puts the next resident on the wait-list.
    resident_page.post(f"/wallet/events/{full['id']}/signup")
    other = Page(app.test_client())
    other.sign_in(app, world.resident2_user)
    other.post(f"/wallet/events/{full['id']}/signup")
    assert "候补中 (候补第 1 位)" in text_of(other.get(f"/wallet/events/{full['id']}"))


def test_events_of_another_community_are_refused(app, world, event_setup):
    other = Page(app.test_client())
    other.sign_in(app, world.resident_b_user)  # community B; the event is A's
    url = f"/wallet/events/{event_setup.event['id']}"
    assert other.get(url).status_code == 403
    assert other.post(f"{url}/signup").status_code == 403
    assert "社区清洁日" not in text_of(other.get("/wallet/events"))
    assert other.get("/wallet/events/999999").status_code == 404


def test_the_resident_card_shows_the_residents_card_code(app, world, resident_page):
    import base64

    from pointsvc.codes import CARD, parse_code, render

    html = resident_page.get("/wallet/card").get_data(as_text=True)
    assert "居民卡" in html and "张小明" in html
    shown = base64.b64decode(re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', html)
                             .group(1))
    with app.app_context():
        from pointsvc.events.service import card_for

        code = card_for(resident_id=world.resident)["code"]
        assert parse_code(code, expected=CARD)["resident_id"] == world.resident
        # The page draws exactly this code (the renderer itself is decoded with zxing-cpp
        # in tests/codes).
        assert shown == render.svg(code)


def test_honours_and_the_certificate(app, world, resident_page):
    page = resident_page.get("/wallet/honours")
    assert page.status_code == 200 and "我的荣誉" in text_of(page) and "还没有徽章" in text_of(
        page)
    with resident_page.get("/wallet/certificate.pdf") as pdf:
        assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
        assert pdf.data.startswith(b"%PDF")
