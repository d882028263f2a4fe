"""Appeals in the pages: the resident appeals a deduction from the history (once per form)
and follows it; staff in scope uphold it (the points come back) — never the original
decider, never another community's staff; bad input inline; CSRF."""

from __future__ import annotations

import re

from tests.audit.appeals.conftest import deduction
from tests.ledger.conftest import world  # noqa: F401  (the ledger's world, with organizer2)
from tests.redemption.conftest import balance

from .conftest import Page, key_of, text_of


def _page(app, user_id: int, *, till: bool = False) -> Page:  # type: ignore[no-untyped-def]
    page = Page(app.test_client())
    page.sign_in(app, user_id, till=till)
    return page


def test_a_resident_appeals_a_deduction_and_a_reviewer_upholds_it(app, world):  # noqa: F811
    tx = deduction(app.test_client(), app, world)
    assert balance(app, world.resident)[0] == 0  # 20 earned, 20 deducted
    resident = _page(app, world.resident_user)
    history = resident.get("/wallet/history").get_data(as_text=True)
    link = re.search(r'href="(/wallet/appeals/new\?transaction_id=\d+)"', history)
    assert link and link.group(1).endswith(f"={tx}")
    form = resident.get(link.group(1))
    assert form.status_code == 200 and f"扣分 #{tx}" in text_of(form)
    key = key_of(form.get_data(as_text=True))
    body = {"transaction_id": str(tx), "reason": "我当天不在小区", "key": key}
    assert resident.post("/wallet/appeals/new", body).status_code == 302
    assert resident.post("/wallet/appeals/new", body).status_code == 302  # same form: once
    mine = resident.get("/wallet/appeals")
    assert text_of(mine).count(f"扣分 #{tx}") == 1 and "待处理" in text_of(mine)
    # A new form for the same decision is refused in plain words.
    again = resident.get(link.group(1))
    refused = resident.post("/wallet/appeals/new", {**body, "key": key_of(
        again.get_data(as_text=True))})
    assert refused.status_code == 409 and "已经申诉过了" in text_of(refused)

    # The organiser who deducted may not decide; the other organiser upholds.
    decider = _page(app, world.organizer, till=True)
    listing = decider.get("/console/appeals")
    assert "我当天不在小区" in text_of(listing)
    appeal_id = int(re.search(r'data-testid="appeal-(\d+)"', listing.get_data(as_text=True))
                    .group(1))
    blocked = decider.post(f"/console/appeals/{appeal_id}",
                           {"outcome": "upheld", "reason": "复核"})
    assert blocked.status_code == 403
    other_b = _page(app, world.organizer_b, till=True)
    assert "我当天不在小区" not in text_of(other_b.get("/console/appeals"))
    assert other_b.post(f"/console/appeals/{appeal_id}",
                        {"outcome": "upheld", "reason": "复核"}).status_code == 403
    reviewer = _page(app, world.organizer2, till=True)
    empty = reviewer.post(f"/console/appeals/{appeal_id}", {"outcome": "upheld"})
    assert empty.status_code == 422 and "此项必填" in text_of(empty)
    wrong = reviewer.post(f"/console/appeals/{appeal_id}", {"outcome": "x", "reason": "r"})
    assert wrong.status_code == 422
    assert reviewer.client.post(f"/console/appeals/{appeal_id}",
                                data={"outcome": "upheld", "reason": "r"}).status_code == 400
    done = reviewer.post(f"/console/appeals/{appeal_id}",
                         {"outcome": "upheld", "reason": "监控显示不是本人"})
    assert done.status_code == 302
    assert balance(app, world.resident)[0] == 20  # the deduction was reversed
    assert "申诉成立" in text_of(resident.get("/wallet/appeals"))
    assert "监控显示不是本人" in text_of(reviewer.get("/console/appeals?status=upheld"))


def test_appeal_bad_input_and_roles(app, world):  # noqa: F811
    resident = _page(app, world.resident_user)
    form = resident.get("/wallet/appeals/new?transaction_id=1")
    key = key_of(form.get_data(as_text=True))
    empty = resident.post("/wallet/appeals/new", {"transaction_id": "1", "key": key})
    assert empty.status_code == 422 and 'id="e-reason"' in empty.get_data(as_text=True)
    bad = resident.post("/wallet/appeals/new", {"transaction_id": "abc", "reason": "r",
                                                "key": key})
    assert bad.status_code == 422 and "请输入整数" in text_of(bad)
    missing = resident.post("/wallet/appeals/new", {"transaction_id": "999999",
                                                    "reason": "r", "key": key})
    assert missing.status_code == 404
    assert resident.post("/wallet/appeals/new", {"transaction_id": "1",
                                                 "reason": "r"}).status_code == 400  # no key
    assert resident.get("/console/appeals").status_code == 403
    assert resident.get("/wallet/appeals?cursor=zzz").status_code == 422
    staff = _page(app, world.organizer, till=True)
    assert staff.get("/wallet/appeals").status_code == 403
    assert staff.get("/console/appeals?status=nope").status_code == 422
    auditor = _page(app, world.auditor, till=True)
    assert auditor.get("/console/appeals").status_code == 200
    assert auditor.post("/console/appeals/1", {"outcome": "upheld",
                                               "reason": "r"}).status_code == 403
