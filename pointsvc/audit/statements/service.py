"""Monthly statements: a resident's opening and closing balance, and every entry between.

The month is a calendar month in the resident's community time zone (default
Asia/Shanghai), so an award at 00:30 on the 1st local time (16:30 UTC the day before)
belongs to the new month. Balances are sums of the account's entries by transaction time,
so opening + sum(entries) == closing holds by construction and is tested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ... import sql
from ...common import utcnow
from ...errors import ValidationFailed
from ...ledger.awards import award_subject

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
EARLIEST_YEAR = 2000

# Why an entry without a rule moved points, in Chinese and English.
KIND_LABELS: dict[str, tuple[str, str]] = {
    "award": ("奖励", "Award"),
    "deduction": ("扣分", "Deduction"),
    "redemption": ("兑换", "Redemption"),
    "refund": ("退款", "Refund"),
    "reversal": ("冲正", "Reversal"),
    "expiry": ("积分过期", "Expiry"),
    "settlement": ("结算", "Settlement"),
    "adjustment": ("人工调整", "Manual adjustment"),
}
ACCOUNT_LABELS: dict[str, tuple[str, str]] = {
    "issuance": ("社区积分发放", "community issuance"),
    "expiry": ("过期积分", "expired points"),
    "settlement": ("结算账户", "settlement"),
    "merchant": ("商户", "merchant"),
    "resident": ("居民", "resident"),
}


@dataclass(frozen=True)
class Month:
    label: str
    timezone: str
    start: datetime  # UTC
    end: datetime  # UTC, exclusive


def parse_month(*, text: str, timezone: str, now: datetime | None = None) -> Month:
    """A YYYY-MM month in the time zone; 422 when malformed, too early or in the future."""
    found = MONTH.match(text or "")
    if not found or int(found.group(1)) < EARLIEST_YEAR:
        raise ValidationFailed("validation_failed", "the month must be YYYY-MM",
                               errors={"month": ["A month as YYYY-MM, from 2000-01."]})
    year, month = int(found.group(1)), int(found.group(2))
    zone = ZoneInfo(timezone)
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    local_now = (now or utcnow()).astimezone(zone)
    if start > local_now:
        raise ValidationFailed("validation_failed", "the month has not begun yet",
                               errors={"month": ["A month that has begun."]})
    return Month(text, timezone, start.astimezone(ZoneInfo("UTC")),
                 end.astimezone(ZoneInfo("UTC")))


_ACCOUNT = ("SELECT id FROM ledger_accounts WHERE kind = 'resident' AND owner_id = %(r)s "
            "ORDER BY id")

_OPENING = """
SELECT coalesce(sum(e.amount), 0) FROM ledger_entries e
JOIN ledger_transactions t ON t.id = e.transaction_id
WHERE e.account_id = %(account)s AND t.created_at < %(start)s
"""

# The counterparty is the transaction's other account (the issuance for an award, the
# merchant for a redemption), named by the merchant or community, never by a person.
_ENTRIES = """
SELECT e.id, e.amount, t.id, t.kind, t.created_at, t.category, t.rule_id, t.rule_code,
       t.rule_version, r.title_zh, r.title_en, m.memo, m.erased_at, t.reverses_id,
       t.reference_type, t.reference_id, c.kind, c.owner_id, c.community_id,
       mer.name, n.name_zh, n.name_en
FROM ledger_entries e
JOIN ledger_transactions t ON t.id = e.transaction_id
LEFT JOIN ledger_rules r ON r.id = t.rule_id
LEFT JOIN ledger_memos m ON m.transaction_id = t.id
LEFT JOIN ledger_accounts c ON c.id = (
    SELECT o.account_id FROM ledger_entries o
    WHERE o.transaction_id = t.id AND o.account_id <> e.account_id ORDER BY o.id LIMIT 1)
