"""Audit search over the ledger: filters, keyset pages, totals and streamed exports.

Read-only. A search is a set of filters plus the caller's scope (org-node paths); it is
turned into one WHERE clause used three ways: a page (newest first, keyset on the
transaction id), the totals of the whole filtered set, and an export streamed through a
server-side cursor (oldest first).

"amount" of a transaction = the sum of its positive entries, i.e. the points it moved
(an award of 5 has amount 5; a reversal of it has amount 5 too; kinds tell the direction).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ... import sql
from ...common import decode_id_cursor, encode_cursor
from ...extensions import db
from .. import streaming
from ..actions.service import record_event

# Points a transaction moved: the sum of its positive entries, stored on the row
# (ledger_transactions.amount, migration 0014; `flask ledger check` holds it to the entries).
AMOUNT_SQL = "t.amount"
FETCH_ROWS = 1000  # rows per round trip of the export cursor: one batch in memory at a time

EXPORT_COLUMNS = (
    "id", "created_at", "kind", "community_id", "community_name", "district_id", "rule_code",
    "rule_version", "category", "amount", "resident_id", "actor_user_id", "reference_type",
    "reference_id", "reverses_id", "shortfall", "entries", "memo",
)


@dataclass(frozen=True)
class Filters:
    """A validated search (ids, kinds, codes, bounds); times are aware UTC datetimes."""

    node_id: int | None = None
    resident_id: int | None = None
    merchant_id: int | None = None
    account_id: int | None = None
    kinds: tuple[str, ...] = ()
    rule_code: str | None = None
    actor_user_id: int | None = None
    min_amount: int | None = None
    max_amount: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    reference_type: str | None = None
    reference_id: str | None = None

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> Filters:
        """Filters from the parsed query (schema field names)."""
        return cls(
            node_id=args.get("node_id"), resident_id=args.get("resident_id"),
            merchant_id=args.get("merchant_id"), account_id=args.get("account_id"),
            kinds=tuple(args.get("kind") or ()), rule_code=args.get("rule"),
            actor_user_id=args.get("actor_id"), min_amount=args.get("min_amount"),
            max_amount=args.get("max_amount"), start=args.get("start"), end=args.get("end"),
            reference_type=args.get("reference_type"), reference_id=args.get("reference_id"),
        )

    def as_json(self) -> dict[str, Any]:
        """The filters that were set, for the action log and the export's audit trail."""
        values = {
            "node_id": self.node_id, "resident_id": self.resident_id,
            "merchant_id": self.merchant_id, "account_id": self.account_id,
            "kind": list(self.kinds) or None, "rule": self.rule_code,
            "actor_id": self.actor_user_id, "min_amount": self.min_amount,
            "max_amount": self.max_amount,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "reference_type": self.reference_type, "reference_id": self.reference_id,
        }
        return {key: value for key, value in values.items() if value is not None}


@dataclass
class _Where:
    clauses: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "1 = 1"


def _int_list(values: list[int]) -> str:
    # Ids read from our own tables, always ints: inlined so one statement serves both drivers.
    return ", ".join(str(int(v)) for v in values)


