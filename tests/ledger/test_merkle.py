"""The Merkle code against a literal transcription of RFC 9162 §2.1 (recursive definitions)."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from pointsvc.ledger import merkle


def mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) exactly as the RFC writes it."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


leaves_strategy = st.lists(st.binary(min_size=1, max_size=8), min_size=1, max_size=70, unique=True)


@settings(max_examples=150, deadline=None)
@given(leaves_strategy)
def test_root_matches_rfc(leaves):
    hashed = [merkle.leaf_hash(leaf) for leaf in leaves]
    assert merkle.root(hashed) == mth(leaves)


@settings(max_examples=150, deadline=None)
@given(leaves_strategy, st.data())
def test_inclusion_proofs_verify_and_reject_wrong_leaves(leaves, data):
    hashed = [merkle.leaf_hash(leaf) for leaf in leaves]
    index = data.draw(st.integers(min_value=0, max_value=len(leaves) - 1))
    root = mth(leaves)
    proof = merkle.inclusion_proof(index, hashed)
    assert merkle.verify_inclusion(index=index, tree_size=len(leaves), leaf=hashed[index],
                                   proof=proof, expected_root=root)
    wrong = merkle.leaf_hash(leaves[index] + b"!")
    assert not merkle.verify_inclusion(index=index, tree_size=len(leaves), leaf=wrong,
                                       proof=proof, expected_root=root)
    if len(leaves) > 1:
        other = (index + 1) % len(leaves)
        assert not merkle.verify_inclusion(index=other, tree_size=len(leaves),
                                           leaf=hashed[index], proof=proof, expected_root=root)


@settings(max_examples=150, deadline=None)
@given(leaves_strategy, st.data())
def test_consistency_proofs(leaves, data):
    hashed = [merkle.leaf_hash(leaf) for leaf in leaves]
    old = data.draw(st.integers(min_value=1, max_value=len(leaves)))
    proof = merkle.consistency_proof(old, hashed)
    assert merkle.verify_consistency(old_size=old, new_size=len(leaves),
                                     old_root=mth(leaves[:old]), new_root=mth(leaves),
                                     proof=proof)
    if old < len(leaves):
        forged_old = mth([b"x"] + leaves[1:old]) if old > 1 else mth([b"forged"])
        assert not merkle.verify_consistency(old_size=old, new_size=len(leaves),
                                             old_root=forged_old, new_root=mth(leaves),
                                             proof=proof)


@settings(max_examples=100, deadline=None)
@given(leaves_strategy, st.integers(min_value=0, max_value=70))
def test_frontier_extends_incrementally(leaves, cut):
    hashed = [merkle.leaf_hash(leaf) for leaf in leaves]
    cut = min(cut, len(hashed))
    frontier = merkle.extend(merkle.extend([], hashed[:cut]), hashed[cut:])
    assert merkle.fold(frontier) == mth(leaves)
