"""Statements tests use the ledger's world: two communities, staff, residents and rules."""

from tests.ledger.conftest import world  # noqa: F401 (fixture)
