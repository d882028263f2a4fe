"""/healthz (liveness) and /readyz (database reachable, migrations at head)."""

from __future__ import annotations

import os
from functools import cache

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from .extensions import db

bp = Blueprint("health", __name__)

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations")


@cache
def migration_heads() -> frozenset[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIR)
    return frozenset(ScriptDirectory.from_config(config).get_heads())


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    try:
        applied = {
            row[0] for row in db.session.execute(text("SELECT version_num FROM alembic_version"))
        }
    except Exception as exc:  # any database failure means "not ready", never a 500
        db.session.rollback()
        current_app.logger.warning("readyz: database not reachable: %s", exc.__class__.__name__)
        return jsonify(status="unavailable", reason="database unreachable"), 503
    heads = migration_heads()
    if applied != set(heads):
        return (
            jsonify(
                status="unavailable",
                reason="migrations not at head",
                applied=sorted(applied),
                expected=sorted(heads),
            ),
            503,
        )
    return jsonify(status="ok", migration=sorted(heads))
