"""Fixtures shared with the platform tests."""

from tests.platform.conftest import make_app  # noqa: F401