def _scope_clause(roots: list[str]) -> str:
    """Transactions whose community (or, for district-level rows, district) lies under a root.

    A district root is one equality on district_id (every row carries it); a lower root
    becomes the list of its communities. A grid holds no transactions of its own.
    """
    district_ids: set[int] = set()
    prefixes: list[str] = []
    for path in roots:
        parts = path.strip("/").split("/")
        if len(parts) == 1:
            district_ids.add(int(parts[0]))
        else:
            prefixes.append(path)
    parts = []
    if district_ids:
        parts.append(f"t.district_id IN ({_int_list(sorted(district_ids))})")
    community_ids: set[int] = set()
    for prefix in prefixes:
        if any(prefix.startswith(f"/{d}/") for d in district_ids):
            continue  # already covered by its district
        found = sql.rows("SELECT id FROM org_nodes WHERE level = 'community' AND path LIKE "
                         "%(prefix)s", {"prefix": prefix + "%"})
        community_ids.update(row[0] for row in found)
    if community_ids:
        parts.append(f"t.community_id IN ({_int_list(sorted(community_ids))})")
    if not parts:
        return "1 = 0"
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def _where(filters: Filters, roots: list[str]) -> _Where:
    where = _Where([_scope_clause(roots)])
    add, params = where.clauses.append, where.params
    if filters.resident_id is not None:
        add("t.subject_resident_id = %(resident)s")
        params["resident"] = filters.resident_id
    account_sets: list[list[int]] = []
    if filters.merchant_id is not None:
        account_sets.append([row[0] for row in sql.rows(
            "SELECT id FROM ledger_accounts WHERE kind = 'merchant' AND owner_id = %(m)s",
            {"m": filters.merchant_id})])
    if filters.account_id is not None:
        account_sets.append([filters.account_id])
    for accounts in account_sets:
        if not accounts:
            add("1 = 0")
        else:
            add("t.id IN (SELECT e.transaction_id FROM ledger_entries e "
                f"WHERE e.account_id IN ({_int_list(accounts)}))")
    if filters.kinds:
        names = []
        for n, kind in enumerate(sorted(set(filters.kinds))):
            params[f"kind{n}"] = kind
            names.append(f"%(kind{n})s")
        add(f"t.kind IN ({', '.join(names)})")
    for column, name, value in (
        ("t.rule_code", "rule", filters.rule_code),
        ("t.actor_user_id", "actor", filters.actor_user_id),
        ("t.reference_type", "ref_type", filters.reference_type),
        ("t.reference_id", "ref_id", filters.reference_id),
    ):
        if value is not None:
            add(f"{column} = %({name})s")
            params[name] = value
    if filters.start is not None:
        add("t.created_at >= %(start)s")
        params["start"] = sql.db_time(filters.start)
    if filters.end is not None:
        add("t.created_at < %(end)s")
        params["end"] = sql.db_time(filters.end)
    if filters.min_amount is not None:
        add(f"{AMOUNT_SQL} >= %(min_amount)s")
        params["min_amount"] = filters.min_amount
    if filters.max_amount is not None:
        add(f"{AMOUNT_SQL} <= %(max_amount)s")
        params["max_amount"] = filters.max_amount
    return where


_PAGE = """
SELECT t.id, t.kind, t.created_at, t.community_id, t.district_id, t.rule_code,
       t.rule_version, t.category, t.quantity, t.subject_resident_id, t.actor_user_id,
       t.reference_type, t.reference_id, t.reverses_id, t.shortfall, n.{name}, {memo}
FROM ledger_transactions t
LEFT JOIN org_nodes n ON n.id = t.community_id
{memo_join}
WHERE {where}
ORDER BY {order} DESC
LIMIT %(limit)s
"""
# A window of a few days holds few rows, but the planner, assuming they are spread evenly
# over the ids, would rather walk the primary key back from the newest posting, filtering,
# until it found a page — through millions of rows when the window lies months back
# (measured: 1.1 s p99 at 10M entries). Ordering by an expression it cannot read from an
# index (`t.id + 0`, same order) makes it fetch the window (BRIN / the filters' indexes)
# and sort that instead. Wider windows keep the walk, which finds a page soon enough.
NARROW_WINDOW = timedelta(days=7)

_TOTALS = """
SELECT t.kind, COUNT(*), COALESCE(SUM({amount}), 0)
FROM ledger_transactions t
WHERE {where}
GROUP BY t.kind
"""


