"""A worker's short-lived copy of board pages: a page is the same for every reader.

The district's top 100 is what most residents open, and tallies trail the ledger by a drain
anyway, so each worker answers repeats of a page from memory for
`POINTSVC_LEADERBOARD_CACHE_SECONDS` (1 s). A drain in this worker, and any committed
change to who someone is (names, privacy, erasure: the identity caches of
`security.authz`), empties it at once; other workers' copies age out within the bound.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from flask import current_app

from ..security import authz

BOARD_PAGES = "pointsvc.board_pages"
PAGES_KEPT = 512  # per worker; the oldest page goes first
_lock = threading.Lock()

authz.IDENTITY_CACHES.append(BOARD_PAGES)


def board_rows(key: Hashable, read: Callable[[], list[Any]]) -> list[Any]:
    """The rows of a board page: this worker's fresh copy, or `read()` (then kept)."""
    seconds = current_app.config["LEADERBOARD_CACHE_SECONDS"]
    if seconds <= 0:
        return read()
    pages: OrderedDict = current_app.extensions.setdefault(BOARD_PAGES, OrderedDict())
    now = time.monotonic()
    with _lock:
        kept = pages.get(key)
    if kept is not None and kept[0] > now:
        return kept[1]
    rows = read()
    with _lock:
        pages[key] = (now + seconds, rows)
        pages.move_to_end(key)
        while len(pages) > PAGES_KEPT:
            pages.popitem(last=False)
    return rows


def forget() -> None:
    """Drop this worker's copies (after a drain changed the tallies)."""
    current_app.extensions.pop(BOARD_PAGES, None)
