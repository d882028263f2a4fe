"""Audit appeals API (filled in by the appeals work)."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("audit_appeals", __name__, url_prefix="/api/v1", description="Audit: appeals")
