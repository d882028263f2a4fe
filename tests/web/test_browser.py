"""End to end in a real browser: Debian's headless Chromium driven by Playwright, against
the app served on a localhost port from a thread.

Never `playwright install`: the browser is the system's /usr/bin/chromium (.ci/run installs
it). The pages are looked at the way people use them — a phone 360 px wide, a handheld
scanner that types the code and presses Enter, the camera opening a merchant's link.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.factories import PASSWORD, auth
from tests.redemption.conftest import balance, fund, make_offer

from .conftest import login_name

CHROMIUM = os.environ.get("POINTSVC_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 360, "height": 740}
SCREENSHOTS = os.environ.get("POINTSVC_SCREENSHOT_DIR")  # e.g. docs/screenshots

playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: object, **kwargs: object) -> None:  # the app logs requests
        pass


@pytest.fixture
def server(app: Flask) -> Iterator[str]:
    """The app on a free localhost port, with the production cookie flags (Secure:
    Chromium keeps Secure cookies on http://127.0.0.1, as it treats loopback as secure)."""
    app.config["SESSION_COOKIE_SECURE"] = True
    httpd = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=5)


class Watch:
    """Console errors of a page: a Content-Security-Policy violation shows up there."""

    def __init__(self, page) -> None:  # type: ignore[no-untyped-def]
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))


def _phone(browser, **options):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, locale="zh-CN", **options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page, Watch(page)


def _sign_in(page, base: str, app: Flask, user_id: int, *, till: bool = False) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/till/login" if till else f"{base}/login")
    page.fill("#f-identifier", login_name(app, user_id))
    page.fill("#f-password", PASSWORD)
    page.click("button.primary")


def _shot(page, tmp_path: Path, name: str) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(SCREENSHOTS) / path.name)
    return path


def _decode(png: Path) -> str:
    import zxingcpp
    from PIL import Image

    found = zxingcpp.read_barcodes(Image.open(png))
    assert found, "no QR code on the screenshot"
    return found[0].text


