"""`flask ledger check` and `flask ledger verify`: the invariants of DESIGN.md §3."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from sqlalchemy import select, text

from ..extensions import db
from . import merkle
from .hashing import HASH_VERSION, HEADER_FIELDS, canonical_values
from .models import Seal
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
    "transaction amount differs from its positive entries": """
        SELECT t.id, t.amount FROM ledger_transactions t
        WHERE t.amount <> COALESCE((SELECT SUM(e.amount) FROM ledger_entries e
                                    WHERE e.transaction_id = t.id AND e.amount > 0), 0)""",
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
_ONE_TX_SQL = (
    "SELECT " + ", ".join(HEADER_FIELDS) + ", content_hash FROM ledger_transactions "
    "WHERE id = %(id)s"
)
_ONE_TX_ENTRIES_SQL = (
    "SELECT transaction_id, account_id, amount, balance_after FROM ledger_entries "
    "WHERE transaction_id = %(id)s"
)

TxRow = tuple[Any, list[tuple[int, int, int | None]], str]


def _transactions(*, only: list[int] | None = None) -> Iterator[TxRow]:
    """Every transaction (or those in `only`) with its entries, in id order, in batches.

    Straight from the driver's cursor (plain tuples, fetchall per batch): verification
    rehashes the whole ledger, so per-row overhead is what decides its speed.
    """
    if only is not None:
        yield from (_one_transaction(tx_id) for tx_id in sorted(only))
        return
    cursor = db.session.connection().connection.cursor()
    last = 0
    while True:
        cursor.execute(_for_driver(_TX_SQL), {"last": last, "limit": BATCH})
        rows = cursor.fetchall()
        if not rows:
            cursor.close()
            return
        low, high = rows[0][0], rows[-1][0]
        cursor.execute(_for_driver(_ENTRY_SQL), {"low": low, "high": high})
        entries: dict[int, list[tuple[int, int, int | None]]] = {}
        for tx_id, account_id, amount, balance_after in cursor.fetchall():
            entries.setdefault(tx_id, []).append((account_id, amount, balance_after))
        for row in rows:
            yield row[:-1], entries.get(row[0], []), row[-1]
        last = high


def _one_transaction(tx_id: int) -> TxRow:
    cursor = db.session.connection().connection.cursor()
    row = cursor.execute(_for_driver(_ONE_TX_SQL), {"id": tx_id}).fetchone()
    entries = [tuple(entry[1:]) for entry in
               cursor.execute(_for_driver(_ONE_TX_ENTRIES_SQL), {"id": tx_id}).fetchall()]
    cursor.close()
    return row[:-1], entries, row[-1]  # type: ignore[return-value]


def _for_driver(statement: str) -> str:
    """psycopg takes %(name)s; sqlite3 takes :name."""
    if db.engine.dialect.name == "sqlite":
        return re.sub(r"%\((\w+)\)s", r":\1", statement)
    return statement


def verify_ledger(*, independent: bool = False) -> list[str]:
    """Recompute every content hash and every seal; name the first of each that fails.

    On PostgreSQL the database recomputes the hashes next to the data (see
    _mismatches_in_database) unless `independent`; SQLite, and every transaction the
    database flags, is rehashed here in Python, the authority. Memory stays flat.
    """
    in_database = db.engine.dialect.name == "postgresql" and not independent
    suspects = _mismatches_in_database() if in_database else None
    for values, entries, stored in _transactions(only=suspects):
        recomputed = hashlib.sha256(canonical_values(values, entries)).hexdigest()
        if not hmac.compare_digest(recomputed, stored):
            return [f"transaction {values[0]}: content hash does not recompute"]
    return _verify_seals(in_database=in_database)


# The canonical form of hashing.canonical_values, built by PostgreSQL. Strings go through
# to_json, which escapes like Python's json except that it keeps non-ASCII characters
# (Python writes \uXXXX): such a row hashes differently here and is simply rehashed in
# Python. A match is proof enough: the stored hash commits to bytes that are a JSON
# encoding of exactly these values.
_TEXT_FIELDS = frozenset({"kind", "rule_code", "category", "reference_type", "reference_id",
                          "memo_hash"})


def _canonical_sql() -> str:
    parts = ["'[\"" + HASH_VERSION + "\"'"]
    for field in HEADER_FIELDS:
        if field == "created_at":
            parts.append("((EXTRACT(EPOCH FROM t.created_at) * 1000000)::bigint)::text")
        elif field in _TEXT_FIELDS:
            parts.append(f"COALESCE(pg_catalog.to_json(t.{field})::text, 'null')")
        else:
            parts.append(f"COALESCE(t.{field}::text, 'null')")
    parts.append("'[' || COALESCE(e.items, '') || ']]'")
    return " || ',' || ".join(parts)


_DATABASE_MISMATCH_SQL = (
    "SELECT t.id FROM ledger_transactions t LEFT JOIN ("
    " SELECT transaction_id, string_agg('[' || account_id || ',' || amount || ',' ||"
    " COALESCE(balance_after::text, 'null') || ']', ','"
    " ORDER BY account_id, amount, balance_after NULLS FIRST) AS items"
    " FROM ledger_entries WHERE transaction_id > %(low)s AND transaction_id <= %(high)s"
    " GROUP BY transaction_id) e ON e.transaction_id = t.id"
    " WHERE t.id > %(low)s AND t.id <= %(high)s AND pg_catalog.encode(pg_catalog.sha256("
    " pg_catalog.convert_to({canonical}, 'UTF8')), 'hex') <> t.content_hash"
)
DATABASE_RANGE = 200_000


def _mismatches_in_database() -> list[int]:
    """Ids whose hash PostgreSQL's recomputation does not match, range by range."""
    query = _DATABASE_MISMATCH_SQL.format(canonical=_canonical_sql())
    cursor = db.session.connection().connection.cursor()
    top = cursor.execute("SELECT COALESCE(MAX(id), 0) FROM ledger_transactions").fetchone()[0]
    suspects: list[int] = []
    low = 0
    while low < top:
        cursor.execute(query, {"low": low, "high": low + DATABASE_RANGE})
        suspects.extend(row[0] for row in cursor.fetchall())
        low += DATABASE_RANGE
    cursor.close()
    return suspects


