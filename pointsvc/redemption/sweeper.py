"""Holds expire on their own: a background sweeper in every serving process.

Three things release an expired hold, and any of them may come first (each claims the hold
with one conditional UPDATE … WHERE status = 'held', so a hold is released exactly once):

1. lazily, whenever the hold or the resident's spendable points are used: a spend or a
   payment by the resident (when their account holds anything), a capture / void / read
   of the hold, the resident's list of redemptions;
2. this sweeper: a daemon thread per serving process, started on the first request (after
   gunicorn forks, like the ledger's AutoSealer), every POINTSVC_HOLD_SWEEP_SECONDS (30;
   0 turns it off). On PostgreSQL one process sweeps per tick (a transaction-level advisory
   lock; the others skip the tick), so N workers do not all scan at once;
3. `flask redemption expire-holds`, for cron or by hand.

So a hold is released at most about HOLD_SWEEP_SECONDS after its expiry even if nobody
touches it, and at once when somebody does.
"""

from __future__ import annotations

import threading

from flask import Flask, current_app
from sqlalchemy import text

from ..extensions import db

# pg_try_advisory_xact_lock key: "hold" in ASCII, distinct from the sealer's lock.
ADVISORY_KEY = 0x686F6C64


def sweep_once(*, batch: int = 500) -> int:
    """Release every expired hold now (if no other process is sweeping); the count."""
    from .routes import _now
    from .service import expire_holds

    if db.engine.dialect.name == "postgresql":
        got = db.session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                {"key": ADVISORY_KEY})
        if not got:
            db.session.rollback()
            return 0
        # expire_holds commits per batch, which ends the lock's transaction: we hold it for
        # the first batch only, which is what spreading the ticks needs (claims stay safe).
    return expire_holds(now=_now(), batch=batch)


class HoldSweeper:
    """Releases expired holds in a background thread every `interval` seconds."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.interval = float(app.config["HOLD_SWEEP_SECONDS"])
        self._started = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.swept = 0  # holds released by this process's sweeper (for tests and logs)
        self.ticks = 0

    def start(self) -> None:
        with self._lock:
            if self._started or self.interval <= 0:
                return
            self._started = True
            threading.Thread(target=self._run, name="pointsvc-hold-sweeper",
                             daemon=True).start()

    def stop(self) -> None:
        """End the thread after its current tick (tests; a process exit ends it anyway)."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self.app.app_context():
                try:
                    self.swept += sweep_once()
                except Exception:  # sweep again next tick; never kill the worker
                    db.session.rollback()
                    current_app.logger.exception("hold sweep failed")
                finally:
                    self.ticks += 1
                    db.session.remove()


def install(app: Flask) -> None:
    """Start the sweeper on the first request of serving processes (not tests, not CLI)."""
    if app.config.get("HOLD_SWEEP_SECONDS", 0) <= 0 or (
            app.testing and not app.config.get("HOLD_SWEEP_IN_TESTS")):
        return
    sweeper = HoldSweeper(app)
    app.extensions["pointsvc_hold_sweeper"] = sweeper
    app.before_request(sweeper.start)
