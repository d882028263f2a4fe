"""Exports: CSV with BOM and NDJSON, streamed; logged in audit_events; the CLI; 100k rows."""

from __future__ import annotations

import csv
import io
import json
import time
import tracemalloc

import pytest
from sqlalchemy import text

from pointsvc.extensions import db
from tests.factories import auth
from tests.ledger.conftest import award

from .conftest import MEMO

URL = "/api/v1/audit/transactions/export"


def _export(client, app, user: int, **params):  # type: ignore[no-untyped-def]
    response = client.get(URL, query_string=params, headers=auth(app, user))
    assert response.status_code == 200, response.data[:500]
    return response


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel then reads it as UTF-8
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def _export_events(app) -> list[tuple]:  # type: ignore[no-untyped-def]
    with app.app_context():
        found = db.session.execute(text(
            "SELECT actor_user_id, target_type, target_id, community_id, detail "
            "FROM audit_events WHERE action = 'audit.export' ORDER BY id")).all()
        db.session.remove()
    return [tuple(row) for row in found]


def test_csv_opens_with_chinese_intact(app, client, planted):
    response = _export(client, app, planted.w.admin, format="csv")
    assert response.mimetype == "text/csv"
    assert 'filename="ledger-transactions.csv"' in response.headers["Content-Disposition"]
    rows = _csv_rows(response.data)
    assert [int(r["id"]) for r in rows] == sorted(planted.all_ids)  # oldest first
    sorting = next(r for r in rows if int(r["id"]) == planted.sorting)
    assert sorting["memo"] == MEMO
    assert sorting["community_name"] == "甲社区"
    assert sorting["amount"] == "5" and sorting["kind"] == "award"
    assert sorting["rule_code"] == "garbage-sorting" and sorting["rule_version"] == "1"
    legs = sorting["entries"].split(" ")
    assert len(legs) == 2 and f"resident:{planted.resident_account}:+5" in legs
    assert any(leg.startswith("issuance:") and leg.endswith(":-5") for leg in legs)
    reversal = next(r for r in rows if int(r["id"]) == planted.reversal)
    assert reversal["reverses_id"] == str(planted.hours) and reversal["amount"] == "20"


def test_csv_neutralises_formulas(app, client, planted):
    r = award(client, app, planted.w.organizer, planted.w.resident, "garbage-sorting",
              memo="=HYPERLINK(\"http://evil\")")
    assert r.status_code == 201
    rows = _csv_rows(_export(client, app, planted.w.admin, format="csv").data)
    memo = next(row["memo"] for row in rows if int(row["id"]) == r.get_json()["id"])
    assert memo == "'=HYPERLINK(\"http://evil\")"


def test_ndjson_lines_parse(app, client, planted):
    response = _export(client, app, planted.w.admin, format="ndjson", kind="award")
    assert response.mimetype == "application/x-ndjson"
    lines = response.data.decode().splitlines()
    items = [json.loads(line) for line in lines]
    assert {item["id"] for item in items} == {planted.sorting, planted.hours, planted.hours2,
                                              planted.b_sorting}
    sorting = next(item for item in items if item["id"] == planted.sorting)
    assert sorting["memo"] == MEMO and sorting["amount"] == 5
    assert sorted(leg["amount"] for leg in sorting["entries"]) == [-5, 5]
    assert {leg["account_kind"] for leg in sorting["entries"]} == {"issuance", "resident"}


def test_export_matches_search_filters(app, client, planted):
    w = planted.w
    params = {"resident_id": w.resident, "min_amount": 5, "max_amount": 5}
    rows = _csv_rows(_export(client, app, w.admin, format="csv", **params).data)
    search = client.get("/api/v1/audit/transactions", query_string=params,
                        headers=auth(app, w.admin)).get_json()
    assert {int(r["id"]) for r in rows} == {i["id"] for i in search["items"]}
    assert {int(r["id"]) for r in rows} == {planted.sorting, planted.litter}
    assert sum(int(r["amount"]) for r in rows) == search["totals"]["amount"]


def test_every_export_is_logged(app, client, planted):
    w = planted.w
    _export(client, app, w.auditor, format="ndjson", node_id=w.tree.community_a, rule="litter")
    events = _export_events(app)
    assert len(events) == 1
    actor, target_type, target_id, community_id, detail = events[0]
    assert (actor, target_type, target_id, community_id) == (
        w.auditor, "transactions", "ndjson", w.tree.community_a)
    detail = json.loads(detail)
    assert detail["filters"] == {"node_id": w.tree.community_a, "rule": "litter"}
    assert detail["format"] == "ndjson"


