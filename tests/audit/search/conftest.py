"""Planted ledger data for audit-search tests: awards, a deduction, a reversal, a redemption."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask import Flask

from pointsvc.extensions import db
from pointsvc.ledger.service import Leg, Transfer, district_of, ensure_account, post
from pointsvc.ledger.service import resident_account as resident_account_of
from tests.factories import auth, make_merchant, make_operator, make_user
from tests.ledger.conftest import World, award, new_key
from tests.ledger.conftest import world as world  # noqa: F401 - re-exported fixture

MEMO = "帮助邻居打扫楼道，垃圾分类做得好"


@dataclass
class Planted:
    w: World
    auditor_b: int
    merchant: int
    merchant_operator: int
    merchant_account: int
    resident_account: int
    sorting: int  # resident, garbage-sorting x1 = 5, by organizer, with a Chinese memo
    hours: int  # resident, volunteer-hour x2 = 20, by organizer (later reversed)
    hours2: int  # resident2, volunteer-hour x1 = 10, by organizer2
    litter: int  # resident, deduction of 20 (litter) by organizer: takes 5, shortfall 15
    b_sorting: int  # resident_b in community B, garbage-sorting x1 = 5, by organizer_b
    reversal: int  # reversal of `hours`, by organizer
    redemption: int  # resident2 spends 4 at the merchant (reference redemption/R-1)

    @property
    def a_ids(self) -> set[int]:
        return {self.sorting, self.hours, self.hours2, self.litter, self.reversal,
                self.redemption}

    @property
    def all_ids(self) -> set[int]:
        return self.a_ids | {self.b_sorting}


def _ok(response) -> int:  # type: ignore[no-untyped-def]
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


@pytest.fixture
def planted(app: Flask, client, world: World) -> Planted:  # noqa: F811
    w = world
    sorting = _ok(award(client, app, w.organizer, w.resident, "garbage-sorting", memo=MEMO))
    hours = _ok(award(client, app, w.organizer, w.resident, "volunteer-hour", quantity=120))
    hours2 = _ok(award(client, app, w.organizer2, w.resident2, "volunteer-hour", quantity=60))
    reversal = _ok(client.post(f"/api/v1/transactions/{hours}/reversal",
                               json={"reason": "录入错误"},
                               headers=auth(app, w.organizer,
                                            **{"Idempotency-Key": new_key()})))
    # The resident has 5 left: the deduction of 20 takes 5 and records a shortfall of 15.
    litter = _ok(award(client, app, w.organizer, w.resident, "litter"))
    b_sorting = _ok(award(client, app, w.organizer_b, w.resident_b, "garbage-sorting"))
    merchant = make_merchant(app, node_id=w.tree.community_a, name="甲社区积分超市")
    operator = make_operator(app, merchant_id=merchant)
    with app.app_context():
        community = w.tree.community_a
        district = district_of(community_id=community)
        merchant_account = ensure_account(kind="merchant", owner_id=merchant,
                                          community_id=community, district_id=district)
        spender = resident_account_of(resident_id=w.resident2, community_id=community)
        resident_account = resident_account_of(resident_id=w.resident, community_id=community)
        redemption = post(transfer=Transfer(
            kind="redemption", community_id=community, district_id=district,
            legs=(Leg(spender, -4), Leg(merchant_account, 4)), actor_user_id=operator,
            reference_type="redemption", reference_id="R-1", subject_resident_id=w.resident2,
        )).id
        db.session.commit()
    auditor_b = make_user(app, role="auditor", node_id=w.tree.community_b, name="乙审计")
    return Planted(w, auditor_b, merchant, operator, merchant_account, resident_account,
                   sorting, hours, hours2, litter, b_sorting, reversal, redemption)
