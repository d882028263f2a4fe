"""pointsvc: the points+ (积分+) community incentive service."""

from __future__ import annotations

import functools
import os
import time
from typing import Any

import marshmallow as ma
from flask import Flask, current_app, request, send_from_directory
from flask_smorest import Api
from flask_smorest.arguments import ArgumentsMixin
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from webargs.flaskparser import FlaskParser
from werkzeug.routing import IntegerConverter

from . import errors, observability
from .config import build_config
from .extensions import db, limiter, migrate

MIGRATIONS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations"
)

# Endpoints that take something other than JSON, or a body larger than the default 1 MiB.
# endpoint name -> (accepted media types, config key of the size limit)
UPLOAD_ENDPOINTS: dict[str, tuple[frozenset[str], str]] = {}


class ArgumentsParser(FlaskParser):
    """flask-smorest's request parser (webargs), with two changes.

    Unknown query parameters are refused as unknown body fields are: webargs excludes them by
    default, which turns a typo (`?parnet_id=3`) into a silently unfiltered list; with None
    the schema's own `unknown = RAISE` applies, so a view takes its query from ONE schema.

    One schema instance per class: webargs instantiates a class given to `@blp.arguments` on
    every request (0.1 ms of field copying each); our schemas hold no state between loads,
    and flask-smorest already shares its response schema instances the same way.
    """

    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": None,
        "querystring": None,
    }

    def _get_schema(self, argmap: Any, req: Any) -> ma.Schema:
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            return _schema_instance(argmap)
        return super()._get_schema(argmap, req)


@functools.cache
def _schema_instance(schema_class: type[ma.Schema]) -> ma.Schema:
    return schema_class()


# Before any blueprint module is imported: `@blp.arguments` binds the parser when it decorates.
ArgumentsMixin.ARGUMENTS_PARSER = ArgumentsParser()


class BoundedIntConverter(IntegerConverter):
    """`<int:…>` path segments stop at the largest BIGINT."""

    def __init__(self, map, *args: Any, **kwargs: Any) -> None:  # noqa: A002
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


class PointsApi(Api):
    """flask-smorest's Api with our problem+json error shape."""

    ERROR_SCHEMA = errors.ProblemSchema  # components/schemas/Problem

    def _register_error_handlers(self) -> None:
        errors.register_error_handlers(self._app)

    def _register_responses(self) -> None:
        """Error responses are documented as application/problem+json with Problem."""
        import http

        from flask_smorest.utils import prepare_response

        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, errors.PROBLEM_MIMETYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, errors.PROBLEM_MIMETYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def create_app(
    test_config: dict[str, Any] | None = None, *, instance_path: str | None = None
) -> Flask:
    """Application factory: config, extensions, blueprints, errors, CLI.

    `instance_path` (or the test_config key INSTANCE_PATH) moves the instance folder, where
    development keys and the default SQLite database live; it must be absolute.
    """
    test_config = dict(test_config or {})
    instance_path = instance_path or test_config.pop("INSTANCE_PATH", None)
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(build_config(app.instance_path, test_config))

    if app.config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)
    limiter.init_app(app)
    _limit_only_decorated_routes(app)
    _tune_sqlite(app)
    _ping_after_idle(app)

    # Path ids beyond BIGINT are unknown ids (404), never an overflow deep in the driver.
    app.url_map.converters["int"] = BoundedIntConverter
    api = PointsApi(
        app,
        spec_kwargs={
            "info": {"description": "Points+ (积分+) community incentive service"},
        },
    )
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    _register_blueprints(app, api)

    observability.init_app(app)
    from .security.authz import enforce_policy_early

    app.before_request(enforce_policy_early)
    app.before_request(_check_body)
    _register_docs_assets(app)

    _start_sealer(app)

    from .cli import register_cli

    register_cli(app)
    return app


def _register_blueprints(app: Flask, api: Api) -> None:
    from .health import bp as health_bp
    from .ledger.routes import blp as ledger_blp
    from .merchants.routes import blp as merchants_blp
    from .orgs.routes import blp as orgs_blp
    from .people.routes import blueprints as people_blueprints
    from .security.routes import blp as auth_blp

    app.register_blueprint(health_bp)
    api.register_blueprint(auth_blp)
    api.register_blueprint(orgs_blp)
    for blp in people_blueprints:
        api.register_blueprint(blp)
    api.register_blueprint(ledger_blp)
    api.register_blueprint(merchants_blp)
    from .redemption.routes import blp as redemption_blp

    api.register_blueprint(redemption_blp)
    from .events.routes import blp as events_blp
    from .events.routes import kiosk_bp as events_kiosk_bp

    api.register_blueprint(events_blp)
    app.register_blueprint(events_kiosk_bp)
    from .leaderboards import init_app as init_leaderboards

    init_leaderboards(app, api)  # boards, honours, the public board, tally drainer
    from .audit import init_app as init_audit

    init_audit(app, api)  # search/export, action log, anomalies, appeals, privacy
    from .web import init_web

    init_web(app)  # pages (wallet, till): cookies, CSRF off /api/, languages