_LEAVES_SQL = (
    "SELECT l.leaf_index, l.transaction_id, l.leaf_hash, t.content_hash "
    "FROM ledger_seal_leaves l LEFT JOIN ledger_transactions t ON t.id = l.transaction_id "
    "WHERE l.leaf_index > %(last)s ORDER BY l.leaf_index LIMIT %(limit)s"
)
_LEAF_HASHES_SQL = (
    "SELECT leaf_index, leaf_hash FROM ledger_seal_leaves "
    "WHERE leaf_index > %(last)s ORDER BY leaf_index LIMIT %(limit)s"
)
# PostgreSQL recomputes every leaf (RFC 9162: SHA-256 of 0x00 || the 32-byte content hash)
# next to the data; the content hashes themselves were verified just before.
_BAD_LEAF_SQL = (
    "SELECT l.leaf_index, l.transaction_id FROM ledger_seal_leaves l "
    "LEFT JOIN ledger_transactions t ON t.id = l.transaction_id "
    "WHERE t.id IS NULL OR l.leaf_hash <> pg_catalog.sha256("
    "'\\x00'::bytea || pg_catalog.decode(t.content_hash, 'hex')) "
    "ORDER BY l.leaf_index LIMIT 1"
)
_LEAF_SPAN_SQL = ("SELECT COUNT(*), COALESCE(MIN(leaf_index), 0), COALESCE(MAX(leaf_index), -1) "
                  "FROM ledger_seal_leaves")
