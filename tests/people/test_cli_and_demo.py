"""flask people import, flask users create-admin, flask demo seed."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from pointsvc import demo
from pointsvc.extensions import db
from pointsvc.orgs.models import OrgNode
from pointsvc.people.models import Household, Resident, RoleGrant, StaffHousehold, User

HEADER = "name,phone,community_id,grid_id,household,is_minor\n"


def _counts(app) -> dict[str, int]:
    with app.app_context():
        return {
            model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in (OrgNode, User, RoleGrant, Resident, Household, StaffHousehold)
        }


def _all_counts(app) -> dict[str, int]:
    with app.app_context():
        return {
            table.name: db.session.scalar(select(func.count()).select_from(table))
            for table in db.metadata.sorted_tables
        }


def test_cli_import_from_a_gbk_file(app, world, tmp_path):
    path = tmp_path / "residents.csv"
    path.write_bytes(
        (HEADER + "赵六,13800005001,,,2幢,0\n钱七,13800005002,,,2幢,1\n").encode("gbk")
    )
    runner = app.test_cli_runner()
    args = ["people", "import", str(path), "--community-id", str(world.tree.community_a)]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    assert "created 2" in result.output
    assert "households created 1" in result.output
    again = runner.invoke(args=args)
    assert again.exit_code == 0, again.output
    assert "created 0, unchanged 2" in again.output
    assert _counts(app)["residents"] == 2


def test_cli_import_reports_errors_and_imports_nothing(app, world, tmp_path):
    path = tmp_path / "bad.csv"
    a = world.tree.community_a
    path.write_text(HEADER + f"好人,13800006001,{a},,,0\n坏人,123,{a},,,0\n", encoding="utf-8")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["people", "import", str(path)])
    assert result.exit_code == 1
    assert "line 3 (row 2) [phone]" in result.output
    assert "import_failed" in result.output
    assert _counts(app)["residents"] == 0

    result = runner.invoke(args=["people", "import", str(path), "--partial"])
    assert result.exit_code == 0, result.output
    assert "created 1" in result.output and "failed 1" in result.output
    assert _counts(app)["residents"] == 1

    result = runner.invoke(
        args=["people", "import", str(path), "--community-id", str(world.tree.grid_a)]
    )
    assert result.exit_code == 1
    assert "--community-id" in result.output


def test_create_admin_is_idempotent(app, client):
    runner = app.test_cli_runner()
    args = [
        "users", "create-admin", "--username", "chief", "--password", "chief-pass-2026",
        "--name", "区长", "--district", "西湖区", "--district-en", "Xihu District",
    ]  # fmt: skip
    first = runner.invoke(args=args)
    assert first.exit_code == 0, first.output
    assert "created" in first.output
    counts = _counts(app)
    second = runner.invoke(args=args)
    assert second.exit_code == 0, second.output
    assert "exists" in second.output and "created" not in second.output
    assert _counts(app) == counts

    r = client.post("/api/v1/auth/token", json={"username": "chief", "password": "chief-pass-2026"})
    assert r.status_code == 200
    me = client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {r.get_json()['access_token']}"}
    ).get_json()
    assert me["roles"] == ["admin"]
    with app.app_context():
        district = db.session.scalar(select(OrgNode).where(OrgNode.name_zh == "西湖区"))
        assert (district.level, district.name_en) == ("district", "Xihu District")
    assert me["grants"] == [{"role": "admin", "org_node_id": district.id}]

    bad = runner.invoke(args=[*args[:4], "--password", "short", *args[6:]])
    assert bad.exit_code == 2
    assert "--password" in bad.output


def test_demo_seed_is_idempotent_and_its_logins_work(app, client, monkeypatch):
    seen: list[dict] = []
    # Every package's seeder runs (the counts below cover them too), then our recorder.
    monkeypatch.setattr(demo, "EXTRA_SEEDERS", [*demo._seeders(), seen.append])
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "seed"])
    assert first.exit_code == 0, first.output
    assert "admin-demo-2026" in first.output
    counts = _counts(app)
    every_table = _all_counts(app)
    assert counts["residents"] == 40
    assert counts["org_nodes"] == 1 + 2 + 3 + 5
    assert counts["staff_households"] == 1
    assert len(seen) == 1
    context = seen[0]
    assert context["merchant_user_id"] and context["admin_user_id"]
    assert len(context["community_ids"]) == 3

    second = runner.invoke(args=["demo", "seed"])
    assert second.exit_code == 0, second.output
    assert "nothing was added" in second.output
    assert "admin-demo-2026" in second.output
    assert _all_counts(app) == every_table
    assert len(seen) == 1  # extra seeders run once

    tokens = {}
    for login, password, *_ in demo.STAFF_LOGINS:
        r = client.post("/api/v1/auth/token", json={"username": login, "password": password})
        assert r.status_code == 200, (login, r.get_json())
        tokens[login] = r.get_json()["access_token"]
    residents = {}
    for phone, name, _ in demo.RESIDENT_LOGINS:
        r = client.post(
            "/api/v1/auth/token", json={"username": phone, "password": demo.RESIDENT_PASSWORD}
        )
        assert r.status_code == 200, (phone, r.get_json())
        me = client.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {r.get_json()['access_token']}"}
        ).get_json()
        assert me["display_name"] == name
        residents[name] = me["resident"]["community_id"]
    assert len(set(residents.values())) == 2  # the two demo residents live apart

    def listed(login):
        r = client.get(
            "/api/v1/residents",
            query_string={"limit": 200},
            headers={"Authorization": f"Bearer {tokens[login]}"},
        )
        return r.get_json()["items"]

    assert len(listed("admin")) == 40
    organizer_sees = listed("organizer")
    assert 0 < len(organizer_sees) < 40
    assert {item["community_id"] for item in organizer_sees} == {residents["张伟"]}
    assert all("****" in item["phone"] for item in organizer_sees)
    merchant = client.get(
        "/api/v1/residents", headers={"Authorization": f"Bearer {tokens['merchant']}"}
    )
    assert merchant.status_code == 403


def test_demo_refuses_a_database_holding_its_logins(app):
    from tests.factories import make_user

    make_user(app, username="admin")
    with app.app_context(), pytest.raises(demo.DemoConflict, match="admin"):
        demo.seed_demo()
    assert _counts(app)["org_nodes"] == 0
