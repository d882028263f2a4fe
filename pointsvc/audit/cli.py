"""flask audit ... (each area adds its commands to this group in its own cli.py)."""

from __future__ import annotations

from importlib import import_module

from flask.cli import AppGroup

audit_cli = AppGroup("audit", help="Audit: exports, action log, personal-data requests.")


def load_commands() -> AppGroup:
    """Import every area's cli module (which decorates audit_cli) and return the group."""
    from . import AREAS

    for area in AREAS:
        try:
            import_module(f"{__name__.rsplit('.', 1)[0]}.{area}.cli")
        except ModuleNotFoundError as missing:
            if not missing.name.endswith(f"{area}.cli"):
                raise
    return audit_cli