def test_export_scope(app, client, planted):
    w = planted.w
    rows = _csv_rows(_export(client, app, w.auditor, format="csv").data)
    assert {int(r["id"]) for r in rows} == planted.a_ids
    rows_b = _csv_rows(_export(client, app, planted.auditor_b, format="csv").data)
    assert {int(r["id"]) for r in rows_b} == {planted.b_sorting}
    refused = client.get(URL, query_string={"node_id": w.tree.community_b},
                         headers=auth(app, w.auditor))
    assert refused.status_code == 403 and refused.get_json()["code"] == "not_in_scope"
    for user in (w.resident_user, planted.merchant_operator, w.organizer):
        response = client.get(URL, headers=auth(app, user))
        assert response.status_code == 403
        assert response.mimetype == "application/problem+json"
    # Only the two exports that ran are in the log; refused attempts export nothing.
    assert [e[0] for e in _export_events(app)] == [w.auditor, planted.auditor_b]


@pytest.mark.parametrize("params,field", [
    ({"format": "xlsx"}, "format"),
    ({"limit": 10}, "limit"),  # exports are not paged
    ({"from": "2026-02-30T00:00:00Z"}, "from"),
    ({"min_amount": 3, "max_amount": 2}, "min_amount"),
])
def test_export_bad_input_is_422(app, client, planted, params, field):
    response = client.get(URL, query_string=params, headers=auth(app, planted.w.admin))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]
    assert _export_events(app) == []


# --- the CLI ------------------------------------------------------------------------------


def test_cli_writes_a_file_and_logs_it(app, planted, tmp_path):
    out = tmp_path / "甲社区-export.csv"
    result = app.test_cli_runner().invoke(args=[
        "audit", "export", "--format", "csv", "--output", str(out),
        "--node", str(planted.w.tree.community_a), "--kind", "award", "--kind", "reversal"])
    assert result.exit_code == 0, result.output
    rows = _csv_rows(out.read_bytes())
    assert {int(r["id"]) for r in rows} == {planted.sorting, planted.hours, planted.hours2,
                                            planted.reversal}
    assert "4 transactions" in result.output
    (actor, _type, target_id, community_id, detail), = _export_events(app)
    assert actor is None and target_id == "csv"
    assert community_id == planted.w.tree.community_a
    assert json.loads(detail)["via"] == "cli" and json.loads(detail)["rows"] == 4


def test_cli_ndjson_everything_and_bad_input(app, planted, tmp_path):
    out = tmp_path / "all.ndjson"
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "export", "--format", "ndjson", "-o", str(out)])
    assert result.exit_code == 0, result.output
    items = [json.loads(line) for line in out.read_text().splitlines()]
    assert {item["id"] for item in items} == planted.all_ids
    bad = runner.invoke(args=["audit", "export", "-o", str(out), "--from", "soon"])
    assert bad.exit_code == 2 and "from" in bad.output
    missing = runner.invoke(args=["audit", "export", "-o", str(out), "--node", "999999"])
    assert missing.exit_code == 2


# --- 100,000 rows, bounded memory -----------------------------------------------------------

BIG = 100_000


def _seed_big(app, community_id: int, resident_ids: list[int]) -> None:  # type: ignore[no-untyped-def]
    """100,000 awards through the ledger's bulk door (hashes, balances, invariants intact)."""
    from pointsvc.ledger.service import (
        Leg,
        Transfer,
        district_of,
        issuance_account,
        post_many,
        resident_account,
    )

    with app.app_context():
        district = district_of(community_id=community_id)
        issuance = issuance_account(community_id=community_id)
        accounts = [resident_account(resident_id=r, community_id=community_id)
                    for r in resident_ids]
        batch = []
        for n in range(BIG):
            which = n % len(resident_ids)
            batch.append(Transfer(
                kind="award", community_id=community_id, district_id=district,
                legs=(Leg(issuance, -5), Leg(accounts[which], 5)), rule_code="garbage-sorting",
                rule_version=1, category="environment", quantity=1,
                subject_resident_id=resident_ids[which], reference_type="bulk-seed",
                reference_id=str(n)))
            if len(batch) == 20_000:
                post_many(transfers=batch)
                batch = []
        post_many(transfers=batch)
        db.session.commit()


@pytest.mark.parametrize("export_format", ["csv"])
def test_100k_rows_stream_in_bounded_memory(app, client, planted, export_format):
    w = planted.w
    started = time.perf_counter()
    _seed_big(app, w.tree.community_a, [w.resident, w.resident2])
    print(f"seeded in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    response = client.get(URL, query_string={"format": export_format,
                                             "reference_type": "bulk-seed"},
                          headers=auth(app, w.admin), buffered=False)
    assert response.status_code == 200
    total = lines = 0
    first = b""
    tracemalloc.start()
    try:
        for chunk in response.response:
            if not first:
                first = bytes(chunk[:64])
            total += len(chunk)
            lines += chunk.count(b"\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        response.close()
    print(f"streamed in {time.perf_counter() - started:.1f} s, peak {peak:,}, total {total:,}")
    assert first.startswith(b"\xef\xbb\xbfid,created_at,kind")
    assert lines == BIG + 1  # the header and one line per transaction
    assert total > 8_000_000
    # The whole body is >14 MB; streaming holds one fetch batch (1,000 rows) and one chunk
    # at a time, whatever the export's size (about 2 MB here, most of it the batch's tuples).
    assert peak < total / 5, f"peak {peak:,} bytes for a {total:,}-byte export"
    assert peak < 2_500_000
