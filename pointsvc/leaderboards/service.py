"""Leaderboards: ranked, masked rows per scope, period, category and metric; my place on them.

Ranking is standard competition ranking (1, 2, 2, 4): a resident's rank is one more than the
number of listed residents of the scope with a strictly better score, read from the score
histogram in the same statement as the rows, so rows and ranks come from one snapshot.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import date
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from flask import current_app
from sqlalchemy import select, text

from ..errors import NotFound, ValidationFailed
from ..extensions import db
from ..orgs.service import node_facts
from ..people.models import Resident, User
from . import cache
from .models import HISTOGRAM_LEVELS, Tally
from .tallies import ALL, now_local_date, period_key, shown_name

ANONYMOUS_NAME = "匿名居民"
ANONYMOUS_NAME_EN = "Anonymous resident"
PERIODS = ("week", "month", "year", "all")
CATEGORIES = ("volunteer", "environment", "conduct", "other", "all")
BOARD_LEVELS = ("grid", "community", "street", "district")


def _value(metric: str, raw: int) -> int | float:
    return round(raw / 60, 2) if metric == "hours" else int(raw)


# -- cursors ------------------------------------------------------------------------------
# The keyset position (score, resident id) is encrypted as one AES block with a 4-byte check,
# so a cursor never tells anyone which resident ended the previous page, and a made-up cursor
# is refused (422) rather than read as some arbitrary position.

_CURSOR_CHECK = b"LBv1"


def _cipher() -> Cipher:
    key = hmac.new(current_app.config["SECRET_KEY"], b"pointsvc-leaderboard-cursor",
                   hashlib.sha256).digest()[:16]
    return Cipher(algorithms.AES(key), modes.ECB())


def encode_board_cursor(score: int, resident_id: int) -> str:
    """Opaque cursor after the row (score, resident)."""
    block = (score.to_bytes(6, "big", signed=True) + resident_id.to_bytes(6, "big")
             + _CURSOR_CHECK)
    encryptor = _cipher().encryptor()
    raw = encryptor.update(block) + encryptor.finalize()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_board_cursor(cursor: str) -> tuple[int, int]:
    """(score, resident id) of a cursor, or 422."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(errors={"cursor": ["Invalid cursor."]}) from exc
    if len(raw) != 16:
        raise ValidationFailed(errors={"cursor": ["Invalid cursor."]})
    decryptor = _cipher().decryptor()
    block = decryptor.update(raw) + decryptor.finalize()
    if not hmac.compare_digest(block[12:], _CURSOR_CHECK):
        raise ValidationFailed(errors={"cursor": ["Invalid cursor."]})
    return (int.from_bytes(block[:6], "big", signed=True),
            int.from_bytes(block[6:12], "big"))


# -- boards -------------------------------------------------------------------------------


def scope_of(*, node_id: int) -> dict[str, Any]:
    """Level, path and time zone of a scope node, or 404."""
    facts = node_facts(node_id=node_id)
    if facts is None:
        raise NotFound("not_found", f"organisation node {node_id} does not exist")
    return {"id": node_id, "level": facts.level, "path": facts.path,
            "timezone": facts.timezone}


# One statement per page: the rows (a backward range scan of one board index) and their
# ranks from the histogram (one pass over the distinct scores down to the page's lowest), so
# rows and ranks always come from the same snapshot. Text SQL, compiled once per shape: the
# board is a hot read and building SQLAlchemy expressions cost more than running them.
_PAGE_SQL = """
WITH page AS (
  SELECT t.resident_id, t.{metric} AS score, t.shown_name FROM leaderboard_tallies t
  WHERE t.{level}_id = :node AND t.period = :period AND t.category = :category
    AND t.listed = :listed {positive} {keyset}
  ORDER BY t.{metric} {direction}, t.resident_id {direction}
  LIMIT :limit
), counts AS (
  {counts}
), ahead AS (
  SELECT score, COALESCE(SUM(n) OVER (
           ORDER BY score DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS n
  FROM counts
)
SELECT page.resident_id, page.score, 1 + COALESCE(ahead.n, 0) AS rank, page.shown_name
FROM page
LEFT JOIN ahead ON ahead.score = page.score
ORDER BY page.score {direction}, page.resident_id {direction}
"""
# Where the number of listed residents per score comes from. Districts and streets (up to a
# million residents) keep a histogram; grids and communities (thousands) are counted from
# their board index directly, which saves the drainer half of the histogram upkeep.
_HISTOGRAM_COUNTS = """
  SELECT c.score, c.residents AS n FROM leaderboard_score_counts c
  WHERE c.node_id = :node AND c.period = :period AND c.category = :category
    AND c.metric = :metric_name AND c.score >= (SELECT MIN(score) FROM {rows})"""
_DIRECT_COUNTS = """
  SELECT x.{metric} AS score, COUNT(*) AS n FROM leaderboard_tallies x
  WHERE x.{level}_id = :node AND x.period = :period AND x.category = :category
    AND x.listed = :listed {positive} AND x.{metric} >= (SELECT MIN(score) FROM {rows})
  GROUP BY x.{metric}"""


