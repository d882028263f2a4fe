"""Reading the ledger: account balances and keyset-paginated statements."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from ..common import as_utc, decode_id_cursor, encode_cursor
from ..errors import NotFound
from ..extensions import db
from ..orgs.models import OrgNode
from .models import Account, Entry, LedgerTransaction, Memo, Rule
from .service import account_balance


def get_account(*, account_id: int) -> Account:
    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFound("not_found", f"account {account_id} does not exist")
    return account


def find_account(*, kind: str, owner_id: int) -> Account | None:
    return db.session.scalar(
        select(Account).where(Account.kind == kind, Account.owner_id == owner_id)
    )


def account_scope_path(*, account: Account) -> str:
    """The org path an account belongs to (community, or district for system accounts)."""
    node_id = account.community_id or account.district_id
    return db.session.scalar(select(OrgNode.path).where(OrgNode.id == node_id)) or "/"


def account_json(account: Account | None, *, kind: str = "resident", owner_id: int = 0,
                 community_id: int = 0) -> dict[str, Any]:
    """Balance, held and lifetime totals (zeros for an account not yet opened)."""
    if account is None:
        return {"id": 0, "kind": kind, "owner_id": owner_id, "community_id": community_id,
                "balance": 0, "held": 0, "spendable": 0, "total_earned": 0, "total_spent": 0}
    balance = account_balance(account=account)
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
    """Entries of an account, newest first, with the rule, memo and counterparty of each."""
    # Plain columns, not ORM entities: a statement page is read far more often than written.
    query = (
        select(
            Entry.id, Entry.amount, Entry.balance_after, LedgerTransaction.id,
            LedgerTransaction.kind, LedgerTransaction.created_at, LedgerTransaction.category,
            LedgerTransaction.rule_id, LedgerTransaction.rule_code,
            LedgerTransaction.rule_version, LedgerTransaction.reference_type,
            LedgerTransaction.reference_id, LedgerTransaction.shortfall,
            Rule.title_en if english else Rule.title_zh, Memo.memo,
        )
        .join(LedgerTransaction, LedgerTransaction.id == Entry.transaction_id)
        .outerjoin(Rule, Rule.id == LedgerTransaction.rule_id)
        .outerjoin(Memo, Memo.transaction_id == LedgerTransaction.id)
        .where(Entry.account_id == account_id)
    )
    if cursor:
        query = query.where(Entry.id < decode_id_cursor(cursor))
    if start is not None:
        query = query.where(LedgerTransaction.created_at >= start)
    if end is not None:
        query = query.where(LedgerTransaction.created_at < end)
    if category is not None:
        query = query.where(LedgerTransaction.category == category)
    rows = db.session.execute(query.order_by(Entry.id.desc()).limit(limit + 1)).all()
    page = rows[:limit]
    counterparties = _counterparties([row[3] for row in page], account_id)
    items = [
        {
            "entry_id": entry_id,
            "transaction_id": tx_id,
            "kind": kind,
            "amount": amount,
            "balance_after": balance_after,
            "created_at": as_utc(created_at).isoformat(),
            "category": category_,
            "rule_code": rule_code,
            "rule_version": rule_version,
            "rule_title": title if rule_id else None,
            "memo": memo,
            "counterparty": counterparties.get(tx_id),
            "reference_type": reference_type,
            "reference_id": reference_id,
            "shortfall": shortfall,
        }
        for (entry_id, amount, balance_after, tx_id, kind, created_at, category_, rule_id,
             rule_code, rule_version, reference_type, reference_id, shortfall, title, memo)
        in page
    ]
    next_cursor = encode_cursor([page[-1][0]]) if len(rows) > limit else None
    return items, next_cursor


def _counterparties(transaction_ids: list[int], account_id: int) -> dict[int, dict[str, Any]]:
    if not transaction_ids:
        return {}
    result: dict[int, dict[str, Any]] = {}
    for tx_id, other_id, kind, owner_id in db.session.execute(
        select(Entry.transaction_id, Account.id, Account.kind, Account.owner_id)
        .join(Account, Account.id == Entry.account_id)
        .where(Entry.transaction_id.in_(transaction_ids), Entry.account_id != account_id)
    ):
        result.setdefault(tx_id, {"account_id": other_id, "kind": kind, "owner_id": owner_id})
    return result
