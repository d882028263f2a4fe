"""The person's own settings: leaderboard privacy and password."""

from __future__ import annotations

from pointsvc.extensions import db
from pointsvc.people.models import Resident

from .conftest import Page, login_name, text_of


def _privacy(app, resident_id: int) -> str:  # type: ignore[no-untyped-def]
    with app.app_context():
        value = db.session.get(Resident, resident_id).privacy
        db.session.remove()
        return value


def test_privacy_choice(app, world, resident_page):
    page = resident_page.get("/wallet/privacy")
    assert 'value="public" checked' in page.get_data(as_text=True)
    saved = resident_page.post("/wallet/privacy", {"privacy": "anonymous"})
    assert saved.status_code == 200 and "已保存" in text_of(saved)
    assert _privacy(app, world.resident) == "anonymous"
    bad = resident_page.post("/wallet/privacy", {"privacy": "everyone"})
    assert bad.status_code == 422 and "请选择一项" in text_of(bad)
    assert _privacy(app, world.resident) == "anonymous"


def test_change_password_ends_the_session(app, world, resident_page):
    url = "/account/password"
    wrong = resident_page.post(url, {"current_password": "nope", "new_password": "n3w-pass-ok",
                                     "repeat": "n3w-pass-ok"})
    assert wrong.status_code == 422 and "密码错误" in text_of(wrong)
    assert "nope" not in wrong.get_data(as_text=True)
    differ = resident_page.post(url, {"current_password": "correct-horse-9",
                                      "new_password": "n3w-pass-ok", "repeat": "other"})
    assert differ.status_code == 422 and "两次输入的新密码不一致" in text_of(differ)
    done = resident_page.post(url, {"current_password": "correct-horse-9",
                                    "new_password": "n3w-pass-ok", "repeat": "n3w-pass-ok"})
    assert done.status_code == 302 and done.location.startswith("/login?changed=1")
    assert resident_page.get("/wallet").status_code == 302
    fresh = Page(app.test_client())
    fresh.get("/login")
    again = fresh.post("/login", {"identifier": login_name(app, world.resident_user),
                                  "password": "n3w-pass-ok"})
    assert again.status_code == 302


def test_merchants_change_their_password_too(till_page):
    assert till_page.get("/account/password").status_code == 200
