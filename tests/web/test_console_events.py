"""The console's events: create (field errors inline), publish, kiosk link, live attendance,
close, approve, cancel — within the staff member's scope, every POST with its CSRF token."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.events.conftest import START, Clock, code_of
from tests.factories import auth
from tests.ledger.conftest import make_rule
from tests.redemption.conftest import balance

from .conftest import Page, key_of, text_of

FORM = {"title": "社区清洁日", "category": "volunteer", "rule_code": "volunteer-hour",
        "starts_at": "2026-06-01T10:00", "ends_at": "2026-06-01T12:00",
        "place": "甲社区活动中心", "signup_required": "1"}


@pytest.fixture
def clock(app, world):  # type: ignore[no-untyped-def]
    make_rule(app, node_id=world.tree.district, code="volunteer-hour", points=10, unit="hour")
    clock = Clock(START + timedelta(minutes=2))
    app.config["EVENTS_CLOCK"] = clock
    return clock


def _staff(app, user_id: int) -> Page:  # type: ignore[no-untyped-def]
    page = Page(app.test_client())
    page.sign_in(app, user_id, till=True)
    return page


def _create(staff: Page, world, **changes) -> int:  # type: ignore[no-untyped-def]
    response = staff.post("/console/events/new",
                          {**FORM, "org_node_id": str(world.tree.community_a), **changes})
    assert response.status_code == 302, text_of(response)
    return int(re.search(r"/console/events/(\d+)$", response.location).group(1))


def test_create_publish_and_the_list(app, world, clock):
    staff = _staff(app, world.organizer_a)
    form = staff.get("/console/events/new")
    assert form.status_code == 200 and "新建活动" in text_of(form)
    event_id = _create(staff, world)
    page = staff.get(f"/console/events/{event_id}")
    assert "社区清洁日" in text_of(page) and "草稿" in text_of(page)
    assert "10:00" in text_of(page)  # shown in the community's zone (UTC 02:00)
    assert staff.post(f"/console/events/{event_id}/publish").status_code == 302
    assert "已发布" in text_of(staff.get(f"/console/events/{event_id}"))
    listing = staff.get("/console/events")
    assert "社区清洁日" in text_of(listing)
    assert "社区清洁日" not in text_of(staff.get("/console/events?status=draft"))
    # The same event as the API sees it: published, on community A.
    api = app.test_client().get(f"/api/v1/events/{event_id}", headers=auth(app, world.admin))
    assert api.get_json()["status"] == "published"
    assert api.get_json()["org_node_id"] == world.tree.community_a


def test_the_list_is_paged_by_keyset(app, world, clock):
    staff = _staff(app, world.organizer_a)
    for n in range(23):
        _create(staff, world, title=f"活动{n:02d}")
    first = staff.get("/console/events")
    assert text_of(first).count("活动") >= 20
    next_link = re.search(r'rel="next" href="([^"]+)"', first.get_data(as_text=True))
    assert next_link
    second = staff.get(next_link.group(1).replace("&amp;", "&"))
    assert "活动22" in text_of(second) and "活动00" not in text_of(second)
    assert staff.get("/console/events?cursor=garbage").status_code == 422
    assert staff.get("/console/events?status=nope").status_code == 422


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"title": ""}, "title", "此项必填"),
    ({"starts_at": "tomorrow"}, "starts_at", "请输入日期和时间"),
    ({"ends_at": "2026-06-01T09:00"}, "ends_at", "结束时间必须晚于开始时间"),
    ({"rule_code": "no-such-rule"}, "rule_code", "这里没有这条规则"),
    ({"category": "parade"}, "category", "请选择一项"),
    ({"capacity": "-3"}, "capacity", "请输入整数"),
    ({"capacity": "0"}, "capacity", "请输入 1 到 1000000 之间的数"),
    ({"org_node_id": "x"}, "org_node_id", "请输入整数"),
])
def test_bad_input_is_inline_and_kept(app, world, clock, changes, field, message):
    staff = _staff(app, world.organizer_a)
    body = {**FORM, "org_node_id": str(world.tree.community_a), **changes}
    response = staff.post("/console/events/new", body)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert f'id="e-{field}"' in html and message in text_of(response)
    assert 'value="甲社区活动中心"' in html  # what was typed stays


def test_another_community_is_refused(app, world, clock):
    event_id = _create(_staff(app, world.organizer_a), world)
    other = _staff(app, world.organizer_b)
    assert other.get(f"/console/events/{event_id}").status_code == 403
    assert other.post(f"/console/events/{event_id}/publish").status_code == 403
    assert other.post(f"/console/events/{event_id}/kiosk-link").status_code == 403
    assert other.get(f"/console/events/{event_id}/attendance").status_code == 403
    assert "社区清洁日" not in text_of(other.get("/console/events"))
    # Creating on community A's node from B's console is refused too.
    refused = other.post("/console/events/new",
                         {**FORM, "org_node_id": str(world.tree.community_a)})
    assert refused.status_code == 403
    residents = Page(app.test_client())
    residents.sign_in(app, world.resident_user)
    assert residents.get("/console/events").status_code == 403


def test_auditors_read_but_cannot_change(app, world, clock):
    event_id = _create(_staff(app, world.organizer_a), world)
    auditor = _staff(app, world.auditor_a)
    page = auditor.get(f"/console/events/{event_id}")
    assert page.status_code == 200 and "发布" not in text_of(page).replace("未发布", "")
    assert auditor.post(f"/console/events/{event_id}/publish").status_code == 403
    assert auditor.get("/console/events/new").status_code == 403


def test_posts_without_csrf_are_refused(app, world, clock):
    staff = _staff(app, world.organizer_a)
    event_id = _create(staff, world)
    refused = staff.client.post(f"/console/events/{event_id}/publish")
    assert refused.status_code == 400
    assert "草稿" in text_of(staff.get(f"/console/events/{event_id}"))


def test_kiosk_link_attendance_close_and_approve(app, world, clock):
    staff = _staff(app, world.organizer_a)
    event_id = _create(staff, world, approval_required="1")
    staff.post(f"/console/events/{event_id}/publish")
    made = staff.post(f"/console/events/{event_id}/kiosk-link")
    assert made.status_code == 201
    url = re.search(r'id="kiosk-url" type="text" readonly value="([^"]+)"',
                    made.get_data(as_text=True)).group(1).replace("&amp;", "&")
    assert f"/events/{event_id}/kiosk?k=" in url
    kiosk = app.test_client().get(url.replace("http://localhost", ""))
    assert kiosk.status_code == 200 and "社区清洁日" in kiosk.get_data(as_text=True)

    # A resident checks in with the kiosk's code; the live page shows them inside.
    resident = Page(app.test_client())
    resident.sign_in(app, world.resident_user)
    assert resident.post(f"/wallet/events/{event_id}/signup").status_code == 302
    code = code_of(app.test_client(), app, type("W", (), {"organizer": world.organizer_a}),
                   event_id)
    assert resident.get(re.sub(r"^HTTPS://[^/]+", "", code["url"])).status_code == 201
    live = staff.get(f"/console/events/{event_id}/attendance")
    assert live.status_code == 200 and live.headers.get("Refresh") == "15"
    assert "张小明" in text_of(live)
    assert re.search(r'data-testid="inside">\s*1\s*<', live.get_data(as_text=True))

    # Close (once per form, even sent twice), then approve: the points post.
    clock.advance(hours=3)
    page = staff.get(f"/console/events/{event_id}")
    key = key_of(page.get_data(as_text=True))
    closed = staff.post(f"/console/events/{event_id}/close", {"key": key})
    assert closed.status_code == 200 and "等待审批" in text_of(closed)
    again = staff.post(f"/console/events/{event_id}/close", {"key": key})
    assert again.status_code == 200
    assert balance(app, world.resident) == (0, 0)
    approve_key = key_of(again.get_data(as_text=True))
    approved = staff.post(f"/console/events/{event_id}/approve", {"key": approve_key})
    assert approved.status_code == 200, text_of(approved)
    assert "已发放积分" in text_of(approved)
    assert balance(app, world.resident)[0] > 0
    assert "已入账" in text_of(staff.get(f"/console/events/{event_id}/attendance"))


def test_close_without_key_is_refused_and_cancel_works(app, world, clock):
    staff = _staff(app, world.organizer_a)
    event_id = _create(staff, world)
    staff.post(f"/console/events/{event_id}/publish")
    assert staff.post(f"/console/events/{event_id}/close").status_code == 400
    assert staff.post(f"/console/events/{event_id}/cancel").status_code == 302
    page = staff.get(f"/console/events/{event_id}")
    assert "已取消" in text_of(page)
    # Publishing a cancelled event is a plain refusal, not a 500.
    assert staff.post(f"/console/events/{event_id}/publish").status_code == 409


def _edit_body(**changes) -> dict:  # type: ignore[no-untyped-def]
    return {k: v for k, v in {**FORM, **changes}.items() if k != "org_node_id"}


def test_edit_an_event_after_creation(app, world, clock):
    staff = _staff(app, world.organizer_a)
    event_id = _create(staff, world, capacity="30")
    staff.post(f"/console/events/{event_id}/publish")
    page = staff.get(f"/console/events/{event_id}")
    assert f"/console/events/{event_id}/edit" in page.get_data(as_text=True)
    form = staff.get(f"/console/events/{event_id}/edit")
    html = form.get_data(as_text=True)
    # The form holds the event as it is: times in the community's zone, what was ticked.
    assert 'value="2026-06-01T10:00"' in html and 'value="甲社区活动中心"' in html
    assert 'value="30"' in html and "org_node_id" not in html
    saved = staff.post(f"/console/events/{event_id}/edit",
                       _edit_body(title="社区清洁日（改期）", starts_at="2026-06-02T09:00",
                                  ends_at="2026-06-02T11:30", capacity=""))
    assert saved.status_code == 302, text_of(saved)
    shown = text_of(staff.get(f"/console/events/{event_id}"))
    assert "社区清洁日（改期）" in shown and "2026-06-02 09:00" in shown and "已发布" in shown
    api = app.test_client().get(f"/api/v1/events/{event_id}",
                                headers=auth(app, world.admin)).get_json()
    assert api["starts_at"].startswith("2026-06-02T01:00") and api["capacity"] is None
    assert api["title"] == "社区清洁日（改期）"
    # Bad input is inline with what was typed kept; nothing changed is said so.
    bad = staff.post(f"/console/events/{event_id}/edit",
                     _edit_body(ends_at="2026-06-01T08:00", place="新地点"))
    assert bad.status_code == 422 and "结束时间必须晚于开始时间" in text_of(bad)
    assert 'value="新地点"' in bad.get_data(as_text=True)
    same = staff.post(f"/console/events/{event_id}/edit",
                      _edit_body(title="社区清洁日（改期）", starts_at="2026-06-02T09:00",
                                 ends_at="2026-06-02T11:30", capacity=""))
    assert same.status_code == 422 and "没有任何改动" in text_of(same)
    # Another community's organiser and auditors cannot edit; CSRF is required.
    other = _staff(app, world.organizer_b)
    assert other.get(f"/console/events/{event_id}/edit").status_code == 403
    assert other.post(f"/console/events/{event_id}/edit", _edit_body()).status_code == 403
    assert _staff(app, world.auditor_a).get(f"/console/events/{event_id}/edit").status_code == 403
    assert staff.client.post(f"/console/events/{event_id}/edit",
                             data=_edit_body(title="x")).status_code == 400


def test_a_cancelled_event_cannot_be_edited(app, world, clock):
    staff = _staff(app, world.organizer_a)
    event_id = _create(staff, world)
    staff.post(f"/console/events/{event_id}/cancel")
    assert f"/console/events/{event_id}/edit" not in staff.get(
        f"/console/events/{event_id}").get_data(as_text=True)
    assert staff.get(f"/console/events/{event_id}/edit").status_code == 409
    assert staff.post(f"/console/events/{event_id}/edit",
                      _edit_body(title="改了")).status_code == 409
    assert "已取消" in text_of(staff.get(f"/console/events/{event_id}"))


def test_a_revoked_kiosk_link_stops_working(app, world, clock):
    staff = _staff(app, world.organizer_a)
    event_id = _create(staff, world)
    staff.post(f"/console/events/{event_id}/publish")
    made = staff.post(f"/console/events/{event_id}/kiosk-link")
    url = re.search(r'id="kiosk-url" type="text" readonly value="([^"]+)"',
                    made.get_data(as_text=True)).group(1).replace("&amp;", "&")
    kiosk_path = url.replace("http://localhost", "")
    screen = app.test_client()
    assert screen.get(kiosk_path).status_code == 200
    page = staff.get(f"/console/events/{event_id}").get_data(as_text=True)
    assert page.count('data-testid="kiosk-link-row"') == 1
    revoke = re.search(r'action="(/console/events/\d+/kiosk-links/\d+/revoke)"', page).group(1)
    # Not another community's organiser, and not without the CSRF token.
    assert _staff(app, world.organizer_b).post(revoke).status_code == 403
    assert staff.client.post(revoke).status_code == 400
    token = kiosk_path.split("k=", 1)[1]
    assert screen.get(kiosk_path).status_code == 200
    assert screen.get(f"/events/{event_id}/kiosk/state",
                      headers={"X-Kiosk-Token": token}).status_code == 200
    assert staff.post(revoke).status_code == 302
    assert screen.get(kiosk_path).status_code == 403
    assert screen.get(f"/events/{event_id}/kiosk/state",
                      headers={"X-Kiosk-Token": token}).status_code == 403  # the 5-s poll
    after = staff.get(f"/console/events/{event_id}").get_data(as_text=True)
    assert 'data-testid="kiosk-link-row"' not in after
    # Revoking it again is a plain "not found", not a 500.
    assert staff.post(revoke).status_code == 404
