"""Access tokens that were not issued by us, or no longer valid, are refused with 401."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pointsvc.security.tokens import ALGORITHM, key_id
from tests.factories import auth, make_user

OTHER_KEY = b"another-key-that-is-also-long-enough-0123456789"


def claims(app, user_id: int, **changes) -> dict:
    now = datetime.now(UTC)
    base = {
        "sub": str(user_id),
        "iss": app.config["JWT_ISSUER"],
        "aud": app.config["JWT_AUDIENCE"],
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=5),
        "jti": "t1",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(app, payload: dict, *, key=None, algorithm: str = ALGORITHM, kid: str | None = "") -> str:
    with app.app_context():
        headers = {"kid": key_id() if kid == "" else kid} if kid is not None else {}
        secret = app.config["JWT_SECRET_BYTES"] if key is None else key
        return jwt.encode(payload, secret, algorithm=algorithm, headers=headers)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def assert_refused(client, token: str) -> None:
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.get_json()
    assert r.get_json()["code"] in {"invalid_token", "unauthorized"}
    assert r.mimetype == "application/problem+json"


def test_a_good_token_is_accepted(app, client):
    user_id = make_user(app)
    token = sign(app, claims(app, user_id))
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    r = client.get("/api/v1/me", headers={"Authorization": f"bearer {token}"})
    assert r.status_code == 200


def test_alg_none_is_refused(app, client):
    user_id = make_user(app)
    with app.app_context():
        kid = key_id()
    header = _b64({"alg": "none", "typ": "JWT", "kid": kid})
    body = _b64({k: (int(v.timestamp()) if isinstance(v, datetime) else v)
                 for k, v in claims(app, user_id).items()})
    assert_refused(client, f"{header}.{body}.")
    assert_refused(client, jwt.encode(claims(app, user_id), None, algorithm="none"))


def test_another_key_is_refused(app, client):
    user_id = make_user(app)
    assert_refused(client, sign(app, claims(app, user_id), key=OTHER_KEY))


# The attacker's forgery uses our (46-byte) test key with a longer hash: PyJWT warns.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_another_hmac_algorithm_with_our_key_is_refused(app, client, algorithm):
    user_id = make_user(app)
    assert_refused(client, sign(app, claims(app, user_id), algorithm=algorithm))


def test_rs256_is_refused(app, client):
    user_id = make_user(app)
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert_refused(client, sign(app, claims(app, user_id), key=private, algorithm="RS256"))


def test_expired_token_is_refused(app, client):
    user_id = make_user(app)
    past = datetime.now(UTC) - timedelta(hours=1)
    token = sign(app, claims(app, user_id, iat=past, nbf=past, exp=past + timedelta(minutes=10)))
    assert_refused(client, token)


def test_token_not_yet_valid_is_refused(app, client):
    user_id = make_user(app)
    future = datetime.now(UTC) + timedelta(hours=1)
    assert_refused(client, sign(app, claims(app, user_id, nbf=future, exp=future)))


@pytest.mark.parametrize(
    "change",
    [
        {"aud": "someone-else"},
        {"iss": "https://evil.example"},
        {"exp": None},
        {"iat": None},
        {"sub": None},
        {"aud": None},
        {"iss": None},
        {"sub": "admin"},
        {"sub": "²"},
        {"sub": "99999999999999999999999999"},
        {"sub": "0"},
        {"sub": 1},
    ],
    ids=lambda change: "-".join(f"{k}={v}" for k, v in change.items()),
)
def test_wrong_or_missing_claims_are_refused(app, client, change):
    user_id = make_user(app)
    assert_refused(client, sign(app, claims(app, user_id, **change)))


def test_wrong_or_missing_kid_is_refused(app, client):
    user_id = make_user(app)
    assert_refused(client, sign(app, claims(app, user_id), kid="0123456789abcdef"))
    assert_refused(client, sign(app, claims(app, user_id), kid=None))


def test_token_of_an_unknown_user_is_refused(app, client):
    assert_refused(client, sign(app, claims(app, 987654)))


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b.c",
        "....",
        "eyJhbGciOiJIUzI1NiJ9",
        _b64({"alg": "HS256"}) + "." + _b64({"sub": "1"}) + ".",
        _b64(["not", "an", "object"]) + ".e30.c2ln",
        "ey" + "A" * 5000,
        "令牌.令牌.令牌",
    ],
)
def test_garbage_is_refused(app, client, token):
    assert_refused(client, token)


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer    ", "Basic dXNlcjpwYXNz", "Token abc", "bearer"],
)
def test_missing_or_odd_authorization_header_is_401(client, header):
    r = client.get("/api/v1/me", headers={"Authorization": header} if header else {})
    assert r.status_code == 401
    assert r.get_json()["code"] == "unauthorized"


def test_revoked_refresh_token_is_refused(app, client):
    make_user(app, username="kong")
    pair = client.post(
        "/api/v1/auth/token", json={"username": "kong", "password": "correct-horse-9"}
    ).get_json()
    r = client.post(
        "/api/v1/auth/logout",
        json={"refresh_token": pair["refresh_token"]},
        headers={"Authorization": f"Bearer {pair['access_token']}"},
    )
    assert r.status_code == 204
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 401 and r.get_json()["code"] == "invalid_token"


def test_a_refresh_token_is_not_an_access_token(app, client):
    make_user(app, username="lu")
    pair = client.post(
        "/api/v1/auth/token", json={"username": "lu", "password": "correct-horse-9"}
    ).get_json()
    assert_refused(client, pair["refresh_token"])
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["access_token"]})
    assert r.status_code in (401, 422)


def test_issued_tokens_carry_the_pinned_header_and_claims(app):
    user_id = make_user(app)
    with app.app_context():
        token = auth(app, user_id)["Authorization"].split()[1]
        header = jwt.get_unverified_header(token)
        payload = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "HS256" and header["kid"]
    assert {"sub", "iss", "aud", "iat", "exp", "jti"} <= set(payload)
    assert payload["exp"] - payload["iat"] <= 900