def search(
    *, filters: Filters, roots: list[str], limit: int, cursor: str | None,
    with_totals: bool = True, with_memos: bool = True, english: bool = False,
) -> dict[str, Any]:
    """One page of matching transactions, newest first, and (on the first page) totals."""
    where = _where(filters, roots)
    params = {**where.params, "limit": limit + 1}
    clause = where.sql()
    if cursor:
        clause += " AND t.id < %(before)s"
        params["before"] = decode_id_cursor(cursor)
    narrow = (filters.start is not None and filters.end is not None
              and filters.end - filters.start <= NARROW_WINDOW)
    found = sql.rows(_PAGE.format(
        where=clause, order="t.id + 0" if narrow else "t.id",
        name="name_en" if english else "name_zh",
        memo="m.memo, m.evidence_ref" if with_memos else "NULL, NULL",
        memo_join="LEFT JOIN ledger_memos m ON m.transaction_id = t.id" if with_memos else "",
    ), params)
    page = found[:limit]
    next_cursor = encode_cursor([page[-1][0]]) if len(found) > limit else None
    totals = None
    if with_totals and not cursor:
        totals = _totals(where)
    return {"items": _items(page),
            "next_cursor": next_cursor, "totals": totals}


def totals(*, filters: Filters, roots: list[str]) -> dict[str, Any]:
    """Count and amount of the whole filtered set, overall and per kind."""
    return _totals(_where(filters, roots))


def _totals(where: _Where) -> dict[str, Any]:
    found = sql.rows(_TOTALS.format(where=where.sql(), amount=AMOUNT_SQL), where.params)
    by_kind = {kind: {"count": int(count), "amount": int(amount)}
               for kind, count, amount in sorted(found)}
    return {"count": sum(v["count"] for v in by_kind.values()),
            "amount": sum(v["amount"] for v in by_kind.values()), "by_kind": by_kind}


def _items(page: list[tuple]) -> list[dict[str, Any]]:
    if not page:
        return []
    entries: dict[int, list[dict[str, Any]]] = {}
    for tx_id, account_id, kind, owner_id, amount in sql.rows(
        "SELECT e.transaction_id, e.account_id, a.kind, a.owner_id, e.amount "
        "FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id "
        f"WHERE e.transaction_id IN ({_int_list([row[0] for row in page])}) ORDER BY e.id"
    ):
        entries.setdefault(tx_id, []).append(
            {"account_id": account_id, "account_kind": kind, "owner_id": owner_id,
             "amount": amount})
    items = []
    for (tx_id, kind, created_at, community_id, district_id, rule_code, rule_version,
         category, quantity, resident_id, actor_id, ref_type, ref_id, reverses_id,
         shortfall, community_name, memo, evidence) in page:
        legs = entries.get(tx_id, [])
        items.append({
            "id": tx_id, "kind": kind,
            "created_at": sql.from_db_time(created_at).isoformat(),
            "community_id": community_id, "community_name": community_name,
            "district_id": district_id, "rule_code": rule_code, "rule_version": rule_version,
            "category": category, "quantity": quantity,
            "amount": sum(leg["amount"] for leg in legs if leg["amount"] > 0),
            "entries": legs, "actor_user_id": actor_id, "reference_type": ref_type,
            "reference_id": ref_id, "resident_id": resident_id, "reverses_id": reverses_id,
            "shortfall": shortfall, "memo": memo, "evidence_ref": evidence,
        })
    return items


# --- export ----------------------------------------------------------------------------------

# One row per (transaction, entry), ordered by transaction: a merge/hash join the database
# runs sequentially, folded into one row per transaction as it streams (correlated
# sub-selects per transaction cost four index probes each: measured 3x slower).
_EXPORT = """
SELECT t.id, t.created_at, t.kind, t.community_id, n.name_zh, t.district_id, t.rule_code,
       t.rule_version, t.category, t.subject_resident_id, t.actor_user_id, t.reference_type,
       t.reference_id, t.reverses_id, t.shortfall, {memo}, e.account_id, a.kind, e.amount
FROM ledger_transactions t
JOIN ledger_entries e ON e.transaction_id = t.id
JOIN ledger_accounts a ON a.id = e.account_id
LEFT JOIN org_nodes n ON n.id = t.community_id
{memo_join}
WHERE {where}
ORDER BY t.id, e.id
"""


