"""Anomaly reports: set-based detectors over a time window and an organisation subtree.

Each detector is one GROUP BY over the window (written once in psycopg style, run through
pointsvc.sql on both databases), filtered to the caller's subtree through org_nodes.path,
followed — only for the few rows it flags — by one query for the ids behind the figures.
Thresholds come from the ANOMALY_* settings (docs/audit.md explains each one).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy.exc import DBAPIError

from ... import sql
from ...common import as_utc, utcnow
from ...errors import ValidationFailed
from ...ledger.awards import DEFAULT_APPROVAL_THRESHOLD
from .models import GeofenceRefusal  # noqa: F401  (puts the table in the metadata)

log = logging.getLogger("pointsvc.audit.anomalies")

DETECTORS = (
    "high_earner",
    "repeated_awards",
    "blocked_self_dealing",
    "geofence_refusals",
    "merchant_volume",
    "merchant_refund_ratio",
    "near_threshold_adjustments",
)
SEVERITY_ORDER = {"high": 0, "medium": 1}
SETTINGS = (
    "ANOMALY_DEFAULT_DAYS", "ANOMALY_MAX_DAYS", "ANOMALY_MAX_ITEMS", "ANOMALY_EVIDENCE_LIMIT",
    "ANOMALY_EARNER_FACTOR", "ANOMALY_EARNER_MIN_POINTS", "ANOMALY_EARNER_MIN_EARNERS",
    "ANOMALY_REPEAT_MIN_AWARDS", "ANOMALY_SELF_DEALING_MIN_ATTEMPTS",
    "ANOMALY_GEOFENCE_MIN_SCANS", "ANOMALY_GEOFENCE_FAR_METERS", "ANOMALY_MERCHANT_FACTOR",
    "ANOMALY_MERCHANT_MIN_POINTS", "ANOMALY_MERCHANT_MIN_PEERS", "ANOMALY_REFUND_PERCENT",
    "ANOMALY_REFUND_MIN_POINTS", "ANOMALY_ADJUSTMENT_BAND_PERCENT",
    "ANOMALY_ADJUSTMENT_MIN_COUNT",
)


@dataclass
class Anomaly:
    detector: str
    severity: str
    subject_type: str
    subject_id: int
    community_id: int | None
    summary: str
    evidence: dict[str, Any]
    weight: float = 0.0  # how far past its threshold, for ordering within a severity

    def json(self) -> dict[str, Any]:
        return {"detector": self.detector, "severity": self.severity,
                "subject": {"type": self.subject_type, "id": self.subject_id},
                "community_id": self.community_id, "summary": self.summary,
                "evidence": self.evidence}


@dataclass
class Window:
    """The report's question: a half-open time window [start, end) over some subtrees."""

    start: datetime
    end: datetime
    paths: list[str]
    english: bool
    settings: dict[str, int] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)

    def params(self, **extra: Any) -> dict[str, Any]:
        values = {"start": sql.db_time(self.start), "end": sql.db_time(self.end)}
        values.update({f"scope{i}": path + "%" for i, path in enumerate(self.paths)})
        values["limit"] = self.settings["ANOMALY_MAX_ITEMS"] + 1
        values.update(extra)
        return values

    def scope(self, alias: str) -> str:
        """`alias.path` lies under one of the subtrees (paths are digits and slashes only)."""
        return "(" + " OR ".join(f"{alias}.path LIKE %(scope{i})s"
                                 for i in range(len(self.paths))) + ")"

    def say(self, zh: str, en: str, **values: Any) -> str:
        return (en if self.english else zh).format(**values)

    @property
    def cap(self) -> int:
        return self.settings["ANOMALY_EVIDENCE_LIMIT"]

    def ledger_bounds(self) -> tuple[int, int] | None:
        """The lowest and highest id of the subtree's transactions in the window (cached).

        Given to the planner as constants, they turn the join to ledger_entries into one
        range of its transaction_id index instead of a scan of every entry ever posted
        (measured: the difference between ~5 s and well under one on 4M entries).
        """
        if "bounds" not in self._cache:
            row = sql.one(_LEDGER_BOUNDS.format(scope=self.scope("n")), self.params())
            self._cache["bounds"] = None if row is None or row[0] is None else (
                int(row[0]), int(row[1]))
        return self._cache["bounds"]


_LEDGER_BOUNDS = """
SELECT MIN(t.id), MAX(t.id) FROM ledger_transactions t
WHERE t.community_id IN (SELECT n.id FROM org_nodes n WHERE {scope})
  AND t.created_at >= %(start)s AND t.created_at < %(end)s
"""


