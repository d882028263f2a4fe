"""Rank and star level on the resident's home page, from the leaderboards package.

The same service calls as GET /api/v1/leaderboards/me (this month, all categories, points)
and GET /api/v1/me/honours (star level from recorded service hours).
"""

from __future__ import annotations

from dataclasses import dataclass

from .i18n import is_english


@dataclass(frozen=True)
class Standing:
    rank: int | None  # place in the community this month; None: not ranked yet
    listed: bool  # False: the resident chose to stay off the boards (or is a minor)
    stars: int  # national volunteer star level, 0-5 (DESIGN.md §7)
    service_hours: float
    next_star_hours: float | None


def resident_standing(*, resident_id: int) -> Standing:
    from ..leaderboards import honours
    from ..leaderboards import service as boards

    place = boards.my_place(resident_id=resident_id, period="month", at=None, category="all",
                            metric="points", neighbours=0, english=is_english(),
                            levels=("community",))
    community = next((scope for scope in place["scopes"]
                      if scope["scope"]["level"] == "community"), None)
    minutes = honours.service_minutes(resident_id=resident_id)  # not the badges: not shown here
    return Standing(rank=community["rank"] if community else None, listed=place["listed"],
                    stars=honours.star_level(minutes=minutes),
                    service_hours=round(minutes / 60, 1),
                    next_star_hours=honours.next_star_hours(minutes=minutes))