def _guarded(column: str) -> str:
    """A text column as a spreadsheet may show it (streaming._csv_safe, in SQL)."""
    return (f"CASE WHEN left({column}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') "
            f"THEN '''' || {column} ELSE {column} END")


# The CSV export on PostgreSQL: the database writes the CSV itself (COPY … TO STDOUT), one
# row per transaction with the same columns and text as the Python path, and the service
# only forwards the bytes. Folding rows one by one in Python capped the export at a
# fraction of what the database hands out.
_EXPORT_COPY = """
COPY (
SELECT t.id,
       to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
         || CASE WHEN date_trunc('second', t.created_at) = t.created_at THEN ''
                 ELSE to_char(t.created_at AT TIME ZONE 'UTC', '.US') END || '+00:00',
       {kind}, t.community_id, {community}, t.district_id, {rule_code}, t.rule_version,
       {category}, t.amount,
       t.subject_resident_id, t.actor_user_id, {reference_type}, {reference_id},
       t.reverses_id, t.shortfall,
       string_agg(a.kind || ':' || e.account_id || ':'
                  || CASE WHEN e.amount > 0 THEN '+' ELSE '' END || e.amount, ' '
                  ORDER BY e.id),
       {memo}
FROM ledger_transactions t
JOIN ledger_entries e ON e.transaction_id = t.id
JOIN ledger_accounts a ON a.id = e.account_id
LEFT JOIN org_nodes n ON n.id = t.community_id
{memo_join}
WHERE {where}
GROUP BY t.id, n.name_zh{memo_group}
ORDER BY t.id
) TO STDOUT (FORMAT csv)
"""


@dataclass(frozen=True)
class ExportQuery:
    """A prepared export: the statement (psycopg pyformat) and its parameters."""

    statement: str
    params: dict[str, Any]
    copy_statement: str = ""


def prepare_export(*, filters: Filters, roots: list[str], with_memos: bool = True
                   ) -> ExportQuery:
    """Build the export statement now (inside the request), so streaming needs no session."""
    where = _where(filters, roots)
    statement = _EXPORT.format(
        where=where.sql(),
        memo="m.memo" if with_memos else "NULL",
        memo_join="LEFT JOIN ledger_memos m ON m.transaction_id = t.id" if with_memos else "",
    )
    copy_statement = _EXPORT_COPY.format(
        where=where.sql(), kind=_guarded("t.kind"), community=_guarded("n.name_zh"),
        rule_code=_guarded("t.rule_code"), category=_guarded("t.category"),
        reference_type=_guarded("t.reference_type"),
        reference_id=_guarded("t.reference_id"),
        memo=_guarded("m.memo") if with_memos else "NULL",
        memo_join="LEFT JOIN ledger_memos m ON m.transaction_id = t.id" if with_memos else "",
        memo_group=", m.memo" if with_memos else "",
    )
    return ExportQuery(statement, where.params, copy_statement)


