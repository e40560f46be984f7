"""Block execution: admission rules, the per-kind dispatch table, receipts and roots.

The same code builds a proposal (primary), validates one (every replica,
before it votes) and is the reference for what a committed block did, so its
results are a pure function of the committed state and the block.

A transaction is *admissible* at a height when its signature verifies (once
per node: verdicts are cached by tx id and signature), its sender is an authorised client
with the role its kind needs, it has not expired and does not reach more than
``max_tx_window`` heights ahead, it was never committed, and its kind has a
handler. A block with an inadmissible transaction is invalid. A handler that
fails (:class:`~node.app.state.Revert`) only reverts its own transaction: the
receipt says ``reverted`` and why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from consensus import codec, merkle, smt
from consensus.bounded import BoundedMap
from consensus.certificate import MAX_VALIDATORS
from consensus.crypto import DOMAIN_TX, SignedItem, is_acceptable_public_key, verify_batch
from node.app import governance
from node.app.anchors import execute_anchor
from node.app.contracts import CallContext, ContractRevert, execute_call, execute_deploy
from node.app.genesis import Genesis
from node.app.governance import param
from node.app.scoring import ArtifactMissing, ModelCache, Scoring, execute_score
from node.app.state import VALIDATORS, Overlay, Revert
from node.app.system import genesis_code
from node.app.types import MAX_ERROR_BYTES, Event, Receipt, Tx, receipts_root

Handler = Callable[[Overlay, Tx, int, CallContext], tuple[object, list[Event], int]]
"""(state, tx, height, context) -> (result, events, gas used); raises Revert to fail the tx."""

HANDLERS: dict[str, Handler] = {
    "anchor": execute_anchor,
    "call": execute_call,
    "deploy": execute_deploy,
    "score": execute_score,
}
"""Transaction kind -> handler."""

GAS_FREE_KINDS = frozenset({"anchor"})
"""Kinds whose execution uses no gas: a build still takes them once the block's gas is spent."""

ROLE_FOR_KIND = {"anchor": "submit", "call": "submit", "deploy": "submit", "score": "score"}
"""The client role each kind needs (a deployment also needs governance's approval of its code)."""

MAX_BUILD_SKIPS = 64
"""Candidates a build passes over (too large for the bytes left, or waiting for a model
artifact) before it stops looking: with the gas rule below, this bounds the work a build
spends on transactions that do not go into the block."""
MAX_SIGNATURE_CACHE = 200_000
"""Signed transactions (id and signature) whose signature verdict this node remembers."""


class TxRejected(Exception):
    """A transaction is not admissible; ``code`` is stable for API clients."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def genesis_writes(genesis: Genesis) -> dict[bytes, bytes]:
    """The state at height 0."""
    writes = governance.genesis_storage(genesis)
    writes.update(genesis_code())
    writes[VALIDATORS] = codec.encode(genesis.validators())
    return writes


def signed_key(tx: Tx) -> bytes:
    """What a signature verdict is cached under: the tx id *and* its signature.

    The id hashes only the unsigned body, so two copies of one transaction with
    different signatures share it; a verdict cached by id alone would let a
    forged copy ride on the genuine one's verdict (or a forged copy seen first
    poison the genuine one).
    """
    return tx.id + tx.signature


class SignatureCache:
    """Verify transaction signatures once per node, in the thread pool, cached per signed copy."""

    def __init__(self, chain: bytes, capacity: int = MAX_SIGNATURE_CACHE) -> None:
        self.chain = chain
        self._known: BoundedMap[bytes, bool] = BoundedMap(capacity)

    def verify(self, txs: Sequence[Tx]) -> list[bool]:
        keys = [signed_key(tx) for tx in txs]
        todo = [(tx, key) for tx, key in zip(txs, keys, strict=True) if key not in self._known]
        if todo:
            items = [
                SignedItem(tx.sender, DOMAIN_TX, self.chain, tx.body_bytes(), tx.signature)
                for tx, _ in todo
            ]
            fresh = dict(zip((key for _, key in todo), verify_batch(items), strict=True))
            self._known.remember_all(fresh.items())
            return [self._known.get(key, fresh.get(key, False)) for key in keys]
        return [self._known.get(key, False) for key in keys]


@dataclass(frozen=True)
class Executed:
    receipts: tuple[Receipt, ...]
    writes: dict[bytes, bytes | None]
    tree: smt.TreeUpdate
    """The state tree after the block: its root is the header's state_root."""
    receipts_root: bytes
    models_read: frozenset[bytes] = frozenset()
    """Model artifacts the execution read: replaying the block needs them, so the node keeps
    them for good once it commits (node/store.py, ``Store.commit``)."""

    @property
    def state_root(self) -> bytes:
        return self.tree.root


