"""Canonical form and content hash of a transaction (what seals and proofs commit to).

The canonical form holds ids, amounts and codes only — never a name, a phone or free
text — so erasing a person (PIPL) leaves every hash, seal and proof valid.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

HASH_VERSION = "pointsvc-tx-v1"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(value: datetime | str) -> int:
    """Exact integer microseconds since the epoch (stored times are UTC)."""
    if isinstance(value, str):  # SQLite's driver hands back the stored text
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _MICROSECOND


# One encoder for every hash: json.dumps() with arguments builds a new one per call, a third
# of the cost of hashing a posting. The documents never nest into themselves, so the
# circular-reference check is skipped; the output is byte for byte json.dumps's.
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def canonical_values(values: Sequence[Any], entries: Iterable[tuple[int, int, int | None]]
                     ) -> bytes:
    """Canonical bytes from header values in HEADER_FIELDS order (created_at last).

    A JSON array in a fixed order (documented in docs/ledger.md): compact, unambiguous, and
    encoded by the C JSON encoder, which matters when `flask ledger verify` rehashes millions.
    """
    document = [HASH_VERSION, *values[:-1], _micros(values[-1]), sorted(entries)]
    return _ENCODER.encode(document).encode()


def hash_values(values: Sequence[Any], entries: Iterable[tuple[int, int, int | None]]) -> str:
    """SHA-256 hex of the canonical form of header values in HEADER_FIELDS order."""
    return hashlib.sha256(canonical_values(values, entries)).hexdigest()


def canonical_transaction(
    *, header: dict[str, Any], entries: Iterable[tuple[int, int, int | None]]
) -> bytes:
    """Deterministic bytes of a transaction header and its (account, amount, balance_after)."""
    return canonical_values([header.get(name) for name in HEADER_FIELDS], entries)


def content_hash(*, header: dict[str, Any], entries: Iterable[tuple[int, int, int | None]]) -> str:
    """SHA-256 hex of the canonical form."""
    return hash_values([header.get(name) for name in HEADER_FIELDS], entries)


def memo_hash(*, salt: str, memo: str | None, evidence_ref: str | None) -> str | None:
    """Salted hash of the free text: proves the text without putting it in hashed content."""
    if not memo and not evidence_ref:
        return None
    payload = json.dumps([salt, memo or "", evidence_ref or ""], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


HEADER_FIELDS = (
    "id",
    "kind",
    "community_id",
    "district_id",
    "rule_id",
    "rule_code",
    "rule_version",
    "category",
    "quantity",
    "reference_type",
    "reference_id",
    "subject_resident_id",
    "actor_user_id",
    "reverses_id",
    "shortfall",
    "memo_hash",
    "created_at",
)
