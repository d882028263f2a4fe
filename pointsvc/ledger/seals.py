"""The transparency log (阳光公开): Merkle seals over every committed transaction.

A single sealer (PostgreSQL advisory lock; SQLite's write lock) appends committed but
unsealed transactions as leaves, then signs a tree head chained to the previous one. It
runs outside posting transactions, so postings never wait for it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flask import Flask, current_app
from sqlalchemy import func, select, text

from ..common import as_utc, utcnow
from ..errors import DomainError, NotFound
from ..extensions import db
from . import merkle
from .hashing import _micros
from .models import LedgerTransaction, Seal, SealLeaf

SEALER_LOCK_ID = 727_001
LATE_COMMIT_WINDOW = 100_000  # how far below the newest sealed id a late commit is looked for
ZERO_ROOT = "0" * 64


def public_key_raw() -> bytes:
    key = current_app.config["ED25519_PRIVATE_KEY"].public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def signing_key_id() -> str:
    return hashlib.sha256(public_key_raw()).hexdigest()[:16]


def public_keys() -> list[dict[str, str]]:
    """The keys anyone needs to check seals and signed codes offline."""
    key = current_app.config["ED25519_PRIVATE_KEY"].public_key()
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return [
        {
            "kid": signing_key_id(),
            "alg": "Ed25519",
            "use": "ledger seals, resident cards, merchant codes",
            "public_key": base64.b64encode(public_key_raw()).decode(),
            "pem": pem,
        }
    ]


def seal_message(*, seq: int, tree_size: int, root_hash: str, previous_root_hash: str,
                 sealed_at: datetime) -> bytes:
    """The exact bytes a seal's signature covers (documented in docs/ledger.md)."""
    return (
        f"pointsvc-seal-v1\n{seq}\n{tree_size}\n{root_hash}\n{previous_root_hash}\n"
        f"{_micros(sealed_at)}"
    ).encode()


def leaf_for(content_hash_hex: str) -> bytes:
    """Leaf hash of a transaction: RFC 9162 leaf over its 32-byte content hash."""
    return merkle.leaf_hash(bytes.fromhex(content_hash_hex))


def _frontier(seal: Seal | None) -> merkle.Frontier:
    if seal is None:
        return []
    return [(size, bytes.fromhex(value)) for size, value in json.loads(seal.frontier)]


def latest_seal() -> Seal | None:
    return db.session.scalar(select(Seal).order_by(Seal.seq.desc()).limit(1))


def _take_sealer_lock() -> bool:
    if db.engine.dialect.name == "postgresql":
        return bool(
            db.session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SEALER_LOCK_ID})
        )
    return True  # SQLite: BEGIN IMMEDIATE already made us the only writer


def seal(*, max_leaves: int = 50_000) -> Seal | None:
    """Seal the committed, unsealed transactions; None if nothing to do or another sealer runs."""
    if not _take_sealer_lock():
        db.session.rollback()
        return None
    previous = latest_seal()
    newest_sealed = db.session.scalar(select(func.max(SealLeaf.transaction_id))) or 0
    rows = db.session.execute(
        select(LedgerTransaction.id, LedgerTransaction.content_hash)
        .outerjoin(SealLeaf, SealLeaf.transaction_id == LedgerTransaction.id)
        .where(
            SealLeaf.transaction_id.is_(None),
            LedgerTransaction.id > newest_sealed - LATE_COMMIT_WINDOW,
        )
        .order_by(LedgerTransaction.id)
        .limit(max_leaves)
    ).all()
    if not rows:
        db.session.rollback()
        return None
    start = previous.tree_size if previous else 0
    seq = (previous.seq if previous else 0) + 1
    leaves = [leaf_for(content) for _, content in rows]
    db.session.execute(
        SealLeaf.__table__.insert(),
        [
            {"leaf_index": start + i, "transaction_id": tx_id, "leaf_hash": leaf, "seal_seq": seq}
            for i, ((tx_id, _), leaf) in enumerate(zip(rows, leaves, strict=True))
        ],
    )
    frontier = merkle.extend(_frontier(previous), leaves)
    root_hex = merkle.fold(frontier).hex()
    sealed_at = utcnow()
    previous_root = previous.root_hash if previous else ZERO_ROOT
    tree_size = start + len(rows)
    signature = current_app.config["ED25519_PRIVATE_KEY"].sign(
        seal_message(seq=seq, tree_size=tree_size, root_hash=root_hex,
                     previous_root_hash=previous_root, sealed_at=sealed_at)
    )
    record = Seal(
        seq=seq,
        tree_size=tree_size,
        root_hash=root_hex,
        previous_root_hash=previous_root,
        sealed_at=sealed_at,
        key_id=signing_key_id(),
        signature=base64.b64encode(signature).decode(),
        frontier=json.dumps([[size, value.hex()] for size, value in frontier]),
    )
    db.session.add(record)
    db.session.commit()
    return record


