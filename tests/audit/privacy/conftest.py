"""A world for personal-data requests: a resident with distinctive personal data planted
through the real APIs, a second resident, staff in and out of scope."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import Float, LargeBinary, MetaData, String, Text, select
from sqlalchemy.types import JSON

from pointsvc.extensions import db
from tests.events.conftest import START, Clock, checkin, code_of, make_event
from tests.factories import Tree, auth, make_tree, make_user
from tests.ledger.conftest import make_rule

PASSWORD = "privacy-pass-42"
_keys = itertools.count(1)


def key() -> str:
    return f"privacy-key-{next(_keys)}"


@dataclass
class Person:
    """What was planted about one resident: every value must be gone after erasure."""

    name: str
    phone: str
    username: str
    household: str
    memo: str
    evidence: str
    pending_memo: str
    citation: str
    refund_reason: str
    appeal_reason: str
    latitude: float
    longitude: float
    user_id: int = 0
    resident_id: int = 0
    transactions: list[int] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        from pointsvc.common import mask_name

        return [self.name, mask_name(self.name), self.phone, self.username, self.household,
                self.memo, self.evidence, self.pending_memo, self.citation, self.refund_reason,
                self.appeal_reason]


@dataclass
class World:
    tree: Tree
    admin: int  # admin of the district: covers both communities
    admin_b: int  # admin of community B only
    organizer: int
    organizer2: int
    auditor: int
    shop: int
    shop_operator: int
    clock: Clock
    lin: Person
    ou: Person


LIN = dict(name="蔺霄翎", phone="13987654321", username="lin-xiaoling-erase",
           household="蔺霄翎家 七栋", memo="蔺霄翎帮独居老人搬家 memo-7731",
           evidence="https://evidence.example/lxl-7731.jpg",
           pending_memo="蔺霄翎调解邻里纠纷 pending-5520",
           citation="蔺霄翎常年照顾孤寡老人 cite-8841",
           refund_reason="蔺霄翎退回破损商品 refund-9931",
           appeal_reason="蔺霄翎当天在医院 appeal-6602",
           latitude=31.2345671, longitude=121.4765432)
OU = dict(name="欧阳澜汐", phone="13812340000", username="ouyang-lanxi-keep",
          household="欧阳澜汐家 三栋", memo="欧阳澜汐清扫楼道 memo-4410",
          evidence="https://evidence.example/oy-4410.jpg",
          pending_memo="欧阳澜汐协助调解 pending-4411",
          citation="欧阳澜汐热心公益 cite-4412", refund_reason="欧阳澜汐退货 refund-4413",
          appeal_reason="欧阳澜汐不在场 appeal-4414",
          latitude=31.2340001, longitude=121.4760001)


def _plant(client, app: Flask, w: World, person: Person, event_id: int) -> None:
    """Everything about one resident, through the API (the username through the ORM: a
    resident has no API to set one, but the column exists and must be covered)."""
    org = auth(app, w.organizer)
    r = client.post("/api/v1/households", json={"community_id": w.tree.community_a,
                                                 "label": person.household}, headers=org)
    assert r.status_code == 201, r.get_json()
    household = r.get_json()["id"]
    r = client.post("/api/v1/residents", json={
        "name": person.name, "phone": person.phone, "community_id": w.tree.community_a,
        "grid_id": w.tree.grid_a, "household_id": household, "is_minor": False,
        "password": PASSWORD}, headers=org)
    assert r.status_code == 201, r.get_json()
    person.resident_id, person.user_id = r.get_json()["id"], r.get_json()["user_id"]
    with app.app_context():
        from pointsvc.people.models import User

        db.session.get(User, person.user_id).username = person.username
        db.session.commit()
    r = client.post("/api/v1/awards", json={
        "resident_id": person.resident_id, "rule_code": "garbage-sorting", "quantity": 6,
        "memo": person.memo, "evidence_ref": person.evidence},
        headers=auth(app, w.organizer, **{"Idempotency-Key": key()}))
    assert r.status_code == 201, r.get_json()
    person.transactions.append(r.get_json()["id"])
    # A deduction, and the resident's appeal of it in their own words.
    r = client.post("/api/v1/awards", json={
        "resident_id": person.resident_id, "rule_code": "litter", "quantity": 1},
        headers=auth(app, w.organizer, **{"Idempotency-Key": key()}))
    assert r.status_code == 201, r.get_json()
    r = client.post("/api/v1/appeals", json={
        "kind": "deduction", "transaction_id": r.get_json()["id"],
        "reason": person.appeal_reason},
        headers=auth(app, person.user_id, **{"Idempotency-Key": key()}))
    assert r.status_code == 201, r.get_json()
    r = client.post("/api/v1/awards", json={
        "resident_id": person.resident_id, "rule_code": "mediation", "quantity": 1,
        "memo": person.pending_memo},
        headers=auth(app, w.organizer, **{"Idempotency-Key": key()}))
    assert r.status_code == 202, r.get_json()
    code = code_of(client, app, w, event_id)["code"]
    r = checkin(client, app, person.user_id, code, latitude=person.latitude,
                longitude=person.longitude)
    assert r.status_code in (200, 201), r.get_json()
    r = client.post("/api/v1/honours/designations", json={
        "resident_id": person.resident_id, "title": "最美志愿者", "citation": person.citation,
        "period_label": "2026-05"}, headers=org)
    assert r.status_code == 201, r.get_json()
    # A spend at the shop (its receipt, with the masked name, is kept for replays) and a
    # refund with a reason that names the resident.
    r = client.get("/api/v1/me/paycode", headers=auth(app, person.user_id))
    assert r.status_code == 200, r.get_json()
    r = client.post("/api/v1/redemptions", json={"pay_code": r.get_json()["token"],
                                                  "points": 4},
                    headers=auth(app, w.shop_operator, **{"Idempotency-Key": key()}))
    assert r.status_code == 201, r.get_json()
    sale = r.get_json()
    r = client.post(f"/api/v1/redemptions/{sale['id']}/refunds",
                    json={"points": 1, "reason": person.refund_reason},
                    headers=auth(app, w.shop_operator, **{"Idempotency-Key": key()}))
    assert r.status_code == 201, r.get_json()


@pytest.fixture
def world(app: Flask, client) -> World:
    from tests.factories import make_merchant, make_operator

    tree = make_tree(app)
    shop = make_merchant(app, node_id=tree.community_a, name="甲社区积分超市")
    w = World(
        tree=tree,
        admin=make_user(app, role="admin", node_id=tree.district, name="区管理员"),
        admin_b=make_user(app, role="admin", node_id=tree.community_b, name="乙管理员"),
        organizer=make_user(app, role="organizer", node_id=tree.community_a, name="甲组织者"),
        organizer2=make_user(app, role="organizer", node_id=tree.community_a, name="甲复核"),
        auditor=make_user(app, role="auditor", node_id=tree.community_a, name="甲审计"),
        shop=shop, shop_operator=make_operator(app, merchant_id=shop),
        clock=Clock(START + timedelta(minutes=5)),
        lin=Person(**LIN), ou=Person(**OU),
    )
    make_rule(app, node_id=tree.district, code="garbage-sorting", points=5,
              category="environment")
    make_rule(app, node_id=tree.district, code="litter", points=-20, category="conduct")
    make_rule(app, node_id=tree.district, code="mediation", points=50, category="conduct",
              approval_required=True)
    make_rule(app, node_id=tree.district, code="volunteer-hour", points=10, unit="hour")
    app.config["EVENTS_CLOCK"] = w.clock
    event = make_event(client, app, w, latitude=31.2345, longitude=121.4765, radius_m=5000)
    _plant(client, app, w, w.lin, event["id"])
    _plant(client, app, w, w.ou, event["id"])
    return w


def erase(client, app: Flask, actor: int, resident_id: int, reason: str = "resident_request"):
    return client.post(f"/api/v1/residents/{resident_id}/erasure",
                       json={"reason_code": reason}, headers=auth(app, actor))


def find_everywhere(app: Flask, texts: list[str], numbers: list[float] = ()
                    ) -> list[tuple[str, str, str]]:
    """(table, column, value) for every planted value found in any text, varchar, blob or
    JSON column (and the given numbers in any float column) of any table in the database.

    The tables are reflected from the database itself, so a table added later is covered
    without touching this test."""
    hits = []
    with app.app_context():
        metadata = MetaData()
        metadata.reflect(bind=db.engine)
        for table in metadata.sorted_tables:
            textual = [c for c in table.columns
                       if isinstance(c.type, (String, Text, LargeBinary, JSON))]
            floats = [c for c in table.columns if isinstance(c.type, Float)]
            if not textual and not (floats and numbers):
                continue
            columns = textual + (floats if numbers else [])
            for row in db.session.execute(select(*columns)):
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    if isinstance(value, float | int) and not isinstance(value, bool):
                        hits += [(table.name, column.name, str(n)) for n in numbers
                                 if abs(float(value) - n) < 1e-9]
                        continue
                    blob = bytes(value) if isinstance(value, bytes | memoryview) else None
                    as_text = value if isinstance(value, str) else str(value)
                    for needle in texts:
                        if (blob is not None and needle.encode() in blob) or (
                                blob is None and needle in as_text):
                            hits.append((table.name, column.name, needle))
        db.session.remove()
    return hits
