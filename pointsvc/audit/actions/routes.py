"""Audit actions API (filled in by the actions work)."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("audit_actions", __name__, url_prefix="/api/v1", description="Audit: actions")
