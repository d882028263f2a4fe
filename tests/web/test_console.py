"""The staff console's first pages: find a resident, award under a rule (or send it to
approval), decide approvals, read the rule book — all within the staff member's scope."""

from __future__ import annotations

import re

from tests.factories import auth
from tests.redemption.conftest import balance

from .conftest import Page, key_of, text_of


def _rule(app, world, code: str, points: int, **extra) -> None:  # type: ignore[no-untyped-def]
    body = {"org_node_id": world.tree.district, "code": code, "title_zh": f"{code} 中文",
            "title_en": f"{code} English", "category": "volunteer", "points": points, **extra}
    response = app.test_client().post("/api/v1/rules", json=body, headers=auth(app, world.admin))
    assert response.status_code == 201, response.get_json()


def _staff(app, user_id: int) -> Page:  # type: ignore[no-untyped-def]
    page = Page(app.test_client())
    page.sign_in(app, user_id, till=True)
    return page


def _award(page: Page, resident_id: int, code: str, quantity: str = "1"):  # type: ignore[no-untyped-def]
    confirm = page.post(f"/console/residents/{resident_id}/award",
                        {"rule_code": code, "quantity": quantity})
    assert confirm.status_code == 200, text_of(confirm)
    key = key_of(confirm.get_data(as_text=True))
    return page.post(f"/console/residents/{resident_id}/award/post",
                     {"rule_code": code, "quantity": quantity, "key": key}), key


def test_staff_land_on_the_console_and_others_cannot_open_it(app, world, resident_page,
                                                              till_page):
    staff = Page(app.test_client())
    response = staff.sign_in(app, world.organizer_a, till=True)
    assert response.location == "/console"
    assert "工作台" in text_of(staff.get("/console"))
    assert resident_page.get("/console").status_code == 403
    assert till_page.get("/console/approvals").status_code == 403
    assert Page(app.test_client()).get("/console").status_code == 302


def test_find_a_resident_and_award_under_a_rule(app, world):
    _rule(app, world, "clean-up", 7)
    staff = _staff(app, world.organizer_a)
    found = staff.get("/console/residents?q=张小明")
    assert "张小明" in text_of(found)
    assert "王芳" not in text_of(staff.get("/console/residents"))  # community B: not in scope
    form = staff.get(f"/console/residents/{world.resident}/award")
    assert "clean-up 中文" in text_of(form)
    done, key = _award(staff, world.resident, "clean-up", "2")
    assert done.status_code == 200 and "已入账" in text_of(done)
    assert "张小明 获得 14 积分" in text_of(done)
    assert balance(app, world.resident) == (14, 0)
    # The same confirm form sent twice posts once.
    again = staff.post(f"/console/residents/{world.resident}/award/post",
                       {"rule_code": "clean-up", "quantity": "2", "key": key})
    assert again.status_code == 200
    assert balance(app, world.resident) == (14, 0)


def test_award_outside_scope_is_refused(app, world):
    _rule(app, world, "clean-up", 7)
    staff = _staff(app, world.organizer_a)
    assert staff.get(f"/console/residents/{world.resident_b}/award").status_code == 403
    refused = staff.post(f"/console/residents/{world.resident_b}/award/post",
                         {"rule_code": "clean-up", "quantity": "1", "key": "web-k9"})
    assert refused.status_code == 403
    assert balance(app, world.resident_b) == (0, 0)


def test_award_bad_input_is_inline(app, world):
    _rule(app, world, "clean-up", 7)
    staff = _staff(app, world.organizer_a)
    url = f"/console/residents/{world.resident}/award"
    for fields, message in (({}, "此项必填"), ({"rule_code": "nope", "quantity": "1"},
                                              "这里没有这条规则"),
                            ({"rule_code": "clean-up", "quantity": "1e9"}, "请输入整数")):
        response = staff.post(url, fields)
        assert response.status_code == 422 and message in text_of(response), fields


def test_an_award_needing_approval_waits_for_a_second_staff_member(app, world):
    from tests.factories import make_user

    _rule(app, world, "mediation", 20, approval_required=True)
    maker = _staff(app, world.organizer_a)
    done, _key = _award(maker, world.resident, "mediation")
    assert "等待审批" in text_of(done)
    assert balance(app, world.resident) == (0, 0)
    queue = maker.get("/console/approvals")
    assert "张小明" in text_of(queue) and "该规则需要审批" in text_of(queue)
    pending_id = re.search(r"/console/approvals/(\d+)", queue.get_data(as_text=True)).group(1)
    # The maker cannot check their own request.
    assert maker.post(f"/console/approvals/{pending_id}",
                      {"decision": "approve"}).status_code == 403
    checker = _staff(app, make_user(app, role="organizer", node_id=world.tree.community_a))
    no_reason = checker.post(f"/console/approvals/{pending_id}", {"decision": "reject"})
    assert no_reason.status_code == 422 and "此项必填" in text_of(no_reason)
    approved = checker.post(f"/console/approvals/{pending_id}", {"decision": "approve"})
    assert approved.status_code == 302
    assert balance(app, world.resident) == (20, 0)
    assert "没有待审批的申请" in text_of(checker.get("/console/approvals"))
    # Staff of community B never see or decide A's requests.
    other = _staff(app, world.organizer_b)
    assert other.post(f"/console/approvals/{pending_id}",
                      {"decision": "approve"}).status_code == 403


def test_the_rule_book(app, world):
    _rule(app, world, "clean-up", 7)
    page = _staff(app, world.auditor_a)
    text = text_of(page.get("/console/rules"))
    assert "clean-up 中文" in text and "+7" in text
    assert page.get("/console/residents").status_code == 403  # auditors change nothing


