#!/usr/bin/env python3
"""Check a pointsvc seal and an inclusion proof with nothing but the public key.

Usage:
    python tools/verify_proof.py KEYS.json PROOF.json

KEYS.json is what GET /api/v1/keys returns; PROOF.json is what
GET /api/v1/transactions/{id}/proof returns. Needs only Python 3.11 and `cryptography`.
This file deliberately does not import pointsvc: it is what an outsider would write.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_path(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes | None:
    """RFC 9162 §2.1.3.2: recompute the root from a leaf and its audit path."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def check(keys: dict, proof: dict) -> list[str]:
    """Every check that fails (empty: the transaction is in a genuinely signed seal)."""
    failures = []
    seal = proof["seal"]
    key = next((k for k in keys["keys"] if k["kid"] == seal["key_id"]), None)
    if key is None:
        return [f"no public key with id {seal['key_id']}"]
    message = (
        f"pointsvc-seal-v1\n{seal['seq']}\n{seal['tree_size']}\n{seal['root_hash']}\n"
        f"{seal['previous_root_hash']}\n{seal['sealed_at_micros']}"
    ).encode()
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))
    try:
        public.verify(base64.b64decode(seal["signature"]), message)
    except InvalidSignature:
        failures.append("the seal's signature does not verify")
    leaf = hashlib.sha256(b"\x00" + bytes.fromhex(proof["content_hash"])).digest()
    if leaf.hex() != proof["leaf_hash"]:
        failures.append("the leaf hash is not the hash of the transaction's content hash")
    root = root_from_path(proof["leaf_index"], seal["tree_size"], leaf,
                          [bytes.fromhex(h) for h in proof["audit_path"]])
    if root is None or root.hex() != seal["root_hash"]:
        failures.append("the audit path does not lead to the seal's root")
    return failures


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as handle:
        keys = json.load(handle)
    with open(sys.argv[2], encoding="utf-8") as handle:
        proof = json.load(handle)
    failures = check(keys, proof)
    for failure in failures:
        print("FAIL:", failure)
    if not failures:
        print(f"OK: transaction {proof['transaction_id']} is leaf {proof['leaf_index']} of "
              f"seal {proof['seal']['seq']} (tree size {proof['seal']['tree_size']}), "
              "signed by the published key")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