def resolve_window(*, start: datetime | None, end: datetime | None,
                   now: datetime | None = None) -> tuple[datetime, datetime]:
    """The window asked for: `to` defaults to now, `from` to ANOMALY_DEFAULT_DAYS before it."""
    config = current_app.config
    end = as_utc(end) if end is not None else (now or utcnow())
    start = as_utc(start) if start is not None else end - timedelta(
        days=int(config["ANOMALY_DEFAULT_DAYS"]))
    if start >= end:
        raise ValidationFailed(errors={"to": ["Must be later than 'from'."]})
    longest = int(config["ANOMALY_MAX_DAYS"])
    if end - start > timedelta(days=longest):
        raise ValidationFailed(errors={"to": [f"The window may span at most {longest} days."]})
    return start, end


def narrowest(paths: Iterable[str]) -> list[str]:
    """The scope paths without those already covered by another (fewer OR terms)."""
    unique = sorted(set(paths), key=len)
    kept: list[str] = []
    for path in unique:
        if not any(path.startswith(other) for other in kept):
            kept.append(path)
    return kept


def report(*, start: datetime, end: datetime, paths: list[str], english: bool,
           detectors: Iterable[str] = DETECTORS) -> dict[str, Any]:
    """Run the detectors over [start, end) in the subtrees; items most severe first."""
    settings = {name: int(current_app.config[name]) for name in SETTINGS}
    window = Window(start=start, end=end, paths=narrowest(paths), english=english,
                    settings=settings)
    if sql.is_postgresql():
        # Compiling these one-off aggregates (JIT) cost ~0.9 s a query on 4M entries, more
        # than running them; LOCAL: only for this read-only transaction.
        sql.rows("SET LOCAL jit = off")
    items: list[Anomaly] = []
    truncated: list[str] = []
    wanted = set(detectors)
    for codes, detector in _DETECTORS:
        if wanted.isdisjoint(codes) or not window.paths:
            continue
        found, more = detector(window)
        items.extend(item for item in found if item.detector in wanted)
        if more:
            truncated.extend(code for code in codes if code in wanted)
    order = {code: index for index, code in enumerate(DETECTORS)}
    items.sort(key=lambda a: (SEVERITY_ORDER[a.severity], order[a.detector], -a.weight,
                              a.subject_id))
    return {"start": start, "end": end, "items": [item.json() for item in items],
            "truncated": sorted(set(truncated)), "settings": settings}


def _severity(measure: float, threshold: float) -> str:
    # One rule for every detector: twice the threshold (or more) is high, else medium.
    return "high" if threshold > 0 and measure >= 2 * threshold else "medium"


def _capped(found: list[tuple], window: Window, code: str) -> tuple[list[tuple], list[str]]:
    limit = window.settings["ANOMALY_MAX_ITEMS"]
    return (found[:limit], [code]) if len(found) > limit else (found, [])


def _in_list(name: str, values: Iterable[Any]) -> tuple[str, dict[str, Any]]:
    """`IN (%(name0)s, ...)` with its parameters (the flagged rows only: a short list)."""
    values = list(values) or [None]
    params = {f"{name}{i}": value for i, value in enumerate(values)}
    return "(" + ", ".join(f"%({key})s" for key in params) + ")", params


def _number(value: Any) -> float:
    return float(value) if value is not None else 0.0


def _when(value: Any) -> str | None:
    moment = sql.from_db_time(value)
    return moment.isoformat() if moment is not None else None


# --- 1. residents earning far above their community's norm ---------------------------------

# A resident's earnings are the credits to their account by awards and manual adjustments
# in the window (a bounded account's entry: positive amount, balance_after set). The norm
# is the median of the community's earners in the same window: unlike a mean or a z-score
# it is not dragged up by the very outlier it is meant to expose, and needs no assumption
# that points are normally distributed (they are not: most residents earn a little).
_EARNERS = """
WITH earned AS (
  SELECT t.community_id AS community_id, t.subject_resident_id AS resident_id,
         SUM(e.amount) AS points, COUNT(*) AS awards
  FROM ledger_transactions t
  JOIN ledger_entries e ON e.transaction_id = t.id
  WHERE t.community_id IN (SELECT n.id FROM org_nodes n WHERE {scope})
    AND t.created_at >= %(start)s AND t.created_at < %(end)s
    AND t.id BETWEEN %(lo)s AND %(hi)s AND e.transaction_id BETWEEN %(lo)s AND %(hi)s
    AND t.kind IN ('award', 'adjustment') AND t.subject_resident_id IS NOT NULL
    AND e.amount > 0 AND e.balance_after IS NOT NULL
  GROUP BY t.community_id, t.subject_resident_id
), ranked AS (
  SELECT community_id, resident_id, points, awards,
         ROW_NUMBER() OVER (PARTITION BY community_id ORDER BY points, resident_id) AS rn,
         COUNT(*) OVER (PARTITION BY community_id) AS earners
  FROM earned
), medians AS (
  SELECT community_id, AVG(points) AS median, MAX(earners) AS earners
  FROM ranked WHERE rn IN ((earners + 1) / 2, (earners + 2) / 2)
  GROUP BY community_id
)
SELECT r.community_id, r.resident_id, r.points, r.awards, m.median, m.earners
FROM ranked r JOIN medians m ON m.community_id = r.community_id
WHERE m.earners >= %(min_earners)s AND r.points >= %(min_points)s
  AND r.points > %(factor)s * m.median
ORDER BY r.points DESC, r.resident_id
LIMIT %(limit)s
"""

