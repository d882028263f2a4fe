"""Tallies: what each resident earned per period and category, kept in step with the ledger.

Design (docs/leaderboards.md): the posting hook appends the transaction id to
`leaderboard_outbox`, in the posting's own database transaction — one small INSERT per
posting batch, nothing else on the hot path. A single drainer (PostgreSQL advisory lock;
SQLite's write lock) folds the outbox into `leaderboard_tallies` and the score histograms
`leaderboard_score_counts` in batches, evaluates badges, and deletes what it folded, all in
one database transaction. The rebuild and the check compute the same rows from the ledger
with the same function, `ranked_rows()`.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from sqlalchemy import bindparam, delete, event, func, inspect, select, text
from sqlalchemy.orm import Session

from .. import sql
from ..common import as_utc, mask_name
from ..extensions import db
from ..ledger.service import POSTING_HOOKS, Posted, _insert
from ..orgs.models import OrgNode
from ..people.models import Resident, User
from ..sql import in_ids
from . import cache
from .models import HISTOGRAM_LEVELS, METRICS, RelistOutbox, ScoreCount, Tally, TallyOutbox

DRAIN_LOCK_ID = 727_101
DRAIN_BATCH = 5000  # postings folded per drain transaction
# Kinds that earn or lose leaderboard points (spending and expiry do not lower a rank).
EARNING_KINDS = ("award", "deduction", "adjustment")
ALL = "all"


def _pg() -> bool:
    return db.engine.dialect.name == "postgresql"


# -- the posting hook ---------------------------------------------------------------------


OUTBOX_INSERT = ("INSERT INTO leaderboard_outbox (transaction_id) "
                 "SELECT unnest(CAST(%(ids)s AS bigint[]))")


def on_posted(posted: list[Posted]) -> None:
    """POSTING_HOOKS member: queue every posting that can move a tally (one INSERT)."""
    if not current_app.config.get("LEADERBOARD_TALLIES", True):
        return
    ids = [
        header["id"] for header, _ in posted
        if header["subject_resident_id"] is not None
        and header["kind"] in (*EARNING_KINDS, "reversal")
    ]
    if ids and sql.is_postgresql():  # the driver's cursor and one array, whatever the count
        sql.rows(OUTBOX_INSERT, {"ids": sql.array_literal(ids)})
    elif ids:
        db.session.execute(TallyOutbox.__table__.insert(),
                           [{"transaction_id": tx_id} for tx_id in ids])


def _changed(obj: Any, names: tuple[str, ...]) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in names)


def _queue_relists(session: Session, _context: Any, _instances: Any) -> None:
    """before_flush: a resident's privacy, minor flag, place or name changed -> re-list
    their rows (which carry the listing, the scope ids and the shown name)."""
    residents, users = [], []
    for obj in session.dirty:
        if isinstance(obj, Resident) and obj.id is not None and _changed(
                obj, ("privacy", "is_minor", "community_id", "grid_id")):
            residents.append(obj.id)
        elif isinstance(obj, User) and obj.id is not None and _changed(obj, ("display_name",)):
            users.append(obj.id)
    for resident_id in residents:
        session.execute(
            _insert(RelistOutbox.__table__).values(resident_id=resident_id)
            .on_conflict_do_nothing()
        )
    for user_id in users:
        session.execute(
            _insert(RelistOutbox.__table__)
            .from_select(["resident_id"], select(Resident.id).where(Resident.user_id == user_id))
            .on_conflict_do_nothing()
        )


def install() -> None:
    """Register the posting hook and the privacy listener once per process."""
    if on_posted not in POSTING_HOOKS:
        POSTING_HOOKS.append(on_posted)
    if not event.contains(Session, "before_flush", _queue_relists):
        event.listen(Session, "before_flush", _queue_relists)


# -- periods ------------------------------------------------------------------------------


def period_keys(*, at: datetime, timezone: str) -> list[str]:
    """Tally periods of an instant, in the community's time zone: all, year, month, ISO week."""
    local = as_utc(at).astimezone(ZoneInfo(timezone))
    return [ALL, *local_period_keys(local.date()).values()]


def local_period_keys(day: date) -> dict[str, str]:
    """Period keys of a local calendar date."""
    year, week, _ = day.isocalendar()
    return {"year": f"y:{day.year}", "month": f"m:{day:%Y-%m}", "week": f"w:{year}-W{week:02d}"}


