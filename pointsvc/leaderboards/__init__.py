"""Leaderboards and honours: tallies, rankings, star levels, badges, certificates, public board."""

from __future__ import annotations

from typing import Any

from flask import Flask


def init_app(app: Flask, api: Any) -> None:
    """Blueprints, the posting hook, the privacy listener, the tally check and the drainer."""
    from ..ledger.checks import EXTRA_CHECKS
    from . import tallies
    from .routes import blp, public_bp

    api.register_blueprint(blp)
    app.register_blueprint(public_bp)
    tallies.install()
    if tallies.check_tallies not in EXTRA_CHECKS:
        EXTRA_CHECKS.append(tallies.check_tallies)
    tallies.start_drainer(app)
