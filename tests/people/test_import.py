"""CSV import of residents: encodings, header, row errors, all-or-nothing, partial, limits."""

from __future__ import annotations

import io

import pytest

from pointsvc.extensions import db
from pointsvc.people.models import UNUSABLE_PASSWORD, Household, Resident, User
from tests.factories import auth, make_resident

URL = "/api/v1/residents/import"
HEADER = "name,phone,community_id,grid_id,household,is_minor\n"


def _post(client, headers, data: bytes, *, as_form: bool = True, **query):
    # Big files go as text/csv: werkzeug's test client leaks a temporary file when it
    # encodes a large multipart body (its own, not the service's).
    if as_form:
        return client.post(
            URL,
            query_string=query,
            data={"file": (io.BytesIO(data), "residents.csv")},
            content_type="multipart/form-data",
            headers=headers,
        )
    return client.post(URL, query_string=query, data=data, content_type="text/csv", headers=headers)


def _counts(app) -> tuple[int, int, int]:
    with app.app_context():
        return (
            db.session.query(User).count(),
            db.session.query(Resident).count(),
            db.session.query(Household).count(),
        )


def _csv(world) -> str:
    a, grid = world.tree.community_a, world.tree.grid_a
    return (
        HEADER
        + f"张三,13800001111,{a},{grid},1幢101室,0\n"
        + f"张小三,13800001112,{a},,1幢101室,是\n"
        + f"李四,13800001113,{a},,,false\n"
    )


def test_utf8_multipart_import_creates_residents_and_households(app, client, world):
    r = _post(client, auth(app, world.organizer_a), _csv(world).encode())
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {
        "rows": 3,
        "created": 3,
        "unchanged": 0,
        "failed": 0,
        "households_created": 1,
        "errors": [],
    }
    items = client.get("/api/v1/residents", headers=auth(app, world.admin)).get_json()["items"]
    by_name = {item["name"]: item for item in items}
    assert by_name["张三"]["grid_id"] == world.tree.grid_a
    assert by_name["张三"]["household_id"] == by_name["张小三"]["household_id"] is not None
    assert by_name["张小三"]["is_minor"] is True
    assert by_name["李四"]["household_id"] is None
    # Imported residents have no usable password until staff resets it.
    with app.app_context():
        hashes = set(
            db.session.scalars(db.select(User.password_hash).where(User.phone.isnot(None)))
        )
    assert hashes == {UNUSABLE_PASSWORD}
    login = client.post(
        "/api/v1/auth/token", json={"username": "13800001111", "password": UNUSABLE_PASSWORD}
    )
    assert (login.status_code, login.get_json()["code"]) == (401, "invalid_credentials")


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk"])
def test_bom_and_gbk_as_text_csv(app, client, world, encoding):
    r = _post(client, auth(app, world.admin), _csv(world).encode(encoding), as_form=False)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["created"] == 3
    names = {
        i["name"]
        for i in client.get("/api/v1/residents", headers=auth(app, world.admin)).get_json()["items"]
    }
    assert names == {"张三", "张小三", "李四"}


def test_undecodable_file_is_422(app, client, world):
    r = _post(client, auth(app, world.admin), HEADER.encode() + b"\xff\xfe\xfa\x80,1\n")
    assert (r.status_code, r.get_json()["code"]) == (422, "undecodable_file")
    assert _counts(app)[1] == 0


def test_wrong_header_names_missing_and_unknown_columns(app, client, world):
    data = "姓名,phone,grid_id,extra\n张三,13800001111,,x\n".encode()
    r = _post(client, auth(app, world.admin), data)
    assert r.status_code == 422
    body = r.get_json()
    assert body["code"] == "invalid_csv_header"
    assert body["missing"] == ["name", "community_id"]
    assert body["unknown"] == ["姓名", "extra"]
    assert "name" in body["detail"] and "extra" in body["detail"]
    # With ?community_id= the column may be left out.
    data = "name,phone\n张三,13800001111\n".encode()
    r = _post(client, auth(app, world.admin), data, community_id=world.tree.community_a)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["created"] == 1


def test_empty_file_and_missing_file(app, client, world):
    r = _post(client, auth(app, world.admin), b"")
    assert (r.status_code, r.get_json()["code"]) == (422, "invalid_csv_header")
    r = client.post(
        URL, data={"other": "x"}, content_type="multipart/form-data", headers=auth(app, world.admin)
    )
    assert r.status_code == 422
    assert "file" in r.get_json()["errors"]
    r = client.post(URL, json={"file": "x"}, headers=auth(app, world.admin))
    assert r.status_code == 415


def _bad_csv(world) -> bytes:
    a, b = world.tree.community_a, world.tree.community_b
    return (
        HEADER
        + f"好人,13800002001,{a},,,0\n"  # row 1, line 2
        + f"坏电话,12800002002,{a},,,0\n"  # row 2, line 3
        + "\n"  # a blank line: skipped, but lines keep counting
        + f"外网格,13800002003,{a},{world.tree.grid_b},,0\n"  # row 3, line 5
        + f"重复,13800002001,{a},,,0\n"  # row 4, line 6
        + f"少列,13800002005,{a}\n"  # row 5, line 7
        + f",13800002006,{a},,,maybe\n"  # row 6, line 8: two errors
        + f"也是好人,13800002007,{b},,,1\n"  # row 7, line 9
    ).encode()


