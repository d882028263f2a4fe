"""Demo events: one held last week (attendance, points posted) and one open for sign-up.

Importing this module appends `seed_events` to pointsvc.demo.EXTRA_SEEDERS; it runs after
the ledger's seeder (the volunteer-hour rule must exist).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ..common import utcnow
from ..demo import EXTRA_SEEDERS
from ..extensions import db
from ..ledger import demo as _ledger_demo  # noqa: F401  (registers the rule book's seeder first)
from ..people.models import Resident
from . import service

TZ = ZoneInfo("Asia/Shanghai")
# (minutes after the start the resident arrived, minutes they stayed; None: still inside)
VISITS = [(0, 120), (0, 95), (10, 110), (-15, 60), (30, 45), (0, None), (5, 120), (60, 20)]


def _local(days: int, hour: int):  # type: ignore[no-untyped-def]
    today = utcnow().astimezone(TZ).replace(hour=hour, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=days)).astimezone(utcnow().tzinfo)


def _scan(event_id: int, resident: Resident, path: str, direction: str, at, n: int) -> None:
    service.record_scan(service.ScanInput(
        event_id=event_id, resident_id=resident.id, direction=direction, source="code",
        step=service.step_of(at), at=at, scanned_at=at, received_at=at,
        nonce_scope=f"r:{resident.id}", nonce=f"demo-{event_id}-{n:04d}",
        actor_user_id=resident.user_id, offline=True, community_path=path,
        latitude=30.2086, longitude=120.2121))  # the phones were at the community centre


def seed_events(context: dict[str, Any]) -> None:
    """A closed event with eight attendees' hours posted; an upcoming one with sign-ups."""
    chunxiao = context["community_ids"]["chunxiao"]
    organizer, admin = context["organizer_user_id"], context["admin_user_id"]
    path = service._path(chunxiao)
    starts = _local(-7, 9)
    past = service.create_event(org_node_id=chunxiao, actor_user_id=organizer, values={
        "title": "春晓社区环境清洁日", "description": "清理小区绿地和楼道，垃圾分类宣传。",
        "category": "volunteer", "rule_code": "volunteer-hour", "starts_at": starts,
        "ends_at": starts + timedelta(hours=2), "place": "春晓社区党群服务中心",
        "latitude": 30.2084, "longitude": 120.2119, "radius_m": 300, "points_cap": 30})
    service.publish_event(event_id=past.id, actor_user_id=organizer)
    residents = list(db.session.scalars(
        select(Resident).where(Resident.community_id == chunxiao).order_by(Resident.id)
        .limit(len(VISITS))))
    n = 0
    for resident, (arrive, stay) in zip(residents, VISITS, strict=False):
        n += 1
        _scan(past.id, resident, path, "in", starts + timedelta(minutes=arrive), n)
        if stay is not None:
            n += 1
            _scan(past.id, resident, path, "out",
                  starts + timedelta(minutes=arrive + stay), n)
    # The district admin closes it (the community organiser's family attended).
    service.close_event(event_id=past.id, actor_user_id=admin,
                        now=starts + timedelta(hours=3))
    db.session.commit()

    upcoming_start = _local(5, 14)
    upcoming = service.create_event(org_node_id=chunxiao, actor_user_id=organizer, values={
        "title": "关爱独居老人：重阳节走访",
        "description": "两人一组走访独居老人，陪伴聊天、代购药品。",
        "category": "volunteer", "rule_code": "volunteer-hour", "starts_at": upcoming_start,
        "ends_at": upcoming_start + timedelta(hours=3), "place": "春晓社区各网格",
        "capacity": 12, "signup_required": True, "points_cap": 30})
    service.publish_event(event_id=upcoming.id, actor_user_id=organizer)
    for resident in residents[:4]:
        service.signup(event_id=upcoming.id, resident_id=resident.id,
                       actor_user_id=resident.user_id)
    context["event_ids"] = {"past": past.id, "upcoming": upcoming.id}


EXTRA_SEEDERS.append(seed_events)
