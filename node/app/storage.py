"""What the application needs from durable storage, and an in-memory implementation of it.

The application never opens a file: the I/O shell hands it a :class:`Storage`
(``node.store.Store``, LevelDB, on a real node) and the simulator hands it a
:class:`MemoryStorage`, so n real ledgers run in one process under a seeded
schedule. Both keep the same promise: :meth:`Storage.commit` applies a block
and everything it changes at once, or not at all.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Protocol

from consensus.smt import TreeUpdate

MAX_MEMORY_SCAN = 10_000
"""Entries one scan of a MemoryStorage yields at most (as the LevelDB store's MAX_STATE_SCAN)."""


class StorageError(Exception):
    """The storage refuses an operation (another chain's data, a commit out of order)."""


class Storage(Protocol):
    """The committed chain and state one node keeps."""

    def initialise(
        self,
        genesis_hash: bytes,
        writes: Mapping[bytes, bytes],
        validators: list[bytes],
        tree: TreeUpdate,
    ) -> None: ...

    def check(self) -> None: ...

    def height(self) -> int: ...

    def state_root(self) -> bytes: ...

    def block(self, height: int) -> bytes | None: ...

    def certificate(self, height: int) -> bytes | None: ...

    def receipts(self, height: int) -> list[bytes] | None: ...

    def validators(self, height: int) -> list[bytes] | None: ...

    def tx_location(self, tx_id: bytes) -> tuple[int, int] | None: ...

    def get(self, key: bytes) -> bytes | None: ...

    def tree_node(self, digest: bytes) -> bytes | None:
        """A stored node of the state tree (consensus/smt.py) by its hash."""
        ...

    def scan(self, prefix: bytes, limit: int = ...) -> Iterator[tuple[bytes, bytes]]: ...

    def artifact(self, model_id: bytes) -> bytes | None: ...

    def put_artifact(self, model_id: bytes, data: bytes) -> None: ...

    def commit(
        self,
        height: int,
        block: bytes,
        certificate: bytes,
        receipts: list[bytes],
        tx_ids: list[bytes],
        writes: Mapping[bytes, bytes | None],
        tree: TreeUpdate,
        next_validators: list[bytes],
        *,
        validators_proof: bytes | None = None,
        models_read: Collection[bytes] = (),
    ) -> None:
        """``validators_proof``: at a block that changes the validator set, the encoded state
        proof of the new set (the light client follows changes with it). ``models_read``: the
        model artifacts the block's execution read; replaying the block needs them, so a store
        that collects artifacts keeps these for good."""
        ...

    def validator_changes(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        """(height, encoded proof) of validator-set changes at heights above ``after``."""
        ...


class MemoryStorage:
    """A Storage in dictionaries: the simulator's disk (it survives a simulated crash)."""

    def __init__(self) -> None:
        self.genesis: bytes | None = None
        self._height = 0
        self._root = b""
        self._state: dict[bytes, bytes] = {}
        self._blocks: list[bytes] = []
        self._certs: list[bytes] = []
        self._receipts: list[list[bytes]] = []
        self._valsets: dict[int, list[bytes]] = {}
        self._txs: dict[bytes, tuple[int, int]] = {}
        self._artifacts: dict[bytes, bytes] = {}
        self.pinned: set[bytes] = set()
        """Model ids committed blocks read (this store never collects artifacts)."""
        self._nodes: dict[bytes, bytes] = {}
        self._changes: dict[int, bytes] = {}

    def initialise(
        self,
        genesis_hash: bytes,
        writes: Mapping[bytes, bytes],
        validators: list[bytes],
        tree: TreeUpdate,
    ) -> None:
        if self.genesis is not None:
            if self.genesis != genesis_hash:
                raise StorageError("storage belongs to another genesis")
            return
        self._state = dict(writes)
        self._valsets[1] = list(validators)
        self._apply_tree(tree)
        self.genesis = genesis_hash

    def check(self) -> None:
        if len(self._blocks) != self._height or self._height + 1 not in self._valsets:
            raise StorageError("memory storage is inconsistent")

    def height(self) -> int:
        return self._height

    def state_root(self) -> bytes:
        return self._root

    def block(self, height: int) -> bytes | None:
        return self._blocks[height - 1] if 1 <= height <= self._height else None

    def certificate(self, height: int) -> bytes | None:
        return self._certs[height - 1] if 1 <= height <= self._height else None

    def receipts(self, height: int) -> list[bytes] | None:
        return list(self._receipts[height - 1]) if 1 <= height <= self._height else None

    def validators(self, height: int) -> list[bytes] | None:
        found = self._valsets.get(height)
        return None if found is None else list(found)

    def tx_location(self, tx_id: bytes) -> tuple[int, int] | None:
        return self._txs.get(tx_id)

    def get(self, key: bytes) -> bytes | None:
        return self._state.get(key)

    def tree_node(self, digest: bytes) -> bytes | None:
        return self._nodes.get(digest)

    def _apply_tree(self, tree: TreeUpdate) -> None:
        for digest in tree.removed:
            self._nodes.pop(digest, None)
        self._nodes.update(tree.added)
        self._root = tree.root

    def scan(self, prefix: bytes, limit: int = MAX_MEMORY_SCAN) -> Iterator[tuple[bytes, bytes]]:
        keys = sorted(k for k in self._state if k.startswith(prefix))
        for key in keys[: min(limit, MAX_MEMORY_SCAN)]:
            yield key, self._state[key]

    def artifact(self, model_id: bytes) -> bytes | None:
        return self._artifacts.get(model_id)

    def put_artifact(self, model_id: bytes, data: bytes) -> None:
        self._artifacts[model_id] = data

    def commit(
        self,
        height: int,
        block: bytes,
        certificate: bytes,
        receipts: list[bytes],
        tx_ids: list[bytes],
        writes: Mapping[bytes, bytes | None],
        tree: TreeUpdate,
        next_validators: list[bytes],
        *,
        validators_proof: bytes | None = None,
        models_read: Collection[bytes] = (),
    ) -> None:
        if height != self._height + 1:
            raise StorageError(f"commit of height {height} on top of height {self._height}")
        self._blocks.append(block)
        self._certs.append(certificate)
        self._receipts.append(list(receipts))
        self._valsets[height + 1] = list(next_validators)
        for index, tx_id in enumerate(tx_ids):
            self._txs[tx_id] = (height, index)
        for key, value in writes.items():
            if value is None:
                self._state.pop(key, None)
            else:
                self._state[key] = value
        self._apply_tree(tree)
        if validators_proof is not None:
            self._changes[height] = validators_proof
        self.pinned.update(models_read)
        self._height = height

    def validator_changes(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        heights = sorted(h for h in self._changes if h > after)[:limit]
        return [(h, self._changes[h]) for h in heights]
