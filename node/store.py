"""The node's LevelDB store (plyvel): blocks, certificates, receipts, tx index, state, consensus.

Everything one committed block changes is written in one synced write batch,
so after a crash the store holds exactly the blocks that were committed, with
their state. Key layout (all heights are 8-byte big-endian):

    meta/genesis        genesis hash this store belongs to
    meta/height         last committed height
    meta/state_root     state root after that height: the root of the state tree
    tree/<hash>         a node of the state tree (consensus/smt.py), by its hash
    valproof/<h>        at a block that changed the validator set: the state proof of the
                        new set against that block's state root (for light clients)
    block/<h>           block bytes          cert/<h>      certificate bytes
    receipts/<h>        [receipt bytes...]   valset/<h>    validator keys of height h
    tx/<id>             [height, index]      state/<key>   state value
    consensus/safety    the replica's SafetyState (written before its votes leave)
    artifact/<id>       a model artifact whose SHA-256 is <id> (not state: fetched by id)
    artpin/<id>         a committed block read artifact <id>: kept for good (replaying the
                        block needs it; every version and open proposal is one such read)
    artmeta/<id>        an artifact not (yet) pinned: [height it arrived at, uploader key or b""]
    artgc/<h><id>       the same, queued by arrival height for collection (collect_artifacts)
    artup/<key><id>     the same, by uploading key: its size (the uploader's quota)

An artifact stored without an arrival height (``put_artifact(id, data)``) is kept for good:
stores written before uploads were collected, and tests.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import plyvel

from consensus import codec
from consensus.smt import EMPTY, TreeUpdate

META_GENESIS = b"meta/genesis"
META_HEIGHT = b"meta/height"
META_STATE_ROOT = b"meta/state_root"
SAFETY = b"consensus/safety"
BLOCK = b"block/"
CERT = b"cert/"
RECEIPTS = b"receipts/"
VALSET = b"valset/"
TX = b"tx/"
STATE = b"state/"
ARTIFACT = b"artifact/"
TREE = b"tree/"
VALPROOF = b"valproof/"
ARTPIN = b"artpin/"
ARTMETA = b"artmeta/"
ARTGC = b"artgc/"
ARTUP = b"artup/"

MAX_STATE_SCAN = 10_000
"""Most state entries one prefix scan returns."""


class StoreError(Exception):
    """The store is missing, damaged, locked or belongs to another chain."""


def _h(height: int) -> bytes:
    return struct.pack(">Q", height)


STORE_MAX_OPEN_FILES = 500
"""Table files LevelDB keeps open (its default is 1,000): part of the node's file budget
(node/run.py). With STORE_TABLE_BYTES tables that holds 4 GB of store before a read may
have to reopen a table."""
STORE_TABLE_BYTES = 8 * 1024 * 1024
"""Size LevelDB's table files grow to (its default is 2 MiB): fewer, larger tables, so the
open-file budget above covers a larger store."""
STORE_WRITE_BUFFER_BYTES = 32 * 1024 * 1024
"""LevelDB's memtable (its default is 4 MiB): a larger one flushes less often, so fewer
level-0 tables are merged by compaction, the background work that grows with the store."""
STORE_BLOCK_CACHE_BYTES = 64 * 1024 * 1024
"""LevelDB's cache of decoded table blocks (its default is 8 MiB): the state, tree nodes
and transaction index every block reads stay in memory past a few hundred thousand keys."""
STORE_BLOOM_BITS = 10
"""Bits per key of each table's Bloom filter (LevelDB's default is none). Most reads a
transaction makes at admission and in execution are for keys that are absent (is this id
committed?); a filter answers those without reading a block from every level.
The store's memory beyond Python is about 2 write buffers + the block cache + the filters."""
STORE_COMPRESSION = None
"""No Snappy compression (LevelDB's default): most of the store is hashes (tree nodes,
ids, signatures) that do not compress, and compressing them again at every compaction
cost CPU that every node shares with consensus. Measured in process: filling a store with
400,000 anchors took 302 s of CPU with LevelDB's defaults (131 s of it in compaction
beside 171 s of wall time) and 190 s with these settings, for a store of 289 MiB instead
of 259 MiB; scoring after it cost 127 µs a transaction instead of 240."""
assert STORE_TABLE_BYTES * STORE_MAX_OPEN_FILES >= 4 * 10**9
assert STORE_WRITE_BUFFER_BYTES >= STORE_TABLE_BYTES  # a flush makes at least one full table


