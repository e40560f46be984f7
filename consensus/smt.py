"""A sparse Merkle tree over the whole state: proofs of any key's value or of its absence.

Why this shape (docs/state.md argues it in full): every state key sits at the
path given by the 256 bits of ``sha256(key)``, so the tree's shape depends
only on which keys exist, never on the order they were written, and every
node can recompute the same root from the same state. Empty subtrees hash to
``EMPTY`` (32 zero bytes) and are never stored, and a subtree holding exactly
one key is that key's leaf, stored once wherever it sits (the "compact"
sparse Merkle tree of Diem's Jellyfish tree and of Libra's papers), so a tree
of n keys is about log2(n) levels deep, not 256, and a proof carries about
log2(n) sibling hashes.

Hashes are domain-separated from each other and from ``consensus.merkle``:

    leaf      sha256(0x10 || key_hash || value_hash)
    interior  sha256(0x11 || left || right)

where ``key_hash = sha256(key)`` and ``value_hash = sha256(value)``.

Nothing here does I/O: updates read nodes through a function and return the
nodes to add and remove, which the caller writes in the block's one synced
batch; proofs are checked with nothing but the root.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from consensus.bounded import BoundedMap

HASH_BYTES = 32
KEY_BITS = 256
EMPTY = bytes(HASH_BYTES)
"""The root of a subtree with no keys (no sha256 output is known to be all zeros)."""
LEAF_DOMAIN = b"\x10"
INTERIOR_DOMAIN = b"\x11"
MAX_PROOF_SIBLINGS = KEY_BITS
"""Two distinct 256-bit paths part within 256 levels, so no honest proof is longer."""
LEAF_TAG = b"\x00"
INTERIOR_TAG = b"\x01"
NODE_BYTES = 1 + 2 * HASH_BYTES
"""A stored node: a tag byte, then two hashes (key and value hash, or left and right)."""

ReadNode = Callable[[bytes], bytes | None]


class TreeError(Exception):
    """A node the tree refers to is missing or malformed: the store is damaged."""


def key_hash(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def value_hash(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def leaf_hash(khash: bytes, vhash: bytes) -> bytes:
    return hashlib.sha256(LEAF_DOMAIN + khash + vhash).digest()


def interior_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(INTERIOR_DOMAIN + left + right).digest()


def bit(khash: bytes, depth: int) -> int:
    """The path bit at ``depth`` (0 = the root's choice): 0 goes left, 1 right."""
    return (khash[depth >> 3] >> (7 - (depth & 7))) & 1


# ---------------------------------------------------------------- stored nodes


class Leaf(NamedTuple):
    khash: bytes
    vhash: bytes

    def hash(self) -> bytes:
        return leaf_hash(self.khash, self.vhash)

    def encode(self) -> bytes:
        return LEAF_TAG + self.khash + self.vhash


class Interior(NamedTuple):
    left: bytes
    right: bytes

    def hash(self) -> bytes:
        return interior_hash(self.left, self.right)

    def encode(self) -> bytes:
        return INTERIOR_TAG + self.left + self.right


Node = Leaf | Interior


def decode_node(raw: bytes) -> Node:
    if len(raw) != NODE_BYTES:
        raise TreeError(f"malformed tree node: {len(raw)} bytes, not {NODE_BYTES}")
    tag, a, b = raw[:1], raw[1 : 1 + HASH_BYTES], raw[1 + HASH_BYTES :]
    if tag == LEAF_TAG:
        return Leaf(a, b)
    if tag == INTERIOR_TAG:
        return Interior(a, b)
    raise TreeError(f"malformed tree node: unknown tag {tag.hex()}")


def load(read: ReadNode, node: bytes) -> Node:
    raw = read(node)
    if raw is None:
        raise TreeError(f"tree node {node.hex()[:16]} is missing")
    return decode_node(raw)


class NodeCache:
    """Recently read or written nodes in front of a store (nodes never change: a node's key
    is its hash, so a cached node is never stale)."""

    def __init__(self, read: ReadNode, capacity: int) -> None:
        self.read = read
        self._nodes: BoundedMap[bytes, bytes] = BoundedMap(capacity)

    def get(self, digest: bytes) -> bytes | None:
        raw = self._nodes.get(digest)
        if raw is not None:
            self._nodes.move_to_end(digest)
            return raw
        raw = self.read(digest)
        if raw is not None:
            self._nodes.remember(digest, raw)
        return raw

    def add(self, nodes: Mapping[bytes, bytes]) -> None:
        self._nodes.remember_all(nodes.items())


# ---------------------------------------------------------------- updates


@dataclass(frozen=True)
class TreeUpdate:
    """A new root, the nodes to store for it and the nodes no longer reachable."""

    root: bytes
    added: dict[bytes, bytes]
    removed: frozenset[bytes]


class _Builder:
    """One update's work: reads old nodes, collects new and dead ones."""

    def __init__(self, read: ReadNode) -> None:
        self.read = read
        self.added: dict[bytes, bytes] = {}
        self.removed: set[bytes] = set()

    def store(self, node: Node) -> bytes:
        digest = node.hash()
        self.added[digest] = node.encode()
        return digest

    def build(self, depth: int, leaves: list[tuple[bytes, bytes]]) -> tuple[bytes, bool]:
        """The subtree of ``leaves`` (sorted by key hash, distinct) below ``depth``.

        Returns (root, whether that root is a single leaf)."""
        if not leaves:
            return EMPTY, False
        if len(leaves) == 1:
            return self.store(Leaf(*leaves[0])), True
        split = _split(leaves, depth)
        left, _ = self.build(depth + 1, leaves[:split])
        right, _ = self.build(depth + 1, leaves[split:])
        return self.store(Interior(left, right)), False  # one side may be EMPTY

    def is_leaf(self, node: bytes, known: bool | None) -> bool:
        return known if known is not None else isinstance(load(self.read, node), Leaf)

    def update(
        self, node: bytes, depth: int, changes: list[tuple[bytes, bytes | None]]
    ) -> tuple[bytes, bool | None]:
        """Apply ``changes`` (sorted by key hash) below ``node`` at ``depth``.

        Returns (new root of the subtree, whether it is a single leaf: None when the
        subtree is unchanged and that was not looked up)."""
        if not changes:
            return node, None
        if node == EMPTY:
            return self.build(depth, [(k, v) for k, v in changes if v is not None])
        current = load(self.read, node)
        if isinstance(current, Leaf):
            merged = {current.khash: current.vhash}
            for khash, vhash in changes:
                if vhash is None:
                    merged.pop(khash, None)
                else:
                    merged[khash] = vhash
            new_root, single = self.build(depth, sorted(merged.items()))
            if new_root != node:
                self.removed.add(node)
            return new_root, single
        split = _split(changes, depth)
        left, left_single = self.update(current.left, depth + 1, changes[:split])
        right, right_single = self.update(current.right, depth + 1, changes[split:])
        if left == current.left and right == current.right:
            return node, False
        self.removed.add(node)
        if left == EMPTY and right == EMPTY:
            return EMPTY, False
        if left == EMPTY and self.is_leaf(right, right_single):
            return right, True  # a lone leaf moves up to where its path parts from nothing
        if right == EMPTY and self.is_leaf(left, left_single):
            return left, True
        return self.store(Interior(left, right)), False


def _split(items: list[tuple[bytes, bytes | None]], depth: int) -> int:
    """Index of the first item whose path goes right at ``depth``.

    The items are sorted and share their first ``depth`` bits (they lie in one subtree), so
    the first one going right is the first at or above that prefix followed by a 1 bit."""
    first = int.from_bytes(items[0][0], "big")
    shift = KEY_BITS - 1 - depth
    boundary = (((first >> shift) | 1) << shift).to_bytes(HASH_BYTES, "big")
    return bisect.bisect_left(items, (boundary,))


def update(read: ReadNode, root: bytes, changes: Mapping[bytes, bytes | None]) -> TreeUpdate:
    """Apply ``changes`` (state key -> new value, None to delete) to the tree at ``root``."""
    hashed = sorted((key_hash(k), None if v is None else value_hash(v)) for k, v in changes.items())
    builder = _Builder(read)
    new_root, _ = builder.update(root, 0, hashed)
    # A node rebuilt unchanged (a leaf whose neighbour arrived) is added again, not removed.
    return TreeUpdate(new_root, builder.added, frozenset(builder.removed - builder.added.keys()))


def root_of(state: Mapping[bytes, bytes]) -> bytes:
    """The root of a whole state computed from scratch (the definition updates must match)."""
    builder = _Builder(lambda _: None)
    leaves = sorted((key_hash(k), value_hash(v)) for k, v in state.items())
    root, _ = builder.build(0, leaves)
    return root


# ---------------------------------------------------------------- proofs


@dataclass(frozen=True)
class Proof:
    """The sibling hashes from the root down, and what the path ends at: the key's own
    leaf, another key's leaf (so the key is absent) or nothing (absent)."""

    siblings: tuple[bytes, ...]
    leaf: Leaf | None

    def to_wire(self) -> list:
        leaf = None if self.leaf is None else [self.leaf.khash, self.leaf.vhash]
        return [list(self.siblings), leaf]

    @classmethod
    def from_wire(cls, wire: object) -> Proof:
        """Parse a proof from untrusted input (raises ValueError naming the problem)."""
        if type(wire) is not list or len(wire) != 2:
            raise ValueError("a state proof is [siblings, leaf]")
        siblings, leaf = wire
        if type(siblings) is not list or len(siblings) > MAX_PROOF_SIBLINGS:
            raise ValueError(f"a state proof has at most {MAX_PROOF_SIBLINGS} siblings")
        for s in siblings:
            if type(s) is not bytes or len(s) != HASH_BYTES:
                raise ValueError("proof siblings must be 32-byte hashes")
        parsed: Leaf | None = None
        if leaf is not None:
            ok = type(leaf) is list and len(leaf) == 2
            if not ok or any(type(x) is not bytes or len(x) != HASH_BYTES for x in leaf):
                raise ValueError("a proof's leaf is [key_hash, value_hash]")
            parsed = Leaf(leaf[0], leaf[1])
        return cls(tuple(siblings), parsed)


def prove(read: ReadNode, root: bytes, key: bytes) -> Proof:
    """The proof of ``key``'s value, or of its absence, in the tree at ``root``."""
    khash = key_hash(key)
    siblings: list[bytes] = []
    node = root
    for depth in range(KEY_BITS):
        if node == EMPTY:
            return Proof(tuple(siblings), None)
        current = load(read, node)
        if isinstance(current, Leaf):
            return Proof(tuple(siblings), current)
        if bit(khash, depth):
            siblings.append(current.left)
            node = current.right
        else:
            siblings.append(current.right)
            node = current.left
    raise TreeError("a tree path is longer than 256 levels")


class ProofError(Exception):
    """A state proof does not prove what it is said to prove; the message says which step."""


def verify(root: bytes, key: bytes, value: bytes | None, proof: Proof) -> None:
    """Raise ProofError unless ``proof`` shows ``key`` has ``value`` (None: is absent) under
    ``root``."""
    khash = key_hash(key)
    depth = len(proof.siblings)
    if depth > MAX_PROOF_SIBLINGS:
        raise ProofError(f"proof has {depth} siblings, more than {MAX_PROOF_SIBLINGS}")
    leaf = proof.leaf
    if leaf is None:
        if value is not None:
            raise ProofError("the proof shows the key absent, but a value is claimed")
        node = EMPTY
    elif leaf.khash == khash:
        if value is None:
            raise ProofError("the proof shows the key present, but it is claimed absent")
        if leaf.vhash != value_hash(value):
            raise ProofError("the proven value differs from the claimed value")
        node = leaf.hash()
    else:
        if value is not None:
            raise ProofError("the proof ends at another key's leaf: the key is absent")
        if any(bit(leaf.khash, d) != bit(khash, d) for d in range(depth)):
            raise ProofError("the other key's leaf does not lie on this key's path")
        node = leaf.hash()
    for d in range(depth - 1, -1, -1):
        sibling = proof.siblings[d]
        node = interior_hash(sibling, node) if bit(khash, d) else interior_hash(node, sibling)
    if node != root:
        raise ProofError("the proof does not reach the state root")
