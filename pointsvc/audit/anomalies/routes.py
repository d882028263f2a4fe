"""Audit anomalies API (filled in by the anomalies work)."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("audit_anomalies", __name__, url_prefix="/api/v1", description="Audit: anomalies")
