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
