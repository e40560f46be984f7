"""Binary Merkle trees over byte strings, with inclusion proofs.

The tree shape is the one of RFC 6962 / RFC 9162 (Certificate Transparency):
for n > 1 leaves the left subtree holds the largest power of two strictly
less than n leaves. Built bottom-up, that is the same as pairing neighbours on
each level and promoting an unpaired last node unchanged, which is how
:func:`root` computes it. Nothing is ever duplicated, so two different leaf
lists never share a root (the duplicate-last-leaf flaw of Bitcoin's tree).

Leaves are hashed as ``sha256(0x00 || leaf)`` and interior nodes as
``sha256(0x01 || left || right)``: a leaf can never be passed off as an
interior node (second-preimage attack). The root of no leaves is
``sha256(b"")``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()
HASH_BYTES = 32
MAX_LEAVES = 2**32
MAX_PROOF_LENGTH = 64
"""A tree of at most MAX_LEAVES leaves has paths of at most 32 siblings; longer proofs are junk."""


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _next_level(level: list[bytes]) -> list[bytes]:
    nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        nxt.append(level[-1])
    return nxt


class Tree:
    """All levels of the tree over ``leaves``, so many proofs cost one build."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        if len(leaves) > MAX_LEAVES:
            raise ValueError(f"at most {MAX_LEAVES} leaves, got {len(leaves)}")
        self.size = len(leaves)
        self.levels: list[list[bytes]] = [[leaf_hash(x) for x in leaves]]
        while len(self.levels[-1]) > 1:
            self.levels.append(_next_level(self.levels[-1]))

    @property
    def root(self) -> bytes:
        return self.levels[-1][0] if self.size else EMPTY_ROOT

    def proof(self, index: int) -> Proof:
        """Proof that leaf ``index`` is in this tree."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf index {index} out of range for {self.size} leaves")
        path: list[bytes] = []
        i = index
        for level in self.levels[:-1]:
            sibling = i ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            i //= 2
        return Proof(index, self.size, tuple(path))


def root(leaves: Sequence[bytes]) -> bytes:
    """Merkle root of ``leaves`` (raw leaf data, hashed here)."""
    if len(leaves) > MAX_LEAVES:
        raise ValueError(f"at most {MAX_LEAVES} leaves, got {len(leaves)}")
    if not leaves:
        return EMPTY_ROOT
    level = [leaf_hash(x) for x in leaves]
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


@dataclass(frozen=True, slots=True)
class Proof:
    """Inclusion proof: leaf ``index`` of a tree of ``size`` leaves, siblings from the leaf up."""

    index: int
    size: int
    path: tuple[bytes, ...]

    def to_wire(self) -> list:
        return [self.index, self.size, list(self.path)]

    @classmethod
    def from_wire(cls, value: object) -> Proof:
        if not (isinstance(value, list | tuple) and len(value) == 3):
            raise ValueError("proof must be [index, size, path]")
        index, size, path = value
        if type(index) is not int or type(size) is not int:
            raise ValueError("proof index and size must be integers")
        if not isinstance(path, list | tuple) or len(path) > MAX_PROOF_LENGTH:
            raise ValueError(f"proof path must be a list of at most {MAX_PROOF_LENGTH} hashes")
        if any(type(p) is not bytes or len(p) != HASH_BYTES for p in path):
            raise ValueError(f"every proof path entry must be {HASH_BYTES} bytes")
        return cls(index, size, tuple(path))


def prove(leaves: Sequence[bytes], index: int) -> Proof:
    """Proof that ``leaves[index]`` is in the tree of ``leaves``."""
    return Tree(leaves).proof(index)


def verify(root_hash: bytes, leaf: bytes, proof: Proof) -> bool:
    """True iff ``proof`` shows ``leaf`` at ``proof.index`` in a tree with ``root_hash``.

    Follows the audit-path check of RFC 9162, section 2.1.3.2.
    """
    if not 0 <= proof.index < proof.size or proof.size > MAX_LEAVES:
        return False
    if len(proof.path) > MAX_PROOF_LENGTH:
        return False
    fn, sn = proof.index, proof.size - 1
    r = leaf_hash(leaf)
    for p in proof.path:
        if len(p) != HASH_BYTES or sn == 0:
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
    return sn == 0 and r == root_hash
