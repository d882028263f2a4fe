"""Canonical form and content hash of a transaction (what seals and proofs commit to).

The canonical form holds ids, amounts and codes only — never a name, a phone or free
text — so erasing a person (PIPL) leaves every hash, seal and proof valid.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

HASH_VERSION = "pointsvc-tx-v1"


def _micros(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def canonical_transaction(
    *, header: dict[str, Any], entries: Iterable[tuple[int, int, int | None]]
) -> bytes:
    """Deterministic bytes of a transaction header and its (account, amount, balance_after)."""
    document = {
        "v": HASH_VERSION,
        "id": header["id"],
        "kind": header["kind"],
        "community": header["community_id"],
        "district": header["district_id"],
        "rule": [header.get("rule_id"), header.get("rule_code"), header.get("rule_version")],
        "category": header.get("category"),
        "quantity": header.get("quantity"),
        "ref": [header.get("reference_type"), header.get("reference_id")],
        "subject": header.get("subject_resident_id"),
        "actor": header.get("actor_user_id"),
        "reverses": header.get("reverses_id"),
        "shortfall": header.get("shortfall") or 0,
        "memo": header.get("memo_hash"),
        "at": _micros(header["created_at"]),
        "entries": sorted([list(entry) for entry in entries]),
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def content_hash(*, header: dict[str, Any], entries: Iterable[tuple[int, int, int | None]]) -> str:
    """SHA-256 hex of the canonical form."""
    return hashlib.sha256(canonical_transaction(header=header, entries=entries)).hexdigest()


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