def export_rows(*, query: ExportQuery, export_format: str,
                on_batch: Any = None) -> Iterator[tuple[Any, ...]]:
    """The matching transactions, oldest first, one row per transaction (EXPORT_COLUMNS).

    Streams from a connection of its own: a named (server-side) cursor on PostgreSQL,
    fetchmany on SQLite, so at most FETCH_ROWS rows are held whatever the export's size.
    `on_batch(n)` is told the size of each batch (progress bars).
    """
    connection = db.engine.raw_connection()
    postgresql = db.engine.dialect.name == "postgresql"
    try:
        driver = connection.driver_connection
        if postgresql:
            # Times in UTC for this read only (SET LOCAL ends with the transaction).
            driver.execute("SET LOCAL TIME ZONE 'UTC'")
            driver.execute("SET LOCAL jit = off")  # compiling costs more than it saves here
            # Every row will be read: plan for the whole result, not for the first rows.
            driver.execute("SET LOCAL cursor_tuple_fraction = 1.0")
            cursor = driver.cursor(name=f"audit_export_{uuid.uuid4().hex[:12]}")
            cursor.itersize = FETCH_ROWS
            statement = query.statement
        else:
            cursor = driver.cursor()
            statement = sql._for_sqlite(query.statement)
        cursor.execute(statement, query.params)
        yield from _fold(cursor, export_format == "csv", on_batch)
        cursor.close()
    finally:
        if postgresql:
            connection.rollback()  # end the read transaction the named cursor lived in
        connection.close()


def _fold(cursor: Any, as_text: bool, on_batch: Any) -> Iterator[tuple[Any, ...]]:
    """(transaction x entry) rows, ordered by transaction, as one row per transaction."""
    head: tuple | None = None
    legs: list[Any] = []
    amount = 0

    def finish() -> tuple[Any, ...]:
        created_at = head[1]
        created = (created_at.isoformat() if isinstance(created_at, datetime)
                   else sql.from_db_time(created_at).isoformat())
        return (head[0], created, *head[2:9], amount, *head[9:15],
                " ".join(legs) if as_text else legs, head[15])

    while batch := cursor.fetchmany(FETCH_ROWS):
        done = 0
        for row in batch:
            if head is None or row[0] != head[0]:
                if head is not None:
                    yield finish()
                    done += 1
                head, legs, amount = row, [], 0
            entry_amount = row[18]
            if entry_amount > 0:
                amount += entry_amount
            # "resident:101:+5": starts with a letter, so a spreadsheet never sees a formula.
            legs.append(f"{row[17]}:{row[16]}:{entry_amount:+d}" if as_text else
                        {"account_id": row[16], "account_kind": row[17],
                         "amount": entry_amount})
        if on_batch is not None:
            on_batch(done)
    if head is not None:
        yield finish()
        if on_batch is not None:
            on_batch(1)


def export_csv_copy(*, query: ExportQuery) -> Iterator[bytes]:
    """The CSV rows as PostgreSQL's COPY writes them, block by block (PostgreSQL only)."""
    connection = db.engine.raw_connection()
    try:
        driver = connection.driver_connection
        driver.execute("SET LOCAL TIME ZONE 'UTC'")
        driver.execute("SET LOCAL jit = off")
        with driver.cursor().copy(query.copy_statement, query.params) as copy:
            for block in copy:
                yield bytes(block)
    finally:
        connection.rollback()
        connection.close()


def logged_export(*, filters: Filters, roots: list[str], export_format: str, with_memos: bool,
                  actor_user_id: int, node_id: int | None) -> Any:
    """A search's streamed export, logged as audit.export and committed before the first
    byte (an export that is cut off is still one)."""
    query = prepare_export(filters=filters, roots=roots, with_memos=with_memos)
    record_event(actor_user_id=actor_user_id, action="audit.export",
                 target_type="transactions", target_id=export_format, community_id=node_id,
                 detail={"filters": filters.as_json(), "format": export_format,
                         "scope": roots})
    db.session.commit()
    return export_response(query=query, export_format=export_format,
                           filename="ledger-transactions")


def export_response(*, query: ExportQuery, export_format: str, filename: str) -> Any:
    """The streamed attachment (CSV with BOM, or NDJSON) of a prepared export."""
    if export_format == "csv" and db.engine.dialect.name == "postgresql":
        return streaming.copied_csv_response(
            columns=EXPORT_COLUMNS, blocks=export_csv_copy(query=query), filename=filename)
    return streaming.export_response(
        export_format=export_format, columns=EXPORT_COLUMNS,
        rows=export_rows(query=query, export_format=export_format), filename=filename)