_EARNER_EVIDENCE = """
SELECT resident_id, id, points FROM (
  SELECT t.subject_resident_id AS resident_id, t.id AS id, e.amount AS points,
         ROW_NUMBER() OVER (PARTITION BY t.subject_resident_id
                            ORDER BY e.amount DESC, t.id) AS rn
  FROM ledger_transactions t
  JOIN ledger_entries e ON e.transaction_id = t.id
  WHERE t.subject_resident_id IN {residents}
    AND t.created_at >= %(start)s AND t.created_at < %(end)s
    AND t.id BETWEEN %(lo)s AND %(hi)s AND e.transaction_id BETWEEN %(lo)s AND %(hi)s
    AND t.kind IN ('award', 'adjustment') AND e.amount > 0 AND e.balance_after IS NOT NULL
) ranked WHERE rn <= %(cap)s ORDER BY resident_id, rn
"""


def high_earners(window: Window) -> tuple[list[Anomaly], list[str]]:
    """Residents whose earnings exceed both k × their community's median and a floor."""
    s = window.settings
    factor, floor = s["ANOMALY_EARNER_FACTOR"], s["ANOMALY_EARNER_MIN_POINTS"]
    bounds = window.ledger_bounds()
    if bounds is None:  # no transaction in the window and subtree
        return [], []
    lo, hi = bounds
    found, more = _capped(sql.rows(_EARNERS.format(scope=window.scope("n")), window.params(
        min_earners=s["ANOMALY_EARNER_MIN_EARNERS"], min_points=floor, factor=factor,
        lo=lo, hi=hi)), window, "high_earner")
    if not found:  # the usual answer: no evidence to fetch
        return [], more
    residents, params = _in_list("r", [row[1] for row in found])
    evidence = _group(sql.rows(_EARNER_EVIDENCE.format(residents=residents),
                               window.params(cap=window.cap, lo=lo, hi=hi, **params)))
    items = []
    for community_id, resident_id, points, awards, median, earners in found:
        # PostgreSQL sums bigints as numeric (Decimal): back to plain numbers here.
        points, awards, median = int(points), int(awards), _number(median)
        threshold = max(factor * median, float(floor))
        ratio = points / median if median else None
        items.append(Anomaly(
            "high_earner", _severity(points, threshold), "resident", resident_id, community_id,
            window.say(
                "居民 {id} 在此期间获得 {points} 积分（{awards} 笔），本社区获分居民的中位数为 "
                "{median:g}（共 {earners} 人），阈值 {threshold:g}。",
                "Resident {id} earned {points} points in {awards} awards; the median of the "
                "community's {earners} earners is {median:g} (threshold {threshold:g}).",
                id=resident_id, points=points, awards=awards, median=median, earners=earners,
                threshold=threshold),
            {"points": int(points), "awards": int(awards), "community_median": median,
             "community_earners": int(earners),
             "ratio_to_median": round(ratio, 2) if ratio else None,
             "threshold": threshold,
             "transaction_ids": [tx for tx, _ in evidence.get(resident_id, [])],
             "largest_awards": [{"transaction_id": tx, "points": int(p)}
                                for tx, p in evidence.get(resident_id, [])]},
            weight=points / threshold if threshold else 0.0))
    return items, more


def _group(found: list[tuple]) -> dict[Any, list[tuple]]:
    grouped: dict[Any, list[tuple]] = {}
    for key, *rest in found:
        grouped.setdefault(key, []).append(tuple(rest))
    return grouped


# --- 2. the same staff member repeatedly awarding the same resident ------------------------

# Event attendance is posted by whoever closes the event, from scans: not the closer's
# discretion, so it is left out (else a weekly event's organiser would always show up).
# Counted on the transactions alone (no join to the entries); the points of the flagged
# pairs (net: a negative adjustment counts against) are summed afterwards.
_REPEATS = """
SELECT t.actor_user_id, t.subject_resident_id, t.community_id, COUNT(*) AS awards,
       MIN(t.created_at), MAX(t.created_at)
FROM ledger_transactions t
WHERE t.community_id IN (SELECT n.id FROM org_nodes n WHERE {scope})
  AND t.created_at >= %(start)s AND t.created_at < %(end)s
  AND t.id BETWEEN %(lo)s AND %(hi)s
  AND t.kind IN ('award', 'adjustment') AND t.actor_user_id IS NOT NULL
  AND t.subject_resident_id IS NOT NULL
  AND (t.reference_type IS NULL OR t.reference_type <> 'event_attendance')
GROUP BY t.actor_user_id, t.subject_resident_id, t.community_id
HAVING COUNT(*) >= %(min_awards)s
ORDER BY COUNT(*) DESC, t.actor_user_id, t.subject_resident_id
LIMIT %(limit)s
"""