def period_key(*, period: str, day: date) -> str:
    """The key of the week/month/year/all period containing a local date."""
    return ALL if period == ALL else local_period_keys(day)[period]


def period_bounds(*, period: str, day: date, timezone: str) -> tuple[datetime | None,
                                                                       datetime | None]:
    """UTC [start, end) of the period containing a local date (None, None for all time)."""
    if period == ALL:
        return None, None
    if period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    elif period == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        start, end = date(day.year, 1, 1), date(day.year + 1, 1, 1)
    zone = ZoneInfo(timezone)
    return (datetime.combine(start, datetime.min.time(), zone).astimezone(ZoneInfo("UTC")),
            datetime.combine(end, datetime.min.time(), zone).astimezone(ZoneInfo("UTC")))


# -- what a transaction contributes --------------------------------------------------------


@dataclass(frozen=True)
class RankedRow:
    """One posting as the leaderboards see it."""

    transaction_id: int
    resident_id: int
    community_id: int
    category: str
    rule_code: str | None
    earned_at: datetime  # a reversal counts in its original's period
    points: int
    minutes: int


_ROWS_SQL = """
SELECT t.id, t.kind, t.subject_resident_id, t.community_id, t.category, t.rule_code,
       t.quantity, t.created_at, o.kind, o.created_at, r.unit,
       (SELECT COALESCE(SUM(e.amount), 0) FROM ledger_entries e
          JOIN ledger_accounts a ON a.id = e.account_id
         WHERE e.transaction_id = t.id AND a.kind = 'resident'
           AND a.owner_id = t.subject_resident_id) AS points
FROM ledger_transactions t
LEFT JOIN ledger_transactions o ON o.id = t.reverses_id
LEFT JOIN ledger_rules r ON r.id = t.rule_id
WHERE t.subject_resident_id IS NOT NULL AND ({where})
"""


def ranked_rows(*, where: str, params: dict[str, Any]) -> list[RankedRow]:
    """The leaderboard view of the transactions matching a SQL condition on `t`."""
    statement = text(_ROWS_SQL.format(where=where))
    for name, value in params.items():
        if isinstance(value, list | tuple) and not _pg():
            statement = statement.bindparams(bindparam(name, expanding=True))
    rows = []
    for (tx_id, kind, resident_id, community_id, category, rule_code, quantity, created_at,
         original_kind, original_at, unit, points) in db.session.execute(statement, params):
        reversal = kind == "reversal"
        effective_kind = original_kind if reversal else kind
        if effective_kind not in EARNING_KINDS:
            continue
        minutes = 0
        if unit == "hour" and effective_kind == "award" and quantity:
            minutes = -int(quantity) if reversal else int(quantity)
        rows.append(RankedRow(
            transaction_id=tx_id, resident_id=resident_id, community_id=community_id,
            category=category or "other", rule_code=rule_code,
            earned_at=stored_time(original_at if reversal and original_at else created_at),
            points=int(points or 0), minutes=minutes,
        ))
    return rows