def _counts_sql(level: str, metric: str, rows: str) -> str:
    column = "minutes" if metric == "hours" else "points"
    if level in HISTOGRAM_LEVELS:
        return _HISTOGRAM_COUNTS.format(rows=rows)
    return _DIRECT_COUNTS.format(metric=column, level=level, rows=rows,
                                 positive="AND x.minutes > 0" if metric == "hours" else "")


_STATEMENTS: dict[tuple[str, str, str], Any] = {}


def _page_statement(level: str, metric: str, keyset: str):  # type: ignore[no-untyped-def]
    """The compiled page query for a level, metric and keyset ('' or 'after')."""
    key = (level, metric, keyset)
    if key not in _STATEMENTS:
        column = "minutes" if metric == "hours" else "points"
        _STATEMENTS[key] = text(_PAGE_SQL.format(
            metric=column, level=level,
            positive="AND t.minutes > 0" if metric == "hours" else "",
            keyset={"": "", "after": f"AND (t.{column}, t.resident_id) < (:score, :rid)"}[keyset],
            direction="DESC",
            counts=_counts_sql(level, metric, "page"),
        ))
    return _STATEMENTS[key]


def _board_rows(*, scope: dict[str, Any], period: str, category: str, metric: str,
                after: tuple[int, int] | None = None, limit: int) -> list[Any]:
    """Listed rows of a board in rank order, after a keyset position if given."""
    keyset = "after" if after is not None else ""
    spot = after or (0, 0)
    rows = db.session.execute(_page_statement(scope["level"], metric, keyset), {
        "node": scope["id"], "period": period, "category": category, "listed": True,
        "limit": limit, "score": spot[0], "rid": spot[1],
        "metric_name": "minutes" if metric == "hours" else "points",
    }).all()
    return rows


def _shown(name: str | None, *, english: bool) -> str:
    """What others see, from a shown name (tallies.shown_name): the masked name (张*明), or
    匿名居民 where it is None, i.e. the resident chose anonymity."""
    if name is None:
        return ANONYMOUS_NAME_EN if english else ANONYMOUS_NAME
    return name


def _row_json(row: Any, *, metric: str, me: int | None, english: bool) -> dict[str, Any]:
    return {
        "rank": int(row.rank),
        "name": _shown(row.shown_name, english=english),
        "value": _value(metric, row.score),
        "is_me": row.resident_id == me,
    }


def board(*, scope_id: int, period: str, at: date | None, category: str, metric: str,
          limit: int, cursor: str | None, me: int | None = None, english: bool = False
          ) -> dict[str, Any]:
    """One page of a leaderboard: masked names, standard competition ranks, next cursor."""
    scope = scope_of(node_id=scope_id)
    if scope["level"] not in BOARD_LEVELS:
        raise ValidationFailed(errors={"scope": ["Not a district, street, community or grid."]})
    day = at or now_local_date(timezone=scope["timezone"])
    key = period_key(period=period, day=day)
    after = decode_board_cursor(cursor) if cursor else None
    rows = cache.board_rows(
        (scope_id, key, category, metric, after, limit),
        lambda: _board_rows(scope=scope, period=key, category=category, metric=metric,
                            after=after, limit=limit + 1))
    page, more = rows[:limit], len(rows) > limit
    return {
        "scope": {"id": scope_id, "level": scope["level"]},
        "period": period,
        "period_key": key,
        "category": category,
        "metric": metric,
        "items": [_row_json(row, metric=metric, me=me, english=english) for row in page],
        "next_cursor": encode_board_cursor(page[-1].score, page[-1].resident_id)
        if more and page else None,
    }


def _my_scopes(resident: Resident, levels: tuple[str, ...] = BOARD_LEVELS
               ) -> list[dict[str, Any]]:
    """My grid (if any), community, street and district, nearest first (those in levels)."""
    community = scope_of(node_id=resident.community_id)
    ids = [int(p) for p in community["path"].strip("/").split("/")]
    scopes = [scope_of(node_id=resident.grid_id)] if resident.grid_id and "grid" in levels else []
    if "community" in levels:
        scopes.append(community)
    above = dict(zip(("street", "district"), reversed(ids[:-1]), strict=False))
    scopes.extend(scope_of(node_id=above[level]) for level in ("street", "district")
                  if level in levels and level in above)
    return scopes