@dataclass(frozen=True)
class Selection:
    """A proposal's body: chosen txs and their execution, the candidates the mempool should
    drop, and models this node must fetch before it can include the txs that need them."""

    txs: list[Tx]
    executed: Executed
    rejected: list[tuple[Tx, TxRejected]]
    missing_models: list[bytes]
    waiting: dict[bytes, list[bytes]] = field(default_factory=dict)
    """By missing model: the ids of the candidates left out until this node holds it."""


class Executor:
    """Executes transactions against an overlay of the committed state."""

    def __init__(
        self,
        chain_id: str,
        read: Callable[[bytes], bytes | None],
        committed: Callable[[bytes], bool],
        previous_root: Callable[[], bytes],
        read_node: smt.ReadNode,
        signatures: SignatureCache,
        models: ModelCache | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.read = read
        self.committed = committed
        self.previous_root = previous_root
        self.read_node = read_node
        self.signatures = signatures
        self.models = models

    def overlay(self) -> Overlay:
        return Overlay(self.read)

    def check(self, state: Overlay, tx: Tx, height: int, signature_ok: bool) -> None:
        """Raise TxRejected unless ``tx`` is admissible at ``height``."""
        if tx.chain_id != self.chain_id:
            raise TxRejected("wrong_chain", f"transaction is for chain {tx.chain_id!r}")
        if not is_acceptable_public_key(tx.sender):
            raise TxRejected("weak_key", "sender key is malformed, non-canonical or of small order")
        if not signature_ok:
            raise TxRejected("bad_signature", "signature does not verify")
        if tx.kind not in HANDLERS:
            raise TxRejected("unsupported_kind", f"{tx.kind} transactions are not enabled yet")
        roles = governance.roles_of(state, tx.sender)
        if roles is None:
            raise TxRejected(
                "unauthorised",
                f"sender {tx.sender.hex()} is neither an authorised client nor a member's admin",
            )
        role = ROLE_FOR_KIND[tx.kind]
        admin_call = tx.kind == "call" and governance.MEMBER_ADMIN in roles
        if role not in roles and not admin_call:
            raise TxRejected("forbidden", f"sender lacks the {role!r} role for {tx.kind}")
        if tx.valid_until_height < height:
            raise TxRejected("expired", f"valid until height {tx.valid_until_height} < {height}")
        window = param(state, "max_tx_window")
        if tx.valid_until_height > height + window:
            raise TxRejected(
                "too_far_ahead",
                f"valid_until_height {tx.valid_until_height} is more than {window} above {height}",
            )
        if self.committed(tx.id):
            raise TxRejected("duplicate", "transaction is already committed")

    def execute(self, txs: Sequence[Tx], height: int, time_ms: int) -> Executed:
        """Execute a block's transactions; raise TxRejected if one is inadmissible."""
        state = self.overlay()
        verdicts = self.signatures.verify(txs)
        scoring = self._scoring(state, txs)
        seen: set[bytes] = set()
        receipts = []
        gas = 0
        for tx, ok in zip(txs, verdicts, strict=True):
            if tx.id in seen:
                raise TxRejected("duplicate", "transaction appears twice in the block")
            seen.add(tx.id)
            self.check(state, tx, height, ok)
            receipt = self._apply(state, tx, height, time_ms, scoring)
            gas += receipt.gas_used
            receipts.append(receipt)
        if gas > param(state, "max_block_gas"):
            raise TxRejected("block_gas", f"transactions use {gas} gas, over max_block_gas")
        return self._finish(state, receipts, scoring)

    def _finish(self, state: Overlay, receipts: list[Receipt], scoring: Scoring | None) -> Executed:
        """Close a block's execution: next validator set, writes, roots and models read."""
        self._follow_membership(state)
        writes = state.writes
        return Executed(
            tuple(receipts),
            writes,
            smt.update(self.read_node, self.previous_root(), writes),
            receipts_root(receipts),
            frozenset(scoring.read) if scoring is not None else frozenset(),
        )

    @staticmethod
    def _follow_membership(state: Overlay) -> None:
        """If the block changed the members, record the next height's validator set."""
        if not state.wrote(governance.MEMBERS_STATE_KEY):
            return
        validators = governance.validators_of(governance.members(state))
        if 1 <= len(validators) <= MAX_VALIDATORS:
            state.put_value(VALIDATORS, validators)

    def _scoring(self, state: Overlay, txs: Sequence[Tx]) -> Scoring | None:
        if self.models is None:
            return None
        scoring = Scoring(self.models)
        scoring.prepare_block(state, txs)
        return scoring

    def _apply(
        self, state: Overlay, tx: Tx, height: int, time_ms: int, scoring: Scoring | None
    ) -> Receipt:
        """Execute one admissible tx; raises ArtifactMissing if a model must be fetched first."""
        snapshot = state.snapshot()
        ctx = CallContext(state, height, time_ms, scoring=scoring)
        if scoring is not None:
            ctx.score = scoring.host_score(state)
        try:
            result, events, gas = HANDLERS[tx.kind](state, tx, height, ctx)
        except Revert as exc:
            state.revert(snapshot)
            gas = exc.gas_used if isinstance(exc, ContractRevert) else 0
            return Receipt(tx.id, "reverted", gas, None, (), str(exc)[:MAX_ERROR_BYTES])
        return Receipt(tx.id, "ok", gas, result, tuple(events), "")

    def select(
        self, candidates: Sequence[Tx], height: int, time_ms: int, max_txs: int, max_bytes: int
    ) -> Selection:
        """Build a block body: admissible candidates in order, within the limits.

        The build stops at the block's count budget and after MAX_BUILD_SKIPS
        candidates passed over for bytes or a missing artifact. After the first
        candidate whose gas does not fit what is left of ``max_block_gas`` it
        executes no other gas user, only GAS_FREE_KINDS (so it executes at most
        ``max_block_gas + max_tx_gas`` gas in all). Candidates it left out stay in
        the mempool for later blocks.
        """
        state = self.overlay()
        verdicts = self.signatures.verify(candidates)
        missing: set[bytes] = set()
        try:
            scoring = self._scoring(state, candidates)
        except ArtifactMissing as exc:
            missing.add(exc.model_id)
            scoring = self._scoring(state, [t for t in candidates if t.kind != "score"])
        chosen: list[Tx] = []
        receipts: list[Receipt] = []
        rejected: list[tuple[Tx, TxRejected]] = []
        seen: set[bytes] = set()
        waiting: dict[bytes, list[bytes]] = {}
        size = 0
        gas = 0
        skipped = 0
        max_gas = param(state, "max_block_gas")
        gas_closed = False  # once a candidate's gas did not fit, only gas-free kinds may follow
        for tx, ok in zip(candidates, verdicts, strict=True):
            if len(chosen) >= max_txs or skipped >= MAX_BUILD_SKIPS:
                break
            if (gas_closed or gas >= max_gas) and tx.kind not in GAS_FREE_KINDS:
                continue  # not executed: it waits for a later block
            encoded = len(tx.encode())
            if encoded > max_bytes:  # admitted before max_block_bytes was lowered: never fits
                rejected.append((tx, TxRejected(
                    "too_large", f"{encoded} bytes; a block carries {max_bytes} at most"
                )))  # fmt: skip
                continue
            if size + encoded > max_bytes:
                skipped += 1
                continue
            if tx.id in seen:
                continue
            try:
                self.check(state, tx, height, ok)
            except TxRejected as exc:
                rejected.append((tx, exc))
                continue
            snapshot = state.snapshot()
            read = set(scoring.read) if scoring is not None else set()
            try:
                receipt = self._apply(state, tx, height, time_ms, scoring)
            except ArtifactMissing as exc:
                state.revert(snapshot)  # leave it until this node holds the model
                _forget_reads(scoring, read)
                missing.add(exc.model_id)
                waiting.setdefault(exc.model_id, []).append(tx.id)
                if tx.kind != "score":  # a score tx stops before any work; a call may not
                    skipped += 1
                continue
            if gas + receipt.gas_used > max_gas:
                state.revert(snapshot)  # leave it, and every later gas user, for a later block
                _forget_reads(scoring, read)
                gas_closed = True
                continue
            gas += receipt.gas_used
            seen.add(tx.id)
            size += encoded
            chosen.append(tx)
            receipts.append(receipt)
        return Selection(
            chosen, self._finish(state, receipts, scoring), rejected, sorted(missing), waiting
        )


def _forget_reads(scoring: Scoring | None, before: set[bytes]) -> None:
    """A candidate left out of the block: the models only it read are not the block's."""
    if scoring is not None:
        scoring.read.intersection_update(before)


def tx_proof(txs: Sequence[Tx], index: int) -> merkle.Proof:
    return merkle.Tree([tx.encode() for tx in txs]).proof(index)
