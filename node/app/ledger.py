"""The application side of consensus: build, validate and commit blocks.

This is the narrow boundary between the PBFT replica and the rest of the node
(CometBFT's ABCI in spirit): the replica asks for a proposal, asks whether a
proposal is valid, and hands over certified blocks; everything here is
deterministic given the committed store and the block, except the proposer's
clock reading and the clock-drift check on proposals (which never applies to
certified blocks).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from consensus import codec, smt
from consensus.bounded import BoundedMap
from consensus.certificate import Certificate
from ml.errors import ModelError
from node.app import drift_state, governance
from node.app.drift_state import DriftView
from node.app.execution import Executed, Executor, SignatureCache, TxRejected, genesis_writes
from node.app.genesis import Genesis
from node.app.known_txs import KnownTxs, decode_block
from node.app.scoring import ArtifactMissing, ModelCache, active_model
from node.app.state import VALIDATORS, Overlay
from node.app.storage import Storage
from node.app.types import Block, Header, Receipt, Tx, tx_root

MAX_CLOCK_DRIFT_MS = 30_000
"""A proposal's timestamp may be at most this far ahead of the validating node's clock."""
BLOCK_FRAME_BYTES = 1_024
"""Of a block's ``max_block_bytes``, what a build keeps for the header and the block's
framing; the transactions share the rest. A transaction larger than the rest is refused at
admission (and dropped by a build if the parameter was lowered after it was admitted): no
block could ever carry it, and left pending it kept primaries making empty blocks."""
MAX_HEADER_CACHE = 64
"""Committed headers kept in memory."""
MAX_DECODED_CACHE = 8
"""Decoded blocks kept by the hash of their bytes."""
MAX_RECENT_BLOCKS = 8
"""Committed blocks kept decoded with their receipts, for the API: clients and explorers
following the chain ask for each new block, and decoding its transactions and receipts
again cost the node serving them about as much as executing the block (issue 15)."""
MAX_EXECUTION_CACHE = 16
"""Executed proposals kept by block hash, so a committed block is not executed twice."""
MAX_KNOWN_TXS = 60_000
"""Admitted transactions kept by their encoding, so a block carrying them is decoded without
checking each again (at least the mempool's count, asserted in node/mempool.py)."""
MAX_TREE_NODE_CACHE = 200_000
"""State tree nodes kept in memory (65 bytes each, about 30 MB with Python's overhead): the
upper levels every update and proof walks stay here instead of in LevelDB reads."""


def validators_hash(validators: Sequence[bytes]) -> bytes:
    return hashlib.sha256(codec.encode(list(validators))).digest()


@dataclass(frozen=True)
class ValidatorChangeRecord:
    """A validator-set change as stored: header and certificate bytes, the new set, and the
    encoded state proof of that set under the header's state root."""

    height: int
    header: bytes
    certificate: bytes
    validators: list[bytes]
    proof: bytes


@dataclass(frozen=True)
class Proposal:
    block: bytes
    rejected: list[tuple[Tx, TxRejected]]
    missing_models: list[bytes]
    """Artifacts to fetch: transactions needing them wait in the mempool meanwhile."""
    waiting: dict[bytes, list[bytes]] = field(default_factory=dict)
    """By missing model, the transactions that wait for it (dropped if no peer has it)."""


class Ledger:
    def __init__(self, store: Storage, genesis: Genesis, *, clock_ms=None) -> None:  # type: ignore[no-untyped-def]
        self.store = store
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.genesis_hash = genesis.hash()
        initial = genesis_writes(genesis)
        self.tree_nodes = smt.NodeCache(store.tree_node, MAX_TREE_NODE_CACHE)
        store.initialise(
            self.genesis_hash,
            initial,
            genesis.validators(),
            smt.update(store.tree_node, smt.EMPTY, initial),
        )
        store.check()
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.signatures = SignatureCache(self.genesis_hash)
        self.executor = Executor(
            self.chain_id,
            store.get,
            lambda tx_id: store.tx_location(tx_id) is not None,
            store.state_root,
            self.tree_nodes.get,
            self.signatures,
            ModelCache(store.artifact),
        )
        self._executed: BoundedMap[bytes, Executed] = BoundedMap(MAX_EXECUTION_CACHE)
        self._headers: BoundedMap[int, Header] = BoundedMap(MAX_HEADER_CACHE)
        self._decoded: BoundedMap[bytes, Block] = BoundedMap(MAX_DECODED_CACHE)
        self.known_txs = KnownTxs(MAX_KNOWN_TXS)
        self._recent: BoundedMap[int, tuple[Block, tuple[Receipt, ...]]] = BoundedMap(
            MAX_RECENT_BLOCKS
        )
        """The blocks ``commit`` applied last, with their receipts, by height (oldest first)."""

    # ------------------------------------------------------------ chain facts

    @property
    def height(self) -> int:
        return self.store.height()

    def validators(self, height: int) -> list[bytes]:
        vals = self.store.validators(height)
        assert vals is not None, f"no validator set for height {height}"
        return vals

    def header(self, height: int) -> Header | None:
        """A committed block's header (recent ones cached: every proposal needs the last)."""
        cached = self._headers.get(height)
        if cached is not None:
            return cached
        raw = self.store.block(height)
        if raw is None:
            return None
        header = self.decode_header(raw)
        self._headers.remember(height, header)
        return header

    @property
    def last_committed(self) -> tuple[Block, tuple[Receipt, ...]] | None:
        """The block ``commit`` applied last and its receipts (the node's metrics count them)."""
        return next(reversed(self._recent.values()), None)

    def committed_block(self, height: int) -> tuple[Block, tuple[Receipt, ...]] | None:
        """A committed block and its receipts, decoded (the newest ``MAX_RECENT_BLOCKS`` are
        the objects ``commit`` applied; older ones are decoded from the store)."""
        recent = self._recent.get(height)
        if recent is not None:
            return recent
        raw = self.store.block(height)
        if raw is None:
            return None
        receipts = tuple(Receipt.decode(r) for r in self.store.receipts(height) or ())
        return Block.decode(raw), receipts

    @staticmethod
    def decode_header(raw: bytes) -> Header:
        """A committed block's header, without decoding (and checking) its transactions."""
        wire = codec.decode(raw, max_size=Block.MAX_BYTES, allow_float=True)
        if type(wire) is not list or len(wire) != 2:
            raise codec.MalformedError("a block is [header, txs]")
        return Header.from_wire(wire[0])

    def prev_hash(self, height: int) -> bytes:
        if height == 1:
            return self.genesis_hash
        header = self.header(height - 1)
        assert header is not None
        return header.hash()

    def certificate(self, height: int) -> Certificate | None:
        raw = self.store.certificate(height)
        return None if raw is None else Certificate.decode(raw)

    def admit(self, tx: Tx) -> None:
        """Raise TxRejected unless ``tx`` could go into the next block (the mempool's check).

        Its signature verdict is cached per signed copy, so building and
        validating a block that carries it later does not verify it again.
        """
        rejected = self.admit_many([tx])[0]
        if rejected is not None:
            raise rejected

    def admit_many(self, txs: Sequence[Tx]) -> list[TxRejected | None]:
        """``admit`` for a batch, its signatures verified together: None where admitted."""
        verdicts = self.signatures.verify(txs)
        height = self.height + 1
        state = Overlay(self.store.get)  # read-only here: one for the batch shares its reads
        room = governance.param(state, "max_block_bytes") - BLOCK_FRAME_BYTES
        out: list[TxRejected | None] = []
        for tx, ok in zip(txs, verdicts, strict=True):
            try:
                if len(tx.encode()) > room:  # no block could carry it: refuse, never park it
                    raise TxRejected(
                        "too_large", f"{len(tx.encode())} bytes; a block carries {room} at most "
                        "(the max_block_bytes parameter)",
                    )  # fmt: skip
                self.executor.check(state, tx, height, ok)
                out.append(None)
            except TxRejected as exc:
                out.append(exc)
        self.known_txs.add(tx for tx, rejected in zip(txs, out, strict=True) if rejected is None)
        return out

    def forget_models(self, model_ids: list[bytes]) -> None:
        """The node deleted these artifacts: unload them (the next read raises ArtifactMissing)."""
        if self.executor.models is not None:
            self.executor.models.forget(model_ids)

    def model_trees(self, model_id: bytes) -> int | None:
        """Trees of a model whose artifact this node holds and can load, else None."""
        if self.executor.models is None:
            return None
        try:
            return self.executor.models.scorer(model_id).model.n_trees
        except (ArtifactMissing, ModelError):
            return None

    def param(self, name: str) -> int:
        return governance.param(Overlay(self.store.get), name)

    def drift(self, name: str) -> DriftView | None:
        """The committed drift of the model family ``name``'s active model, or None if no
        model is active under that name. The training bins come from the artifact, so they
        are None if this node lacks it (or it is a version 1 artifact)."""
        state = Overlay(self.store.get)
        model_id = active_model(state, name)
        if model_id is None:
            return None
        bins = None
        if self.executor.models is not None:
            try:
                bins = self.executor.models.scorer(model_id).model.training_bins
            except (ArtifactMissing, ModelError):
                bins = None
        return drift_state.view(state, name, model_id, bins)

    def decode(self, raw: bytes, max_size: int | None = None) -> Block:
        """Decode block bytes once: the digest check, validation and commit all need it."""
        block = self._decoded.get(hashlib.sha256(raw).digest())
        if block is None:
            block = decode_block(raw, self.known_txs, max_size)
            self._keep_decoded(raw, block)
        return block

    def _keep_decoded(self, raw: bytes, block: Block) -> None:
        self._decoded.remember(hashlib.sha256(raw).digest(), block)

    def block_digest(self, raw: bytes) -> bytes:
        """The digest the replica uses for a block: its header hash (raises on junk)."""
        return self.decode(raw).hash()

    # ------------------------------------------------------------ consensus boundary

    def build(self, height: int, view: int, proposer: bytes, candidates: Sequence[Tx]) -> Proposal:
        assert height == self.height + 1
        previous = self.header(height - 1)
        timestamp = self.clock_ms()
        if previous is not None:
            timestamp = max(timestamp, previous.timestamp_ms + 1)
        selection = self.executor.select(
            candidates,
            height,
            timestamp,
            self.param("max_block_txs"),
            self.param("max_block_bytes") - BLOCK_FRAME_BYTES,
        )
        header = Header(
            self.chain_id,
            height,
            self.prev_hash(height),
            timestamp,
            view,
            proposer,
            len(selection.txs),
            tx_root(selection.txs),
            selection.executed.receipts_root,
            selection.executed.state_root,
            validators_hash(self.validators(height)),
        )
        block = Block(header, tuple(selection.txs))
        self._executed.remember(block.hash(), selection.executed)
        raw = block.encode()
        self._keep_decoded(raw, block)  # the replica asks for its digest next
        return Proposal(raw, selection.rejected, selection.missing_models, selection.waiting)

    def validate(
        self, height: int, raw: bytes, view: int | None = None, *, check_clock: bool = True
    ) -> str | None:
        """None if ``raw`` is a valid next block, else why not.

        ``view`` is the view it was proposed in: a block names the view it was first
        proposed in, which a NEW-VIEW re-proposing it may have left behind, but never a later
        one (a primary could otherwise claim any far-off view it also leads).

        Raises node.app.scoring.ArtifactMissing when the block scores with a model this
        node does not hold yet: fetch it and validate again.
        """
        try:
            if len(raw) > self.param("max_block_bytes"):
                return f"block is {len(raw)} bytes, over max_block_bytes"
            block = self.decode(raw)
        except (codec.CodecError, ValueError) as exc:
            return f"malformed block: {exc}"
        h = block.header
        if height != self.height + 1 or h.height != height:
            return f"block is for height {h.height}, expected {self.height + 1}"
        if h.chain_id != self.chain_id:
            return f"block is for chain {h.chain_id!r}"
        if h.prev_hash != self.prev_hash(height):
            return "prev_hash does not match the last committed block"
        vals = self.validators(height)
        if h.validators_hash != validators_hash(vals):
            return "validators_hash does not match the validator set"
        if h.proposer != vals[(height + h.view) % len(vals)]:
            return "proposer is not the primary of the block's view"
        if view is not None and h.view > view:
            return f"block names view {h.view}, later than view {view} it was proposed in"
        previous = self.header(height - 1)
        if previous is not None and h.timestamp_ms <= previous.timestamp_ms:
            return "timestamp does not advance"
        if check_clock and h.timestamp_ms > self.clock_ms() + MAX_CLOCK_DRIFT_MS:
            return "timestamp is too far in the future"
        if len(block.txs) > self.param("max_block_txs"):
            return f"{len(block.txs)} transactions exceed max_block_txs"
        executed = self._executed.get(block.hash())
        if executed is None:  # not this node's own proposal: execute it (execute-then-vote)
            try:
                executed = self.executor.execute(block.txs, height, h.timestamp_ms)
            except TxRejected as exc:
                return f"inadmissible transaction: {exc.message}"
        if executed.receipts_root != h.receipts_root:
            return "receipts_root does not match execution"
        if executed.state_root != h.state_root:
            return "state_root does not match execution"
        self._executed.remember(block.hash(), executed)
        return None

    def commit(self, raw: bytes, certificate: Certificate) -> tuple[list[bytes], list[bytes]]:
        """Apply a certified block; return (validators of the next height, committed tx ids)."""
        block = self.decode(raw)
        height = block.header.height
        assert height == self.height + 1 and certificate.block_hash == block.hash()
        executed = self._executed.pop(block.hash(), None)
        if executed is None:
            problem = self.validate(height, raw, check_clock=False)
            if problem is not None:
                raise AssertionError(
                    f"certified block {height} is invalid on this node ({problem}): "
                    "this node's state has diverged; stop and re-sync it"
                )
            executed = self._executed.pop(block.hash())
        next_validators = Overlay(self.store.get).get_value(VALIDATORS)
        writes = executed.writes
        proof = None
        if VALIDATORS in writes and writes[VALIDATORS] is not None:
            next_validators = codec.decode(writes[VALIDATORS])
            if next_validators != self.validators(height):
                proof = self._validators_proof(executed.tree)
        tx_ids = [tx.id for tx in block.txs]
        self.store.commit(
            height,
            raw,
            certificate.encode(),
            [r.encode() for r in executed.receipts],
            tx_ids,
            writes,
            executed.tree,
            list(next_validators),  # type: ignore[arg-type]
            validators_proof=proof,
            models_read=executed.models_read,
        )
        self._executed.clear()
        self.tree_nodes.add(executed.tree.added)
        self._headers.remember(height, block.header)
        self.known_txs.forget(block.txs)
        self._recent.remember(height, (block, executed.receipts))
        return list(next_validators), tx_ids  # type: ignore[arg-type]

    def state_proof(self, key: bytes) -> smt.Proof:
        """The proof of ``key``'s value or absence under the latest committed state root."""
        return smt.prove(self.tree_nodes.get, self.store.state_root(), key)

    def _validators_proof(self, tree: smt.TreeUpdate) -> bytes:
        """The encoded proof of the next validator set under the block's new state root."""
        read = lambda digest: tree.added.get(digest) or self.tree_nodes.get(digest)  # noqa: E731
        return codec.encode(smt.prove(read, tree.root, VALIDATORS).to_wire())

    def validator_changes(self, after: int, limit: int) -> list[ValidatorChangeRecord]:
        """Blocks above ``after`` that changed the validator set, with what a light client
        needs to follow each (at most ``limit``)."""
        out = []
        for height, proof in self.store.validator_changes(after, limit):
            block, cert = self.store.block(height), self.store.certificate(height)
            new_set = self.store.validators(height + 1)
            assert block is not None and cert is not None and new_set is not None
            out.append(ValidatorChangeRecord(height, Block.decode(block).header.encode(), cert,
                                             new_set, proof))  # fmt: skip
        return out