def stored_time(value: Any) -> datetime:
    """A timestamp read through text(): SQLite hands back ISO text, PostgreSQL a datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return as_utc(value)


def shown_name(*, name: str | None, privacy: str, minor: bool) -> str | None:
    """What a tally row shows others: the masked name; None when anonymous or unlisted."""
    if minor or privacy != "public":
        return None
    return mask_name(name) or ""


class Places:
    """Scope nodes and time zones of communities, and residents' places, read once."""

    def __init__(self) -> None:
        self.communities: dict[int, tuple[int, int, str]] = {}  # id -> district, street, tz

    def prefetch(self, community_ids: Iterable[int]) -> None:
        """Read the communities not yet known in one statement."""
        missing = sorted(set(community_ids) - set(self.communities))
        for start in range(0, len(missing), 5000):
            for node_id, path, timezone in db.session.execute(
                select(OrgNode.id, OrgNode.path, OrgNode.timezone)
                .where(in_ids(OrgNode.id, missing[start:start + 5000]))
            ):
                parts = [int(p) for p in path.strip("/").split("/")]
                self.communities[node_id] = (parts[0], parts[1] if len(parts) > 2 else 0,
                                             timezone)

    def community(self, community_id: int) -> tuple[int, int, str]:
        if community_id not in self.communities:
            self.prefetch([community_id])
        return self.communities[community_id]

    def residents(self, resident_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Current place, listing and shown name of residents: what their tally rows carry."""
        found: dict[int, dict[str, Any]] = {}
        ids = sorted(set(resident_ids))
        for start in range(0, len(ids), 5000):
            rows = db.session.execute(
                select(Resident.id, Resident.community_id, Resident.grid_id, Resident.is_minor,
                       Resident.privacy, User.display_name)
                .join(User, User.id == Resident.user_id)
                .where(in_ids(Resident.id, ids[start:start + 5000]))
            ).all()
            self.prefetch(row[1] for row in rows)
            for rid, community_id, grid_id, minor, privacy, name in rows:
                district_id, street_id, _ = self.community(community_id)
                found[rid] = {"district_id": district_id, "street_id": street_id,
                              "community_id": community_id, "grid_id": grid_id or 0,
                              "listed": not minor and privacy != "hidden",
                              "shown_name": shown_name(name=name, privacy=privacy,
                                                       minor=minor)}
        return found


def aggregate(rows: list[RankedRow], places: Places) -> dict[tuple[int, str, str], list[int]]:
    """(resident, period, category) -> [points, minutes] summed over the rows."""
    places.prefetch(row.community_id for row in rows)
    totals: dict[tuple[int, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        timezone = places.community(row.community_id)[2]
        for period in period_keys(at=row.earned_at, timezone=timezone):
            for category in (row.category, ALL):
                cell = totals[(row.resident_id, period, category)]
                cell[0] += row.points
                cell[1] += row.minutes
    return totals


# -- applying changes ----------------------------------------------------------------------


def _scope_nodes(place: dict[str, Any]) -> list[int]:
    return [place[f"{level}_id"] for level in HISTOGRAM_LEVELS if place[f"{level}_id"]]


def _load_tallies(keys: list[tuple[int, str, str]]) -> dict[tuple[int, str, str], Any]:
    """Existing tally rows for (resident, period, category) keys."""
    found: dict[tuple[int, str, str], Any] = {}
    residents = sorted({key[0] for key in keys})
    periods = sorted({key[1] for key in keys})
    wanted = set(keys)
    for start in range(0, len(residents), 2000):
        for row in db.session.execute(
            select(Tally.resident_id, Tally.period, Tally.category, Tally.points, Tally.minutes,
                   Tally.listed, Tally.district_id, Tally.street_id, Tally.community_id,
                   Tally.grid_id)
            .where(in_ids(Tally.resident_id, residents[start:start + 2000]),
                   Tally.period.in_(periods))
        ):
            key = (row.resident_id, row.period, row.category)
            if key in wanted:
                found[key] = row
    return found


def _count_changes(changes: dict[tuple[int, str, str, str, int], int], *, place: Any,
                   period: str, category: str, points: int, minutes: int, sign: int) -> None:
    """Add (sign=+1) or remove (-1) one listed tally row from its scopes' histograms."""
    for node_id in _scope_nodes(place):
        changes[(node_id, period, category, "points", points)] += sign
        changes[(node_id, period, category, "minutes", minutes)] += sign


def apply_changes(*, deltas: dict[tuple[int, str, str], list[int]],
                  relist: Iterable[int] = (), places: Places | None = None) -> None:
    """Fold point/minute deltas and re-listings into tallies and histograms (drainer only)."""
    relist = set(relist)
    if relist:
        for key in db.session.execute(
            select(Tally.resident_id, Tally.period, Tally.category)
            .where(in_ids(Tally.resident_id, sorted(relist)))
        ):
            deltas.setdefault(tuple(key), [0, 0])
    if not deltas:
        return
    keys = list(deltas)
    existing = _load_tallies(keys)
    places_now = (places or Places()).residents({key[0] for key in keys})
    counts: dict[tuple[int, str, str, str, int], int] = defaultdict(int)
    upserts = []
    for key in keys:
        resident_id, period, category = key
        place = places_now.get(resident_id)
        if place is None:  # erased resident: keep the row as it was
            continue
        old = existing.get(key)
        if old is not None and old.listed:
            _count_changes(counts, place=old._mapping, period=period, category=category,
                           points=old.points, minutes=old.minutes, sign=-1)
        points = (old.points if old else 0) + deltas[key][0]
        minutes = (old.minutes if old else 0) + deltas[key][1]
        if place["listed"]:
            _count_changes(counts, place=place, period=period, category=category,
                           points=points, minutes=minutes, sign=+1)
        upserts.append({"resident_id": resident_id, "period": period, "category": category,
                        "points": points, "minutes": minutes, **place})
    _upsert_tallies(upserts)
    _apply_counts(counts)


_TALLY_COLUMNS = ("resident_id", "period", "category", "points", "minutes", "listed",
                  "district_id", "street_id", "community_id", "grid_id", "shown_name")
_TALLY_TYPES = ("bigint", "text", "text", "bigint", "bigint", "boolean", "bigint", "bigint",
                "bigint", "bigint", "text")
_COUNT_COLUMNS = ("node_id", "period", "category", "metric", "score", "residents")
_COUNT_TYPES = ("bigint", "text", "text", "text", "bigint", "bigint")


def _upsert(table: str, columns: tuple[str, ...], types: tuple[str, ...], key: int,
            update: str, rows: list[dict[str, Any]]) -> None:
    """Set-based upsert: unnest() of arrays on PostgreSQL, executemany on SQLite.

    (A multi-row VALUES built by SQLAlchemy compiles thousands of bind parameters per call;
    that cost more than the database work.)
    """
    if not rows:
        return
    names = ", ".join(columns)
    conflict = ", ".join(columns[:key])
    if _pg():
        arrays = ", ".join(f"CAST(:{c} AS {t}[])" for c, t in zip(columns, types, strict=True))
        statement = (f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) "
                     f"ON CONFLICT ({conflict}) DO UPDATE SET {update}")
        for start in range(0, len(rows), 5000):
            chunk = rows[start:start + 5000]
            db.session.execute(text(statement), {
                c: sql.array_literal(row[c] for row in chunk) for c in columns})
        return
    values = ", ".join(f":{c}" for c in columns)
    statement = (f"INSERT INTO {table} ({names}) VALUES ({values}) "
                 f"ON CONFLICT ({conflict}) DO UPDATE SET {update}")
    db.session.execute(text(statement), rows)


