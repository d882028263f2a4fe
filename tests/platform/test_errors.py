"""Every failure is application/problem+json with a stable code, a localised title and the
request id — whatever produced it (routing, parsing, validation, policy, service, a bug)."""

from __future__ import annotations

import logging

import pytest

from pointsvc.errors import TITLES
from tests.factories import PASSWORD, auth, make_resident, make_tree, make_user

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["title"] == TITLES[code][0]  # Chinese by default
    assert body["type"].endswith("/" + code)
    assert body["request_id"] and body["request_id"] == response.headers["X-Request-ID"]
    return body


def test_malformed_json_is_400(client):
    r = client.post("/api/v1/auth/token", data='{"username": ', content_type="application/json")
    assert_problem(r, 400, "malformed_json")
    assert "Retry-After" not in r.headers


def test_unauthenticated_is_401_in_chinese_or_english(client):
    body = assert_problem(client.get("/api/v1/me"), 401, "unauthorized")
    assert body["title"] == "需要登录"
    r = client.get("/api/v1/me", headers={"Accept-Language": "en"})
    assert r.get_json()["title"] == "Authentication required"
    r = client.get("/api/v1/me", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert r.get_json()["title"] == "Authentication required"
    r = client.get("/api/v1/me", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert r.get_json()["title"] == "需要登录"


def test_english_title_for_every_code_is_defined():
    for code, (zh, en) in TITLES.items():
        assert zh and en and zh != en, code
        assert code == code.lower() and " " not in code


def test_forbidden_is_403(app, client):
    tree = make_tree(app)
    user_id, _ = make_resident(app, community_id=tree.community_a)
    body = {"parent_id": tree.community_a, "name_zh": "新网格", "name_en": "New grid"}
    r = client.post("/api/v1/orgs", json=body, headers=auth(app, user_id))
    assert_problem(r, 403, "forbidden")
    english = auth(app, user_id, **{"Accept-Language": "en"})
    r = client.post("/api/v1/orgs", json=body, headers=english)
    assert r.get_json()["title"] == "You are not allowed to do this"


def test_unknown_route_and_unknown_id_are_404(app, client):
    assert_problem(client.get("/api/v1/no-such-thing"), 404, "not_found")
    assert_problem(client.get("/no-such-page-either"), 404, "not_found")
    tree = make_tree(app)
    admin = make_user(app, role="admin", node_id=tree.district)
    assert_problem(client.get("/api/v1/orgs/987654321", headers=auth(app, admin)), 404, "not_found")


def test_wrong_method_is_405_with_allow(client):
    r = client.get("/api/v1/auth/token")
    assert_problem(r, 405, "method_not_allowed")
    allowed = {m.strip() for m in r.headers["Allow"].split(",")}
    assert "POST" in allowed and "GET" not in allowed
    r = client.delete("/api/v1/me")
    assert_problem(r, 405, "method_not_allowed")
    assert "PATCH" in r.headers["Allow"]


def test_conflict_is_409(app, client):
    tree = make_tree(app)
    admin = make_user(app, role="admin", node_id=tree.district)
    body = {"parent_id": tree.community_a, "name_zh": "甲一网格", "name_en": "Grid A1"}
    r = client.post("/api/v1/orgs", json=body, headers=auth(app, admin))
    assert_problem(r, 409, "conflict")


def test_body_over_one_mib_is_413(client):
    big = b'{"username": "' + b"x" * (1024 * 1024) + b'", "password": "p"}'
    r = client.post("/api/v1/auth/token", data=big, content_type="application/json")
    assert_problem(r, 413, "payload_too_large")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_non_json_body_is_415(client, content_type):
    r = client.post("/api/v1/auth/token", data="username=a&password=b", content_type=content_type)
    assert_problem(r, 415, "unsupported_media_type")


def test_json_suffix_media_types_are_accepted(client):
    r = client.post(
        "/api/v1/auth/token", data='{"username": "x"}', content_type="application/merge-patch+json"
    )
    assert r.status_code == 422  # parsed, then validated — not a 415


def test_validation_is_422_with_field_details(client):
    r = client.post(
        "/api/v1/auth/token", json={"username": 12, "password": "x", "is_admin": True}
    )
    body = assert_problem(r, 422, "validation_failed")
    assert body["errors"]["username"] == ["Not a valid string."]
    assert body["errors"]["is_admin"] == ["Unknown field."]
    assert "password" not in body["errors"]
    r = client.post("/api/v1/auth/token", json={})
    body = assert_problem(r, 422, "validation_failed")
    assert set(body["errors"]) == {"username", "password"}
    r = client.post("/api/v1/auth/token", json=["a", "b"])
    assert_problem(r, 422, "validation_failed")


def test_unknown_query_parameters_and_wrong_types_are_422(app, client):
    tree = make_tree(app)
    admin = make_user(app, role="admin", node_id=tree.district)
    r = client.get("/api/v1/orgs?limit=ten", headers=auth(app, admin))
    body = assert_problem(r, 422, "validation_failed")
    assert "limit" in body["errors"]
    r = client.get("/api/v1/orgs?bogus=1", headers=auth(app, admin))
    body = assert_problem(r, 422, "validation_failed")
    assert body["errors"] == {"bogus": ["Unknown field."]}
    r = client.get("/api/v1/orgs?cursor=%%%", headers=auth(app, admin))
    assert_problem(r, 422, "validation_failed")


def test_login_rate_limit_is_429_with_retry_after(make_app):
    app = make_app(LOGIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    for _ in range(3):
        r = client.post("/api/v1/auth/token", json={"username": "nobody", "password": "x"})
        assert r.status_code == 401
        assert "Retry-After" not in r.headers
    r = client.post("/api/v1/auth/token", json={"username": "nobody", "password": "x"})
    body = assert_problem(r, 429, "rate_limited")
    assert 0 < int(r.headers["Retry-After"]) <= 60
    assert body["title"] == TITLES["rate_limited"][0]


def _app_with_boom(make_app):
    from pointsvc.security.authz import PUBLIC, policy

    app = make_app()

    @policy(PUBLIC)
    def boom():
        raise RuntimeError("secret internals: password=hunter2")

    app.add_url_rule("/api/v1/_test/boom", "test_boom", boom, methods=["GET"])
    return app


def test_unexpected_error_is_500_without_a_trace(make_app, caplog):
    app = _app_with_boom(make_app)
    client = app.test_client()
    with caplog.at_level(logging.ERROR, logger="pointsvc.errors"):
        r = client.get("/api/v1/_test/boom", headers={"X-Request-ID": "trace-me-123"})
    body = assert_problem(r, 500, "internal_error")
    assert body["request_id"] == "trace-me-123"
    text = r.get_data(as_text=True)
    assert "Traceback" not in text and "hunter2" not in text and "RuntimeError" not in text
    records = [rec for rec in caplog.records if rec.name == "pointsvc.errors"]
    assert records, "the 500 was not logged"
    assert "trace-me-123" in records[-1].getMessage()
    assert records[-1].exc_info and records[-1].exc_info[0] is RuntimeError


def test_unexpected_error_in_english(make_app):
    client = _app_with_boom(make_app).test_client()
    r = client.get("/api/v1/_test/boom", headers={"Accept-Language": "en"})
    assert r.status_code == 500
    assert r.get_json()["title"] == "Internal server error"


def test_problem_bodies_never_leak_the_password(app, client):
    make_user(app, username="leak", password=PASSWORD)
    r = client.post("/api/v1/auth/token", json={"username": "leak", "password": "wrong-pass-1"})
    assert_problem(r, 401, "invalid_credentials")
    assert "wrong-pass-1" not in r.get_data(as_text=True)