def _fits(page) -> None:  # type: ignore[no-untyped-def]
    """Nothing sticks out sideways on a 360 px screen."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"page is {width}px wide"


def test_resident_signs_in_and_sees_the_balance(app, world, browser, server, tmp_path):
    fund(app, world.resident, 150)
    context, page, watch = _phone(browser)
    _sign_in(page, server, app, world.resident_user)
    page.wait_for_url(f"{server}/wallet")
    assert page.inner_text("[data-testid=balance]") == "150"
    assert page.inner_text("h1") == "我的积分"
    cookie = next(c for c in context.cookies() if c["name"] == "session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie") == ""  # HttpOnly: scripts cannot read it
    _fits(page)
    _shot(page, tmp_path, "wallet-home-360")
    # Large-text mode (适老化模式) makes the body text bigger, and it still fits.
    normal = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    page.click("text=大字模式")
    page.wait_for_selector("html.large")
    assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= normal * 1.3
    _fits(page)
    _shot(page, tmp_path, "wallet-home-large-360")
    # English on request.
    page.click("text=English")
    page.wait_for_selector("html[lang=en]")
    assert page.inner_text("h1") == "My points"
    assert watch.errors == []
    context.close()


def test_the_pay_code_counts_down_and_refreshes_itself(app, world, browser, server,
                                                       tmp_path):
    context, page, watch = _phone(browser)
    _sign_in(page, server, app, world.resident_user)
    page.wait_for_url(f"{server}/wallet")
    page.clock.install()
    page.goto(f"{server}/wallet/paycode")
    first = page.inner_text("[data-testid=token]")
    assert first.startswith("PSP1")
    assert page.is_visible("[data-countdown]")  # the script runs (CSP allows our files)
    start = int(page.inner_text("[data-countdown]"))
    page.clock.run_for(3_000)
    assert int(page.inner_text("[data-countdown]")) <= start - 2
    _fits(page)
    shot = _shot(page, tmp_path, "paycode-360")
    # What the till's scanner sees: the QR on the phone's screen decodes to the code shown.
    assert _decode(shot) == first
    page.clock.run_for(60_000)
    page.wait_for_function(
        "t => document.querySelector('[data-testid=token]').textContent !== t", arg=first)
    assert page.inner_text("[data-testid=token]").startswith("PSP1")
    assert watch.errors == []
    context.close()


def test_merchant_scans_a_pay_code_and_the_balance_drops(app, world, browser, server,
                                                         tmp_path):
    fund(app, world.resident, 100)
    make_offer(app.test_client(), app, world.shop_operator, world.shop, title="大米 5kg",
               points_price=30)
    resident, phone, _ = _phone(browser)
    _sign_in(phone, server, app, world.resident_user)
    phone.wait_for_url(f"{server}/wallet")
    phone.goto(f"{server}/wallet/paycode")
    token = phone.inner_text("[data-testid=token]")

    till = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    shop = till.new_page()
    shop.set_default_timeout(15_000)
    watch = Watch(shop)
    _sign_in(shop, server, app, world.shop_operator, till=True)
    shop.wait_for_url(f"{server}/till")
    _shot(shop, tmp_path, "till-scan-1280")
    shop.check("input[name=offer_id]")
    shop.fill("#f-quantity", "2")
    shop.focus("#f-pay_code")
    # A handheld scanner is a keyboard: it types the code and presses Enter.
    shop.keyboard.type(token.lower())  # even with Caps Lock off the field takes it
    shop.keyboard.press("Enter")
    shop.wait_for_url(f"{server}/till/confirm")
    assert "60" in shop.inner_text(".summary")
    shop.click("button.primary")
    shop.wait_for_selector("[data-testid=receipt]")
    assert shop.inner_text("[data-testid=receipt-points]") == "60"
    assert shop.inner_text("[data-testid=receipt-balance]") == "40"
    assert "张*明" in shop.inner_text("[data-testid=receipt]")
    _shot(shop, tmp_path, "till-receipt-1280")
    assert watch.errors == []
    phone.goto(f"{server}/wallet")
    assert phone.inner_text("[data-testid=balance]") == "40"
    assert balance(app, world.resident) == (40, 0)
    till.close()
    resident.close()


def test_resident_opens_a_merchant_link_signs_in_and_pays(app, world, browser, server,
                                                          tmp_path):
    fund(app, world.resident, 100)
    code = app.test_client().get(f"/api/v1/merchants/{world.shop}/code",
                                 headers=auth(app, world.shop_operator)).get_json()
    # The sticker's link names our public host; the phone opens the same path here.
    path = re.sub(r"^HTTPS://[^/]+", "", code["link"])
    assert path.startswith("/M/")
    context, page, watch = _phone(browser)
    page.goto(server + path)
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("#f-identifier", login_name(app, world.resident_user))
    page.fill("#f-password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(server + path)
    assert page.inner_text("[data-testid=merchant]") == "甲社区积分超市"
    page.fill("#f-points", "35")
    page.click("button.primary")
    page.wait_for_selector("text=确认付款")
    _fits(page)
    _shot(page, tmp_path, "pay-confirm-360")
    # A double tap on "pay" sends one payment (the script disables the button; the
    # form's idempotency key would stop a second spend anyway).
    page.dblclick("button.primary")
    page.wait_for_selector("[data-testid=receipt]")
    assert page.inner_text("[data-testid=receipt-points]") == "35"
    assert page.inner_text("[data-testid=receipt-balance]") == "65"
    _fits(page)
    _shot(page, tmp_path, "pay-receipt-360")
    assert balance(app, world.resident) == (65, 0)
    assert watch.errors == []
    context.close()


def test_pages_read_without_javascript(app, world, browser, server):
    fund(app, world.resident, 20)
    context, page, _ = _phone(browser, java_script_enabled=False)
    _sign_in(page, server, app, world.resident_user)
    page.wait_for_url(f"{server}/wallet")
    assert page.inner_text("[data-testid=balance]") == "20"
    page.goto(f"{server}/wallet/history")
    assert "+20" in page.inner_text("main")
    page.goto(f"{server}/wallet/paycode")
    assert page.inner_text("[data-testid=token]").startswith("PSP1")
    context.close()


def test_a_post_without_csrf_token_is_refused_in_the_browser(app, world, browser, server):
    context, page, _ = _phone(browser)
    _sign_in(page, server, app, world.shop_operator, till=True)
    page.wait_for_url(f"{server}/till")
    response = page.request.post(f"{server}/till/confirm", form={"points": "5"})
    assert response.status == 400
    context.close()


def test_staff_award_in_the_console(app, world, browser, server, tmp_path):
    rule = {"org_node_id": world.tree.district, "code": "clean-up", "title_zh": "楼道清扫",
            "title_en": "Stairwell clean-up", "category": "environment", "points": 6}
    assert app.test_client().post("/api/v1/rules", json=rule,
                                  headers=auth(app, world.admin)).status_code == 201
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    watch = Watch(page)
    _sign_in(page, server, app, world.organizer_a, till=True)
    page.wait_for_url(f"{server}/console")
    page.click("text=发放积分")
    page.fill("#f-q", "张小明")
    page.keyboard.press("Enter")
    page.click("text=奖励")
    page.check("input[value=clean-up]")
    page.fill("#f-quantity", "1")
    _shot(page, tmp_path, "console-award-1280")
    page.click("button.primary")
    page.click("button.primary")  # confirm
    page.wait_for_selector("[data-testid=award-result]")
    assert "已入账" in page.inner_text("[data-testid=award-result]")
    assert balance(app, world.resident) == (6, 0)
    assert watch.errors == []
    context.close()


def test_resident_opens_a_check_in_link_and_sees_the_result(app, world, browser, server,
                                                             tmp_path):
    from datetime import timedelta
    from types import SimpleNamespace

    from tests.events.conftest import START, Clock, code_of, make_event
    from tests.ledger.conftest import make_rule

    make_rule(app, node_id=world.tree.district, code="volunteer-hour", points=10, unit="hour")
    app.config["EVENTS_CLOCK"] = Clock(START + timedelta(minutes=2))  # 10:02 in Shanghai
    organizer = SimpleNamespace(tree=world.tree, organizer=world.organizer_a)
    event = make_event(app.test_client(), app, organizer)
    link = code_of(app.test_client(), app, organizer, event["id"])["url"]
    context, page, watch = _phone(browser)
    page.goto(server + re.sub(r"^HTTPS://[^/]+", "", link))
    page.fill("#f-identifier", login_name(app, world.resident_user))
    page.fill("#f-password", PASSWORD)
    page.click("button.primary")
    page.wait_for_selector("[data-testid=checkin]")
    assert "10:02 签到成功" in page.inner_text("[data-testid=checkin]")
    _fits(page)
    _shot(page, tmp_path, "checkin-360")
    assert watch.errors == []
    context.close()


def _desk(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page, Watch(page)


def test_staff_create_an_event_open_the_kiosk_and_its_code_checks_a_resident_in(
        app, world, browser, server, tmp_path):
    from datetime import timedelta

    from tests.events.conftest import START, Clock
    from tests.ledger.conftest import make_rule

    make_rule(app, node_id=world.tree.district, code="volunteer-hour", points=10, unit="hour")
    app.config["EVENTS_CLOCK"] = Clock(START + timedelta(minutes=2))  # 10:02 in Shanghai
    context, page, watch = _desk(browser)
    _sign_in(page, server, app, world.organizer_a, till=True)
    page.wait_for_url(f"{server}/console")
    page.click("main >> text=活动")
    page.click("text=新建活动")
    page.select_option("#f-org_node_id", str(world.tree.community_a))
    page.fill("#f-title", "社区清洁日")
    page.select_option("#f-category", "volunteer")
    page.select_option("#f-rule_code", "volunteer-hour")
    page.fill("#f-starts_at", "2026-06-01T10:00")
    page.fill("#f-ends_at", "2026-06-01T09:00")  # before the start: refused inline
    page.fill("#f-place", "甲社区活动中心")
    page.uncheck("input[name=signup_required]")
    page.click("button.primary")
    assert "结束时间必须晚于开始时间" in page.inner_text("#e-ends_at")
    assert page.input_value("#f-title") == "社区清洁日"  # what was typed stays
    watch.errors.clear()  # Chromium logs the refused form's 422 as a failed load
    page.fill("#f-ends_at", "2026-06-01T12:00")
    _shot(page, tmp_path, "console-event-new-1280")
    page.click("button.primary")
    page.wait_for_selector("[data-testid=event-status]")
    assert page.inner_text("[data-testid=event-status]") == "草稿"
    page.click("text=发布")
    page.wait_for_selector("text=生成签到屏链接")
    page.click("text=生成签到屏链接")
    kiosk_url = page.input_value("#kiosk-url")
    assert "/kiosk?k=" in kiosk_url
    _shot(page, tmp_path, "console-event-1280")

    kiosk = context.new_page()
    kiosk.goto(kiosk_url)
    kiosk.wait_for_function("() => { const i = document.getElementById('code');"
                            " return i.src.startsWith('blob:') && i.naturalWidth > 0; }")
    shot = _shot(kiosk, tmp_path, "kiosk-1280")
    link = _decode(shot)
    assert "/K/PSK1" in link

    phone, resident, resident_watch = _phone(browser)
    resident.goto(server + re.sub(r"^HTTPS://[^/]+", "", link))
    resident.fill("#f-identifier", login_name(app, world.resident_user))
    resident.fill("#f-password", PASSWORD)
    resident.click("button.primary")
    resident.wait_for_selector("[data-testid=checkin]")
    assert "10:02 签到成功" in resident.inner_text("[data-testid=checkin]")
    kiosk.wait_for_function("() => document.getElementById('count').textContent === '1'",
                            timeout=20_000)

    page.click("text=签到情况")
    assert page.inner_text("[data-testid=inside]") == "1"
    assert "张小明" in page.inner_text("[data-testid=lines]")
    _shot(page, tmp_path, "console-attendance-1280")
    assert watch.errors == [] and resident_watch.errors == []
    phone.close()
    context.close()


def test_console_and_leaderboard_pages_at_360(app, world, browser, server, tmp_path):
    from tests.leaderboards.conftest import drain, give
    from tests.ledger.conftest import make_rule

    make_rule(app, node_id=world.tree.district, code="civility", points=10, category="conduct")
    give(app, world.resident, "civility", 2)
    give(app, world.resident2, "civility", 3)
    drain(app)
    context, page, watch = _phone(browser)
    _sign_in(page, server, app, world.resident_user)
    page.wait_for_url(f"{server}/wallet")
    page.click("main >> text=排行榜")
    page.wait_for_selector("[data-testid=board]")
    assert "张*明" in page.inner_text("[data-testid=board]")
    _fits(page)
    _shot(page, tmp_path, "leaderboards-360")
    context.close()

    context, page, staff_watch = _phone(browser)
    _sign_in(page, server, app, world.organizer_a, till=True)
    page.wait_for_url(f"{server}/console")
    for path, name in (("/console/events", "console-events-360"),
                       ("/console/people", "console-people-360"),
                       ("/console/seals", "console-seals-360"),
                       ("/console/rules", "console-rules-360")):
        page.goto(server + path)
        _fits(page)
        _shot(page, tmp_path, name)
    context.close()

    # The auditor's search: a filter narrows to the resident's postings, with totals.
    context, page, auditor_watch = _phone(browser)
    _sign_in(page, server, app, world.auditor_a, till=True)
    page.wait_for_url(f"{server}/console")
    page.goto(f"{server}/console/audit?resident_id={world.resident}")
    assert "civility" in page.inner_text("main")
    _fits(page)
    _shot(page, tmp_path, "console-audit-360")
    assert watch.errors == [] and staff_watch.errors == [] and auditor_watch.errors == []
    context.close()


def test_resident_import_and_seals_at_1280(app, world, browser, server, tmp_path):
    context, page, watch = _desk(browser)
    _sign_in(page, server, app, world.admin, till=True)
    page.wait_for_url(f"{server}/console")
    page.goto(f"{server}/console/people/import")
    csv = tmp_path / "residents.csv"
    csv.write_text("name,phone,community_id\n"
                   f"赵一,15811110001,{world.tree.community_a}\n"
                   f"钱二,12345,{world.tree.community_a}\n"
                   f"孙三,15811110003,{world.tree.community_b}\n", encoding="utf-8")
    page.set_input_files("#f-file", str(csv))
    page.check("input[name=partial]")
    page.click("button.primary")
    page.wait_for_selector("[data-testid=import-result]")
    assert "导入 2 行" in page.inner_text("[data-testid=import-result]")
    assert "不是有效的大陆手机号" in page.inner_text("[data-testid=row-errors]")
    _shot(page, tmp_path, "console-import-1280")
    page.goto(f"{server}/console/seals")
    page.click("text=立即核验")
    page.wait_for_selector("[data-testid=last-verification].ok")
    _shot(page, tmp_path, "console-seals-1280")
    assert watch.errors == []
    context.close()