def _upsert_tallies(rows: list[dict[str, Any]]) -> None:
    update = ", ".join(f"{c} = excluded.{c}" for c in _TALLY_COLUMNS[3:])
    _upsert("leaderboard_tallies", _TALLY_COLUMNS, _TALLY_TYPES, 3, update, rows)


def _apply_counts(counts: dict[tuple[int, str, str, str, int], int]) -> None:
    rows = [
        {"node_id": node, "period": period, "category": category, "metric": metric,
         "score": score, "residents": change}
        for (node, period, category, metric, score), change in sorted(counts.items())
        if change
    ]
    _upsert("leaderboard_score_counts", _COUNT_COLUMNS, _COUNT_TYPES, 5,
            "residents = leaderboard_score_counts.residents + excluded.residents", rows)
    # Rows that fall to zero stay: a rank adds nothing for them, and deleting them would
    # need a scan of the histogram on every drain.


# -- draining -----------------------------------------------------------------------------


def _take_lock() -> bool:
    if db.engine.dialect.name == "postgresql":
        return bool(db.session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                      {"k": DRAIN_LOCK_ID}))
    return True  # SQLite: BEGIN IMMEDIATE already made us the only writer


def drain(*, limit: int = DRAIN_BATCH) -> int:
    """Fold up to `limit` queued postings (and pending re-listings); returns how many.

    Returns 0 without waiting when another drainer holds the lock.
    """
    from .honours import evaluate_badges

    if not _take_lock():
        db.session.rollback()
        return 0
    tx_ids = list(db.session.scalars(
        select(TallyOutbox.transaction_id).order_by(TallyOutbox.transaction_id).limit(limit)))
    relist = list(db.session.scalars(select(RelistOutbox.resident_id).limit(limit)))
    if not tx_ids and not relist:
        db.session.rollback()
        return 0
    where = "t.id = ANY(:ids)" if _pg() else "t.id IN :ids"
    rows = ranked_rows(where=where, params={"ids": tx_ids}) if tx_ids else []
    places = Places()  # one read of the communities involved, for the whole drain
    apply_changes(deltas=aggregate(rows, places), relist=relist, places=places)
    evaluate_badges(rows=rows, places=places)
    if tx_ids:
        db.session.execute(delete(TallyOutbox).where(in_ids(TallyOutbox.transaction_id, tx_ids)))
    if relist:
        db.session.execute(delete(RelistOutbox).where(in_ids(RelistOutbox.resident_id, relist)))
    db.session.commit()
    cache.forget()  # this worker's board pages would now trail its own drain
    return len(tx_ids) + len(relist)