def _check_body() -> None:
    """415 for non-JSON bodies on JSON endpoints; larger body limits for upload endpoints."""
    from werkzeug.exceptions import UnsupportedMediaType

    if not request.path.startswith("/api/") or request.method not in ("POST", "PUT", "PATCH"):
        return
    upload = UPLOAD_ENDPOINTS.get(request.endpoint or "")
    if upload is not None:
        request.max_content_length = int(current_app.config[upload[1]])
    has_body = (request.content_length or 0) > 0 or "chunked" in request.headers.get(
        "Transfer-Encoding", ""
    )
    if not has_body:
        return
    mimetype = request.mimetype or ""
    accepted = upload[0] if upload else frozenset({"application/json"})
    if mimetype in accepted or (mimetype.endswith("+json") and "application/json" in accepted):
        return
    raise UnsupportedMediaType(f"send one of: {', '.join(sorted(accepted))}")


def _register_docs_assets(app: Flask) -> None:
    """Serve Swagger UI's files ourselves so /docs works with no internet access."""
    from swagger_ui_bundle import swagger_ui_path

    assets = str(swagger_ui_path)

    @app.get("/docs/assets/<path:filename>")
    def docs_assets(filename: str):
        return send_from_directory(assets, filename, max_age=86400)


def _tune_sqlite(app: Flask) -> None:
    """Foreign keys, WAL, busy timeout, and BEGIN IMMEDIATE on SQLite connections."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    busy_ms = app.config["SQLITE_BUSY_TIMEOUT_MS"]
    with app.app_context():
        engine = db.engine
    _install_sqlite_hooks(engine, busy_ms)


def _install_sqlite_hooks(engine: Engine, busy_ms: int) -> None:
    if getattr(engine, "_pointsvc_hooks", False):
        return
    engine._pointsvc_hooks = True  # type: ignore[attr-defined]

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Take transaction control away from pysqlite so BEGIN IMMEDIATE is ours to send:
        # writers then queue on the busy timeout instead of deadlocking on lock upgrade.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _limit_only_decorated_routes(app: Flask) -> None:
    """Drop Flask-Limiter's before_request pass when no limit is application-wide.

    That pass looks for default, application and blueprint limits on every request; we set
    none (login, merchant applications and the other limited routes carry their own
    `limiter.limit` decorators, which check inside the decorated view), so on every other
    request it only cost time. tests/platform/test_rate_limits.py holds both halves.
    """
    manager = limiter.limit_manager
    if manager.application_limits or manager.default_limits:
        return
    app.before_request_funcs[None].remove(limiter._check_request_limit)


def _ping_after_idle(app: Flask) -> None:
    """PostgreSQL: test a pooled connection before use only if it sat idle a while.

    pool_pre_ping tests every checkout (a round trip on every request); a connection handed
    back moments ago is almost surely alive, and if the server did drop it the request
    fails with 503 database_unavailable and the pool is renewed (errors.handle_database_gone).
    """
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        return
    with app.app_context():
        engine = db.engine
    if getattr(engine, "_pointsvc_idle_ping", False):
        return
    engine._pointsvc_idle_ping = True  # type: ignore[attr-defined]
    idle_seconds = app.config["DB_PING_IDLE_SECONDS"]

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection, record):  # type: ignore[no-untyped-def]
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _taken(dbapi_connection, record, _proxy):  # type: ignore[no-untyped-def]
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < idle_seconds:
            return  # new (record.info is emptied with its connection) or recently used
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool discards this connection and checks out (or opens) another.
            raise exc.DisconnectionError(str(error)) from error


def _start_sealer(app: Flask) -> None:
    """Seal in the background of serving processes (never in tests or CLI commands)."""
    if app.testing or app.config["LEDGER_SEAL_SECONDS"] <= 0:
        return
    from .ledger.seals import AutoSealer

    sealer = AutoSealer(app)
    # Started on the first request, after gunicorn forks, so no thread crosses a fork.
    app.before_request(sealer.start)