class Store:
    """One node's durable data. Not thread-safe for writes; reads may come from any thread."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = False) -> None:
        self.path = Path(path)
        self.on_sync: Callable[[str, float], None] | None = None
        """Told how long each synced write took ("block" or "safety"; the node's metrics)."""
        if not create and not (self.path / "CURRENT").exists():
            raise StoreError(
                f"{self.path}: no database here (LevelDB file CURRENT is missing); "
                "run `vigil node init` or restore the directory"
            )
        try:
            self.db = plyvel.DB(
                str(self.path), create_if_missing=create, paranoid_checks=True,
                max_open_files=STORE_MAX_OPEN_FILES, max_file_size=STORE_TABLE_BYTES,
                write_buffer_size=STORE_WRITE_BUFFER_BYTES, lru_cache_size=STORE_BLOCK_CACHE_BYTES,
                bloom_filter_bits=STORE_BLOOM_BITS, compression=STORE_COMPRESSION,
            )  # fmt: skip
        except plyvel.Error as exc:
            raise StoreError(f"{self.path}: cannot open the database: {_message(exc)}") from None
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot open the database: {exc}") from None

    def close(self) -> None:
        if not self.db.closed:
            self.db.close()

    # ------------------------------------------------------------ genesis and meta

    def initialise(
        self,
        genesis_hash: bytes,
        writes: Mapping[bytes, bytes],
        validators: list[bytes],
        tree: TreeUpdate,
    ) -> None:
        """Write the genesis state (height 0) once; refuse a store of another chain."""
        known = self.db.get(META_GENESIS)
        if known is not None:
            if known != genesis_hash:
                raise StoreError(
                    f"{self.path}: belongs to genesis {known.hex()}, not {genesis_hash.hex()}"
                )
            return
        with self.db.write_batch(sync=True) as batch:
            for key, value in writes.items():
                batch.put(STATE + key, value)
            batch.put(VALSET + _h(1), codec.encode(list(validators)))
            _put_tree(batch, tree)
            batch.put(META_HEIGHT, _h(0))
            batch.put(META_GENESIS, genesis_hash)

    def genesis_hash(self) -> bytes | None:
        return self.db.get(META_GENESIS)

    def height(self) -> int:
        raw = self.db.get(META_HEIGHT)
        if raw is None:
            raise StoreError(f"{self.path}: not initialised (no meta/height)")
        return struct.unpack(">Q", raw)[0]

    def state_root(self) -> bytes:
        root = self.db.get(META_STATE_ROOT)
        if root is None:
            raise StoreError(f"{self.path}: not initialised (no meta/state_root)")
        return root

    def check(self) -> None:
        """Verify at start-up that the last committed block and its parts are all present."""
        height = self.height()
        root = self.state_root()
        if root != EMPTY and self.db.get(TREE + root) is None:
            raise StoreError(
                f"{self.path}: the state tree's root node is missing (a store from an older "
                "version or damaged)"
            )
        if height == 0:
            return
        for prefix, what in ((BLOCK, "block"), (CERT, "certificate"), (RECEIPTS, "receipts")):
            if self.db.get(prefix + _h(height)) is None:
                raise StoreError(f"{self.path}: {what} of the last height {height} is missing")
        if self.db.get(VALSET + _h(height + 1)) is None:
            raise StoreError(f"{self.path}: validator set of height {height + 1} is missing")

    # ------------------------------------------------------------ reads

    def block(self, height: int) -> bytes | None:
        return self.db.get(BLOCK + _h(height))

    def certificate(self, height: int) -> bytes | None:
        return self.db.get(CERT + _h(height))

    def receipts(self, height: int) -> list[bytes] | None:
        raw = self.db.get(RECEIPTS + _h(height))
        return None if raw is None else codec.decode(raw)

    def validators(self, height: int) -> list[bytes] | None:
        raw = self.db.get(VALSET + _h(height))
        return None if raw is None else codec.decode(raw)

    def tx_location(self, tx_id: bytes) -> tuple[int, int] | None:
        raw = self.db.get(TX + tx_id)
        if raw is None:
            return None
        height, index = codec.decode(raw)
        return height, index

    def tree_node(self, digest: bytes) -> bytes | None:
        return self.db.get(TREE + digest)

    def get(self, key: bytes) -> bytes | None:
        return self.db.get(STATE + key)

    def scan(
        self, prefix: bytes, limit: int = MAX_STATE_SCAN, after: bytes = b""
    ) -> Iterator[tuple[bytes, bytes]]:
        """State entries whose key starts with ``prefix``, in key order, at most ``limit``;
        with ``after``, only keys above ``prefix + after`` (the page after the last one)."""
        limit = min(limit, MAX_STATE_SCAN)
        first = STATE + prefix
        with self.db.iterator(start=first + after, include_start=not after) as it:
            for n, (key, value) in enumerate(it):
                if n >= limit or not key.startswith(first):
                    return
                yield key[len(STATE) :], value

    def validator_changes(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        found: list[tuple[int, bytes]] = []
        end = VALPROOF + b"\xff" * 8
        with self.db.iterator(start=VALPROOF + _h(after + 1), stop=end) as it:
            for key, value in it:
                if len(found) >= limit:
                    break
                found.append((struct.unpack(">Q", key[len(VALPROOF) :])[0], value))
        return found

    def safety(self) -> bytes | None:
        return self.db.get(SAFETY)

    def artifact(self, model_id: bytes) -> bytes | None:
        return self.db.get(ARTIFACT + model_id)

    def put_artifact(
        self, model_id: bytes, data: bytes, *, height: int | None = None, uploader: bytes = b""
    ) -> None:
        """Keep a model artifact; the caller has checked that ``model_id`` is its SHA-256.

        With ``height`` (the committed height it arrived at) an artifact no committed block
        read yet is collectable: ``collect_artifacts`` deletes it once it has waited the
        grace period, and until then it counts against ``uploader``'s quota (``unreferenced``).
        Without ``height``, or once pinned, it is kept for good."""
        with self.db.write_batch(sync=True, transaction=True) as batch:
            batch.put(ARTIFACT + model_id, data)
            if height is None or self.artifact_pinned(model_id) or self.artifact(model_id):
                return
            batch.put(ARTMETA + model_id, codec.encode([height, uploader]))
            batch.put(ARTGC + _h(height) + model_id, b"")
            if uploader:
                batch.put(ARTUP + uploader + model_id, codec.encode(len(data)))

    def artifact_pinned(self, model_id: bytes) -> bool:
        """Whether a committed block read this artifact (so it is never collected)."""
        return self.db.get(ARTPIN + model_id) is not None

    def unreferenced(self, uploader: bytes, limit: int) -> tuple[int, int]:
        """(count, bytes) of the collectable artifacts ``uploader`` uploaded to this node,
        counting at most ``limit`` of them."""
        count = size = 0
        with self.db.iterator(prefix=ARTUP + uploader) as it:
            for _, value in it:
                if count >= limit:
                    break
                count += 1
                size += codec.decode(value)
        return count, size

    def collect_artifacts(self, height: int, grace: int, limit: int) -> list[bytes]:
        """Delete at most ``limit`` collectable artifacts that arrived at or before
        ``height - grace`` (oldest first); return their ids."""
        gone: list[bytes] = []
        if height < grace:
            return gone
        with (
            self.db.iterator(prefix=ARTGC) as it,
            self.db.write_batch(sync=False) as batch,
        ):
            for key, _ in it:
                arrived = struct.unpack(">Q", key[len(ARTGC) : len(ARTGC) + 8])[0]
                if len(gone) >= limit or arrived > height - grace:
                    break
                model_id = key[len(ARTGC) + 8 :]
                self._unqueue(batch, model_id)
                batch.delete(ARTIFACT + model_id)
                gone.append(model_id)
        return gone

    def _unqueue(self, batch: Any, model_id: bytes) -> None:
        """Delete an artifact's collection entries (it is pinned, or being collected)."""
        raw = self.db.get(ARTMETA + model_id)
        if raw is None:
            return
        arrived, uploader = codec.decode(raw)
        batch.delete(ARTMETA + model_id)
        batch.delete(ARTGC + _h(arrived) + model_id)
        if uploader:
            batch.delete(ARTUP + uploader + model_id)

    # ------------------------------------------------------------ writes

    def _synced(self, what: str, started: float) -> None:
        if self.on_sync is not None:
            self.on_sync(what, time.perf_counter() - started)

    def put_safety(self, state: bytes) -> None:
        """Durably record the replica's safety state (synced: its votes depend on it)."""
        started = time.perf_counter()
        self.db.put(SAFETY, state, sync=True)
        self._synced("safety", started)

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
        """Write a committed block and everything it changes in one synced batch; the
        artifacts its execution read are pinned (never collected) in the same batch."""
        current = self.height()
        if height != current + 1:
            raise StoreError(f"commit of height {height} on top of height {current}")
        started = time.perf_counter()
        with self.db.write_batch(sync=True, transaction=True) as batch:
            key = _h(height)
            batch.put(BLOCK + key, block)
            batch.put(CERT + key, certificate)
            batch.put(RECEIPTS + key, codec.encode(receipts))
            batch.put(VALSET + _h(height + 1), codec.encode(list(next_validators)))
            for index, tx_id in enumerate(tx_ids):
                batch.put(TX + tx_id, codec.encode([height, index]))
            for k, v in writes.items():
                if v is None:
                    batch.delete(STATE + k)
                else:
                    batch.put(STATE + k, v)
            _put_tree(batch, tree)
            if validators_proof is not None:
                batch.put(VALPROOF + key, validators_proof)
            for model_id in sorted(models_read):
                batch.put(ARTPIN + model_id, b"")
                self._unqueue(batch, model_id)
            batch.put(META_HEIGHT, key)
        self._synced("block", started)


def _put_tree(batch: Any, tree: TreeUpdate) -> None:
    """The state tree's new nodes, its unreachable ones gone, and its root."""
    for digest in tree.removed:
        batch.delete(TREE + digest)
    for digest, raw in tree.added.items():
        batch.put(TREE + digest, raw)
    batch.put(META_STATE_ROOT, tree.root)


def _message(exc: Exception) -> str:
    text = exc.args[0] if exc.args else exc
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)
