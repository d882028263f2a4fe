"""Settings: defaults, POINTSVC_* environment variables, refusal of unsafe production set-ups."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

MIN_SECRET_BYTES = 32


class ConfigError(RuntimeError):
    """The configuration is unsafe or incomplete; the message names the setting."""


def _env(name: str, default: Any = None) -> Any:
    return os.environ.get(f"POINTSVC_{name}", default)


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"POINTSVC_{name} must be an integer, got {raw!r}") from exc


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_choice(name: str, choices: tuple[str, ...]) -> str:
    """One of choices (the first when unset)."""
    raw = (_env(name) or "").strip() or choices[0]
    if raw not in choices:
        raise ConfigError(f"POINTSVC_{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def decode_secret(raw: str) -> bytes:
    """Secrets are given as base64 (standard or URL-safe); anything else is taken as UTF-8 text."""
    text = raw.strip()
    try:
        padded = text + "=" * (-len(text) % 4)
        return base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
    except (ValueError, TypeError):
        return text.encode()


def load_ed25519_private_key(raw: str) -> Ed25519PrivateKey:
    """Accept a PEM private key or the base64 of the raw 32-byte seed."""
    text = raw.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError("POINTSVC_ED25519_PRIVATE_KEY is not an Ed25519 key")
        return key
    seed = decode_secret(text)
    if len(seed) != 32:
        raise ConfigError("POINTSVC_ED25519_PRIVATE_KEY must be PEM or base64 of a 32-byte seed")
    return Ed25519PrivateKey.from_private_bytes(seed)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _dev_secrets(instance_path: str) -> dict[str, str]:
    """Generate development keys once into instance/secrets.json and reuse them afterwards."""
    path = Path(instance_path) / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    generated = {
        "JWT_SECRET": _b64(secrets.token_bytes(32)),
        "QR_MAC_KEY": _b64(secrets.token_bytes(32)),
        "ED25519_PRIVATE_KEY": _b64(secrets.token_bytes(32)),
        "SECRET_KEY": _b64(secrets.token_bytes(32)),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(generated, indent=2))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return generated


def _engine_options(database_url: str) -> dict[str, Any]:
    options: dict[str, Any] = {"pool_pre_ping": True}
    if database_url.startswith("postgresql"):
        # A pooled connection is tested only after it sat idle (pointsvc._ping_after_idle):
        # pre-ping on every checkout costs a round trip per request.
        options["pool_pre_ping"] = False
        # A database that does not answer must fail fast (readiness turns 503), not hang.
        options["connect_args"] = {"connect_timeout": _env_int("DB_CONNECT_TIMEOUT", 5)}
        options["pool_size"] = _env_int("DB_POOL_SIZE", 5)
        options["max_overflow"] = _env_int("DB_MAX_OVERFLOW", 10)
    return options


def build_config(instance_path: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Assemble the Flask config from defaults, environment and explicit overrides."""
    overrides = dict(overrides or {})
    env = overrides.pop("ENV", None) or _env("ENV", "development")
    database_url = overrides.pop("DATABASE_URL", None) or _env(
        "DATABASE_URL", "sqlite:///" + os.path.join(instance_path, "pointsvc.db")
    )
    config: dict[str, Any] = {
        "ENV_NAME": env,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(database_url),
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "JSON_SORT_KEYS": False,
        "API_TITLE": "pointsvc",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "api/v1/openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": "/docs/assets/",
        "PUBLIC_HOST": _env("PUBLIC_HOST", "POINTS.EXAMPLE.CN"),
        "JWT_ISSUER": _env("JWT_ISSUER", "pointsvc"),
        "JWT_AUDIENCE": _env("JWT_AUDIENCE", "pointsvc-api"),
        "ACCESS_TOKEN_SECONDS": _env_int("ACCESS_TOKEN_SECONDS", 600),
        # How long a worker may reuse a caller's loaded roles and memberships. Changes made
        # through this worker apply at once; other workers see them within this bound.
        "PRINCIPAL_CACHE_SECONDS": _env_int("PRINCIPAL_CACHE_SECONDS", 5),
        "REFRESH_TOKEN_DAYS": _env_int("REFRESH_TOKEN_DAYS", 30),
        "LOGIN_MAX_FAILURES": _env_int("LOGIN_MAX_FAILURES", 5),
        "LOGIN_LOCK_SECONDS": _env_int("LOGIN_LOCK_SECONDS", 900),
        "LOGIN_RATE_LIMIT": _env("LOGIN_RATE_LIMIT", "20 per minute"),
        "MERCHANT_APPLICATION_RATE_LIMIT": _env("MERCHANT_APPLICATION_RATE_LIMIT", "10 per hour"),
        "ARGON2_TIME_COST": _env_int("ARGON2_TIME_COST", 2),
        "ARGON2_MEMORY_KIB": _env_int("ARGON2_MEMORY_KIB", 19456),
        "ARGON2_PARALLELISM": _env_int("ARGON2_PARALLELISM", 1),
        "RATELIMIT_STORAGE_URI": _env("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_ENABLED": _env_bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_HEADERS_ENABLED": True,
        # Flask-Limiter would put Retry-After on every limited response (even a 200 or 422);
        # Retry-After belongs to 429s only, and the error handler sets it there.
        "RATELIMIT_HEADER_RETRY_AFTER": "X-RateLimit-Retry-After",
        "TRUSTED_PROXIES": _env_int("TRUSTED_PROXIES", 0),
        "IMPORT_MAX_ROWS": _env_int("IMPORT_MAX_ROWS", 20000),
        "IMPORT_MAX_BYTES": _env_int("IMPORT_MAX_BYTES", 4 * 1024 * 1024),
        "BULK_MAX_BYTES": _env_int("BULK_MAX_BYTES", 4 * 1024 * 1024),
        "LOG_REQUESTS": _env_bool("LOG_REQUESTS", True),
        "ALLOW_SQLITE_IN_PRODUCTION": _env_bool("ALLOW_SQLITE", False),
        "SQLITE_BUSY_TIMEOUT_MS": _env_int("SQLITE_BUSY_TIMEOUT_MS", 10000),
        "DB_PING_IDLE_SECONDS": _env_int("DB_PING_IDLE_SECONDS", 10),
        # Transparency log: seal every N seconds or after M postings (0 seconds: only
        # `flask ledger seal` seals).
        "LEDGER_SEAL_SECONDS": _env_int("LEDGER_SEAL_SECONDS", 30),
        "LEDGER_SEAL_BATCH": _env_int("LEDGER_SEAL_BATCH", 1000),
        # Leaderboards: postings queue their tally changes; serving processes drain the
        # queue every N seconds (0: only `flask leaderboards drain`). TALLIES=0 turns the
        # queueing off (benchmarks compare award throughput with and without it).
        "LEADERBOARD_TALLIES": _env_bool("LEADERBOARD_TALLIES", True),
        "LEADERBOARD_DRAIN_SECONDS": _env_int("LEADERBOARD_DRAIN_SECONDS", 1),
        # Who drains: "thread" (every serving process) or "process" (`flask leaderboards
        # drain --follow` beside them, started by gunicorn.conf.py; the serving processes
        # then only stand by, every 10 intervals).
        "LEADERBOARD_DRAINER": _env_choice("LEADERBOARD_DRAINER", ("thread", "process")),
        # How long a worker answers repeats of a board page from memory (0: never).
        "LEADERBOARD_CACHE_SECONDS": _env_int("LEADERBOARD_CACHE_SECONDS", 1),
        # Redemption: holds expire after N minutes; refunds allowed N days after capture;
        # a community without its own setting lets a resident spend N points a day.
        "HOLD_MINUTES": _env_int("HOLD_MINUTES", 15),
        # Serving processes release expired holds every N seconds (0: only lazily and by
        # `flask redemption expire-holds`).
        "HOLD_SWEEP_SECONDS": _env_int("HOLD_SWEEP_SECONDS", 30),
        "REFUND_DAYS": _env_int("REFUND_DAYS", 7),
        "REDEMPTION_DAILY_LIMIT": _env_int("REDEMPTION_DAILY_LIMIT", 500),
        # Events (pointsvc/events, docs/events.md): residents still inside at close are
        # checked out by EVENT_CLOSE_POLICY (credit_to_end | no_credit) unless the event sets
        # its own; check-in opens N minutes early, check-out stays open N minutes late.
        "EVENT_CLOSE_POLICY": _env("EVENT_CLOSE_POLICY", "credit_to_end"),
        "EVENT_CREDIT_GRANULARITY_MINUTES": _env_int("EVENT_CREDIT_GRANULARITY_MINUTES", 15),
        "EVENT_CHECKIN_EARLY_MINUTES": _env_int("EVENT_CHECKIN_EARLY_MINUTES", 30),
        "EVENT_CHECKOUT_GRACE_MINUTES": _env_int("EVENT_CHECKOUT_GRACE_MINUTES", 60),
        "EVENT_SCANS_PER_MINUTE": _env_int("EVENT_SCANS_PER_MINUTE", 10),
        "EVENT_OFFLINE_MAX_HOURS": _env_int("EVENT_OFFLINE_MAX_HOURS", 24),
        "EVENT_CLOCK_SKEW_SECONDS": _env_int("EVENT_CLOCK_SKEW_SECONDS", 120),
        "EVENT_GEOFENCE_SLACK_METERS": _env_int("EVENT_GEOFENCE_SLACK_METERS", 30),
        "EVENT_KIOSK_LINK_HOURS": _env_int("EVENT_KIOSK_LINK_HOURS", 24),
        # Anomaly reports (pointsvc/audit/anomalies; each threshold explained in docs/audit.md).
        "ANOMALY_DEFAULT_DAYS": _env_int("ANOMALY_DEFAULT_DAYS", 30),
        "ANOMALY_MAX_DAYS": _env_int("ANOMALY_MAX_DAYS", 366),
        "ANOMALY_MAX_ITEMS": _env_int("ANOMALY_MAX_ITEMS", 100),
        "ANOMALY_EVIDENCE_LIMIT": _env_int("ANOMALY_EVIDENCE_LIMIT", 20),
        "ANOMALY_EARNER_FACTOR": _env_int("ANOMALY_EARNER_FACTOR", 5),
        "ANOMALY_EARNER_MIN_POINTS": _env_int("ANOMALY_EARNER_MIN_POINTS", 200),
        "ANOMALY_EARNER_MIN_EARNERS": _env_int("ANOMALY_EARNER_MIN_EARNERS", 3),
        "ANOMALY_REPEAT_MIN_AWARDS": _env_int("ANOMALY_REPEAT_MIN_AWARDS", 10),
        "ANOMALY_SELF_DEALING_MIN_ATTEMPTS": _env_int("ANOMALY_SELF_DEALING_MIN_ATTEMPTS", 1),
        "ANOMALY_GEOFENCE_MIN_SCANS": _env_int("ANOMALY_GEOFENCE_MIN_SCANS", 5),
        "ANOMALY_GEOFENCE_FAR_METERS": _env_int("ANOMALY_GEOFENCE_FAR_METERS", 500),
        "ANOMALY_MERCHANT_FACTOR": _env_int("ANOMALY_MERCHANT_FACTOR", 5),
        "ANOMALY_MERCHANT_MIN_POINTS": _env_int("ANOMALY_MERCHANT_MIN_POINTS", 1000),
        "ANOMALY_MERCHANT_MIN_PEERS": _env_int("ANOMALY_MERCHANT_MIN_PEERS", 3),
        "ANOMALY_REFUND_PERCENT": _env_int("ANOMALY_REFUND_PERCENT", 30),
        "ANOMALY_REFUND_MIN_POINTS": _env_int("ANOMALY_REFUND_MIN_POINTS", 200),
        "ANOMALY_ADJUSTMENT_BAND_PERCENT": _env_int("ANOMALY_ADJUSTMENT_BAND_PERCENT", 20),
        "ANOMALY_ADJUSTMENT_MIN_COUNT": _env_int("ANOMALY_ADJUSTMENT_MIN_COUNT", 3),
        # Appeals (docs/audit.md): a deduction or rejected attendance may be contested for
        # N days after the decision.
        "APPEAL_WINDOW_DAYS": _env_int("APPEAL_WINDOW_DAYS", 30),
    }
    secret_names = ("JWT_SECRET", "QR_MAC_KEY", "ED25519_PRIVATE_KEY", "SECRET_KEY")
    given = {name: overrides.pop(name, None) or _env(name) for name in secret_names}
    if env == "production":
        _check_production(config, given)
        config.update(
            SESSION_COOKIE_SECURE=True,
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            PREFERRED_URL_SCHEME="https",
        )
    else:
        missing = [name for name, value in given.items() if not value]
        if missing:
            generated = _dev_secrets(instance_path)
            for name in missing:
                given[name] = generated[name]
    config["JWT_SECRET_BYTES"] = decode_secret(given["JWT_SECRET"])
    config["QR_MAC_KEY_BYTES"] = decode_secret(given["QR_MAC_KEY"])
    config["ED25519_PRIVATE_KEY"] = load_ed25519_private_key(given["ED25519_PRIVATE_KEY"])
    config["SECRET_KEY"] = decode_secret(given["SECRET_KEY"])
    config.update(overrides)
    return config


def _check_production(config: dict[str, Any], given: dict[str, str | None]) -> None:
    """Refuse to start with a missing or weak key, or SQLite, naming the exact setting."""
    for name in ("JWT_SECRET", "QR_MAC_KEY", "SECRET_KEY"):
        value = given[name]
        if not value:
            raise ConfigError(f"POINTSVC_{name} is required in production (base64, >= 32 bytes)")
        if len(decode_secret(value)) < MIN_SECRET_BYTES:
            raise ConfigError(f"POINTSVC_{name} is too weak: it must hold at least 32 random bytes")
        if len(set(decode_secret(value))) < 8:
            raise ConfigError(f"POINTSVC_{name} is too weak: it is not random")
    if not given["ED25519_PRIVATE_KEY"]:
        raise ConfigError("POINTSVC_ED25519_PRIVATE_KEY is required in production")
    try:
        seed = load_ed25519_private_key(given["ED25519_PRIVATE_KEY"]).private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    except ValueError as exc:  # a garbled PEM
        raise ConfigError(f"POINTSVC_ED25519_PRIVATE_KEY cannot be read: {exc}") from exc
    if len(set(seed)) < 8:
        raise ConfigError("POINTSVC_ED25519_PRIVATE_KEY is too weak: its seed is not random")
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite") and not config[
        "ALLOW_SQLITE_IN_PRODUCTION"
    ]:
        raise ConfigError(
            "POINTSVC_DATABASE_URL points at SQLite; production needs PostgreSQL "
            "(set POINTSVC_ALLOW_SQLITE=1 to override)"
        )