_REPEAT_EVIDENCE = """
SELECT actor_user_id, subject_resident_id, id, points FROM (
  SELECT t.actor_user_id, t.subject_resident_id, t.id,
         SUM(e.amount) OVER (PARTITION BY t.actor_user_id, t.subject_resident_id) AS points,
         ROW_NUMBER() OVER (PARTITION BY t.actor_user_id, t.subject_resident_id
                            ORDER BY t.id DESC) AS rn
  FROM ledger_transactions t
  JOIN ledger_entries e ON e.transaction_id = t.id AND e.balance_after IS NOT NULL
  WHERE t.subject_resident_id IN {residents} AND t.actor_user_id IN {actors}
    AND t.created_at >= %(start)s AND t.created_at < %(end)s
    AND t.id BETWEEN %(lo)s AND %(hi)s AND e.transaction_id BETWEEN %(lo)s AND %(hi)s
    AND t.kind IN ('award', 'adjustment')
    AND (t.reference_type IS NULL OR t.reference_type <> 'event_attendance')
) ranked WHERE rn <= %(cap)s ORDER BY actor_user_id, subject_resident_id, rn
"""


def repeated_awards(window: Window) -> tuple[list[Anomaly], list[str]]:
    """Staff → resident pairs with at least N awards in the window."""
    minimum = window.settings["ANOMALY_REPEAT_MIN_AWARDS"]
    bounds = window.ledger_bounds()
    if bounds is None:
        return [], []
    lo, hi = bounds
    found, more = _capped(sql.rows(_REPEATS.format(scope=window.scope("n")),
                                   window.params(min_awards=minimum, lo=lo, hi=hi)),
                          window, "repeated_awards")
    if not found:
        return [], more
    residents, r_params = _in_list("r", {row[1] for row in found})
    actors, a_params = _in_list("a", {row[0] for row in found})
    ids: dict[tuple[int, int], list[int]] = {}
    sums: dict[tuple[int, int], int] = {}
    for actor, resident, tx, points in sql.rows(
            _REPEAT_EVIDENCE.format(residents=residents, actors=actors),
            window.params(cap=window.cap, lo=lo, hi=hi, **r_params, **a_params)):
        ids.setdefault((actor, resident), []).append(tx)
        sums[(actor, resident)] = int(points)
    items = []
    for actor, resident, community_id, awards, first, last in found:
        awards, points = int(awards), sums.get((actor, resident), 0)
        items.append(Anomaly(
            "repeated_awards", _severity(awards, minimum), "staff", actor, community_id,
            window.say("工作人员 {actor} 在此期间向居民 {resident} 发放积分 {awards} 次，共 "
                       "{points} 分（阈值 {minimum} 次）。",
                       "Staff user {actor} awarded resident {resident} {awards} times, "
                       "{points} points in all (threshold {minimum} awards).",
                       actor=actor, resident=resident, awards=awards, points=points,
                       minimum=minimum),
            {"resident_id": resident, "awards": int(awards), "points": int(points),
             "threshold": minimum, "first_at": _when(first), "last_at": _when(last),
             "transaction_ids": ids.get((actor, resident), [])},
            weight=awards / minimum if minimum else 0.0))
    return items, more


# --- 3. awards to a staff member's own household, attempted and blocked ---------------------

# pointsvc/ledger/awards.py logs every refused attempt as "<action>.blocked_self_dealing"
# (award, award.approve, transaction.reverse). Only columns the log has always had are read.
BLOCKED = "%.blocked_self_dealing"
_BLOCKED = """
SELECT a.actor_user_id, a.community_id, COUNT(*) AS attempts,
       COUNT(DISTINCT a.target_id) AS residents, MIN(a.created_at), MAX(a.created_at)
FROM audit_events a
WHERE a.community_id IN (SELECT n.id FROM org_nodes n WHERE {scope})
  AND a.created_at >= %(start)s AND a.created_at < %(end)s
  AND a.action LIKE %(blocked)s AND a.actor_user_id IS NOT NULL
GROUP BY a.actor_user_id, a.community_id
HAVING COUNT(*) >= %(min_attempts)s
ORDER BY COUNT(*) DESC, a.actor_user_id
LIMIT %(limit)s
"""

