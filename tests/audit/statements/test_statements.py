"""Monthly statements: month boundaries in Asia/Shanghai, arithmetic, bilingual reasons,
scope, bad months, CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pointsvc.common import utcnow
from pointsvc.extensions import db
from pointsvc.ledger.models import Rule
from pointsvc.ledger.service import (
    Leg,
    Transfer,
    district_of,
    ensure_account,
    issuance_account,
    post,
    resident_account,
)
from tests.factories import auth, make_merchant
from tests.ledger.conftest import award, balance_of


def book(app, w, *, at: datetime, kind: str, amount: int, rule_code: str | None = None,
         merchant_id: int | None = None, memo: str | None = None) -> int:
    """Post one transfer to the resident's account at a given instant (as an import would)."""
    with app.app_context():
        community = w.tree.community_a
        district = district_of(community_id=community)
        resident = resident_account(resident_id=w.resident, community_id=community)
        other = (ensure_account(kind="merchant", owner_id=merchant_id, community_id=community,
                                district_id=district) if merchant_id
                 else issuance_account(community_id=community))
        rule = (db.session.query(Rule).filter_by(code=rule_code, is_current=True).one()
                if rule_code else None)
        tx = post(transfer=Transfer(
            kind=kind, community_id=community, district_id=district,
            legs=(Leg(other, -amount), Leg(resident, amount)),
            rule_id=rule.id if rule else None, rule_code=rule_code,
            rule_version=rule.version if rule else None,
            category=rule.category if rule else "other", subject_resident_id=w.resident,
            memo=memo, created_at=at))
        db.session.commit()
        tx_id = tx.id
        db.session.remove()
        return tx_id


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def booked(app, world):
    """Across the October/November 2026 boundary in Shanghai (UTC+8)."""
    merchant = make_merchant(app, node_id=world.tree.community_a, name="幸福超市")
    ids = {
        # 2026-10-15 local: October.
        "oct_award": book(app, world, at=utc(2026, 10, 15, 2), kind="award", amount=50,
                          rule_code="garbage-sorting"),
        # 23:59 on 31 October local (15:59 UTC): still October.
        "oct_last": book(app, world, at=utc(2026, 10, 31, 15, 59), kind="award", amount=30,
                         rule_code="volunteer-hour"),
        # 00:30 on 1 November local is 16:30 UTC on 31 October: November.
        "nov_first": book(app, world, at=utc(2026, 10, 31, 16, 30), kind="award", amount=20,
                          rule_code="garbage-sorting", memo="分类准确"),
        "nov_spend": book(app, world, at=utc(2026, 11, 10, 4), kind="redemption", amount=-25,
                          merchant_id=merchant),
        "nov_fine": book(app, world, at=utc(2026, 11, 20, 4), kind="deduction", amount=-20,
                         rule_code="litter"),
        "nov_manual": book(app, world, at=utc(2026, 11, 21, 4), kind="adjustment", amount=7),
        # 00:00 on 1 December local (16:00 UTC on 30 November): December.
        "dec_first": book(app, world, at=utc(2026, 11, 30, 16), kind="award", amount=5,
                          rule_code="garbage-sorting"),
    }
    return ids


def statement(client, app, user, month, lang="zh-CN", path=None):
    url = path or f"/api/v1/me/statements/{month}"
    return client.get(url, headers=auth(app, user, **{"Accept-Language": lang}))


def test_month_boundaries_follow_shanghai_time(app, client, world, booked):
    october = statement(client, app, world.resident_user, "2026-10").get_json()
    november = statement(client, app, world.resident_user, "2026-11").get_json()
    assert october["timezone"] == "Asia/Shanghai"
    assert october["period_start"] == "2026-09-30T16:00:00+00:00"
    assert october["period_end"] == november["period_start"] == "2026-10-31T16:00:00+00:00"
    assert [e["transaction_id"] for e in october["entries"]] == [booked["oct_award"],
                                                                 booked["oct_last"]]
    assert [e["transaction_id"] for e in november["entries"]] == [
        booked["nov_first"], booked["nov_spend"], booked["nov_fine"], booked["nov_manual"]]
    assert november["entries"][0]["local_date"] == "2026-11-01"
    assert october["entries"][-1]["local_date"] == "2026-10-31"


def test_opening_plus_entries_is_closing(app, client, world, booked):
    september = statement(client, app, world.resident_user, "2026-09").get_json()
    assert (september["opening_balance"], september["closing_balance"],
            september["entries"]) == (0, 0, [])
    months = [statement(client, app, world.resident_user, m).get_json()
              for m in ("2026-10", "2026-11", "2026-12")]
    for before, after in zip(months, months[1:], strict=False):
        assert after["opening_balance"] == before["closing_balance"]
    for month in months:
        amounts = [e["amount"] for e in month["entries"]]
        assert month["opening_balance"] + sum(amounts) == month["closing_balance"]
        assert month["totals"]["net"] == sum(amounts)
        assert month["totals"]["credits"] - month["totals"]["debits"] == sum(amounts)
        running = month["opening_balance"]
        for entry in month["entries"]:
            running += entry["amount"]
            assert entry["balance"] == running
    october, november, december = months
    assert (october["opening_balance"], october["closing_balance"]) == (0, 80)
    assert (november["opening_balance"], november["closing_balance"]) == (80, 62)
    assert november["totals"] == {"credits": 27, "debits": 45, "earned": 27, "spent": 25,
                                  "deducted": 20, "refunded": 0, "reversed": 0, "expired": 0,
                                  "net": -18}
    # The current month closes at the account's balance now.
    assert december["closing_balance"] == balance_of(app, world.resident) == 67