def test_merchants_approve_suspend_and_print_the_sticker(app, world):
    import zxingcpp
    from PIL import Image

    from tests.factories import make_merchant

    waiting = make_merchant(app, node_id=world.tree.community_a, name="新开张小店",
                            status="pending")
    staff = _staff(app, world.organizer_a)
    listing = staff.get("/console/merchants")
    assert "新开张小店" in text_of(listing) and "乙社区积分超市" not in text_of(listing)
    assert staff.post(f"/console/merchants/{waiting}/status",
                      {"action": "approve"}).status_code == 302
    no_reason = staff.post(f"/console/merchants/{waiting}/status", {"action": "suspend"})
    assert no_reason.status_code == 422 and "此项必填" in text_of(no_reason)
    assert staff.post(f"/console/merchants/{waiting}/status",
                      {"action": "suspend", "reason": "投诉核查中"}).status_code == 302
    again = staff.post(f"/console/merchants/{waiting}/status",
                       {"action": "suspend", "reason": "twice"})
    assert again.status_code == 409 and again.mimetype == "text/html"
    assert staff.post(f"/console/merchants/{world.shop_b}/status",
                      {"action": "suspend", "reason": "x"}).status_code == 403
    # The sticker decodes to the merchant's link, which opens its pay page.
    with staff.get(f"/console/merchants/{world.shop}/sticker.png") as sticker:
        assert sticker.mimetype == "image/png"
        import io

        text = zxingcpp.read_barcodes(Image.open(io.BytesIO(sticker.data)))[0].text
    assert re.match(r"^HTTPS://[A-Z0-9.\-]+/M/PSM1[A-Z2-7]+$", text)
    assert staff.get(f"/console/merchants/{world.shop_b}/sticker.svg").status_code == 403


def test_a_merchant_downloads_its_own_sticker(app, world, till_page):
    with till_page.get("/till/sticker.svg") as sticker:
        assert sticker.status_code == 200 and sticker.mimetype == "image/svg+xml"


def _upload(page: Page, text: str, encoding: str = "utf-8"):  # type: ignore[no-untyped-def]
    import io

    page.get("/console/awards/bulk")
    return page.client.post("/console/awards/bulk", data={
        "csrf_token": page.token, "file": (io.BytesIO(text.encode(encoding)), "awards.csv")},
        content_type="multipart/form-data")


def test_bulk_awards_show_every_bad_row_before_anything_posts(app, world):
    _rule(app, world, "clean-up", 7)
    staff = _staff(app, world.organizer_a)
    csv = ("resident_id,rule_code,quantity,memo\n"
           f"{world.resident},clean-up,1,楼道\n"
           f"{world.resident_b},clean-up,1,\n"      # community B: not in scope
           f"{world.resident2},no-such-rule,1,\n"
           f"{world.resident2},clean-up,lots,\n"
           "\n"
           "999999,clean-up,1,\n")
    preview = _upload(staff, csv)
    assert preview.status_code == 422
    text = text_of(preview)
    assert "5 行中有 4 行不能入账" in text  # the blank line is no row
    for line, words in ((3, "这位居民不在您的管辖范围内"), (4, "该居民所在社区没有这条生效的规则"),
                        (5, "quantity 必须是"), (7, "没有这位居民")):
        assert f"第 {line} 行 {words}" in text
    assert balance(app, world.resident) == (0, 0)


def test_bulk_awards_post_all_once(app, world):
    _rule(app, world, "clean-up", 7)
    staff = _staff(app, world.organizer_a)
    csv = ("\ufeffresident_id,rule_code,quantity,memo\n"
           f"{world.resident},clean-up,2,楼道清扫\n{world.resident2},clean-up,1,\n")
    preview = _upload(staff, csv)
    assert preview.status_code == 200 and "全部 2 行均有效，尚未入账" in text_of(preview)
    assert balance(app, world.resident) == (0, 0)
    html = preview.get_data(as_text=True)
    items = re.search(r'name="items" value="([^"]+)"', html).group(1)
    lines = re.search(r'name="lines" value="([^"]+)"', html).group(1)
    import html as html_lib

    form = {"items": html_lib.unescape(items), "lines": html_lib.unescape(lines),
            "key": key_of(html)}
    done = staff.post("/console/awards/bulk/post", form)
    assert done.status_code == 200 and "已入账 2 条，共 21 积分" in text_of(done)
    again = staff.post("/console/awards/bulk/post", form)
    assert "已入账 2 条" in text_of(again)
    assert balance(app, world.resident) == (14, 0) and balance(app, world.resident2) == (7, 0)
    tampered = staff.post("/console/awards/bulk/post", {**form, "items": '[{"x": 1}]',
                                                        "key": "web-other"})
    assert tampered.status_code == 422


def test_bulk_awards_read_gbk_and_refuse_junk(app, world):
    _rule(app, world, "clean-up", 7)
    staff = _staff(app, world.organizer_a)
    gbk = _upload(staff, f"resident_id,rule_code,quantity,memo\n{world.resident},clean-up,1,楼道\n",
                  encoding="gbk")
    assert gbk.status_code == 200
    assert "第一行必须是" in text_of(_upload(staff, "a,b,c\n1,2,3\n"))
    assert "文件没有数据行" in text_of(_upload(staff, "resident_id,rule_code,quantity\n"))
    import io

    staff.get("/console/awards/bulk")
    binary = staff.client.post("/console/awards/bulk", data={
        "csrf_token": staff.token, "file": (io.BytesIO(b"\xff\xfe\x00\x81" * 10), "x.csv")},
        content_type="multipart/form-data")
    assert binary.status_code == 422 and "GBK" in text_of(binary)
    nofile = staff.post("/console/awards/bulk", {})
    assert nofile.status_code == 422 and "请选择 CSV 文件" in text_of(nofile)
