"""Audit: ledger search and export, the staff action log, anomalies, appeals, statements,
personal-data requests. One subpackage per area, each with its own blueprint."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api

AREAS = ("search", "actions", "anomalies", "appeals", "statements", "privacy")


def init_app(app: Flask, api: Api) -> None:
    """Register every audit area's API blueprint."""
    from importlib import import_module

    for area in AREAS:
        routes = import_module(f"{__name__}.{area}.routes")
        api.register_blueprint(routes.blp)
