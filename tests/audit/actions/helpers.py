"""Shared helpers for the action-log tests."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import text

from pointsvc.extensions import db
from tests.factories import auth


def logged(client, app: Flask, viewer: int, **params: Any) -> list[dict[str, Any]]:
    """The action-log rows the viewer sees for these filters (one page of 200)."""
    r = client.get("/api/v1/audit/actions", query_string={"limit": 200, **params},
                   headers=auth(app, viewer))
    assert r.status_code == 200, r.get_json()
    return r.get_json()["items"]


def one(client, app: Flask, viewer: int, **params: Any) -> dict[str, Any]:
    rows = logged(client, app, viewer, **params)
    assert len(rows) == 1, rows
    return rows[0]


def all_audit_text(app: Flask) -> str:
    """Every stored audit row, every column, as one string (for the privacy checks)."""
    with app.app_context():
        found = db.session.execute(text("SELECT * FROM audit_events")).all()
        db.session.remove()
    return "\n".join(" ".join("" if v is None else str(v) for v in row) for row in found)
