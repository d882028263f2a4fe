"""Audit privacy API (filled in by the privacy work)."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("audit_privacy", __name__, url_prefix="/api/v1", description="Audit: privacy")