_FIRST_GAP_SQL = (
    "SELECT leaf_index FROM (SELECT leaf_index, ROW_NUMBER() OVER (ORDER BY leaf_index) - 1 "
    "AS n FROM ledger_seal_leaves) x WHERE leaf_index <> n ORDER BY leaf_index LIMIT 1"
)


class _BadLeaf(Exception):
    """A leaf that breaks the log: its index and what is wrong with it."""

    def __init__(self, index: int, problem: str) -> None:
        super().__init__(problem)
        self.index, self.problem = index, problem


def _rows(statement: str) -> Iterator[tuple]:
    """Rows of a (last, limit) keyset statement, batch by batch, through the driver."""
    cursor = db.session.connection().connection.cursor()
    last = -1
    try:
        while rows := cursor.execute(_for_driver(statement), {"last": last, "limit": BATCH}
                                     ).fetchall():
            yield from rows
            last = rows[-1][0]
    finally:
        cursor.close()


def _leaves() -> Iterator[tuple[int, int, bytes, str]]:
    """Every leaf with its transaction's (already verified) content hash, in leaf order."""
    return _rows(_LEAVES_SQL)


def _recomputed_leaves() -> Iterator[bytes]:
    """Every leaf hash, recomputed here from its transaction's content hash (raises _BadLeaf)."""
    for expected_index, (index, tx_id, stored_leaf, content) in enumerate(_leaves()):
        if index != expected_index:
            raise _BadLeaf(index, f"leaf {index} out of order")
        expected = leaf_for(content) if content else None
        if expected is None or bytes(stored_leaf) != expected:
            raise _BadLeaf(index, f"leaf {index} (transaction {tx_id}) does not match")
        yield expected


def _leaves_checked_in_database() -> Iterator[bytes]:
    """The stored leaf hashes, after PostgreSQL recomputed and ordered them all (_BadLeaf)."""
    cursor = db.session.connection().connection.cursor()
    count, low, high = cursor.execute(_LEAF_SPAN_SQL).fetchone()
    if count and (low != 0 or high != count - 1):  # unique indexes: contiguous iff 0..n-1
        gap = cursor.execute(_FIRST_GAP_SQL).fetchone()
        raise _BadLeaf(gap[0], f"leaf {gap[0]} out of order")
    bad = cursor.execute(_BAD_LEAF_SQL).fetchone()
    cursor.close()
    if bad is not None:
        raise _BadLeaf(bad[0], f"leaf {bad[0]} (transaction {bad[1]}) does not match")
    return (bytes(leaf) for _index, leaf in _rows(_LEAF_HASHES_SQL))


def _verify_seals(*, in_database: bool = False) -> list[str]:
    """Every seal chains, is signed, and its root recomputes from the leaves before it."""
    seals = db.session.scalars(select(Seal).order_by(Seal.seq)).all()
    try:
        leaves = _leaves_checked_in_database() if in_database else _recomputed_leaves()
    except _BadLeaf as bad:
        holder = next((row.seq for row in seals if row.tree_size > bad.index), "(none)")
        return [f"seal {holder}: {bad.problem}"]
    frontier: merkle.Frontier = []
    size = 0
    previous_root = ZERO_ROOT
    for seal_row in seals:
        if seal_row.previous_root_hash != previous_root:
            return [f"seal {seal_row.seq}: does not chain to the previous seal"]
        if not verify_seal_signature(seal_row):
            return [f"seal {seal_row.seq}: signature does not verify"]
        try:
            pending = list(islice(leaves, seal_row.tree_size - size))
        except _BadLeaf as bad:
            return [f"seal {seal_row.seq}: {bad.problem}"]
        if len(pending) < seal_row.tree_size - size:
            return [f"seal {seal_row.seq}: leaves missing"]
        frontier = merkle.extend(frontier, pending)
        size += len(pending)
        if merkle.fold(frontier).hex() != seal_row.root_hash:
            return [f"seal {seal_row.seq}: root does not recompute"]
        previous_root = seal_row.root_hash
    return []
