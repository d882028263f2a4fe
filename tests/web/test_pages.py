"""Every page through the Flask test client: sign-in, authorisation, CSRF, headers,
languages, the resident's and the till's journeys, and bad input (never a 500)."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from tests.factories import auth
from tests.redemption.conftest import balance, fund, make_offer, merchant_balance

from .conftest import Page, csrf_of, key_of, login_name, text_of

RESIDENT_PAGES = ["/wallet", "/wallet/paycode", "/wallet/paycode.json", "/wallet/history"]
TILL_PAGES = ["/till", "/till/today", "/till/statement", "/till/statement.csv",
              "/till/redemptions/1"]
PUBLIC_PAGES = ["/login", "/till/login"]


def _paycode(page: Page) -> str:
    html = page.get("/wallet/paycode").get_data(as_text=True)
    return re.search(r'data-testid="token">([A-Z0-9]+)<', html).group(1)


def _charge(till: Page, code: str, **spend: str):  # type: ignore[no-untyped-def]
    confirm = till.post("/till/confirm", {"pay_code": code, **spend})
    assert confirm.status_code == 200, text_of(confirm)
    key = key_of(confirm.get_data(as_text=True))
    return till.post("/till/charge", {"pay_code": code, "key": key, **spend}), key


# --- who may open what ------------------------------------------------------------------


@pytest.mark.parametrize("url", RESIDENT_PAGES + ["/M/PSM1AAAA", "/K/PSK1AAAA",
                                                "/wallet/privacy"])
def test_resident_pages_need_sign_in_and_come_back(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.location.startswith("/login?next=")
    assert url.split("?")[0] in response.location.replace("%2F", "/")


@pytest.mark.parametrize("url", TILL_PAGES)
def test_till_pages_send_to_the_till_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.location.startswith("/till/login")


def test_a_merchant_cannot_open_the_wallet_and_a_resident_not_the_till(
        resident_page, till_page):
    wallet, till = till_page.get("/wallet"), resident_page.get("/till")
    for response in (wallet, till):
        assert response.status_code == 403
        assert response.mimetype == "text/html"
    assert "这个页面是给居民用的" in text_of(wallet)
    assert "这个页面是商户收银用的" in text_of(till)


def test_another_merchants_redemption_is_refused(app, world, resident_page, till_page):
    fund(app, world.resident, 100)
    partner = Page(app.test_client())
    partner.sign_in(app, world.partner_operator, till=True)
    receipt, _ = _charge(partner, _paycode(resident_page), points="10")
    assert receipt.status_code == 200, text_of(receipt)
    redemption_id = re.search(r"凭证号 (\d+)", text_of(receipt)).group(1)
    assert partner.get(f"/till/redemptions/{redemption_id}").status_code == 200
    refused = till_page.get(f"/till/redemptions/{redemption_id}")
    assert refused.status_code == 403 and "这不属于您" in text_of(refused)
    refund = till_page.post(f"/till/redemptions/{redemption_id}/refund",
                            {"points": "5", "reason": "x", "key": "web-abc"})
    assert refund.status_code == 403
    assert merchant_balance(app, world.partner) == 10


def test_staff_get_the_console_not_a_wallet(app, world):
    staff = Page(app.test_client())
    staff.sign_in(app, world.organizer_a, till=True)
    response = staff.get("/")
    assert response.status_code == 302 and response.location == "/console"
    assert staff.get("/wallet").status_code == 403


# --- sign-in and the session cookie -------------------------------------------------------


def test_sign_in_sets_a_hardened_cookie_and_sign_out_ends_it(app, world):
    page = Page(app.test_client())
    response = page.sign_in(app, world.resident_user)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # testing: plain http; see the next test for production
    stolen = page.client.get_cookie("session").value
    assert page.get("/wallet").status_code == 200
    assert page.post("/logout").status_code == 302
    assert page.get("/wallet").status_code == 302
    # The cookie as it was before signing out is dead too: the refresh token is revoked.
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert replay.get("/wallet").status_code == 302


def test_cookie_is_secure_outside_debug_and_testing(database_url):
    from pointsvc import create_app
    from tests.conftest import test_config

    production_like = create_app(test_config(database_url, TESTING=False))
    assert production_like.config["SESSION_COOKIE_SECURE"] is True
    assert create_app(test_config(database_url))
    forced = create_app(test_config(database_url, COOKIE_SECURE=True))
    assert forced.config["SESSION_COOKIE_SECURE"] is True


def test_a_password_change_ends_the_page_session(app, world, resident_page):
    changed = app.test_client().post(
        "/api/v1/auth/password", json={"current_password": "correct-horse-9",
                                       "new_password": "another-horse-10"},
        headers=auth(app, world.resident_user))
    assert changed.status_code in (200, 204), changed.get_json()
    assert resident_page.get("/wallet").status_code == 302


def test_wrong_password_is_an_inline_error_that_keeps_the_phone(app, world, page):
    page.get("/login")
    phone = login_name(app, world.resident_user)
    response = page.post("/login", {"identifier": phone, "password": "wrong-password"})
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert "手机号、用户名或密码错误" in html
    assert f'value="{phone}"' in html and "wrong-password" not in html


def test_too_many_failed_sign_ins_are_slowed_down(app, world, page):
    page.get("/login")
    statuses = [page.post("/login", {"identifier": "13900000000", "password": "guess"}
                          ).status_code for _ in range(21)]
    assert statuses[:20] == [401] * 20
    assert statuses[20] == 429
    limited = page.post("/login", {"identifier": "x", "password": "y"})
    assert limited.mimetype == "text/html" and "尝试次数过多" in text_of(limited)


def test_production_refuses_insecure_cookies(database_url, monkeypatch):
    from pointsvc import create_app
    from pointsvc.config import ConfigError
    from tests.conftest import test_config

    monkeypatch.setenv("POINTSVC_COOKIE_SECURE", "0")
    monkeypatch.setenv("POINTSVC_ALLOW_SQLITE", "1")
    with pytest.raises(ConfigError, match="COOKIE_SECURE"):
        create_app(test_config(database_url, TESTING=False, ENV="production"))


def test_empty_sign_in_form_names_the_fields(page):
    page.get("/login")
    response = page.post("/login", {"identifier": "", "password": ""})
    assert response.status_code == 422
    assert text_of(response).count("此项必填") == 2


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_sign_in_never_redirects_off_site(app, world, page, target):
    page.get("/login")
    response = page.post("/login", {"identifier": login_name(app, world.resident_user),
                                    "password": "correct-horse-9", "next": target})
    assert response.status_code == 302 and response.location == "/wallet"


# --- CSRF ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/login", "/logout", "/prefs", "/till/confirm",
                                 "/till/charge", "/M/PSM1AAAA/pay"])
def test_a_post_without_csrf_token_is_refused(client, url):
    response = client.post(url, data={"identifier": "x", "password": "y", "lang": "en"})
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "表单已过期" in text_of(response)


def test_a_post_with_a_forged_token_is_refused(app, world, till_page):
    response = till_page.client.post("/till/confirm",
                                     data={"csrf_token": "forged", "points": "1"})
    assert response.status_code == 400


def test_csrf_does_not_apply_to_the_api(app, world):
    # A bearer-token client never has a CSRF token, and must not need one.
    response = app.test_client().post(
        "/api/v1/auth/token", json={"username": login_name(app, world.resident_user),
                                    "password": "correct-horse-9"})
    assert response.status_code == 200
    response = app.test_client().post("/api/v1/payments", json={"merchant_code": "x"},
                                      headers=auth(app, world.resident_user))
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] != "csrf"


# --- headers, layout, language --------------------------------------------------------------


def _all_pages(app: Flask, world, resident_page: Page, till_page: Page):  # type: ignore[no-untyped-def]
    anonymous = Page(app.test_client())
    for url in PUBLIC_PAGES:
        yield url, anonymous.get(url)
    for url in RESIDENT_PAGES[:2] + RESIDENT_PAGES[3:]:
        yield url, resident_page.get(url)
    for url in TILL_PAGES[:3]:
        yield url, till_page.get(url)
    yield "404", till_page.get("/till/redemptions/999999")


def test_every_page_has_a_strict_csp_a_viewport_and_no_inline_script(
        app, world, resident_page, till_page):
    for url, response in _all_pages(app, world, resident_page, till_page):
        csp = response.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, url
        assert "frame-ancestors 'none'" in csp, url
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        html = response.get_data(as_text=True)
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"inline script on {url}"
        assert not re.search(r"\son[a-z]+=", html), f"inline event handler on {url}"
        assert " style=" not in html, f"inline style on {url}"


def test_signed_in_pages_are_never_cached(resident_page):
    assert resident_page.get("/wallet/paycode").headers["Cache-Control"] == "no-store"


def test_static_assets_are_served_by_us(client):
    for name in ("web.css", "forms.js", "paycode.js", "till.js"):
        with client.get(f"/assets/web/{name}") as response:
            assert response.status_code == 200, name
            # The budget: at most 30 KB of JavaScript per page.
            if name.endswith(".js"):
                assert len(response.data) < 30_000


def test_chinese_by_default_english_on_request_and_back(app, world, page):
    response = page.get("/login")
    assert 'lang="zh-CN"' in response.get_data(as_text=True)
    assert "登录" in text_of(response)
    switched = page.post("/prefs", {"lang": "en", "next": "/login"})
    assert switched.status_code == 302 and switched.location == "/login"
    english = page.get("/login")
    assert 'lang="en"' in english.get_data(as_text=True)
    assert "Sign in" in text_of(english) and "登录" not in text_of(english)
    # The choice survives signing in.
    page.post("/login", {"identifier": login_name(app, world.resident_user),
                         "password": "correct-horse-9"})
    assert "My points" in text_of(page.get("/wallet"))
    page.post("/prefs", {"lang": "zh_CN"})
    assert "我的积分" in text_of(page.get("/wallet"))


def test_large_text_mode(resident_page):
    resident_page.post("/prefs", {"large": "1"})
    assert '<html lang="zh-CN" class="large">' in resident_page.get("/wallet").get_data(
        as_text=True)
    resident_page.post("/prefs", {"large": "0"})
    assert 'class="large"' not in resident_page.get("/wallet").get_data(as_text=True)


def test_times_are_shown_in_the_community_time_zone(app, world, resident_page, till_page):
    from datetime import UTC, datetime

    fund(app, world.resident, 50)
    world.clock.now = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)  # 00:30 next day in Shanghai
    receipt, _ = _charge(till_page, _paycode(resident_page), points="5")
    assert "2026-03-02 00:30:00" in text_of(receipt)


# --- the resident ---------------------------------------------------------------------------


def test_home_shows_balance_earned_rank_and_stars(app, world, resident_page):
    from tests.leaderboards.conftest import drain

    text = text_of(resident_page.get("/wallet"))
    assert "我的积分 0" in text and "本月还没有排名" in text and "还没有" in text
    rule = {"org_node_id": world.tree.district, "code": "volunteer-hour", "title_zh": "志愿服务",
            "title_en": "Volunteering", "category": "volunteer", "points": 10, "unit": "hour"}
    client = app.test_client()
    assert client.post("/api/v1/rules", json=rule,
                       headers=auth(app, world.admin)).status_code == 201
    for n, (resident, minutes) in enumerate(((world.resident, 720), (world.resident2, 1200))):
        award = {"resident_id": resident, "rule_code": "volunteer-hour", "quantity": minutes}
        response = client.post("/api/v1/awards", json=award, headers=auth(
            app, world.organizer_a, **{"Idempotency-Key": f"home-{n}"}))
        assert response.status_code == 201, response.get_json()
    drain(app)  # the leaderboards fold postings into tallies in the background
    text = text_of(resident_page.get("/wallet"))
    assert "我的积分 120" in text
    assert "本月获得 120" in text
    assert "本月社区排名 第 2 名" in text
    assert "志愿服务时长 12.0" in text and "满 100 小时升星" in text
    resident_page.post("/wallet/privacy", {"privacy": "hidden"})
    assert "您不会出现在排行榜上" in text_of(resident_page.get("/wallet"))


def test_pay_code_page_is_a_valid_one_time_code(app, world, resident_page):
    html = resident_page.get("/wallet/paycode").get_data(as_text=True)
    assert 'src="data:image/svg+xml;base64,' in html
    assert '<meta http-equiv="refresh" content="45">' in html  # without JavaScript
    fresh = resident_page.get("/wallet/paycode.json").get_json()
    assert fresh["token"].startswith("PSP1") and fresh["valid_seconds"] == 60
    assert fresh["token"] not in html  # a new code each time


def test_history_pages_with_the_keyset_cursor(app, world, resident_page):
    for n in range(1, 26):
        fund(app, world.resident, n)
    first = resident_page.get("/wallet/history")
    amounts = re.findall(r'class="amount plus">\+(\d+)<', first.get_data(as_text=True))
    assert amounts == [str(n) for n in range(25, 5, -1)]
    older = re.search(r'rel="next" href="([^"]+)"', first.get_data(as_text=True)).group(1)
    second = resident_page.get(older.replace("&amp;", "&"))
    assert re.findall(r'class="amount plus">\+(\d+)<', second.get_data(as_text=True)) == [
        "5", "4", "3", "2", "1"]
    assert 'rel="next"' not in second.get_data(as_text=True)
    bad = resident_page.get("/wallet/history?cursor=%%%")
    assert bad.status_code == 422 and bad.mimetype == "text/html"


def test_pay_at_a_merchant_link_after_signing_in(app, world):
    fund(app, world.resident, 200)
    offer = make_offer(app.test_client(), app, world.shop_operator, world.shop,
                       title="食用油", points_price=40)
    code = app.test_client().get(f"/api/v1/merchants/{world.shop}/code",
                                 headers=auth(app, world.shop_operator)).get_json()
    page = Page(app.test_client())
    link = f"/M/{code['token']}"
    bounced = page.get(link)
    assert bounced.status_code == 302
    page.get(bounced.location)
    back = page.post("/login", {"identifier": login_name(app, world.resident_user),
                                "password": "correct-horse-9",
                                "next": link})
    assert back.location == link
    choose = page.get(link)
    assert "甲社区积分超市" in text_of(choose) and "食用油" in text_of(choose)
    confirm = page.post(f"{link}/confirm", {"offer_id": str(offer["id"]), "quantity": "2"})
    assert "支付 80 积分" in text_of(confirm)
    key = key_of(confirm.get_data(as_text=True))
    spend = {"offer_id": str(offer["id"]), "quantity": "2", "key": key}
    receipt = page.post(f"{link}/pay", spend)
    assert receipt.status_code == 200, text_of(receipt)
    assert "已支付" in text_of(receipt) and "当前余额 120" in text_of(receipt)
    # The same form sent again (a double click, a reload) spends nothing more.
    again = page.post(f"{link}/pay", spend)
    assert again.status_code == 200 and "当前余额 120" in text_of(again)
    assert balance(app, world.resident) == (120, 0)


def test_pay_page_errors_are_plain(app, world, resident_page):
    fund(app, world.resident, 10)
    code = app.test_client().get(f"/api/v1/merchants/{world.shop}/code",
                                 headers=auth(app, world.shop_operator)).get_json()
    link = f"/M/{code['token']}"
    nothing = resident_page.post(f"{link}/confirm", {})
    assert nothing.status_code == 422 and "请选择商品，或输入积分数" in text_of(nothing)
    letters = resident_page.post(f"{link}/confirm", {"points": "ten"})
    assert letters.status_code == 422 and 'value="ten"' in letters.get_data(as_text=True)
    too_much = resident_page.post(f"{link}/pay", {"points": "50", "key": "web-k1"})
    assert too_much.status_code == 409 and "积分不足" in text_of(too_much)
    assert resident_page.get("/M/NOT-A-CODE").status_code == 422
    forged = resident_page.get("/M/PSM1" + "A" * 60)
    assert forged.status_code == 422 and forged.mimetype == "text/html"


# --- the till -----------------------------------------------------------------------------


def test_till_takes_points_by_pay_code_and_prints_a_receipt(app, world, resident_page,
                                                             till_page):
    fund(app, world.resident, 100)
    offer = make_offer(app.test_client(), app, world.shop_operator, world.shop,
                       title="大米 5kg", points_price=30)
    scan = till_page.get("/till")
    assert "大米 5kg" in text_of(scan) and 'autofocus="autofocus"' in scan.get_data(
        as_text=True)
    receipt, key = _charge(till_page, _paycode(resident_page), offer_id=str(offer["id"]),
                           quantity="2")
    text = text_of(receipt)
    assert "已支付" in text and "张*明" in text and "大米 5kg × 2" in text
    assert "积分 60" in text and "当前余额 40" in text
    assert balance(app, world.resident) == (40, 0)
    assert merchant_balance(app, world.shop) == 60


def test_a_double_submitted_charge_spends_once(app, world, resident_page, till_page):
    fund(app, world.resident, 100)
    code = _paycode(resident_page)
    first, key = _charge(till_page, code, points="25")
    again = till_page.post("/till/charge", {"pay_code": code, "key": key, "points": "25"})
    assert again.status_code == 200 and text_of(again) == text_of(first)
    assert balance(app, world.resident) == (75, 0)


def test_used_and_expired_pay_codes_say_so_plainly(app, world, resident_page, till_page):
    fund(app, world.resident, 100)
    code = _paycode(resident_page)
    _charge(till_page, code, points="5")
    used, _ = _charge(till_page, code, points="5")
    assert used.status_code == 409 and "付款码已被使用" in text_of(used)
    stale = _paycode(resident_page)
    world.clock.advance(seconds=61)
    expired, _ = _charge(till_page, stale, points="5")
    assert expired.status_code == 410 and "付款码已过期" in text_of(expired)
    assert balance(app, world.resident) == (95, 0)


@pytest.mark.parametrize("fields, field, message", [
    ({"pay_code": "", "points": "5"}, "pay_code", "此项必填"),
    ({"pay_code": "HELLO", "points": "5"}, "pay_code", "这个码无效"),
    ({"pay_code": "PSM1AAAA", "points": "5"}, "pay_code", "这不是正确类型的码"),
    ({"pay_code": "x" * 500, "points": "5"}, "pay_code", "最多 400 个字符"),
    ({"points": "-3"}, "points", "请输入整数"),
    ({"points": "99999999999999999999999"}, "points", "请输入 1 到"),
    ({"points": "0"}, "points", "请输入 1 到"),
    ({"offer_id": "999999999999999999999999"}, "offer_id", "请输入 1 到"),
])
def test_till_bad_input_is_an_inline_error_never_a_500(app, world, till_page, fields,
                                                        field, message):
    response = till_page.post("/till/confirm", fields)
    assert response.status_code == 422, text_of(response)
    html = response.get_data(as_text=True)
    assert message in html
    assert 'aria-invalid="true"' in html or 'class="error"' in html


def test_an_offer_of_another_merchant_is_not_on_this_till(app, world, resident_page,
                                                          till_page):
    other = make_offer(app.test_client(), app, world.partner_operator, world.partner)
    response = till_page.post("/till/confirm", {"pay_code": _paycode(resident_page),
                                                "offer_id": str(other["id"])})
    assert response.status_code == 422 and "该商品当前不可兑换" in text_of(response)


def test_till_charge_with_a_lost_key_is_refused_plainly(app, world, resident_page,
                                                        till_page):
    fund(app, world.resident, 10)
    response = till_page.post("/till/charge", {"pay_code": _paycode(resident_page),
                                               "points": "5", "key": "bad key!"})
    assert response.status_code == 400 and "表单已过期" in text_of(response)
    assert balance(app, world.resident) == (10, 0)


def test_today_refund_and_statement(app, world, resident_page, till_page):
    fund(app, world.resident, 100)
    _charge(till_page, _paycode(resident_page), points="30")
    today = till_page.get("/till/today")
    assert "共 1 笔" in text_of(today) and "30 积分" in text_of(today)
    link = re.search(r'href="(/till/redemptions/\d+)"', today.get_data(as_text=True)).group(1)
    detail = till_page.get(link)
    refund = till_page.post(f"{link}/refund", {"points": "10", "reason": "少给了一袋",
                                               "key": key_of(detail.get_data(as_text=True))})
    assert refund.status_code == 200 and "已退还 10 积分" in text_of(refund)
    assert balance(app, world.resident) == (80, 0)
    over = till_page.post(f"{link}/refund", {"points": "50", "reason": "x",
                                             "key": key_of(refund.get_data(as_text=True))})
    assert over.status_code == 409 and "退款超过" in text_of(over)
    empty = till_page.post(f"{link}/refund", {"points": "", "reason": "",
                                              "key": "web-k2"})
    assert empty.status_code == 422 and text_of(empty).count("此项必填") == 2
    statement = till_page.get("/till/statement")
    assert "期末余额 20" in text_of(statement)
    csv = till_page.get("/till/statement.csv")
    assert csv.mimetype == "text/csv" and csv.data.startswith("\ufeff".encode())
    assert "attachment" in csv.headers["Content-Disposition"]
    assert till_page.get("/till/statement?month=2026-13").status_code == 422
    assert till_page.get("/till/statement.csv?month=abc").status_code == 422


def test_unknown_ids_are_html_404s_on_pages_and_problems_on_the_api(app, world, till_page):
    for url in ("/till/redemptions/99999", "/till/redemptions/99999999999999999999999"):
        response = till_page.get(url)
        assert response.status_code == 404 and response.mimetype == "text/html", url
    api = app.test_client().get("/api/v1/redemptions/99999",
                                headers=auth(app, world.shop_operator))
    assert api.status_code == 404 and api.mimetype == "application/problem+json"
    assert app.test_client().get("/api/v1/nothing-here").mimetype == "application/problem+json"


def test_login_form_token_is_in_the_page(page):
    assert csrf_of(page.get("/login").get_data(as_text=True))
