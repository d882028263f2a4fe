"""The drainer's rhythm: one drain per tick (more only while batches come back full), a
failed tick retried at the next, and serving processes that stand by beside a drainer
process."""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from pointsvc.extensions import db
from pointsvc.leaderboards import tallies
from pointsvc.leaderboards.models import TallyOutbox
from tests.leaderboards.conftest import give, resident


def _queued(app) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(TallyOutbox)))


def _counting_drains(monkeypatch) -> list[int]:
    moved: list[int] = []
    real = tallies.drain

    def counted(*, limit: int = tallies.DRAIN_BATCH) -> int:
        moved.append(real(limit=limit))
        return moved[-1]

    monkeypatch.setattr(tallies, "drain", counted)
    return moved


def test_a_tick_drains_again_only_while_batches_come_back_full(app, world, monkeypatch):
    monkeypatch.setattr(tallies, "DRAIN_BATCH", 2)
    moved = _counting_drains(monkeypatch)
    _, person = resident(app, world)
    for _ in range(5):
        give(app, person, "garbage-sorting")
    with app.app_context():
        assert tallies.drain_tick() == 5
    assert moved == [2, 2, 1]
    assert _queued(app) == 0

    moved.clear()
    give(app, person, "garbage-sorting")
    with app.app_context():
        assert tallies.drain_tick() == 1
    assert moved == [1]  # a part batch: nothing is chased until the next tick


def test_a_failed_tick_is_logged_and_the_next_one_drains(app, world, monkeypatch, caplog):
    _, person = resident(app, world)
    give(app, person, "garbage-sorting")
    real = tallies.drain_tick
    calls: list[str] = []

    def failing_once() -> int:
        calls.append("tick")
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return real()

    monkeypatch.setattr(tallies, "drain_tick", failing_once)
    with caplog.at_level(logging.ERROR):
        tallies.run_drainer(app, interval=0.01, keep_going=lambda: len(calls) < 2)
    assert calls == ["tick", "tick"]
    assert "leaderboard drain failed" in caplog.text
    assert _queued(app) == 0


def test_serving_processes_stand_by_beside_a_drainer_process(app):
    app.config["LEADERBOARD_DRAIN_SECONDS"] = 2
    app.config["LEADERBOARD_DRAINER"] = "thread"
    assert tallies.AutoDrainer(app).interval == 2
    app.config["LEADERBOARD_DRAINER"] = "process"
    assert tallies.AutoDrainer(app).interval == 2 * tallies.BACKUP_FACTOR
