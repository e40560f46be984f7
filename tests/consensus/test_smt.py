"""The sparse Merkle tree: updates against a from-scratch oracle, proofs of values and absence."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import smt

keys = st.binary(min_size=0, max_size=6)
values = st.binary(min_size=0, max_size=8)
states = st.dictionaries(keys, values, max_size=40)
batches = st.lists(st.dictionaries(keys, st.none() | values, max_size=12), max_size=6)


class Tree:
    """A tree over a dict of nodes, applying updates the way a store's batch would."""

    def __init__(self) -> None:
        self.nodes: dict[bytes, bytes] = {}
        self.root = smt.EMPTY

    def apply(self, changes: dict[bytes, bytes | None]) -> smt.TreeUpdate:
        result = smt.update(self.nodes.get, self.root, changes)
        for digest in result.removed:
            del self.nodes[digest]  # every removed node was stored
        self.nodes.update(result.added)
        self.root = result.root
        return result

    def reachable(self) -> set[bytes]:
        seen: set[bytes] = set()
        todo = [self.root]
        while todo:
            node = todo.pop()
            if node == smt.EMPTY:
                continue
            seen.add(node)
            current = smt.load(self.nodes.get, node)
            if isinstance(current, smt.Interior):
                todo += [current.left, current.right]
        return seen


@settings(max_examples=300, deadline=None)
@given(batches)
def test_updates_match_the_root_built_from_scratch_and_keep_only_live_nodes(batch_list) -> None:  # type: ignore[no-untyped-def]
    tree, state = Tree(), {}
    for changes in batch_list:
        tree.apply(changes)
        for k, v in changes.items():
            if v is None:
                state.pop(k, None)
            else:
                state[k] = v
        assert tree.root == smt.root_of(state)
        assert tree.reachable() == set(tree.nodes)  # nothing dead kept, nothing live lost


@settings(max_examples=200, deadline=None)
@given(states, st.lists(keys, max_size=8))
def test_every_key_proves_its_value_and_every_other_key_its_absence(state, probes) -> None:  # type: ignore[no-untyped-def]
    tree = Tree()
    tree.apply(dict(state))
    for key in list(state) + probes:
        proof = smt.prove(tree.nodes.get, tree.root, key)
        smt.verify(tree.root, key, state.get(key), proof)
        again = smt.Proof.from_wire(proof.to_wire())
        assert again == proof
        wrong = (state.get(key) or b"") + b"!"
        with pytest.raises(smt.ProofError):
            smt.verify(tree.root, key, wrong, proof)
        with pytest.raises(smt.ProofError):
            smt.verify(tree.root, key, None if key in state else b"v", proof)


@settings(max_examples=200, deadline=None)
@given(states.filter(lambda s: len(s) >= 2), st.data())
def test_a_changed_byte_anywhere_in_a_proof_is_caught(state, data) -> None:  # type: ignore[no-untyped-def]
    tree = Tree()
    tree.apply(dict(state))
    key = data.draw(st.sampled_from(sorted(state)))
    proof = smt.prove(tree.nodes.get, tree.root, key)
    parts = [*proof.siblings, *([proof.leaf.khash, proof.leaf.vhash] if proof.leaf else [])]
    which = data.draw(st.integers(0, len(parts) - 1))
    flip = data.draw(st.integers(0, 255))
    changed = bytearray(parts[which])
    changed[flip // 8] ^= 1 << (flip % 8)
    parts[which] = bytes(changed)
    n = len(proof.siblings)
    tampered = smt.Proof(tuple(parts[:n]), smt.Leaf(parts[n], parts[n + 1]))
    with pytest.raises(smt.ProofError):
        smt.verify(tree.root, key, state[key], tampered)


def test_order_of_writes_does_not_matter_and_deleting_everything_empties_the_tree() -> None:
    items = {bytes([i]): bytes([i]) * 3 for i in range(50)}
    forward, backward = Tree(), Tree()
    for k, v in items.items():
        forward.apply({k: v})
    for k in reversed(list(items)):
        backward.apply({k: items[k]})
    assert forward.root == backward.root == smt.root_of(items)
    forward.apply(dict.fromkeys(items))
    assert forward.root == smt.EMPTY and forward.nodes == {}


def test_absence_proofs_from_an_empty_tree_and_an_unrelated_leaf() -> None:
    empty = Tree()
    proof = smt.prove(empty.nodes.get, empty.root, b"k")
    assert proof == smt.Proof((), None)
    smt.verify(smt.EMPTY, b"k", None, proof)
    one = Tree()
    one.apply({b"a": b"1"})
    other = smt.prove(one.nodes.get, one.root, b"b")
    assert other.leaf is not None and other.leaf.khash == smt.key_hash(b"a")
    smt.verify(one.root, b"b", None, other)
    with pytest.raises(smt.ProofError, match="another key's leaf"):
        smt.verify(one.root, b"b", b"1", other)


def test_malformed_proofs_and_nodes_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="at most 256 siblings"):
        smt.Proof.from_wire([[bytes(32)] * 257, None])
    with pytest.raises(ValueError, match="32-byte"):
        smt.Proof.from_wire([[b"short"], None])
    with pytest.raises(ValueError, match="key_hash, value_hash"):
        smt.Proof.from_wire([[], [b"x", b"y"]])
    with pytest.raises(smt.TreeError, match="missing"):
        smt.prove({}.get, b"\x01" * 32, b"k")
    with pytest.raises(smt.TreeError, match="malformed"):
        smt.decode_node(b"\xff" * smt.NODE_BYTES)


def test_a_leaf_moved_off_its_key_path_is_refused() -> None:
    tree = Tree()
    tree.apply({bytes([i]): b"v" for i in range(8)})
    key = b"absent"
    proof = smt.prove(tree.nodes.get, tree.root, key)
    stranger = next(
        smt.key_hash(bytes([i]))
        for i in range(8)
        if proof.siblings and smt.bit(smt.key_hash(bytes([i])), 0) != smt.bit(smt.key_hash(key), 0)
    )
    forged = smt.Proof(proof.siblings, smt.Leaf(stranger, smt.value_hash(b"v")))
    with pytest.raises(smt.ProofError):
        smt.verify(tree.root, key, None, forged)