# /me: for each of my scopes, the listed rows just above and below me and the counts that
# rank them (and me); all scopes in ONE statement, so one snapshot and one round trip.
_NEAR_CTES = """
above{i} AS (
  SELECT t.resident_id, t.{metric} AS score, t.shown_name FROM leaderboard_tallies t
  WHERE t.{level}_id = :node{i} AND t.period = :period AND t.category = :category
    AND t.listed = :listed {positive} AND (t.{metric}, t.resident_id) > (:score, :rid)
  ORDER BY t.{metric} ASC, t.resident_id ASC LIMIT :n
), below{i} AS (
  SELECT t.resident_id, t.{metric} AS score, t.shown_name FROM leaderboard_tallies t
  WHERE t.{level}_id = :node{i} AND t.period = :period AND t.category = :category
    AND t.listed = :listed {positive} AND (t.{metric}, t.resident_id) < (:score, :rid)
  ORDER BY t.{metric} DESC, t.resident_id DESC LIMIT :n
), near{i} AS (
  SELECT 1 AS side, resident_id, score, shown_name FROM above{i}
  UNION ALL SELECT 2 AS side, resident_id, score, shown_name FROM below{i}
  UNION ALL SELECT 0 AS side, :rid AS resident_id, :score AS score, NULL AS shown_name
), counts{i} AS MATERIALIZED (
  {counts}
)"""
_NEAR_SELECT = """
SELECT {i} AS scope, near{i}.side AS side, near{i}.resident_id AS resident_id,
       near{i}.score AS score,
       1 + COALESCE((SELECT SUM(k.n) FROM counts{i} k WHERE k.score > near{i}.score), 0)
         AS rank,
       near{i}.shown_name AS shown_name
FROM near{i}"""


def _near_statement(levels: tuple[str, ...], metric: str):  # type: ignore[no-untyped-def]
    """The compiled /me statement for a resident's scope levels and a metric."""
    key = ("near", metric, ",".join(levels))
    if key not in _STATEMENTS:
        column = "minutes" if metric == "hours" else "points"
        positive = "AND t.minutes > 0" if metric == "hours" else ""
        ctes = ",".join(
            _NEAR_CTES.format(i=i, metric=column, level=level, positive=positive,
                              counts=_counts_sql(level, metric, f"near{i}").replace(
                                  ":node", f":node{i}"))
            for i, level in enumerate(levels))
        selects = " UNION ALL ".join(_NEAR_SELECT.format(i=i) for i in range(len(levels)))
        _STATEMENTS[key] = text(f"WITH {ctes} {selects} "
                                "ORDER BY scope, score DESC, resident_id DESC")
    return _STATEMENTS[key]


def my_place(*, resident_id: int, period: str, at: date | None, category: str, metric: str,
             neighbours: int = 2, english: bool = False,
             levels: tuple[str, ...] = BOARD_LEVELS) -> dict[str, Any]:
    """My rank and the listed neighbours above and below me in each scope I belong to
    (only the scope levels asked for: the wallet's home page shows the community's)."""
    resident = db.session.get(Resident, resident_id)
    if resident is None:
        raise NotFound("not_found", "no resident record")
    scopes = _my_scopes(resident, levels)
    timezone = scope_of(node_id=resident.community_id)["timezone"]  # read once per session
    day = at or now_local_date(timezone=timezone)
    key = period_key(period=period, day=day)
    user_name, points, minutes = db.session.execute(
        select(User.display_name, Tally.points, Tally.minutes)
        .select_from(User)
        .outerjoin(Tally, (Tally.resident_id == resident_id) & (Tally.period == key)
                   & (Tally.category == category))
        .where(User.id == resident.user_id)
    ).one()
    listed = not resident.is_minor and resident.privacy != "hidden"
    raw = int((minutes if metric == "hours" else points) or 0)
    ranked = points is not None and (metric != "hours" or raw > 0)
    near = _neighbourhoods(scopes=scopes, key=key, category=category, metric=metric,
                           raw=raw, resident_id=resident_id, count=neighbours,
                           english=english) if ranked and scopes else {}
    places = []
    for index, scope in enumerate(scopes):
        entry: dict[str, Any] = {"scope": {"id": scope["id"], "level": scope["level"]},
                                 "rank": None, "value": _value(metric, raw), "above": [],
                                 "below": []}
        entry.update(near.get(index, {}))
        places.append(entry)
    return {
        "period": period, "period_key": key, "category": category, "metric": metric,
        "listed": listed,
        "shown_as": _shown(shown_name(name=user_name, privacy=resident.privacy,
                                      minor=resident.is_minor), english=english)
        if listed else None,
        "scopes": places,
    }


def _neighbourhoods(*, scopes: list[dict[str, Any]], key: str, category: str, metric: str,
                    raw: int, resident_id: int, count: int, english: bool
                    ) -> dict[int, dict[str, Any]]:
    """My rank and neighbours in every scope (index -> place): one statement, one snapshot."""
    params: dict[str, Any] = {
        "period": key, "category": category, "listed": True, "score": raw, "rid": resident_id,
        "n": count, "metric_name": "minutes" if metric == "hours" else "points"}
    params.update({f"node{i}": scope["id"] for i, scope in enumerate(scopes)})
    rows = db.session.execute(
        _near_statement(tuple(scope["level"] for scope in scopes), metric), params).all()
    places: dict[int, dict[str, Any]] = {}
    for row in rows:
        place = places.setdefault(row.scope, {"rank": None, "above": [], "below": []})
        if row.side == 0:
            place["rank"] = int(row.rank)
        else:
            side = "above" if row.side == 1 else "below"
            place[side].append(_row_json(row, metric=metric, me=resident_id, english=english))
    return places


__all__ = ["ALL", "board", "my_place"]
