"""Sign-in, refresh rotation and reuse detection, logout, password change, lockout, limits."""

from __future__ import annotations

import time

import pytest

from tests.factories import PASSWORD, make_resident, make_tree, make_user

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
PASSWORD_URL = "/api/v1/auth/password"


def login(client, identifier: str, password: str = PASSWORD, **environ):
    return client.post(
        TOKEN, json={"username": identifier, "password": password}, environ_base=environ
    )


def refresh_status(client, pair: dict) -> int:
    return client.post(REFRESH, json={"refresh_token": pair["refresh_token"]}).status_code


def bearer(access: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access}"}


def test_sign_in_by_username(app, client):
    user_id = make_user(app, username="wang.li", name="王丽")
    r = login(client, "wang.li")
    assert r.status_code == 200, r.get_json()
    pair = r.get_json()
    assert pair["token_type"] == "Bearer"
    assert 0 < pair["expires_in"] <= 900
    assert pair["refresh_token"] and pair["refresh_token"] != pair["access_token"]
    me = client.get("/api/v1/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    assert me.get_json()["display_name"] == "王丽"
    assert me.get_json()["id"] == user_id


def test_sign_in_by_phone(app, client):
    tree = make_tree(app)
    make_resident(app, community_id=tree.community_a, phone="13912345678", name="李四")
    r = login(client, "13912345678")
    assert r.status_code == 200, r.get_json()
    me = client.get("/api/v1/me", headers=bearer(r.get_json()["access_token"]))
    assert me.get_json()["display_name"] == "李四"


@pytest.mark.parametrize("identifier,password", [("nobody", PASSWORD), ("zhao", "wrong-pass-1")])
def test_wrong_account_or_password_is_the_same_401(app, client, identifier, password):
    make_user(app, username="zhao")
    r = login(client, identifier, password)
    assert r.status_code == 401
    assert r.get_json()["code"] == "invalid_credentials"


def test_disabled_account_cannot_sign_in(app, client):
    from pointsvc.extensions import db
    from pointsvc.people.models import User

    user_id = make_user(app, username="gone")
    pair = login(client, "gone").get_json()
    with app.app_context():
        db.session.get(User, user_id).is_active = False
        db.session.commit()
    assert login(client, "gone").status_code == 401
    assert client.get("/api/v1/me", headers=bearer(pair["access_token"])).status_code == 401
    r = client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 401


def test_refresh_rotates_the_token(app, client):
    make_user(app, username="qian")
    first = login(client, "qian").get_json()
    r = client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.get_json()
    second = r.get_json()
    assert second["refresh_token"] != first["refresh_token"]
    assert client.get("/api/v1/me", headers=bearer(second["access_token"])).status_code == 200
    r = client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 200


def test_reuse_of_a_rotated_refresh_token_revokes_the_whole_family(app, client):
    make_user(app, username="sun")
    first = login(client, "sun").get_json()
    other_session = login(client, "sun").get_json()
    second = client.post(REFRESH, json={"refresh_token": first["refresh_token"]}).get_json()
    third = client.post(REFRESH, json={"refresh_token": second["refresh_token"]}).get_json()

    stolen = client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert stolen.status_code == 401
    assert stolen.get_json()["code"] == "refresh_token_reused"
    # The newest token of the family dies with it ...
    r = client.post(REFRESH, json={"refresh_token": third["refresh_token"]})
    assert r.status_code == 401
    assert r.get_json()["code"] == "invalid_token"
    # ... while the user's other session (another family) lives on.
    r = client.post(REFRESH, json={"refresh_token": other_session["refresh_token"]})
    assert r.status_code == 200


def test_unknown_or_malformed_refresh_token_is_401_or_422(app, client):
    r = client.post(REFRESH, json={"refresh_token": "x" * 43})
    assert r.status_code == 401 and r.get_json()["code"] == "invalid_token"
    r = client.post(REFRESH, json={"refresh_token": 42})
    assert r.status_code == 422


def test_expired_refresh_token_is_refused(app, client):
    from datetime import timedelta

    from sqlalchemy import update

    from pointsvc.common import utcnow
    from pointsvc.extensions import db
    from pointsvc.security.models import RefreshToken

    make_user(app, username="old")
    pair = login(client, "old").get_json()
    with app.app_context():
        db.session.execute(update(RefreshToken).values(expires_at=utcnow() - timedelta(days=1)))
        db.session.commit()
    r = client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 401 and r.get_json()["code"] == "invalid_token"


def test_logout_revokes_this_session_only(app, client):
    make_user(app, username="zhou")
    one = login(client, "zhou").get_json()
    two = login(client, "zhou").get_json()
    r = client.post(
        LOGOUT, json={"refresh_token": one["refresh_token"]}, headers=bearer(one["access_token"])
    )
    assert r.status_code == 204
    r = client.post(REFRESH, json={"refresh_token": one["refresh_token"]})
    assert r.status_code == 401 and r.get_json()["code"] == "invalid_token"
    assert client.post(REFRESH, json={"refresh_token": two["refresh_token"]}).status_code == 200


def test_logout_without_a_token_ends_every_session(app, client):
    make_user(app, username="wu")
    one = login(client, "wu").get_json()
    two = login(client, "wu").get_json()
    r = client.post(LOGOUT, json={}, headers=bearer(one["access_token"]))
    assert r.status_code == 204
    for pair in (one, two):
        assert refresh_status(client, pair) == 401


def test_logout_cannot_revoke_someone_elses_session(app, client):
    make_user(app, username="victim")
    make_user(app, username="mallory")
    victim = login(client, "victim").get_json()
    mallory = login(client, "mallory").get_json()
    r = client.post(
        LOGOUT,
        json={"refresh_token": victim["refresh_token"]},
        headers=bearer(mallory["access_token"]),
    )
    assert r.status_code == 204
    assert client.post(REFRESH, json={"refresh_token": victim["refresh_token"]}).status_code == 200


def test_logout_needs_authentication(client):
    assert client.post(LOGOUT, json={}).status_code == 401


def _next_second() -> None:
    # Token `iat` has whole seconds: let the password change happen in a later second.
    time.sleep(1.05 - (time.time() % 1))


def test_password_change_ends_every_session(app, client):
    make_user(app, username="zheng")
    one = login(client, "zheng").get_json()
    two = login(client, "zheng").get_json()
    _next_second()
    r = client.post(
        PASSWORD_URL,
        json={"current_password": PASSWORD, "new_password": "new-secret-77"},
        headers=bearer(one["access_token"]),
    )
    assert r.status_code == 204, r.get_json()
    for pair in (one, two):
        assert refresh_status(client, pair) == 401
        assert client.get("/api/v1/me", headers=bearer(pair["access_token"])).status_code == 401
    assert login(client, "zheng").status_code == 401
    fresh = login(client, "zheng", "new-secret-77")
    assert fresh.status_code == 200
    me = client.get("/api/v1/me", headers=bearer(fresh.get_json()["access_token"]))
    assert me.status_code == 200


def test_password_change_checks_the_current_password(app, client):
    make_user(app, username="feng")
    pair = login(client, "feng").get_json()
    r = client.post(
        PASSWORD_URL,
        json={"current_password": "not-it-000", "new_password": "new-secret-77"},
        headers=bearer(pair["access_token"]),
    )
    assert r.status_code == 422
    assert "current_password" in r.get_json()["errors"]
    r = client.post(
        PASSWORD_URL,
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=bearer(pair["access_token"]),
    )
    assert r.status_code == 422 and "new_password" in r.get_json()["errors"]
    assert login(client, "feng").status_code == 200  # unchanged


def test_failed_logins_lock_the_account(make_app):
    app = make_app(LOGIN_MAX_FAILURES=3, LOGIN_LOCK_SECONDS=600)
    client = app.test_client()
    make_user(app, username="chen")
    for _ in range(3):
        assert login(client, "chen", "wrong-pass-1").status_code == 401
    r = login(client, "chen")  # even the right password is refused while locked
    assert r.status_code == 429
    assert r.get_json()["code"] == "account_locked"
    assert 590 <= int(r.headers["Retry-After"]) <= 601


def test_the_lock_expires(make_app):
    from datetime import timedelta

    from sqlalchemy import update

    from pointsvc.common import utcnow
    from pointsvc.extensions import db
    from pointsvc.people.models import User

    app = make_app(LOGIN_MAX_FAILURES=2)
    client = app.test_client()
    make_user(app, username="yang")
    for _ in range(2):
        login(client, "yang", "wrong-pass-1")
    assert login(client, "yang").status_code == 429
    with app.app_context():
        db.session.execute(update(User).values(locked_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert login(client, "yang").status_code == 200


def test_a_success_resets_the_failure_count(make_app):
    app = make_app(LOGIN_MAX_FAILURES=3)
    client = app.test_client()
    make_user(app, username="he")
    for _ in range(2):
        login(client, "he", "wrong-pass-1")
    assert login(client, "he").status_code == 200
    for _ in range(2):
        assert login(client, "he", "wrong-pass-1").status_code == 401
    assert login(client, "he").status_code == 200


def test_failed_logins_are_rate_limited_per_client_address(make_app):
    app = make_app(LOGIN_RATE_LIMIT="4 per minute", LOGIN_MAX_FAILURES=100)
    client = app.test_client()
    for n in range(4):
        assert login(client, f"guess{n}", "x", REMOTE_ADDR="203.0.113.7").status_code == 401
    r = login(client, "guess9", "x", REMOTE_ADDR="203.0.113.7")
    assert r.status_code == 429 and r.get_json()["code"] == "rate_limited"
    assert int(r.headers["Retry-After"]) > 0
    # another address is not affected
    assert login(client, "guess9", "x", REMOTE_ADDR="198.51.100.1").status_code == 401


def test_failed_logins_are_rate_limited_per_account(make_app):
    app = make_app(LOGIN_RATE_LIMIT="4 per minute", LOGIN_MAX_FAILURES=100)
    client = app.test_client()
    make_user(app, username="target")
    for n in range(4):
        r = login(client, "target", "wrong-pass-1", REMOTE_ADDR=f"203.0.113.{n + 1}")
        assert r.status_code == 401
    r = login(client, "target", "wrong-pass-1", REMOTE_ADDR="203.0.113.99")
    assert r.status_code == 429 and r.get_json()["code"] == "rate_limited"
    # another account from a fresh address is not affected
    assert login(client, "someone-else", "x", REMOTE_ADDR="203.0.113.100").status_code == 401


def test_successful_logins_are_not_counted(make_app):
    app = make_app(LOGIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    make_user(app, username="busy")
    for _ in range(6):
        assert login(client, "busy").status_code == 200
