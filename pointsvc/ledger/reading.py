"""Reading the ledger: account balances and keyset-paginated statements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from .. import sql
from ..common import decode_id_cursor, encode_cursor
from ..errors import NotFound
from ..extensions import db
from .models import Account
from .service import account_balance


@dataclass(frozen=True)
class AccountView:
    """An account as read for display: exact balance (shards summed) and its scope path."""

    id: int
    kind: str
    owner_id: int
    community_id: int
    bounded: bool
    balance: int
    held: int
    total_credited: int
    total_debited: int
    scope_path: str


_ACCOUNT_VIEW = """
SELECT a.id, a.kind, a.owner_id, a.community_id, a.bounded, a.balance, a.held,
       a.total_credited, a.total_debited, n.path,
       (SELECT sum(s.balance) FROM ledger_account_shards s WHERE s.account_id = a.id)
FROM ledger_accounts a
LEFT JOIN org_nodes n ON n.id = CASE WHEN a.community_id <> 0 THEN a.community_id
                                     ELSE a.district_id END
WHERE a.id = %(id)s
"""


def account_view(*, account_id: int) -> AccountView:
    """The account with its exact balance and scope path in one query, or 404."""
    row = sql.one(_ACCOUNT_VIEW, {"id": account_id})
    if row is None:
        raise NotFound("not_found", f"account {account_id} does not exist")
    (id_, kind, owner_id, community_id, bounded, balance, held, credited, debited, path,
     shard_total) = row
    bounded = bool(bounded)
    return AccountView(id_, kind, owner_id, community_id, bounded,
                       int(balance if bounded else shard_total or 0), int(held), int(credited),
                       int(debited), path or "/")


def find_account(*, kind: str, owner_id: int) -> Account | None:
    return db.session.scalar(
        select(Account).where(Account.kind == kind, Account.owner_id == owner_id)
    )


def account_json(account: Account | AccountView | None, *, kind: str = "resident",
                 owner_id: int = 0, community_id: int = 0) -> dict[str, Any]:
    """Balance, held and lifetime totals (zeros for an account not yet opened)."""
    if account is None:
        return {"id": 0, "kind": kind, "owner_id": owner_id, "community_id": community_id,
                "balance": 0, "held": 0, "spendable": 0, "total_earned": 0, "total_spent": 0}
    balance = account.balance if isinstance(account, AccountView) else account_balance(
        account=account)
    return {
        "id": account.id,
        "kind": account.kind,
        "owner_id": account.owner_id,
        "community_id": account.community_id,
        "balance": balance,
        "held": account.held,
        "spendable": balance - account.held,
        "total_earned": account.total_credited,
        "total_spent": account.total_debited,
    }


_STATEMENT = """
SELECT e.id, e.amount, e.balance_after, t.id, t.kind, t.created_at, t.category, t.rule_id,
       t.rule_code, t.rule_version, t.reference_type, t.reference_id, t.shortfall,
       r.{title}, m.memo, c.id, c.kind, c.owner_id
FROM ledger_entries e
JOIN ledger_transactions t ON t.id = e.transaction_id
LEFT JOIN ledger_rules r ON r.id = t.rule_id
LEFT JOIN ledger_memos m ON m.transaction_id = t.id
LEFT JOIN ledger_accounts c ON c.id = (
    SELECT o.account_id FROM ledger_entries o
    WHERE o.transaction_id = t.id AND o.account_id <> e.account_id ORDER BY o.id LIMIT 1)
WHERE e.account_id = %(account)s {filters}
ORDER BY e.id DESC LIMIT %(limit)s
"""


_CREDITED_SINCE = """
SELECT COALESCE(SUM(e.amount), 0) FROM ledger_entries e
JOIN ledger_transactions t ON t.id = e.transaction_id
WHERE e.account_id = %(account)s AND e.amount > 0 AND t.created_at >= %(start)s
  AND t.kind NOT IN ('refund', 'reversal')
"""


def credited_since(*, account_id: int, start: datetime) -> int:
    """Points credited to an account since `start`, refunds and reversals excluded (giving
    back what was spent or taken is not earning)."""
    row = sql.rows(_CREDITED_SINCE, {"account": account_id, "start": sql.db_time(start)})
    return int(row[0][0])


def statement(
    *,
    account_id: int,
    limit: int,
    cursor: str | None,
    start: datetime | None = None,
    end: datetime | None = None,
    category: str | None = None,
    english: bool = False,
) -> tuple[list[dict[str, Any]], str | None]:
    """Entries of an account, newest first, with the rule, memo and counterparty of each.

    One statement, plain rows: a statement page is read far more often than written.
    """
    params: dict[str, Any] = {"account": account_id, "limit": limit + 1}
    filters = []
    if cursor:
        filters.append("AND e.id < %(before)s")
        params["before"] = decode_id_cursor(cursor)
    if start is not None:
        filters.append("AND t.created_at >= %(start)s")
        params["start"] = sql.db_time(start)
    if end is not None:
        filters.append("AND t.created_at < %(end)s")
        params["end"] = sql.db_time(end)
    if category is not None:
        filters.append("AND t.category = %(category)s")
        params["category"] = category
    rows = sql.rows(_STATEMENT.format(title="title_en" if english else "title_zh",
                                      filters=" ".join(filters)), params)
    page = rows[:limit]
    items = [
        {
            "entry_id": entry_id,
            "transaction_id": tx_id,
            "kind": kind,
            "amount": amount,
            "balance_after": balance_after,
            "created_at": sql.from_db_time(created_at).isoformat(),
            "category": category_,
            "rule_code": rule_code,
            "rule_version": rule_version,
            "rule_title": title if rule_id else None,
            "memo": memo,
            "counterparty": ({"account_id": other_id, "kind": other_kind,
                              "owner_id": other_owner} if other_id is not None else None),
            "reference_type": reference_type,
            "reference_id": reference_id,
            "shortfall": shortfall,
        }
        for (entry_id, amount, balance_after, tx_id, kind, created_at, category_, rule_id,
             rule_code, rule_version, reference_type, reference_id, shortfall, title, memo,
             other_id, other_kind, other_owner)
        in page
    ]
    next_cursor = encode_cursor([page[-1][0]]) if len(rows) > limit else None
    return items, next_cursor


