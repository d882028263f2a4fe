"""`flask ledger check` and `flask ledger verify`: the invariants of DESIGN.md §3."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import select, text

from ..extensions import db
from . import merkle
from .hashing import HEADER_FIELDS, canonical_values
from .models import LedgerTransaction, Seal, SealLeaf
from .seals import ZERO_ROOT, leaf_for, verify_seal_signature

BATCH = 5000

# Checks of derived data other packages register (leaderboard tallies, ...): each
# returns its violations, one line each.
EXTRA_CHECKS: list[Callable[[], list[str]]] = []

STRUCTURAL_CHECKS = {
    "transaction does not sum to zero": """
        SELECT transaction_id, SUM(amount) FROM ledger_entries
        GROUP BY transaction_id HAVING SUM(amount) <> 0""",
    "bounded balance differs from its entries or is negative": """
        SELECT a.id, a.balance - COALESCE((SELECT SUM(e.amount) FROM ledger_entries e
                                           WHERE e.account_id = a.id), 0)
        FROM ledger_accounts a
        WHERE a.bounded AND (a.balance < 0 OR a.balance <> COALESCE(
            (SELECT SUM(e.amount) FROM ledger_entries e WHERE e.account_id = a.id), 0))""",
    "held points outside 0..balance": """
        SELECT id, held FROM ledger_accounts WHERE held < 0 OR held > balance""",
    "system account shards differ from its entries": """
        SELECT a.id, COALESCE((SELECT SUM(s.balance) FROM ledger_account_shards s
                               WHERE s.account_id = a.id), 0)
                   - COALESCE((SELECT SUM(e.amount) FROM ledger_entries e
                               WHERE e.account_id = a.id), 0)
        FROM ledger_accounts a
        WHERE NOT a.bounded AND COALESCE((SELECT SUM(s.balance) FROM ledger_account_shards s
                                          WHERE s.account_id = a.id), 0)
                             <> COALESCE((SELECT SUM(e.amount) FROM ledger_entries e
                                          WHERE e.account_id = a.id), 0)""",
    "balance_after breaks the running balance": """
        SELECT id, account_id FROM (
            SELECT e.id, e.account_id, e.balance_after,
                   SUM(e.amount) OVER (PARTITION BY e.account_id ORDER BY e.id
                                       ROWS UNBOUNDED PRECEDING) AS running
            FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
            WHERE a.bounded) x
        WHERE balance_after IS NULL OR balance_after <> running""",
    "reversal does not mirror the original": """
        SELECT r.id, r.reverses_id FROM ledger_transactions r
        WHERE r.reverses_id IS NOT NULL AND EXISTS (
            SELECT 1 FROM (
                SELECT account_id, SUM(amount) AS total FROM ledger_entries
                WHERE transaction_id IN (r.id, r.reverses_id) GROUP BY account_id
            ) net WHERE net.total <> 0)""",
    "entry in another community or district than its transaction": """
        SELECT e.id, e.transaction_id FROM ledger_entries e
        JOIN ledger_transactions t ON t.id = e.transaction_id
        WHERE e.community_id <> t.community_id OR e.district_id <> t.district_id""",
}


def check_invariants() -> list[str]:
    """Every violated invariant, one line each (empty when the books are sound)."""
    violations: list[str] = []
    for label, sql in STRUCTURAL_CHECKS.items():
        for row in db.session.execute(text(sql)).all()[:20]:
            violations.append(f"{label}: {tuple(row)}")
    violations.extend(verify_ledger())
    for extra in EXTRA_CHECKS:
        violations.extend(extra())
    db.session.rollback()
    return violations


_TX_SQL = (
    "SELECT " + ", ".join(HEADER_FIELDS) + ", content_hash FROM ledger_transactions "
    "WHERE id > %(last)s ORDER BY id LIMIT %(limit)s"
)
_ENTRY_SQL = (
    "SELECT transaction_id, account_id, amount, balance_after FROM ledger_entries "
    "WHERE transaction_id BETWEEN %(low)s AND %(high)s"
)


def _transactions() -> Iterator[tuple[Any, list[tuple[int, int, int | None]], str]]:
    """Every transaction with its entries, streamed in id order in batches.

    Straight from the driver's cursor (plain tuples, fetchall per batch): verification
    rehashes the whole ledger, so per-row overhead is what decides its speed.
    """
    cursor = db.session.connection().connection.cursor()
    paramstyle_sql = _for_driver(cursor)
    last = 0
    while True:
        cursor.execute(paramstyle_sql[0], {"last": last, "limit": BATCH})
        rows = cursor.fetchall()
        if not rows:
            cursor.close()
            return
        low, high = rows[0][0], rows[-1][0]
        cursor.execute(paramstyle_sql[1], {"low": low, "high": high})
        entries: dict[int, list[tuple[int, int, int | None]]] = {}
        for tx_id, account_id, amount, balance_after in cursor.fetchall():
            entries.setdefault(tx_id, []).append((account_id, amount, balance_after))
        for row in rows:
            yield row[:-1], entries.get(row[0], []), row[-1]
        last = high


def _for_driver(cursor: Any) -> tuple[str, str]:
    """psycopg takes %(name)s; sqlite3 takes :name."""
    if db.engine.dialect.name == "sqlite":
        return (_TX_SQL.replace("%(last)s", ":last").replace("%(limit)s", ":limit"),
                _ENTRY_SQL.replace("%(low)s", ":low").replace("%(high)s", ":high"))
    return _TX_SQL, _ENTRY_SQL


def verify_ledger() -> list[str]:
    """Recompute every content hash and every seal; name the first of each that fails.

    Both passes stream in batches, so memory stays flat however large the books are.
    """
    for values, entries, stored in _transactions():
        recomputed = hashlib.sha256(canonical_values(values, entries)).hexdigest()
        if not hmac.compare_digest(recomputed, stored):
            return [f"transaction {values[0]}: content hash does not recompute"]
    return _verify_seals()


def _leaves() -> Iterator[tuple[int, int, bytes, str]]:
    """Every leaf with its transaction's (already verified) content hash, in leaf order."""
    last = -1
    while True:
        rows = db.session.execute(
            select(SealLeaf.leaf_index, SealLeaf.transaction_id, SealLeaf.leaf_hash,
                   LedgerTransaction.content_hash)
            .outerjoin(LedgerTransaction, LedgerTransaction.id == SealLeaf.transaction_id)
            .where(SealLeaf.leaf_index > last)
            .order_by(SealLeaf.leaf_index)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1][0]


