"""Settings: development keys are generated once; production refuses unsafe set-ups."""

from __future__ import annotations

import base64
import json
import secrets

import pytest

from pointsvc import create_app
from pointsvc.config import ConfigError, build_config

SECRET_ENV = (
    "POINTSVC_JWT_SECRET",
    "POINTSVC_QR_MAC_KEY",
    "POINTSVC_SECRET_KEY",
    "POINTSVC_ED25519_PRIVATE_KEY",
)


def _strong() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No POINTSVC_* variable of the developer's shell leaks into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith("POINTSVC_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def prod_env(clean_env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    clean_env.setenv("POINTSVC_ENV", "production")
    clean_env.setenv("POINTSVC_DATABASE_URL", "postgresql+psycopg://u@127.0.0.1:1/none")
    for name in SECRET_ENV:
        clean_env.setenv(name, _strong())
    return clean_env


def test_dev_keys_are_generated_once_and_reused(clean_env, tmp_path):
    instance = tmp_path / "instance"
    first = create_app({"TESTING": True}, instance_path=str(instance))
    stored = json.loads((instance / "secrets.json").read_text())
    assert set(stored) == {"JWT_SECRET", "QR_MAC_KEY", "ED25519_PRIVATE_KEY", "SECRET_KEY"}
    assert (instance / "secrets.json").stat().st_mode & 0o077 == 0  # owner-only

    second = create_app({"TESTING": True, "INSTANCE_PATH": str(instance)})
    assert second.instance_path == str(instance)
    for key in ("JWT_SECRET_BYTES", "QR_MAC_KEY_BYTES", "SECRET_KEY"):
        assert first.config[key] == second.config[key]
        assert len(first.config[key]) == 32
    assert first.config["JWT_SECRET_BYTES"] != first.config["QR_MAC_KEY_BYTES"]
    # The default database lives in the chosen instance folder too.
    assert str(instance) in second.config["SQLALCHEMY_DATABASE_URI"]

    other = create_app({"TESTING": True}, instance_path=str(tmp_path / "elsewhere"))
    assert other.config["JWT_SECRET_BYTES"] != first.config["JWT_SECRET_BYTES"]


def test_given_keys_win_over_generated_ones(clean_env, tmp_path):
    key = _strong()
    clean_env.setenv("POINTSVC_JWT_SECRET", key)
    app = create_app({"TESTING": True}, instance_path=str(tmp_path))
    assert app.config["JWT_SECRET_BYTES"] == base64.urlsafe_b64decode(key)


def test_production_with_strong_keys_starts_and_hardens_cookies(prod_env, tmp_path):
    config = build_config(str(tmp_path))
    assert config["ENV_NAME"] == "production"
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["SESSION_COOKIE_HTTPONLY"] is True
    assert config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert not (tmp_path / "secrets.json").exists()  # production never invents keys


@pytest.mark.parametrize("name", SECRET_ENV)
def test_production_refuses_a_missing_key(prod_env, tmp_path, name):
    prod_env.delenv(name)
    with pytest.raises(ConfigError, match=name):
        build_config(str(tmp_path))
    assert not (tmp_path / "secrets.json").exists()


@pytest.mark.parametrize("name", SECRET_ENV)
@pytest.mark.parametrize(
    "weak",
    [
        "c2hvcnQ",  # base64 of "short"
        base64.b64encode(b"\x00" * 32).decode(),  # long enough but not random
        "a" * 44,
    ],
)
def test_production_refuses_a_weak_key(prod_env, tmp_path, name, weak):
    prod_env.setenv(name, weak)
    with pytest.raises(ConfigError, match=name):
        build_config(str(tmp_path))


def test_production_accepts_a_pem_ed25519_key(prod_env, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    prod_env.setenv("POINTSVC_ED25519_PRIVATE_KEY", pem)
    assert build_config(str(tmp_path))["ED25519_PRIVATE_KEY"] is not None


def test_production_refuses_sqlite_unless_allowed(prod_env, tmp_path):
    prod_env.setenv("POINTSVC_DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    with pytest.raises(ConfigError, match="POINTSVC_DATABASE_URL.*POINTSVC_ALLOW_SQLITE"):
        build_config(str(tmp_path))
    prod_env.delenv("POINTSVC_DATABASE_URL")  # the default is SQLite as well
    with pytest.raises(ConfigError, match="POINTSVC_DATABASE_URL"):
        build_config(str(tmp_path))
    prod_env.setenv("POINTSVC_ALLOW_SQLITE", "1")
    assert build_config(str(tmp_path))["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")


def test_create_app_refuses_unsafe_production(prod_env, tmp_path):
    prod_env.delenv("POINTSVC_JWT_SECRET")
    with pytest.raises(ConfigError, match="POINTSVC_JWT_SECRET"):
        create_app(instance_path=str(tmp_path))


def test_bad_integer_setting_names_the_variable(clean_env, tmp_path):
    clean_env.setenv("POINTSVC_LOGIN_MAX_FAILURES", "five")
    with pytest.raises(ConfigError, match="POINTSVC_LOGIN_MAX_FAILURES"):
        build_config(str(tmp_path))


def test_the_leaderboard_drainer_setting_takes_thread_or_process_only(clean_env, tmp_path):
    assert build_config(str(tmp_path))["LEADERBOARD_DRAINER"] == "thread"
    clean_env.setenv("POINTSVC_LEADERBOARD_DRAINER", "process")
    assert build_config(str(tmp_path))["LEADERBOARD_DRAINER"] == "process"
    clean_env.setenv("POINTSVC_LEADERBOARD_DRAINER", "cron")
    with pytest.raises(ConfigError, match="POINTSVC_LEADERBOARD_DRAINER"):
        build_config(str(tmp_path))