def drain_all() -> int:
    """Drain until the outbox is empty (CLI, tests, demo)."""
    total = 0
    while moved := drain():
        total += moved
    return total


def backlog() -> int:
    """Postings waiting for the drainer."""
    return int(db.session.scalar(select(func.count()).select_from(TallyOutbox)) or 0)


def drain_tick() -> int:
    """One drainer tick: fold what is queued, again only while batches come back full."""
    # Chasing the postings that arrive during a drain would fold them a few at a time, and
    # a drain's fixed cost (a dozen statements) then outweighs its rows (measured: 1.0 ms of
    # CPU per posting instead of 0.15).
    moved = total = drain(limit=DRAIN_BATCH)
    while moved >= DRAIN_BATCH:
        moved = drain(limit=DRAIN_BATCH)
        total += moved
    return total


def run_drainer(app: Flask, *, interval: float, keep_going: Callable[[], bool]) -> None:
    """Drain every `interval` seconds while keep_going() says so; a failed tick is logged
    and retried at the next one (a drain is one transaction: nothing half-folded stays)."""
    while keep_going():
        time.sleep(interval)
        with app.app_context():
            try:
                drain_tick()
            except Exception:
                db.session.rollback()
                current_app.logger.exception("leaderboard drain failed")
            finally:
                db.session.remove()


# The serving processes' own drainer threads. With a drainer process beside them
# (LEADERBOARD_DRAINER = "process", which gunicorn.conf.py starts), they only stand by:
# they drain every BACKUP_FACTOR intervals, so boards still move if that process is gone.
BACKUP_FACTOR = 10