def _verify_seals() -> list[str]:
    frontier: merkle.Frontier = []
    size = 0
    previous_root = ZERO_ROOT
    leaf_iter = _leaves()
    for seal_row in db.session.scalars(select(Seal).order_by(Seal.seq)):
        if seal_row.previous_root_hash != previous_root:
            return [f"seal {seal_row.seq}: does not chain to the previous seal"]
        if not verify_seal_signature(seal_row):
            return [f"seal {seal_row.seq}: signature does not verify"]
        pending: list[bytes] = []
        while size + len(pending) < seal_row.tree_size:
            row = next(leaf_iter, None)
            if row is None:
                return [f"seal {seal_row.seq}: leaves missing"]
            index, tx_id, stored_leaf, content = row
            if index != size + len(pending):
                return [f"seal {seal_row.seq}: leaf {index} out of order"]
            expected = leaf_for(content) if content else None
            if expected is None or bytes(stored_leaf) != expected:
                return [f"seal {seal_row.seq}: leaf {index} (transaction {tx_id}) does not match"]
            pending.append(expected)
        frontier = merkle.extend(frontier, pending)
        size += len(pending)
        if merkle.fold(frontier).hex() != seal_row.root_hash:
            return [f"seal {seal_row.seq}: root does not recompute"]
        previous_root = seal_row.root_hash
    return []