_BLOCKED_EVIDENCE = """
SELECT a.actor_user_id, a.community_id, a.id, a.action, a.target_type, a.target_id,
       a.detail, a.created_at
FROM audit_events a
WHERE a.actor_user_id IN {actors}
  AND a.created_at >= %(start)s AND a.created_at < %(end)s
  AND a.action LIKE %(blocked)s
ORDER BY a.actor_user_id, a.created_at DESC, a.id DESC
"""


def blocked_self_dealing(window: Window) -> tuple[list[Anomaly], list[str]]:
    """Staff members who tried to award (or approve, or reverse for) themselves or family."""
    minimum = window.settings["ANOMALY_SELF_DEALING_MIN_ATTEMPTS"]
    found, more = _capped(sql.rows(_BLOCKED.format(scope=window.scope("n")),
                                   window.params(min_attempts=minimum, blocked=BLOCKED)),
                          window, "blocked_self_dealing")
    if not found:
        return [], more
    actors, params = _in_list("a", {row[0] for row in found})
    attempts: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for actor, community_id, event_id, action, target_type, target_id, detail, at in sql.rows(
            _BLOCKED_EVIDENCE.format(actors=actors), window.params(blocked=BLOCKED, **params)):
        listed = attempts.setdefault((actor, community_id), [])
        if len(listed) < window.cap:
            listed.append({"audit_event_id": event_id, "action": action,
                           "target_type": target_type, "target_id": target_id,
                           "reason": _detail(detail).get("reason"), "at": _when(at)})
    items = []
    for actor, community_id, count, residents, first, last in found:
        items.append(Anomaly(
            "blocked_self_dealing", _severity(count, minimum), "staff", actor, community_id,
            window.say("工作人员 {actor} 在此期间 {count} 次试图为本人或本户操作积分（涉及 "
                       "{residents} 名居民），均被系统拦截。",
                       "Staff user {actor}: {count} blocked attempts to act on points for "
                       "themselves or their household ({residents} residents).",
                       actor=actor, count=count, residents=residents),
            {"attempts": int(count), "residents": int(residents), "threshold": minimum,
             "first_at": _when(first), "last_at": _when(last),
             "audit_event_ids": [a["audit_event_id"] for a in
                                 attempts.get((actor, community_id), [])],
             "attempt_details": attempts.get((actor, community_id), [])},
            weight=count / minimum if minimum else float(count)))
    return items, more