def test_reasons_in_chinese_or_english(app, client, world, booked):
    zh = statement(client, app, world.resident_user, "2026-11").get_json()["entries"]
    en = statement(client, app, world.resident_user, "2026-11", lang="en").get_json()["entries"]
    assert [e["reason"] for e in zh] == ["规则garbage-sorting", "兑换", "规则litter", "人工调整"]
    assert [e["reason"] for e in en] == ["Rule garbage-sorting", "Redemption", "Rule litter",
                                         "Manual adjustment"]
    assert zh[0]["memo"] == "分类准确"
    assert zh[1]["counterparty"]["kind"] == "merchant"
    assert zh[1]["counterparty"]["name"] == "幸福超市"
    assert zh[0]["counterparty"]["name"] == "甲社区"
    assert en[0]["counterparty"]["name"] == "Community A"
    assert [e["kind"] for e in zh] == ["award", "redemption", "deduction", "adjustment"]


def test_a_reversal_names_the_rule_it_undoes(app, client, world):
    r = award(client, app, world.organizer, world.resident, "garbage-sorting")
    client.post(f"/api/v1/transactions/{r.get_json()['id']}/reversal", json={"reason": "误录"},
                headers=auth(app, world.organizer2, **{"Idempotency-Key": "rev-stmt-1"}))
    month = utcnow().astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    body = statement(client, app, world.resident_user, month, lang="en").get_json()
    assert [e["reason"] for e in body["entries"]] == ["Rule garbage-sorting",
                                                      "Reversal: Rule garbage-sorting"]
    assert body["totals"]["reversed"] == -5 and body["closing_balance"] == 0


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "2026-1", "26-01", "abcd",
                                   "2026-01-01", "1999-12", "2026-1x"])
def test_malformed_months_are_422(app, client, world, month):
    r = statement(client, app, world.resident_user, month)
    assert r.status_code == 422 and r.get_json()["code"] == "validation_failed"
    assert "month" in r.get_json()["errors"]


def test_a_future_month_is_422(app, client, world):
    now = utcnow().astimezone(ZoneInfo("Asia/Shanghai"))
    future = f"{now.year + (now.month == 12)}-{now.month % 12 + 1:02d}"
    r = statement(client, app, world.resident_user, future)
    assert r.status_code == 422 and "month" in r.get_json()["errors"]
    assert statement(client, app, world.resident_user,
                     f"{now.year}-{now.month:02d}").status_code == 200


def test_staff_in_scope_read_a_residents_statement(app, client, world, booked):
    path = f"/api/v1/residents/{world.resident}/statements/2026-11"
    for staff in (world.organizer, world.auditor, world.admin):
        r = statement(client, app, staff, None, path=path)
        assert r.status_code == 200 and r.get_json()["closing_balance"] == 62
    r = statement(client, app, world.organizer_b, None, path=path)
    assert r.status_code == 403 and r.get_json()["code"] == "not_in_scope"
    # Residents read only their own, through /me.
    assert statement(client, app, world.resident2_user, None, path=path).status_code == 403
    mine = statement(client, app, world.resident2_user, "2026-11").get_json()
    assert mine["entries"] == [] and mine["resident_id"] == world.resident2
    assert statement(client, app, world.organizer, "2026-11").status_code == 403
    assert client.get("/api/v1/me/statements/2026-11").status_code == 401
    missing = f"/api/v1/residents/{10**9}/statements/2026-11"
    assert statement(client, app, world.admin, None, path=missing).status_code == 404
    bad = f"/api/v1/residents/{world.resident}/statements/2026-13"
    assert statement(client, app, world.organizer, None, path=bad).status_code == 422


def test_csv_statement(app, client, world, booked):
    r = client.get("/api/v1/me/statements/2026-11?format=csv",
                   headers=auth(app, world.resident_user))
    assert r.status_code == 200 and r.mimetype == "text/csv"
    text = r.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["local_date", "transaction_id", "kind", "reason", "amount", "balance",
                       "counterparty", "memo"]
    assert rows[1][3] == "期初余额" and rows[1][5] == "80"
    assert [row[4] for row in rows[2:-1]] == ["20", "-25", "-20", "7"]
    assert rows[-1][3] == "期末余额" and rows[-1][5] == "62"
    assert client.get("/api/v1/me/statements/2026-11?format=xml",
                      headers=auth(app, world.resident_user)).status_code == 422