def seal_json(seal_row: Seal) -> dict[str, Any]:
    return {
        "seq": seal_row.seq,
        "tree_size": seal_row.tree_size,
        "root_hash": seal_row.root_hash,
        "previous_root_hash": seal_row.previous_root_hash,
        "sealed_at": as_utc(seal_row.sealed_at).isoformat(),
        "sealed_at_micros": _micros(as_utc(seal_row.sealed_at)),
        "key_id": seal_row.key_id,
        "signature": seal_row.signature,
        "algorithm": "Ed25519 over pointsvc-seal-v1 message",
    }


def get_seal(*, seq: int) -> Seal:
    found = db.session.get(Seal, seq)
    if found is None:
        raise NotFound("not_found", f"seal {seq} does not exist")
    return found


def _leaf_hashes(limit: int) -> list[bytes]:
    return list(
        db.session.scalars(
            select(SealLeaf.leaf_hash).where(SealLeaf.leaf_index < limit)
            .order_by(SealLeaf.leaf_index)
        )
    )


def inclusion(*, transaction_id: int, seq: int | None = None) -> dict[str, Any]:
    """Inclusion proof of a transaction in a seal (the latest by default)."""
    leaf = db.session.scalar(select(SealLeaf).where(SealLeaf.transaction_id == transaction_id))
    if leaf is None:
        raise DomainError("not_sealed", "the transaction is not sealed yet; try again shortly",
                          status=409)
    target = get_seal(seq=seq) if seq is not None else latest_seal()
    if target is None or leaf.leaf_index >= target.tree_size:
        raise DomainError("not_sealed", "that seal does not contain the transaction", status=409)
    content = db.session.scalar(
        select(LedgerTransaction.content_hash).where(LedgerTransaction.id == transaction_id)
    )
    leaves = _leaf_hashes(target.tree_size)
    proof = merkle.inclusion_proof(leaf.leaf_index, leaves)
    return {
        "transaction_id": transaction_id,
        "content_hash": content,
        "leaf_index": leaf.leaf_index,
        "leaf_hash": leaf.leaf_hash.hex(),
        "tree_size": target.tree_size,
        "seal": seal_json(target),
        "audit_path": [node.hex() for node in proof],
    }


def consistency(*, old_seq: int, new_seq: int) -> dict[str, Any]:
    """Proof that seal new_seq extends seal old_seq (RFC 9162 consistency proof)."""
    old, new = get_seal(seq=old_seq), get_seal(seq=new_seq)
    if old.tree_size > new.tree_size:
        raise DomainError("validation_failed", "the first seal must be the older one", status=422)
    proof = merkle.consistency_proof(old.tree_size, _leaf_hashes(new.tree_size))
    return {
        "old": seal_json(old),
        "new": seal_json(new),
        "proof": [node.hex() for node in proof],
    }


def verify_seal_signature(seal_row: Seal) -> bool:
    public = Ed25519PublicKey.from_public_bytes(public_key_raw())
    try:
        public.verify(
            base64.b64decode(seal_row.signature),
            seal_message(seq=seal_row.seq, tree_size=seal_row.tree_size,
                         root_hash=seal_row.root_hash,
                         previous_root_hash=seal_row.previous_root_hash,
                         sealed_at=as_utc(seal_row.sealed_at)),
        )
    except (InvalidSignature, ValueError):
        return False
    return True


class AutoSealer:
    """Seals in a background thread every `interval` seconds or after `batch` postings."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.interval = float(app.config["LEDGER_SEAL_SECONDS"])
        self.batch = int(app.config["LEDGER_SEAL_BATCH"])
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._started or self.interval <= 0:
                return
            self._started = True
            threading.Thread(target=self._run, name="pointsvc-sealer", daemon=True).start()

    def _run(self) -> None:
        last = time.monotonic()
        while True:
            time.sleep(1.0)
            with self.app.app_context():
                try:
                    newest = db.session.scalar(select(func.max(LedgerTransaction.id))) or 0
                    sealed = db.session.scalar(select(func.max(SealLeaf.transaction_id))) or 0
                    db.session.rollback()
                    due = time.monotonic() - last >= self.interval
                    if newest > sealed and (due or newest - sealed >= self.batch):
                        seal()
                        last = time.monotonic()
                except Exception:  # keep sealing on the next tick; never kill the worker
                    db.session.rollback()
                    current_app.logger.exception("auto-seal failed")
                finally:
                    db.session.remove()
