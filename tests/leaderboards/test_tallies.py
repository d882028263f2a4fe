"""Tallies equal the ledger: live draining == rebuild after random history; check sees drift."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner
from sqlalchemy import select, text, update

from pointsvc.errors import DomainError
from pointsvc.extensions import db
from pointsvc.leaderboards.models import ScoreCount, Tally, TallyOutbox
from pointsvc.leaderboards.tallies import backlog, check_tallies, rebuild
from pointsvc.ledger.checks import check_invariants
from tests.leaderboards.conftest import drain, give, resident, reverse


def snapshot(app):
    with app.app_context():
        tallies = sorted(tuple(row) for row in db.session.execute(
            select(Tally.resident_id, Tally.period, Tally.category, Tally.points,
                   Tally.minutes, Tally.listed, Tally.community_id, Tally.grid_id)))
        # Live draining leaves histogram rows that fell to zero (they add nothing to a rank).
        counts = sorted(tuple(row) for row in db.session.execute(
            select(ScoreCount.node_id, ScoreCount.period, ScoreCount.category,
                   ScoreCount.metric, ScoreCount.score, ScoreCount.residents)
            .where(ScoreCount.residents != 0)))
        db.session.remove()
        return tallies, counts


def test_rebuild_equals_live_tallies_after_random_postings_and_reversals(app, world):
    rng = random.Random(6)
    people = [resident(app, world, f"随机{n}", community=rng.choice("ab"),
                       grid=rng.random() < 0.7, privacy=rng.choice(["public", "anonymous",
                                                                    "hidden"]),
                       is_minor=rng.random() < 0.2)[1]
              for n in range(12)]
    start = datetime(2026, 10, 25, tzinfo=UTC)
    posted, reversed_count = [], 0
    for step in range(160):
        at = start + timedelta(hours=rng.randint(0, 24 * 60), minutes=rng.randint(0, 59))
        code = rng.choice(["garbage-sorting", "volunteer-hour", "civility", "litter"])
        quantity = rng.choice([30, 60, 95, 180]) if code == "volunteer-hour" else rng.randint(1, 3)
        posted.append(give(app, rng.choice(people), code, quantity, at=at))
        if step % 40 == 39:
            drain(app)  # drain now and then, as the background drainer would
        if rng.random() < 0.12:
            victim = posted.pop(rng.randrange(len(posted)))
            try:
                reverse(app, world, victim)
                reversed_count += 1
            except DomainError:  # a deduction that took nothing cannot be reversed
                pass
    drain(app)
    assert reversed_count >= 8
    live = snapshot(app)
    assert len(live[0]) > 50
    with app.app_context():
        assert check_tallies() == []
        assert rebuild()["tallies"] == len(live[0])
    assert snapshot(app) == live

    # The CLI does the same and leaves everything checked and equal.
    runner = app.test_cli_runner()
    result = runner.invoke(args=["leaderboards", "rebuild"])
    assert result.exit_code == 0 and "rebuilt" in result.output
    assert snapshot(app) == live
    assert isinstance(runner, CliRunner)


def test_posting_only_queues_and_check_counts_the_queue(app, world):
    _, rid = resident(app, world, "排队者")
    give(app, rid, "garbage-sorting", 2)
    with app.app_context():
        assert backlog() == 1
        assert db.session.scalar(select(Tally.points).where(Tally.resident_id == rid)) is None
        assert check_tallies() == []  # queued postings are not yet owed to the tallies
    result = app.test_cli_runner().invoke(args=["leaderboards", "drain"])
    assert result.exit_code == 0 and "drained 1 queued postings" in result.output
    with app.app_context():
        assert backlog() == 0
        assert db.session.scalar(select(TallyOutbox.transaction_id)) is None
        assert db.session.scalar(
            select(Tally.points).where(Tally.resident_id == rid, Tally.period == "all",
                                       Tally.category == "all")) == 10


def test_ledger_check_reports_tallies_that_disagree(app, world):
    _, rid = resident(app, world, "篡改者")
    give(app, rid, "garbage-sorting", 2)
    drain(app)
    with app.app_context():
        db.session.execute(update(Tally).where(Tally.resident_id == rid, Tally.period == "all",
                                               Tally.category == "all").values(points=999))
        db.session.commit()
        problems = check_invariants()
        assert any("tally differs from the ledger" in line for line in problems)
        assert any("score histogram differs" not in line for line in problems)
    result = app.test_cli_runner().invoke(args=["leaderboards", "check"])
    assert result.exit_code == 1
    with app.app_context():
        db.session.execute(text("UPDATE leaderboard_score_counts SET residents = residents + 1"))
        db.session.commit()
        assert any("score histogram differs" in line for line in check_tallies())
        rebuild()
        assert check_invariants() == []
