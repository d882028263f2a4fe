"""Fixtures for platform tests that need an app with settings of their own."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from pointsvc import create_app
from pointsvc.extensions import db
from tests.conftest import _truncate_all
from tests.conftest import test_config as base_config


@pytest.fixture
def make_app(database_url: str, backend: str) -> Iterator[Callable[..., Flask]]:
    """Build apps on this test's database with extra settings; clean up like `app` does."""
    made: list[Flask] = []

    def build(**extra: object) -> Flask:
        app = create_app(base_config(database_url, **extra))
        made.append(app)
        return app

    yield build
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    if made and backend == "postgresql":
        _truncate_all(made[0])
        with made[0].app_context():
            db.engine.dispose()
