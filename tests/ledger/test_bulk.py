"""Bulk awards: all or nothing, every bad item listed by index."""

from __future__ import annotations

from tests.factories import auth
from tests.ledger.conftest import balance_of, new_key


def bulk(client, app, actor, items, key=None):
    return client.post("/api/v1/awards/bulk", json={"items": items},
                       headers=auth(app, actor, **{"Idempotency-Key": key or new_key()}))


def test_bulk_posts_every_item(app, client, world):
    items = [{"resident_id": world.resident, "rule_code": "garbage-sorting", "quantity": 1},
             {"resident_id": world.resident2, "rule_code": "volunteer-hour", "quantity": 120},
             {"resident_id": world.resident, "rule_code": "garbage-sorting", "quantity": 1,
              "memo": "第二次"}]
    r = bulk(client, app, world.organizer, items)
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["posted"] == 3 and body["points"] == 30 and len(body["transaction_ids"]) == 3
    assert balance_of(app, world.resident) == 10
    assert balance_of(app, world.resident2) == 20
    entries = client.get("/api/v1/me/entries", headers=auth(app, world.resident_user)
                         ).get_json()["items"]
    assert [e["balance_after"] for e in entries] == [10, 5]
    assert entries[0]["memo"] == "第二次"


def test_bulk_memos_and_references_keep_every_character_and_verify(app, client, world):
    # Bulk rows travel to PostgreSQL by COPY: quotes, backslashes, commas, braces, tabs,
    # line breaks, a memo reading NULL or \N and blanks must come back exactly.
    memos = ['他说"好"', "C:\\路径\\N", "a,b{c}", "第一行\n第二行\t制表\r回车", "NULL",
             " 前后空格 "]
    items = [{"resident_id": (world.resident, world.resident2)[n % 2],
              "rule_code": "garbage-sorting", "quantity": 1,
              "memo": memo, "evidence_ref": f"ref-{n}-{memo}"[:64]}
             for n, memo in enumerate(memos)]  # two residents: the rule's cap is 3 a day
    r = bulk(client, app, world.organizer, items)
    assert r.status_code == 201, r.get_json()
    for transaction_id, memo in zip(r.get_json()["transaction_ids"], memos, strict=True):
        body = client.get(f"/api/v1/transactions/{transaction_id}",
                          headers=auth(app, world.organizer)).get_json()
        assert body["memo"] == memo
    result = app.test_cli_runner().invoke(args=["ledger", "verify"])
    assert result.exit_code == 0, result.output


def test_bulk_lists_every_bad_item_and_posts_nothing(app, client, world):
    items = [
        {"resident_id": world.resident, "rule_code": "garbage-sorting", "quantity": 1},
        {"resident_id": 999999, "rule_code": "garbage-sorting", "quantity": 1},
        {"resident_id": world.resident_b, "rule_code": "garbage-sorting", "quantity": 1},
        {"resident_id": world.resident, "rule_code": "nope", "quantity": 1},
        {"resident_id": world.resident, "rule_code": "mediation", "quantity": 1},
        {"resident_id": world.resident, "rule_code": "litter", "quantity": 1},
        {"resident_id": world.resident2, "rule_code": "garbage-sorting", "quantity": 4},
    ]
    r = bulk(client, app, world.organizer, items)
    assert r.status_code == 422, r.get_json()
    errors = r.get_json()["errors"]["items"]
    assert sorted(errors) == ["1", "2", "3", "4", "5", "6"]
    assert errors["1"][0].startswith("not_found")
    assert errors["2"][0].startswith("not_in_scope")
    assert errors["3"][0].startswith("rule_not_found")
    assert errors["4"][0].startswith("approval_required")
    assert errors["6"][0].startswith("cap_exceeded")
    assert balance_of(app, world.resident) == 0


def test_bulk_caps_count_items_within_the_batch(app, client, world):
    items = [{"resident_id": world.resident, "rule_code": "garbage-sorting", "quantity": 1}] * 4
    r = bulk(client, app, world.organizer, items)
    assert r.status_code == 422 and list(r.get_json()["errors"]["items"]) == ["3"]
    r = bulk(client, app, world.organizer, items[:3])
    assert r.status_code == 201
    r = bulk(client, app, world.organizer, items[:1])
    assert r.status_code == 422  # the day's cap is now used up