class AutoDrainer:
    """Drains the outbox in a background thread of a serving process."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.interval = float(app.config.get("LEADERBOARD_DRAIN_SECONDS", 1.0))
        if app.config.get("LEADERBOARD_DRAINER") == "process":
            self.interval *= BACKUP_FACTOR
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._started or self.interval <= 0:
                return
            self._started = True
            threading.Thread(target=run_drainer, name="pointsvc-tallies", daemon=True,
                             args=(self.app,),
                             kwargs={"interval": self.interval, "keep_going": lambda: True}
                             ).start()


def start_drainer(app: Flask) -> None:
    """Drain in the background of serving processes (never in tests or CLI commands)."""
    if app.testing or float(app.config.get("LEADERBOARD_DRAIN_SECONDS", 1.0)) <= 0:
        return
    drainer = AutoDrainer(app)
    app.before_request(drainer.start)  # after gunicorn forks, like the sealer


# -- rebuild and check ---------------------------------------------------------------------

CHUNK = 20_000


def _resident_chunks() -> Iterator[tuple[int, int]]:
    high = int(db.session.scalar(select(func.max(Resident.id))) or 0)
    for low in range(0, high + 1, CHUNK):
        yield low, low + CHUNK - 1


def expected_tallies(low: int, high: int, *, skip_queued: bool
                     ) -> dict[tuple[int, str, str], list[int]]:
    """Tallies of residents low..high recomputed from the ledger."""
    where = "t.subject_resident_id BETWEEN :low AND :high"
    if skip_queued:
        where += " AND t.id NOT IN (SELECT transaction_id FROM leaderboard_outbox)"
    return aggregate(ranked_rows(where=where, params={"low": low, "high": high}), Places())


def rebuild() -> dict[str, int]:
    """Recompute every tally and histogram from the ledger (drain lock held throughout)."""
    if db.engine.dialect.name == "postgresql":
        db.session.rollback()
        # One snapshot: the ledger read and the outbox rows deleted below agree exactly.
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    if not _take_lock():
        db.session.rollback()
        raise RuntimeError("another drainer or rebuild is running; try again")
    db.session.execute(delete(TallyOutbox))
    db.session.execute(delete(RelistOutbox))
    db.session.execute(delete(ScoreCount))
    db.session.execute(delete(Tally))
    rows = 0
    for low, high in _resident_chunks():
        totals = expected_tallies(low, high, skip_queued=False)
        apply_changes(deltas=totals)
        rows += len(totals)
    db.session.commit()
    cache.forget()
    return {"tallies": rows}


def check_tallies() -> list[str]:
    """Violations: tallies that differ from the ledger, histograms that differ from tallies."""
    try:
        return _check_tallies() + _check_counts() + _check_names()
    except Exception as exc:  # a missing table must not hide the ledger's own checks
        db.session.rollback()
        return [f"leaderboard tallies could not be checked: {type(exc).__name__}: {exc}"[:300]]


def _check_tallies() -> list[str]:
    problems: list[str] = []
    for low, high in _resident_chunks():
        expected = expected_tallies(low, high, skip_queued=True)
        stored = {
            (row.resident_id, row.period, row.category): [row.points, row.minutes]
            for row in db.session.execute(
                select(Tally.resident_id, Tally.period, Tally.category, Tally.points,
                       Tally.minutes).where(Tally.resident_id.between(low, high)))
        }
        for key in sorted(set(expected) | set(stored)):
            want, have = expected.get(key, [0, 0]), stored.get(key)
            if have is None and want == [0, 0]:
                continue
            if have != want:
                problems.append(f"tally differs from the ledger: {key} has {have}, "
                                f"ledger says {want}")
            if len(problems) >= 20:
                return problems
    return problems


def _check_names() -> list[str]:
    """Rows whose listing or shown name differs from the people tables (queued aside)."""
    problems: list[str] = []
    queued = set(db.session.scalars(select(RelistOutbox.resident_id)))
    places = Places()  # the communities read once for every chunk
    for low, high in _resident_chunks():
        stored = db.session.execute(
            select(Tally.resident_id, Tally.listed, Tally.shown_name).distinct()
            .where(Tally.resident_id.between(low, high))).all()
        current = places.residents({row.resident_id for row in stored})
        for resident_id, listed, name in stored:
            place = current.get(resident_id)
            if resident_id in queued or place is None:
                continue
            if (listed, name) != (place["listed"], place["shown_name"]):
                # the resident's id only: a check's output is no place for names
                problems.append(f"tally rows of resident {resident_id} differ from the people "
                                "tables in listing or shown name")
            if len(problems) >= 20:
                return problems
    return problems


def _check_counts() -> list[str]:
    problems = []
    for level in HISTOGRAM_LEVELS:
        for metric in METRICS:
            column = f"{level}_id"
            sql = f"""
                SELECT x.node_id, x.period, x.category, x.score, x.want, x.have FROM (
                  SELECT COALESCE(t.node_id, c.node_id) AS node_id,
                         COALESCE(t.period, c.period) AS period,
                         COALESCE(t.category, c.category) AS category,
                         COALESCE(t.score, c.score) AS score,
                         COALESCE(t.n, 0) AS want, COALESCE(c.residents, 0) AS have
                  FROM (SELECT {column} AS node_id, period, category, {metric} AS score,
                               COUNT(*) AS n
                        FROM leaderboard_tallies WHERE listed AND {column} <> 0
                        GROUP BY {column}, period, category, {metric}) t
                  FULL OUTER JOIN (
                        SELECT c.* FROM leaderboard_score_counts c
                        JOIN org_nodes n ON n.id = c.node_id AND n.level = '{level}'
                        WHERE c.metric = '{metric}') c
                    ON c.node_id = t.node_id AND c.period = t.period
                   AND c.category = t.category AND c.score = t.score) x
                WHERE x.want <> x.have"""
            for row in db.session.execute(text(sql)).all()[:5]:
                problems.append(f"score histogram differs from tallies ({level}, {metric}): "
                                f"{tuple(row)}")
    return problems


def now_local_date(*, timezone: str) -> date:
    """Today in a time zone."""
    from ..common import utcnow

    return utcnow().astimezone(ZoneInfo(timezone)).date()