LEFT JOIN merchants mer ON c.kind = 'merchant' AND mer.id = c.owner_id
LEFT JOIN org_nodes n ON n.id = c.community_id
WHERE e.account_id = %(account)s AND t.created_at >= %(start)s AND t.created_at < %(end)s
ORDER BY t.created_at, e.id
"""


def _reason(kind: str, title: str | None, english: bool) -> str:
    label = KIND_LABELS.get(kind, (kind, kind))[1 if english else 0]
    if title is None:
        return label
    if kind in ("award", "deduction"):
        return title
    return f"{label}: {title}" if english else f"{label}：{title}"


def _totals(items: list[dict[str, Any]]) -> dict[str, int]:
    def total(test) -> int:  # type: ignore[no-untyped-def]
        return sum(i["amount"] for i in items if test(i))

    return {
        "credits": total(lambda i: i["amount"] > 0),
        "debits": -total(lambda i: i["amount"] < 0),
        "earned": total(lambda i: i["amount"] > 0 and i["kind"] in ("award", "adjustment")),
        "spent": -total(lambda i: i["amount"] < 0 and i["kind"] == "redemption"),
        "deducted": -total(lambda i: i["amount"] < 0 and i["kind"] in ("deduction",
                                                                        "adjustment")),
        "refunded": total(lambda i: i["kind"] == "refund"),
        "reversed": total(lambda i: i["kind"] == "reversal"),
        "expired": -total(lambda i: i["kind"] == "expiry"),
        "net": total(lambda i: True),
    }


def monthly_statement(*, resident_id: int, month: str, english: bool,
                      now: datetime | None = None) -> dict[str, Any]:
    """The resident's statement for a month of their community's calendar."""
    subject = award_subject(resident_id=resident_id)
    timezone = (db_timezone(subject.community_id) or "Asia/Shanghai")
    period = parse_month(text=month, timezone=timezone, now=now)
    zone = ZoneInfo(timezone)
    accounts = [row[0] for row in sql.rows(_ACCOUNT, {"r": resident_id})]
    opening, items = 0, []
    for account_id in accounts:  # one in practice; a moved resident may hold more
        opening += int(sql.one(_OPENING, {"account": account_id,
                                          "start": sql.db_time(period.start)})[0])
        items += _entries(account_id=account_id, period=period, zone=zone, english=english)
    items.sort(key=lambda i: (i["created_at"], i["entry_id"]))
    balance = opening
    for item in items:
        balance += item["amount"]
        item["balance"] = balance
    return {
        "resident_id": resident_id,
        "community_id": subject.community_id,
        "month": period.label,
        "timezone": timezone,
        "period_start": period.start.isoformat(),
        "period_end": period.end.isoformat(),
        "opening_balance": opening,
        "closing_balance": balance,
        "totals": _totals(items),
        "entries": items,
    }


def db_timezone(community_id: int) -> str | None:
    from ...orgs.service import node_facts

    facts = node_facts(node_id=community_id)
    return facts.timezone if facts else None


def _entries(*, account_id: int, period: Month, zone: ZoneInfo, english: bool
             ) -> list[dict[str, Any]]:
    rows = sql.rows(_ENTRIES, {"account": account_id, "start": sql.db_time(period.start),
                               "end": sql.db_time(period.end)})
    items = []
    for (entry_id, amount, tx_id, kind, created_at, category, rule_id, rule_code,
         rule_version, title_zh, title_en, memo, memo_erased, reverses_id, reference_type,
         reference_id, other_kind, other_owner, other_community, merchant_name, node_zh,
         node_en) in rows:
        at = sql.from_db_time(created_at)
        title = (title_en if english else title_zh) if rule_id else None
        counterparty = None
        if other_kind is not None:
            name = merchant_name if other_kind == "merchant" else (
                node_en if english else node_zh)
            counterparty = {
                "kind": other_kind,
                "id": other_owner if other_kind == "merchant" else other_community,
                "name": name,
                "label": ACCOUNT_LABELS.get(other_kind, (other_kind, other_kind))[
                    1 if english else 0],
            }
        items.append({
            "entry_id": entry_id,
            "transaction_id": tx_id,
            "created_at": at.isoformat(),
            "local_date": at.astimezone(zone).date().isoformat(),
            "kind": kind,
            "amount": int(amount),
            "reason": _reason(kind, title, english),
            "rule_code": rule_code,
            "rule_version": rule_version,
            "rule_title": title,
            "category": category,
            # The resident's own transactions' memos are theirs to read (as in /me/entries);
            # an erased memo reads as null.
            "memo": None if memo_erased is not None else memo,
            "reverses_id": reverses_id,
            "reference_type": reference_type,
            "reference_id": reference_id,
            "counterparty": counterparty,
        })
    return items


CSV_COLUMNS = ("local_date", "transaction_id", "kind", "reason", "amount", "balance",
               "counterparty", "memo")


def csv_rows(statement: dict[str, Any], *, english: bool) -> list[list[Any]]:
    """The statement as spreadsheet rows: opening line, one per entry, closing line."""
    opening = "Opening balance" if english else "期初余额"
    closing = "Closing balance" if english else "期末余额"
    rows: list[list[Any]] = [["", "", "opening", opening, "", statement["opening_balance"],
                              "", ""]]
    for item in statement["entries"]:
        party = item["counterparty"] or {}
        rows.append([item["local_date"], item["transaction_id"], item["kind"], item["reason"],
                     item["amount"], item["balance"], party.get("name") or party.get("label"),
                     item["memo"]])
    rows.append(["", "", "closing", closing, statement["totals"]["net"],
                 statement["closing_balance"], "", ""])
    return rows