def test_bulk_schema_errors_are_indexed(app, client, world):
    items = [{"resident_id": world.resident, "rule_code": "garbage-sorting", "quantity": 0},
             {"resident_id": "x", "rule_code": "garbage-sorting", "quantity": 1}]
    r = bulk(client, app, world.organizer, items)
    assert r.status_code == 422
    assert set(r.get_json()["errors"]["items"]) == {"0", "1"}
    assert bulk(client, app, world.organizer, []).status_code == 422


def test_bulk_replay_is_idempotent(app, client, world):
    items = [{"resident_id": world.resident, "rule_code": "garbage-sorting", "quantity": 1}]
    first = bulk(client, app, world.organizer, items, key="bulk-1")
    second = bulk(client, app, world.organizer, items, key="bulk-1")
    assert first.get_json() == second.get_json()
    assert balance_of(app, world.resident) == 5


def test_bulk_of_two_thousand_residents(app, client, world):
    from pointsvc.extensions import db
    from pointsvc.people.models import Resident, User

    with app.app_context():
        users = [User(phone=f"137{n:08d}", display_name=f"居民{n}", password_hash="!")
                 for n in range(2000)]
        db.session.add_all(users)
        db.session.flush()
        residents = [Resident(user_id=u.id, community_id=world.tree.community_a) for u in users]
        db.session.add_all(residents)
        db.session.commit()
        ids = [r.id for r in residents]
    items = [{"resident_id": rid, "rule_code": "volunteer-hour", "quantity": 60} for rid in ids]
    r = bulk(client, app, world.organizer, items)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["posted"] == 2000
    assert balance_of(app, ids[0]) == 10 and balance_of(app, ids[-1]) == 10


def test_bulk_bad_payloads(app, client, world):
    headers = auth(app, world.organizer, **{"Idempotency-Key": new_key()})
    too_many = [{"resident_id": world.resident, "rule_code": "garbage-sorting",
                 "quantity": 1}] * 10001
    assert client.post("/api/v1/awards/bulk", json={"items": too_many},
                       headers=headers).status_code == 422
    assert client.post("/api/v1/awards/bulk", data="{not json",
                       headers={**headers, "Content-Type": "application/json"}
                       ).status_code == 400


def test_bulk_items_short_path_loads_exactly_what_marshmallow_loads():
    # BulkItems skips marshmallow for plainly valid items; for every payload the result, or
    # the error, must be what a plain List(Nested(BulkItemIn)) gives.
    from marshmallow import ValidationError, fields, validate

    from pointsvc.common import StrictSchema
    from pointsvc.ledger.schemas import BulkAwardIn, BulkItemIn

    class Reference(StrictSchema):
        items = fields.List(fields.Nested(BulkItemIn), required=True,
                            validate=validate.Length(min=1, max=10_000))

    good = {"resident_id": 7, "rule_code": "garbage-sorting", "quantity": 3}
    payloads = [
        [good, {**good, "memo": "第二次", "evidence_ref": "photo-1"}],
        [{**good, "resident_id": True}], [{**good, "quantity": 1.0}], [{**good, "quantity": 0}],
        [{**good, "resident_id": 2**62 + 1}], [{**good, "rule_code": "Bad Code"}],
        [{**good, "rule_code": 5}], [{**good, "memo": None}], [{**good, "memo": "长" * 501}],
        [{**good, "extra": 1}], [{"resident_id": 7, "quantity": 1}], [good, "not an item"],
        [], "not a list", [good] * 10_001,
    ]

    def load(schema):  # type: ignore[no-untyped-def]
        try:
            return "loaded", schema.load({"items": payload})
        except ValidationError as error:
            return "refused", error.messages

    for payload in payloads:
        assert load(BulkAwardIn()) == load(Reference()), payload
    assert load(BulkAwardIn())[0] == "refused"  # the last payload: too many items


def test_bulk_rows_travel_in_the_declared_column_order():
    """post_many() builds rows as tuples: the header's key order, the copied column order and
    the hashed field order must agree, or columns would land in each other's places."""
    from pointsvc.ledger import service
    from pointsvc.ledger.hashing import HEADER_FIELDS

    transfer = service.Transfer(kind="award", community_id=3, district_id=1,
                                legs=(service.Leg(1, -5), service.Leg(2, 5)))
    header = service._header(7, transfer, "00" * 16, None)
    assert tuple(header) == HEADER_FIELDS
    assert (*HEADER_FIELDS, "amount", "content_hash") == service._TX_COLUMNS
    assert service._ENTRY_COLUMNS == ("transaction_id", "account_id", "amount", "balance_after",
                                      "community_id", "district_id")
    assert service._MEMO_COLUMNS == ("transaction_id", "salt", "memo", "evidence_ref")