def _detail(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# --- 4. many check-ins of one event from far outside its geofence ---------------------------

_INSERT_REFUSAL = """
INSERT INTO anomaly_geofence_refusals (event_id, resident_id, direction, step, distance_m,
                                       radius_m, at)
VALUES (%(event_id)s, %(resident_id)s, %(direction)s, %(step)s, %(distance_m)s, %(radius_m)s,
        %(at)s)
ON CONFLICT DO NOTHING
"""


def record_geofence_refusal(*, event_id: int, resident_id: int, direction: str,
                            step: int | None, at: datetime, distance_m: float | None,
                            radius_m: int) -> None:
    """Keep a refused outside_geofence check-in (distance only, never coordinates); commits."""
    from ...extensions import db

    try:
        sql.rows(_INSERT_REFUSAL, {
            "event_id": event_id, "resident_id": resident_id, "direction": direction,
            "step": step, "radius_m": int(radius_m), "at": sql.db_time(at),
            "distance_m": None if distance_m is None else int(round(distance_m))})
        db.session.commit()
    except DBAPIError:
        # The resident must still get their outside_geofence answer, not a 500: losing one
        # piece of evidence is the lesser harm. The log says so.
        db.session.rollback()
        log.warning("geofence refusal not recorded (event %s)", event_id, exc_info=True)


# "Far" means beyond the fence by ANOMALY_GEOFENCE_FAR_METERS: a refusal just past the edge
# is a weak GPS fix; one kilometres away is someone scanning a photo of the screen.
_GEOFENCE = """
SELECT g.event_id, e.org_node_id, COUNT(*) AS far_scans,
       COUNT(DISTINCT g.resident_id) AS residents, MAX(g.distance_m), MAX(g.radius_m),
       MIN(g.at), MAX(g.at)
FROM anomaly_geofence_refusals g
JOIN events e ON e.id = g.event_id
JOIN org_nodes n ON n.id = e.org_node_id
WHERE {scope} AND g.at >= %(start)s AND g.at < %(end)s
  AND g.distance_m IS NOT NULL AND g.distance_m > g.radius_m + %(far)s
GROUP BY g.event_id, e.org_node_id
HAVING COUNT(*) >= %(min_scans)s
ORDER BY COUNT(*) DESC, g.event_id
LIMIT %(limit)s
"""

_GEOFENCE_EVIDENCE = """
SELECT g.event_id, g.id, g.resident_id, g.distance_m, g.at
FROM anomaly_geofence_refusals g
WHERE g.event_id IN {events} AND g.at >= %(start)s AND g.at < %(end)s
  AND g.distance_m IS NOT NULL AND g.distance_m > g.radius_m + %(far)s
ORDER BY g.event_id, g.distance_m DESC, g.id
"""


def geofence_refusals(window: Window) -> tuple[list[Anomaly], list[str]]:
    """Events with at least N check-ins refused from far outside their geofence."""
    s = window.settings
    minimum, far = s["ANOMALY_GEOFENCE_MIN_SCANS"], s["ANOMALY_GEOFENCE_FAR_METERS"]
    found, more = _capped(sql.rows(_GEOFENCE.format(scope=window.scope("n")),
                                   window.params(min_scans=minimum, far=far)),
                          window, "geofence_refusals")
    if not found:
        return [], more
    events, params = _in_list("e", [row[0] for row in found])
    scans: dict[int, list[dict[str, Any]]] = {}
    for event_id, refusal_id, resident_id, distance, at in sql.rows(
            _GEOFENCE_EVIDENCE.format(events=events), window.params(far=far, **params)):
        listed = scans.setdefault(event_id, [])
        if len(listed) < window.cap:
            listed.append({"refusal_id": refusal_id, "resident_id": resident_id,
                           "distance_m": distance, "at": _when(at)})
    items = []
    for event_id, node_id, count, residents, farthest, radius, first, last in found:
        items.append(Anomaly(
            "geofence_refusals", _severity(count, minimum), "event", event_id, node_id,
            window.say("活动 {event} 有 {count} 次签到因距离活动范围超过 {far} 米被拒（涉及 "
                       "{residents} 名居民，最远 {farthest} 米）。",
                       "Event {event}: {count} check-ins refused from more than {far} m "
                       "outside its geofence ({residents} residents, farthest {farthest} m).",
                       event=event_id, count=count, far=far, residents=residents,
                       farthest=farthest),
            {"far_refusals": int(count), "residents": int(residents),
             "farthest_m": farthest, "radius_m": radius, "far_beyond_m": far,
             "threshold": minimum, "first_at": _when(first), "last_at": _when(last),
             "refusal_ids": [scan["refusal_id"] for scan in scans.get(event_id, [])],
             "refusals": scans.get(event_id, [])},
            weight=count / minimum if minimum else float(count)))
    return items, more


# --- 5. merchants with unusual redemption volume or refund ratio ----------------------------

# Volume is compared with the median of the merchants that took points in the same window
# and subtree (robust for the same reason as the earners' median). The refund ratio is the
# refunded share of the points captured in the window (whenever the refund came).
_MERCHANTS = """
WITH sales AS (
  SELECT r.merchant_id AS merchant_id, m.org_node_id AS org_node_id,
         COUNT(*) AS redemptions, SUM(r.captured_points) AS redeemed,
         SUM(r.refunded_points) AS refunded
  FROM redemptions r
  JOIN merchants m ON m.id = r.merchant_id
  JOIN org_nodes n ON n.id = m.org_node_id
  WHERE {scope} AND r.captured_at >= %(start)s AND r.captured_at < %(end)s
    AND r.captured_points > 0
  GROUP BY r.merchant_id, m.org_node_id
), ranked AS (
  SELECT merchant_id, org_node_id, redemptions, redeemed, refunded,
         ROW_NUMBER() OVER (ORDER BY redeemed, merchant_id) AS rn,
         COUNT(*) OVER () AS merchants
  FROM sales
), median AS (
  SELECT AVG(redeemed) AS median, MAX(merchants) AS merchants
  FROM ranked WHERE rn IN ((merchants + 1) / 2, (merchants + 2) / 2)
)
SELECT r.merchant_id, r.org_node_id, r.redemptions, r.redeemed, r.refunded, m.median,
       m.merchants
FROM ranked r CROSS JOIN median m
WHERE (m.merchants >= %(min_peers)s AND r.redeemed >= %(min_points)s
       AND r.redeemed > %(factor)s * m.median)
   OR (r.redeemed >= %(refund_min)s AND r.refunded * 100 > %(refund_percent)s * r.redeemed)
ORDER BY r.redeemed DESC, r.merchant_id
LIMIT %(limit)s
"""

_MERCHANT_EVIDENCE = """
SELECT merchant_id, id, captured_points, refunded_points FROM (
  SELECT r.merchant_id, r.id, r.captured_points, r.refunded_points,
         ROW_NUMBER() OVER (PARTITION BY r.merchant_id
                            ORDER BY r.captured_points DESC, r.id) AS rn
  FROM redemptions r
  WHERE r.merchant_id IN {merchants} AND r.captured_at >= %(start)s
    AND r.captured_at < %(end)s AND r.captured_points > 0
) ranked WHERE rn <= %(cap)s ORDER BY merchant_id, rn
"""

_REFUND_EVIDENCE = """
SELECT merchant_id, id, redemption_id, points FROM (
  SELECT r.merchant_id, f.id, f.redemption_id, f.points,
         ROW_NUMBER() OVER (PARTITION BY r.merchant_id ORDER BY f.points DESC, f.id) AS rn
  FROM redemption_refunds f
  JOIN redemptions r ON r.id = f.redemption_id
  WHERE r.merchant_id IN {merchants} AND r.captured_at >= %(start)s
    AND r.captured_at < %(end)s
) ranked WHERE rn <= %(cap)s ORDER BY merchant_id, rn
"""


def merchants(window: Window) -> tuple[list[Anomaly], list[str]]:
    """Merchants far above the subtree's median volume, or refunding a large share."""
    s = window.settings
    factor, floor = s["ANOMALY_MERCHANT_FACTOR"], s["ANOMALY_MERCHANT_MIN_POINTS"]
    peers, percent = s["ANOMALY_MERCHANT_MIN_PEERS"], s["ANOMALY_REFUND_PERCENT"]
    refund_min = s["ANOMALY_REFUND_MIN_POINTS"]
    found, more = _capped(sql.rows(_MERCHANTS.format(scope=window.scope("n")), window.params(
        min_peers=peers, min_points=floor, factor=factor, refund_min=refund_min,
        refund_percent=percent)), window, "merchant_volume")
    if not found:
        return [], more
    ids, params = _in_list("m", [row[0] for row in found])
    sales = _group(sql.rows(_MERCHANT_EVIDENCE.format(merchants=ids),
                            window.params(cap=window.cap, **params)))
    refunds = _group(sql.rows(_REFUND_EVIDENCE.format(merchants=ids),
                              window.params(cap=window.cap, **params)))
    items = []
    for merchant, node_id, count, redeemed, refunded, median, peer_count in found:
        median, redeemed, refunded = _number(median), int(redeemed), int(refunded)
        figures = {"redemptions": int(count), "redeemed_points": redeemed,
                   "refunded_points": refunded, "merchants_median": median,
                   "merchants": int(peer_count),
                   "redemption_ids": [row[0] for row in sales.get(merchant, [])]}
        threshold = max(factor * median, float(floor))
        if peer_count >= peers and redeemed >= floor and redeemed > factor * median:
            items.append(Anomaly(
                "merchant_volume", _severity(redeemed, threshold), "merchant", merchant,
                node_id,
                window.say("商户 {merchant} 在此期间收取 {redeemed} 积分（{count} 笔兑换），"
                           "范围内 {peers} 家商户的中位数为 {median:g}，阈值 {threshold:g}。",
                           "Merchant {merchant} took {redeemed} points in {count} "
                           "redemptions; the median of the {peers} merchants in scope is "
                           "{median:g} (threshold {threshold:g}).",
                           merchant=merchant, redeemed=redeemed, count=count,
                           peers=peer_count, median=median, threshold=threshold),
                {**figures, "threshold": threshold,
                 "largest_redemptions": [{"redemption_id": rid, "points": int(points)}
                                         for rid, points, _ in sales.get(merchant, [])]},
                weight=redeemed / threshold if threshold else 0.0))
        if redeemed >= refund_min and refunded * 100 > percent * redeemed:
            share = round(100 * refunded / redeemed, 1)
            items.append(Anomaly(
                "merchant_refund_ratio", _severity(share, percent), "merchant", merchant,
                node_id,
                window.say("商户 {merchant} 在此期间兑换 {redeemed} 积分，其中 {refunded} 积分"
                           "已退款（{share}%，阈值 {percent}%）。",
                           "Merchant {merchant} refunded {refunded} of the {redeemed} points "
                           "it took ({share}%, threshold {percent}%).",
                           merchant=merchant, redeemed=redeemed, refunded=refunded,
                           share=share, percent=percent),
                {**figures, "refund_percent": share, "threshold_percent": percent,
                 "refund_ids": [row[0] for row in refunds.get(merchant, [])],
                 "refunds": [{"refund_id": fid, "redemption_id": rid, "points": int(points)}
                             for fid, rid, points in refunds.get(merchant, [])]},
                weight=share / percent if percent else 0.0))
    return items, more


# --- 6. manual adjustments just under the approval threshold --------------------------------

# A manual adjustment (no rule) is requested as a pending award with rule_id NULL; once
# approved it is posted as kind 'adjustment' referencing the approval, so the requests alone
# count every one once. Adjustments posted any other way (no approval reference) are added.
# The threshold is the community's current one (ledger_community_policies, else the default).
_NEAR_THRESHOLD = """
WITH manual AS (
  SELECT p.requested_by AS actor, p.community_id AS community_id,
         ABS(p.points) AS points, 'pending_award' AS source, p.id AS ref_id
  FROM ledger_pending_awards p
  WHERE p.rule_id IS NULL AND p.created_at >= %(start)s AND p.created_at < %(end)s
    AND p.community_id IN (SELECT n.id FROM org_nodes n WHERE {scope})
  UNION ALL
  SELECT t.actor_user_id, t.community_id, ABS(e.amount), 'transaction', t.id
  FROM ledger_transactions t
  JOIN ledger_entries e ON e.transaction_id = t.id AND e.balance_after IS NOT NULL
  WHERE t.kind = 'adjustment' AND t.actor_user_id IS NOT NULL
    AND (t.reference_type IS NULL OR t.reference_type <> 'approval')
    AND t.created_at >= %(start)s AND t.created_at < %(end)s
    AND t.id BETWEEN %(lo)s AND %(hi)s AND e.transaction_id BETWEEN %(lo)s AND %(hi)s
    AND t.community_id IN (SELECT n.id FROM org_nodes n WHERE {scope})
), near AS (
  SELECT m.actor, m.community_id, m.points, m.source, m.ref_id,
         COALESCE(c.approval_threshold, %(default_threshold)s) AS threshold
  FROM manual m LEFT JOIN ledger_community_policies c ON c.community_id = m.community_id
)
SELECT actor, community_id, source, ref_id, points, threshold, total, n FROM (
  SELECT actor, community_id, source, ref_id, points, threshold,
         COUNT(*) OVER (PARTITION BY actor, community_id) AS n,
         SUM(points) OVER (PARTITION BY actor, community_id) AS total,
         ROW_NUMBER() OVER (PARTITION BY actor, community_id ORDER BY ref_id DESC) AS rn
  FROM near
  WHERE points <= threshold AND points * 100 >= threshold * (100 - %(band)s)
) banded
WHERE n >= %(min_count)s AND rn <= %(cap)s
ORDER BY n DESC, actor, community_id, rn
"""


def near_threshold_adjustments(window: Window) -> tuple[list[Anomaly], list[str]]:
    """Staff members repeatedly requesting manual adjustments just under the threshold."""
    s = window.settings
    band, minimum = s["ANOMALY_ADJUSTMENT_BAND_PERCENT"], s["ANOMALY_ADJUSTMENT_MIN_COUNT"]
    lo, hi = window.ledger_bounds() or (0, -1)  # (0, -1): no transactions, requests only
    found = sql.rows(_NEAR_THRESHOLD.format(scope=window.scope("n")), window.params(
        band=band, min_count=minimum, cap=window.cap, lo=lo, hi=hi,
        default_threshold=DEFAULT_APPROVAL_THRESHOLD))
    groups: dict[tuple[int, int], list[tuple]] = {}
    for actor, community_id, *rest in found:
        groups.setdefault((actor, community_id), []).append(tuple(rest))
    limit = s["ANOMALY_MAX_ITEMS"]
    more = ["near_threshold_adjustments"] if len(groups) > limit else []
    items = []
    for (actor, community_id), rows_ in list(groups.items())[:limit]:
        _, _, _, threshold, total, count = rows_[0]
        threshold, count = int(threshold), int(count)
        low = -(-threshold * (100 - band) // 100)  # the band's lowest whole point
        items.append(Anomaly(
            "near_threshold_adjustments", _severity(count, minimum), "staff", actor,
            community_id,
            window.say("工作人员 {actor} 在此期间有 {count} 笔手工调整的分值在 {low}–"
                       "{threshold} 之间，紧贴审批阈值 {threshold}（阈值 {minimum} 笔）。",
                       "Staff user {actor} made {count} manual adjustments of {low}–"
                       "{threshold} points, just under the approval threshold of "
                       "{threshold} (threshold {minimum} adjustments).",
                       actor=actor, count=count, low=low, threshold=threshold,
                       minimum=minimum),
            {"adjustments": count, "points": int(total), "approval_threshold": threshold,
             "band_low": low, "band_percent": band, "threshold": minimum,
             "pending_award_ids": [r[1] for r in rows_ if r[0] == "pending_award"],
             "transaction_ids": [r[1] for r in rows_ if r[0] == "transaction"]},
            weight=count / minimum if minimum else float(count)))
    return items, more


_DETECTORS: tuple[tuple[tuple[str, ...], Callable[[Window], tuple[list[Anomaly], list[str]]]],
                  ...] = (
    (("high_earner",), high_earners),
    (("repeated_awards",), repeated_awards),
    (("blocked_self_dealing",), blocked_self_dealing),
    (("geofence_refusals",), geofence_refusals),
    (("merchant_volume", "merchant_refund_ratio"), merchants),
    (("near_threshold_adjustments",), near_threshold_adjustments),
)
