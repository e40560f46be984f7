"""Merkle trees: shape against the RFC 6962 definition, proofs at every index, tampering fails."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import merkle
from consensus.merkle import EMPTY_ROOT, Proof, Tree, leaf_hash, node_hash


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, written recursively as the RFC states it."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(
        b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])
    ).digest()


def leaves_of(n: int) -> list[bytes]:
    return [f"leaf-{i}".encode() for i in range(n)]


def test_empty_root_is_hash_of_nothing() -> None:
    assert merkle.root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert Tree([]).root == EMPTY_ROOT
    with pytest.raises(IndexError):
        Tree([]).proof(0)


def test_single_leaf_root_is_its_leaf_hash_with_empty_path() -> None:
    tree = Tree([b"only"])
    assert tree.root == leaf_hash(b"only")
    proof = tree.proof(0)
    assert proof.path == ()
    assert merkle.verify(tree.root, b"only", proof)


@pytest.mark.parametrize("n", range(0, 70))
def test_root_matches_rfc6962_definition(n: int) -> None:
    leaves = leaves_of(n)
    assert merkle.root(leaves) == reference_root(leaves) == Tree(leaves).root


def test_leaf_and_node_prefixes_prevent_second_preimage() -> None:
    a, b = b"a", b"b"
    root = merkle.root([a, b])
    # The concatenation of the two leaf hashes, presented as one leaf, gives another root.
    forged = leaf_hash(a) + leaf_hash(b)
    assert merkle.root([forged]) != root
    assert node_hash(leaf_hash(a), leaf_hash(b)) == root


def test_no_duplicate_last_leaf_collision() -> None:
    # Bitcoin's tree gives [a, b, c] and [a, b, c, c] the same root; ours must not.
    assert merkle.root([b"a", b"b", b"c"]) != merkle.root([b"a", b"b", b"c", b"c"])


def _tampered(proof: Proof) -> list[Proof]:
    """Proofs with one sibling flipped, one dropped or added, or the index moved.

    (The tree size alone is not bound by the root: for some indices the same
    path is valid in a tree of a neighbouring size. Verifiers take the size
    from the certified block, never from the prover.)
    """
    out = []
    for i in range(len(proof.path)):
        path = list(proof.path)
        path[i] = bytes([path[i][0] ^ 1]) + path[i][1:]
        out.append(Proof(proof.index, proof.size, tuple(path)))
    if proof.path:
        out.append(Proof(proof.index, proof.size, proof.path[:-1]))
    out.append(Proof(proof.index, proof.size, (*proof.path, b"\x00" * 32)))
    for index in {proof.index - 1, proof.index + 1}:
        out.append(Proof(index, proof.size, proof.path))
    return out


@pytest.mark.parametrize("n", range(1, 201))
def test_every_proof_verifies_and_every_tampering_fails(n: int) -> None:
    leaves = leaves_of(n)
    tree = Tree(leaves)
    root = tree.root
    bad_root = bytes([root[0] ^ 0x80]) + root[1:]
    for i, leaf in enumerate(leaves):
        proof = tree.proof(i)
        assert merkle.verify(root, leaf, proof), (n, i)
        assert not merkle.verify(root, leaf + b"x", proof), (n, i)
        assert not merkle.verify(bad_root, leaf, proof), (n, i)
        for other in _tampered(proof):
            assert not merkle.verify(root, leaf, other), (n, i, other)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.binary(max_size=40), min_size=1, max_size=300),
    st.data(),
)
def test_proofs_for_arbitrary_leaves(leaves: list[bytes], data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(leaves) - 1))
    proof = merkle.prove(leaves, i)
    root = merkle.root(leaves)
    assert root == reference_root(leaves)
    assert merkle.verify(root, leaves[i], proof)
    j = data.draw(st.integers(0, len(leaves) - 1))
    if leaves[j] != leaves[i]:
        assert not merkle.verify(root, leaves[j], proof)
    assert Proof.from_wire(proof.to_wire()) == proof


def test_proof_rejects_out_of_range_and_junk() -> None:
    leaves = leaves_of(5)
    root = merkle.root(leaves)
    proof = merkle.prove(leaves, 2)
    assert not merkle.verify(root, leaves[2], Proof(-1, 5, proof.path))
    assert not merkle.verify(root, leaves[2], Proof(5, 5, proof.path))
    assert not merkle.verify(root, leaves[2], Proof(2, 0, proof.path))
    assert not merkle.verify(root, leaves[2], Proof(2, 5, (b"short", *proof.path[1:])))
    long_path = (b"\x00" * 32,) * (merkle.MAX_PROOF_LENGTH + 1)
    assert not merkle.verify(root, leaves[2], Proof(2, 5, long_path))
    with pytest.raises(ValueError):
        Proof.from_wire([0, 1, [b"x"]])
    with pytest.raises(ValueError):
        Proof.from_wire([0, 1, [b"\x00" * 32] * (merkle.MAX_PROOF_LENGTH + 1)])
    with pytest.raises(ValueError):
        Proof.from_wire({"index": 0})
    assert Proof.from_wire([0, 1, [b"\x00" * 32] * merkle.MAX_PROOF_LENGTH]).size == 1
