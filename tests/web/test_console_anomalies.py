"""The console's anomaly report: a planted case shows with its evidence for staff of its
community and not for another community's; bad filters inline; residents refused."""

from __future__ import annotations

from tests.audit.anomalies.conftest import award, world  # noqa: F401  (fixture)

from .conftest import Page, text_of


def _staff(app, user_id: int) -> Page:  # type: ignore[no-untyped-def]
    page = Page(app.test_client())
    page.sign_in(app, user_id, till=True)
    return page


def test_a_planted_case_shows_in_scope_only(app, client, world):  # noqa: F811
    app.config["ANOMALY_REPEAT_MIN_AWARDS"] = 4
    target = world.residents[0][1]
    for _ in range(4):
        assert award(client, app, world.organizer, target).status_code == 201
    auditor = _staff(app, world.auditor)
    page = auditor.get("/console/anomalies")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('data-testid="anomaly"') == 1 and "<code>repeated_awards</code>" in html
    assert "依据" in text_of(page)
    assert f"resident_id {target}" in text_of(page)
    only = auditor.get("/console/anomalies?detector=high_earner&days=7")
    assert only.status_code == 200 and "这段时间没有发现异常" in text_of(only)
    other = _staff(app, world.auditor_b)
    assert "这段时间没有发现异常" in text_of(other.get("/console/anomalies"))


def test_bad_filters_and_roles(app, world):  # noqa: F811
    auditor = _staff(app, world.auditor)
    assert auditor.get("/console/anomalies?days=abc").status_code == 422
    assert auditor.get("/console/anomalies?days=100000").status_code == 422
    assert auditor.get("/console/anomalies?detector=nope").status_code == 422
    resident = Page(app.test_client())
    resident.sign_in(app, world.residents[0][0])
    assert resident.get("/console/anomalies").status_code == 403
