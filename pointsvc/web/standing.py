"""Rank and star level on the resident's home page: the hook for the leaderboards package.

Leaderboards (tallies, rankings, honours) are being built in pointsvc/leaderboards/. Until
it lands this returns None and the page says "coming soon" — never an invented number.
When it lands, call its service here and return a Standing; the template already shows it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Standing:
    rank: int | None  # place in the community this month
    community_size: int | None
    stars: int  # national volunteer star level, 0-5 (DESIGN.md §7)
    service_hours: float


def resident_standing(*, resident_id: int) -> Standing | None:
    """The resident's rank and star level, or None while leaderboards are not there."""
    del resident_id  # used once the leaderboards service exists
    return None
