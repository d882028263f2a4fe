"""Merkle trees as in RFC 9162 (Certificate Transparency 2.0), §2.1.

Leaf hash = SHA-256(0x00 || leaf); interior = SHA-256(0x01 || left || right); a tree of n
leaves splits at the largest power of two below n. Proof verification follows §2.1.3.2
and §2.1.4.2 so an outsider can check them with nothing but this page of code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Merkle tree hash of already-hashed leaves, in O(n)."""
    return fold(extend([], leaf_hashes))


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1."""
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ValueError("leaf index out of range")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return inclusion_proof(index, leaf_hashes[:k]) + [root(leaf_hashes[k:])]
    return inclusion_proof(index - k, leaf_hashes[k:]) + [root(leaf_hashes[:k])]


def verify_inclusion(
    *, index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: check that a leaf hash sits at index in the tree with this root."""
    if index >= tree_size:
        return False
    fn, sn, r = index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1."""
    n = len(leaf_hashes)
    if not 0 < old_size <= n:
        raise ValueError("old size out of range")
    return _subproof(old_size, leaf_hashes, True)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = _split(n)
    if m <= k:
        return _subproof(m, leaves[:k], complete) + [root(leaves[k:])]
    return _subproof(m - k, leaves[k:], False) + [root(leaves[:k])]


def verify_consistency(
    *, old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: the tree of new_size extends the tree of old_size."""
    if old_size == new_size:
        return old_root == new_root and not proof
    if not 0 < old_size < new_size:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


Frontier = list[tuple[int, bytes]]


def extend(frontier: Frontier, leaf_hashes: Sequence[bytes]) -> Frontier:
    """Append leaves to a frontier (the stack of perfect subtrees) and return the new one."""
    stack = list(frontier)
    for leaf in leaf_hashes:
        size, value = 1, leaf
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            size, value = left_size + size, node_hash(left, value)
        stack.append((size, value))
    return stack


def fold(frontier: Frontier) -> bytes:
    """Root of the tree a frontier describes."""
    if not frontier:
        return EMPTY_ROOT
    value = frontier[-1][1]
    for _, left in reversed(frontier[:-1]):
        value = node_hash(left, value)
    return value
