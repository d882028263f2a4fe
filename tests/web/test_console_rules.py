"""The console's rule book: create a rule, edit one (version 2, version 1 still readable), bad
input inline, scope and roles as the API's (rules.manage on the rule's node), CSRF."""

from __future__ import annotations

import re

import pytest

from tests.factories import auth
from tests.ledger.conftest import make_rule

from .conftest import text_of
from .test_console_events import _staff

FORM = {"code": "stair-cleaning", "title_zh": "清扫楼道", "title_en": "Stair cleaning",
        "category": "environment", "points": "8", "unit": "action"}


@pytest.fixture
def district_rule(app, world):  # type: ignore[no-untyped-def]
    return make_rule(app, node_id=world.tree.district, code="garbage-sorting", points=5)


def _create(staff, world, **changes) -> int:  # type: ignore[no-untyped-def]
    response = staff.post("/console/rules/new",
                          {**FORM, "org_node_id": str(world.tree.community_a), **changes})
    assert response.status_code == 302, text_of(response)
    return int(re.search(r"/console/rules/(\d+)$", response.location).group(1))


def test_create_a_rule_and_see_it_in_the_book(app, world, district_rule):
    staff = _staff(app, world.organizer_a)
    book = staff.get("/console/rules")
    assert "规则garbage-sorting" in text_of(book) and "新建规则" in text_of(book)
    # The district's rule is in force here but is not the community organiser's to edit.
    assert f"/console/rules/{district_rule}/edit" not in book.get_data(as_text=True)
    assert staff.get(f"/console/rules/{district_rule}/edit").status_code == 403
    rule_id = _create(staff, world, points="-3", cap_day="2", approval_required="1")
    page = staff.get(f"/console/rules/{rule_id}")
    assert page.status_code == 200 and "清扫楼道" in text_of(page)
    assert re.search(r'data-testid="rule-points">\s*−3', page.get_data(as_text=True))
    assert f"/console/rules/{rule_id}/edit" in staff.get("/console/rules").get_data(as_text=True)
    api = app.test_client().get(f"/api/v1/rules/{rule_id}", headers=auth(app, world.admin))
    body = api.get_json()
    assert (body["org_node_id"], body["points"], body["cap_day"], body["approval_required"],
            body["version"]) == (world.tree.community_a, -3, 2, True, 1)


def test_an_edit_makes_version_2_and_version_1_stays_readable(app, world):
    staff = _staff(app, world.organizer_a)
    first = _create(staff, world)
    form = staff.get(f"/console/rules/{first}/edit")
    assert form.status_code == 200 and 'value="清扫楼道"' in form.get_data(as_text=True)
    saved = staff.post(f"/console/rules/{first}/edit",
                       {**{k: v for k, v in FORM.items() if k != "code"}, "points": "10",
                        "title_zh": "清扫楼梯"})
    assert saved.status_code == 302, text_of(saved)
    second = int(re.search(r"/console/rules/(\d+)$", saved.location).group(1))
    assert second != first
    new = staff.get(f"/console/rules/{second}")
    assert re.search(r'data-testid="rule-version">\s*2', new.get_data(as_text=True))
    assert "清扫楼梯" in text_of(new) and "版本 1" in text_of(new)
    old = staff.get(f"/console/rules/{first}")
    assert old.status_code == 200
    html = old.get_data(as_text=True)
    assert re.search(r'data-testid="rule-version">\s*1 · 已被替换', html)
    assert re.search(r'data-testid="rule-points">\s*\+8', html) and "清扫楼道" in text_of(old)
    # Only the current version can be edited; the book shows version 2.
    assert staff.get(f"/console/rules/{first}/edit").status_code == 409
    assert "清扫楼梯" in text_of(staff.get("/console/rules"))
    versions = app.test_client().get(f"/api/v1/rules/{second}/versions",
                                     headers=auth(app, world.admin)).get_json()["items"]
    assert [(v["version"], v["points"], v["is_current"]) for v in versions] == [
        (2, 10, True), (1, 8, False)]