def test_bad_rows_are_reported_with_row_and_line_and_nothing_is_imported(app, client, world):
    before = _counts(app)
    r = _post(client, auth(app, world.admin), _bad_csv(world))
    assert r.status_code == 422
    body = r.get_json()
    assert body["code"] == "import_failed"
    assert (body["rows"], body["failed"]) == (7, 5)
    found = {(e["row"], e["line"], e["field"]) for e in body["row_errors"]}
    assert found == {
        (2, 3, "phone"),
        (3, 5, "grid_id"),
        (4, 6, "phone"),
        (5, 7, None),
        (6, 8, "name"),
        (6, 8, "is_minor"),
    }
    duplicate = next(e for e in body["row_errors"] if e["row"] == 4)
    assert "line 2" in duplicate["message"]
    assert _counts(app) == before


def test_partial_imports_the_good_rows_only(app, client, world):
    r = _post(client, auth(app, world.admin), _bad_csv(world), partial="true")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["created"], body["failed"], body["unchanged"]) == (2, 5, 0)
    assert len(body["errors"]) == 6
    names = {
        i["name"]
        for i in client.get("/api/v1/residents", headers=auth(app, world.admin)).get_json()["items"]
    }
    assert names == {"好人", "也是好人"}


def test_reimport_is_idempotent(app, client, world):
    headers = auth(app, world.admin)
    assert _post(client, headers, _csv(world).encode()).get_json()["created"] == 3
    counts = _counts(app)
    r = _post(client, headers, _csv(world).encode())
    assert r.status_code == 200
    assert (r.get_json()["created"], r.get_json()["unchanged"]) == (0, 3)
    assert r.get_json()["households_created"] == 0
    assert _counts(app) == counts


def test_existing_phone_elsewhere_is_an_error(app, client, world):
    make_resident(app, community_id=world.tree.community_b, phone="13800003001", name="乙某")
    make_resident(app, community_id=world.tree.community_a, phone="13800003002", name="甲某")
    a = world.tree.community_a
    data = (
        HEADER
        + f"乙某,13800003001,{a},,,0\n"  # registered in another community
        + f"别人,13800003002,{a},,,0\n"  # same community, another name
        + f"甲某,13800003002,{a},,,0\n"  # row 3 duplicates row 2 inside the file
    ).encode()
    r = _post(client, auth(app, world.admin), data)
    assert r.status_code == 422
    messages = {e["row"]: e["message"] for e in r.get_json()["row_errors"]}
    assert "another community" in messages[1]
    assert "different name" in messages[2]
    assert "line 3" in messages[3]


def test_scope_of_the_importer(app, client, world):
    headers = auth(app, world.organizer_a)
    r = _post(client, headers, _csv(world).encode(), community_id=world.tree.community_b)
    assert (r.status_code, r.get_json()["code"]) == (403, "not_in_scope")
    data = (HEADER + f"乙人,13800004001,{world.tree.community_b},,,0\n").encode()
    r = _post(client, headers, data)
    assert r.status_code == 422
    assert "not_in_scope" in r.get_json()["row_errors"][0]["message"]
    r = _post(client, auth(app, world.auditor), _csv(world).encode())
    assert r.status_code == 403
    r = _post(client, headers, _csv(world).encode(), community_id=world.tree.grid_a)
    assert r.status_code == 422
    r = _post(client, headers, _csv(world).encode(), colour="red")
    assert r.status_code == 422
    assert _counts(app)[1] == 0


def test_too_many_rows_is_413_and_imports_nothing(app, client, world):
    rows = "".join(f"人{n},13{n:09d},,,,\n" for n in range(100_000))
    data = ("name,phone,community_id,grid_id,household,is_minor\n" + rows).encode()
    r = _post(
        client, auth(app, world.admin), data, as_form=False, community_id=world.tree.community_a
    )
    assert r.status_code == 413
    body = r.get_json()
    assert body["code"] == "too_many_rows"
    assert (body["rows"], body["max_rows"]) == (100_000, 20_000)
    assert "100000" in body["detail"]
    assert _counts(app)[1] == 0


def test_body_over_the_byte_limit_is_413(app, client, world):
    app.config["IMPORT_MAX_BYTES"] = 1000
    data = (HEADER + "x" * 2000).encode()
    r = _post(client, auth(app, world.admin), data, as_form=False)
    assert (r.status_code, r.get_json()["code"]) == (413, "payload_too_large")


def test_ten_thousand_rows_import_in_one_request(app, client, world):
    # Correctness at volume; the speed target is measured in bench/, not in a timed test.
    grid = world.tree.grid_a
    rows = "".join(
        f"居民{n},15{n:09d},,{grid if n % 2 else ''},{n % 2500}号,{n % 7 == 0:d}\n"
        for n in range(10_000)
    )
    data = ("name,phone,community_id,grid_id,household,is_minor\n" + rows).encode()
    r = _post(
        client, auth(app, world.admin), data, as_form=False, community_id=world.tree.community_a
    )
    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["created"], r.get_json()["households_created"]) == (10_000, 2500)
    assert _counts(app)[1] == 10_000
