"""Audit search API (filled in by the search work)."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("audit_search", __name__, url_prefix="/api/v1", description="Audit: search")
