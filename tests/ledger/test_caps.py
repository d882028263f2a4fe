"""take_caps(): the bulk, clipped cap reservation an event's close uses."""

from __future__ import annotations

from sqlalchemy import select

from pointsvc.extensions import db
from pointsvc.ledger.awards import take_cap
from pointsvc.ledger.caps import CapWant, take_caps
from pointsvc.ledger.models import CapCounter
from pointsvc.ledger.rules import resolve
from tests.factories import make_resident
from tests.ledger.conftest import make_rule
from tests.ledger.test_concurrency import race

ZONE = "Asia/Shanghai"


def _counters(rule_code: str) -> dict[tuple[int, str], int]:
    rows = db.session.execute(select(CapCounter.resident_id, CapCounter.period,
                                     CapCounter.points)
                              .where(CapCounter.rule_code == rule_code)).all()
    return {(resident, period[0]): points for resident, period, points in rows}


def test_bulk_reservation_clips_each_resident_to_the_tightest_cap(app, world):
    make_rule(app, node_id=world.tree.district, code="capped", points=10,
              cap_day=30, cap_week=50, cap_month=60)
    residents = [world.resident, world.resident2] + [
        make_resident(app, community_id=world.tree.community_a, name=f"居民{n}")[1]
        for n in range(3)]
    with app.app_context():
        rule = resolve(community_id=world.tree.community_a, code="capped")
        # Earlier today resident2 took 25 of the day's 30; resident 3 has 45 of the week's 50.
        assert take_cap(resident_id=residents[1], rule=rule, points=25, timezone=ZONE) == 25
        for _ in range(2):
            take_cap(resident_id=residents[2], rule=rule, points=20, timezone=ZONE, clip=True)
        db.session.commit()
        used_before = {r: _counters("capped").get((r, "w"), 0) for r in residents}
        granted = take_caps(rule=rule, wants=[
            CapWant(residents[0], 20, ZONE), CapWant(residents[1], 20, ZONE),
            CapWant(residents[2], 20, ZONE), CapWant(residents[3], 40, ZONE),
            CapWant(residents[4], 5, ZONE)])
        db.session.commit()
        counters = _counters("capped")
    # 20 fits; 30 - 25 = 5 left today; resident 3 already reached the day's 30 (20 + 10).
    assert used_before[residents[2]] == 30
    assert granted == {residents[0]: 20, residents[1]: 5, residents[2]: 0,
                       residents[3]: 30, residents[4]: 5}
    for resident in residents:
        assert counters[(resident, "d")] <= 30 and counters[(resident, "w")] <= 50
        assert counters[(resident, "m")] == counters[(resident, "w")]
    assert counters[(residents[1], "d")] == 30 and counters[(residents[3], "d")] == 30


def test_rule_without_caps_grants_everything_and_writes_no_counter(app, world):
    make_rule(app, node_id=world.tree.district, code="uncapped", points=1)
    with app.app_context():
        rule = resolve(community_id=world.tree.community_a, code="uncapped")
        assert take_caps(rule=rule, wants=[CapWant(world.resident, 7, ZONE)]) == {
            world.resident: 7}
        assert _counters("uncapped") == {}


def test_bulk_and_single_reservations_racing_never_pass_a_cap(app, world):
    make_rule(app, node_id=world.tree.district, code="raced", points=10, cap_day=100)
    residents = [make_resident(app, community_id=world.tree.community_a, name=f"赛{n}")[1]
                 for n in range(20)]

    def reserve(i):
        with app.app_context():
            rule = resolve(community_id=world.tree.community_a, code="raced")
            if i % 2 == 0:  # a close for everyone
                result = take_caps(rule=rule, wants=[CapWant(r, 30, ZONE) for r in residents])
                db.session.commit()
                return result
            result = {}
            for resident in reversed(residents):  # single awards, one transaction each
                result[resident] = take_cap(resident_id=resident, rule=rule, points=30,
                                            timezone=ZONE, clip=True)
                db.session.commit()
            return result

    results = race(8, reserve)
    with app.app_context():
        counters = _counters("raced")
    for resident in residents:
        total = sum(result[resident] for result in results)
        assert total == counters[(resident, "d")] == 100  # 8 × 30 asked, exactly 100 given