def test_an_edit_that_changes_nothing_is_refused_inline(app, world):
    staff = _staff(app, world.organizer_a)
    rule_id = _create(staff, world, active_from="2026-06-01T10:00")
    # The form shows the start as it was typed, in the community's zone (stored in UTC).
    form = staff.get(f"/console/rules/{rule_id}/edit").get_data(as_text=True)
    assert 'name="active_from" type="datetime-local" value="2026-06-01T10:00"' in form
    unchanged = staff.post(f"/console/rules/{rule_id}/edit",
                           {**{k: v for k, v in FORM.items() if k != "code"},
                            "active_from": "2026-06-01T10:00"})
    assert unchanged.status_code == 422 and "没有任何改动" in text_of(unchanged)
    versions = app.test_client().get(f"/api/v1/rules/{rule_id}/versions",
                                     headers=auth(app, world.admin)).get_json()["items"]
    assert len(versions) == 1


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"title_zh": ""}, "title_zh", "此项必填"),
    ({"points": "0"}, "points", "不能为 0"),
    ({"points": "abc"}, "points", "请输入整数"),
    ({"points": "20000"}, "points", "不能为 0"),
    ({"code": "Bad Code"}, "code", "小写字母"),
    ({"category": "parade"}, "category", "请选择一项"),
    ({"unit": "day"}, "unit", "请选择一项"),
    ({"cap_day": "-1"}, "cap_day", "请输入整数"),
    ({"active_from": "2026-06-02T00:00", "active_until": "2026-06-01T00:00"},
     "active_until", "结束时间必须晚于开始时间"),
    ({"active_from": "soon"}, "active_from", "请输入日期和时间"),
    ({"org_node_id": "x"}, "org_node_id", "请输入整数"),
])
def test_bad_input_is_inline_and_kept(app, world, changes, field, message):
    staff = _staff(app, world.organizer_a)
    response = staff.post("/console/rules/new",
                          {**FORM, "org_node_id": str(world.tree.community_a), **changes})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert f'id="e-{field}"' in html and message in text_of(response)
    assert 'value="Stair cleaning"' in html  # what was typed stays


def test_a_code_the_node_already_defines_is_inline(app, world):
    staff = _staff(app, world.organizer_a)
    _create(staff, world)
    again = staff.post("/console/rules/new", {**FORM, "org_node_id": str(world.tree.community_a)})
    assert again.status_code == 422 and 'id="e-code"' in again.get_data(as_text=True)
    assert "已有这个代码的规则" in text_of(again)


def test_scope_and_roles(app, world, district_rule):
    rule_id = _create(_staff(app, world.organizer_a), world)
    other = _staff(app, world.organizer_b)
    assert other.get(f"/console/rules/{rule_id}").status_code == 403
    assert other.get(f"/console/rules/{rule_id}/edit").status_code == 403
    assert other.post(f"/console/rules/{rule_id}/edit", {**FORM, "points": "1"}).status_code == 403
    refused = other.post("/console/rules/new", {**FORM, "org_node_id": str(world.tree.community_a)})
    assert refused.status_code == 403
    # Auditors read the book but change nothing.
    auditor = _staff(app, world.auditor_a)
    assert auditor.get(f"/console/rules/{rule_id}").status_code == 200
    assert "新建规则" not in text_of(auditor.get("/console/rules"))
    assert auditor.get("/console/rules/new").status_code == 403
    assert auditor.get(f"/console/rules/{rule_id}/edit").status_code == 403
    # The district admin may edit the district's rule.
    admin = _staff(app, world.admin)
    assert admin.get(f"/console/rules/{district_rule}/edit").status_code == 200


def test_rule_posts_without_csrf_are_refused(app, world):
    staff = _staff(app, world.organizer_a)
    refused = staff.client.post("/console/rules/new",
                                data={**FORM, "org_node_id": str(world.tree.community_a)})
    assert refused.status_code == 400
    assert "清扫楼道" not in text_of(staff.get("/console/rules"))
    rule_id = _create(staff, world)
    edit = staff.client.post(f"/console/rules/{rule_id}/edit", data={**FORM, "points": "9"})
    assert edit.status_code == 400
    versions = app.test_client().get(f"/api/v1/rules/{rule_id}/versions",
                                     headers=auth(app, world.admin)).get_json()["items"]
    assert [v["points"] for v in versions] == [8]
