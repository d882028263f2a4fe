"""Monthly statements API (filled in by the statements work)."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("audit_statements", __name__, url_prefix="/api/v1", description="Audit: statements")
