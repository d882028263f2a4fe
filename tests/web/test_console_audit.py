"""The console's audit search: scope (another community sees and exports nothing of this one),
filters that narrow, bad filters inline, keyset pages, totals, and the CSV / NDJSON export."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from pointsvc.extensions import db
from tests.factories import make_user
from tests.ledger.conftest import award, make_rule

from .conftest import Page, text_of
from .test_console_events import _staff


@pytest.fixture
def ledger(app, client, world):  # type: ignore[no-untyped-def]
    """Awards in both communities: 3 x sorting (5) and 1 x cleaning (8) in A, 1 x sorting in B."""
    make_rule(app, node_id=world.tree.district, code="garbage-sorting", points=5)
    make_rule(app, node_id=world.tree.district, code="stair-cleaning", points=8)
    ids = {"a": [], "b": []}
    for resident in (world.resident, world.resident, world.resident2):
        response = award(client, app, world.organizer_a, resident, "garbage-sorting")
        assert response.status_code == 201, response.get_json()
        ids["a"].append(response.get_json()["id"])
    response = award(client, app, world.organizer_a, world.resident2, "stair-cleaning",
                     memo="清扫楼道")
    ids["a"].append(response.get_json()["id"])
    response = award(client, app, world.organizer_b, world.resident_b, "garbage-sorting")
    ids["b"].append(response.get_json()["id"])
    ids["auditor_b"] = make_user(app, role="auditor", node_id=world.tree.community_b,
                                 name="乙审计")
    return ids


def _rows(response) -> list[str]:  # type: ignore[no-untyped-def]
    return re.findall(r'data-testid="audit-row" data-id="(\d+)"', response.get_data(as_text=True))


def _csv(response) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    data = response.get_data()
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads the Chinese as UTF-8
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_the_search_shows_the_scope_and_its_totals(app, world, ledger):
    auditor = _staff(app, world.auditor_a)
    assert 'href="/console/audit"' in auditor.get("/console").get_data(as_text=True)
    page = auditor.get("/console/audit")
    assert page.status_code == 200
    assert set(_rows(page)) == {str(i) for i in ledger["a"]}
    html = page.get_data(as_text=True)
    assert re.search(r'data-testid="total-count">\s*4\s*<', html)
    assert re.search(r'data-testid="total-amount">\s*23\s*<', html)
    assert "清扫楼道" in text_of(page)  # auditors may read memos (ledger.read)
    assert '<details class="more">' in html  # no filter set: the less used ones folded


def test_another_community_sees_and_exports_nothing_of_this_one(app, world, ledger):
    other = _staff(app, ledger["auditor_b"])
    page = other.get("/console/audit")
    assert set(_rows(page)) == {str(i) for i in ledger["b"]}
    # Community A's node, asked for by name, is refused — on the page and in the export.
    node = world.tree.community_a
    assert other.get(f"/console/audit?node_id={node}").status_code == 403
    assert other.get(f"/console/audit/export.csv?node_id={node}").status_code == 403
    assert other.get(f"/console/audit/export.ndjson?node_id={node}").status_code == 403
    rows = _csv(other.get("/console/audit/export.csv"))
    assert [int(r["id"]) for r in rows] == ledger["b"]


def test_staff_without_the_audit_policy_are_refused(app, world, ledger):
    organizer = _staff(app, world.organizer_a)
    assert organizer.get("/console/audit").status_code == 403
    assert organizer.get("/console/audit/export.csv").status_code == 403
    assert 'href="/console/audit"' not in organizer.get("/console").get_data(as_text=True)
    resident = Page(app.test_client())
    resident.sign_in(app, world.resident_user)
    assert resident.get("/console/audit").status_code == 403


def test_filters_narrow_the_results(app, world, ledger):
    auditor = _staff(app, world.auditor_a)
    by_rule = auditor.get("/console/audit?rule=stair-cleaning")
    assert _rows(by_rule) == [str(ledger["a"][3])]
    assert 'value="stair-cleaning"' in by_rule.get_data(as_text=True)
    by_resident = auditor.get(f"/console/audit?resident_id={world.resident}")
    assert set(_rows(by_resident)) == {str(i) for i in ledger["a"][:2]}
    assert _rows(auditor.get("/console/audit?min_amount=6&max_amount=10")) == [
        str(ledger["a"][3])]
    assert _rows(auditor.get(f"/console/audit?actor_id={world.organizer_b}")) == []
    assert len(_rows(auditor.get("/console/audit?kind=award&kind=deduction"))) == 4
    assert _rows(auditor.get("/console/audit?kind=deduction")) == []
    # Days are the community's: everything happened today, nothing from tomorrow on.
    today = date.today()
    assert len(_rows(auditor.get(f"/console/audit?from={today - timedelta(days=1)}"
                                 f"&to={today + timedelta(days=1)}"))) == 4
    assert _rows(auditor.get(f"/console/audit?from={today + timedelta(days=2)}")) == []


@pytest.mark.parametrize(("query", "field", "message"), [
    ("min_amount=abc", "min_amount", "请输入整数"),
    ("min_amount=9&max_amount=3", "min_amount", "最低值大于最高值"),
    ("from=2026-06-05&to=2026-06-01", "from", "开始日期不能晚于结束日期"),
    ("from=yesterday", "from", "请输入日期"),
    ("kind=gift", "kind", "请选择一项"),
    ("resident_id=-1", "resident_id", "请输入整数"),
    ("resident_id=99999999999999999999999", "resident_id", "请输入"),
    ("rule=" + "x" * 65, "rule", "最多 64 个字符"),
    ("cursor=garbage", "cursor", "翻页链接已失效"),
])
def test_bad_filters_are_inline_and_kept(app, world, ledger, query, field, message):
    auditor = _staff(app, world.auditor_a)
    response = auditor.get(f"/console/audit?{query}&reference_type=redemption")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert f'id="e-{field}"' in html and message in text_of(response)
    assert 'value="redemption"' in html  # what was typed stays
    assert '<details class="more" open>' in html  # the less used filters show when set
    # The export of a bad search is the same page with the same error, not a file.
    exported = auditor.get(f"/console/audit/export.csv?{query}")
    if field != "cursor":
        assert exported.status_code == 422 and exported.mimetype == "text/html"


def test_english_errors(app, world, ledger):
    auditor = _staff(app, world.auditor_a)
    auditor.post("/prefs", {"lang": "en"})
    response = auditor.get("/console/audit?max_amount=x")
    assert response.status_code == 422 and "Enter a whole number" in text_of(response)


def test_keyset_pages_older_and_newer(app, client, world, ledger):
    for _ in range(21):
        assert award(client, app, world.organizer_a, world.resident, "garbage-sorting"
                     ).status_code == 201
    auditor = _staff(app, world.auditor_a)
    first = auditor.get("/console/audit?rule=garbage-sorting")
    html = first.get_data(as_text=True)
    assert len(_rows(first)) == 20 and 'rel="prev"' not in html
    assert re.search(r'data-testid="total-count">\s*24\s*<', html)
    older = re.search(r'rel="next" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "rule=garbage-sorting" in older
    second = auditor.get(older)
    assert len(_rows(second)) == 4 and not set(_rows(second)) & set(_rows(first))
    assert all(int(a) > int(b) for a in _rows(first) for b in _rows(second))
    # Totals are of the whole set (3 + 21 in scope), on every page.
    assert re.search(r'data-testid="total-count">\s*24\s*<', second.get_data(as_text=True))
    newer = re.search(r'rel="prev" href="([^"]+)"', second.get_data(as_text=True))
    back = auditor.get(newer.group(1).replace("&amp;", "&"))
    assert _rows(back) == _rows(first)


def test_export_csv_and_ndjson_of_the_filtered_search(app, world, ledger):
    auditor = _staff(app, world.auditor_a)
    page = auditor.get(f"/console/audit?resident_id={world.resident2}")
    link = re.search(r'data-testid="export-csv" href="([^"]+)"',
                     page.get_data(as_text=True)).group(1).replace("&amp;", "&")
    assert f"resident_id={world.resident2}" in link
    exported = auditor.get(link)
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert 'filename="ledger-transactions.csv"' in exported.headers["Content-Disposition"]
    assert exported.is_streamed
    rows = _csv(exported)
    assert [int(r["id"]) for r in rows] == sorted(ledger["a"][2:])  # oldest first
    assert {r["rule_code"] for r in rows} == {"garbage-sorting", "stair-cleaning"}
    assert rows[-1]["memo"] == "清扫楼道" and rows[-1]["community_name"] == "甲社区"
    ndjson = auditor.get(link.replace("export.csv", "export.ndjson"))
    assert ndjson.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in ndjson.get_data(as_text=True).splitlines()]
    assert [line["id"] for line in lines] == sorted(ledger["a"][2:])
    # Each download is in the action log with its filters, as the API's export.
    with app.app_context():
        logged = db.session.execute(text(
            "SELECT actor_user_id, target_id, detail FROM audit_events "
            "WHERE action = 'audit.export' ORDER BY id")).all()
        db.session.remove()
    assert [(row[0], row[1]) for row in logged] == [(world.auditor_a, "csv"),
                                                    (world.auditor_a, "ndjson")]
    detail = logged[0][2] if isinstance(logged[0][2], dict) else json.loads(logged[0][2])
    assert detail["filters"] == {"resident_id": world.resident2}
