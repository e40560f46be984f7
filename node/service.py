"""One organisation's node: drives the PBFT replica with real sockets, LevelDB and a clock.

Every event reaches the replica on the asyncio loop thread, and its actions
are carried out in order: a Persist is synced to LevelDB before the messages
after it are queued. Application work (build, validate, commit, admission,
queries) goes to the application worker (``node.worker``) so it cannot freeze
the loop; its answers come back to the loop in the order the calls ran, a
CommitBlock is one synced write batch before the replica hears
BlockPersisted, and an answer for a height that committed meanwhile is
dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from consensus import codec
from consensus.certificate import Certificate
from consensus.crypto import (
    DOMAIN_MODEL_UPLOAD,
    PrivateKey,
    is_acceptable_public_key,
    key_hex,
    sha256,
    verify,
)
from consensus.events import (
    Action,
    BlockPersisted,
    Broadcast,
    BuildProposal,
    CancelTimer,
    CertifiedBlockReceived,
    CommitBlock,
    Event,
    Fault,
    FetchBlocks,
    MessageReceived,
    Persist,
    ProposalBuilt,
    ProposalValidated,
    RequestDropped,
    RequestsSeen,
    Send,
    ServeBlocks,
    SetTimer,
    Start,
    TimerFired,
    ValidateProposal,
)
from consensus.messages import CERTIFICATE_BYTES
from consensus.record import FieldError
from consensus.replica import Replica, ReplicaConfig
from ml.artifact import load as load_artifact
from ml.artifact import model_id as artifact_id
from ml.drift import PSI_SCALE
from ml.errors import ModelError
from ml.forest import Model
from ml.limits import MAX_ARTIFACT_BYTES
from node import logs
from node.app import governance
from node.app.drift_state import LEVELS
from node.app.genesis import DEFAULT_PARAMS, Genesis
from node.app.ledger import Ledger, Proposal
from node.app.scoring import ArtifactMissing
from node.app.state import Overlay
from node.app.types import MAX_BLOCK_BYTES, MAX_TX_BYTES, Tx
from node.budget import (
    FETCH_BURST,
    FETCH_PER_S,
    MODEL_FETCH_BURST,
    MODEL_FETCH_PER_S,
    MODEL_FETCH_REPEAT_S,
    PeerBudgets,
)
from node.byzantine import Byzantine
from node.config import Home, NodeConfig, split_address
from node.looplag import LoopLagMonitor
from node.mempool import Mempool, MempoolFull, ShareFull
from node.metrics import NodeMetrics
from node.p2p import (
    BLOCKS,
    CONSENSUS,
    FETCH,
    FRAME_OVERHEAD_BYTES,
    MAX_FRAME_BYTES,
    MAX_GOSSIP_FRAME_TXS,
    MODEL,
    MODEL_FETCH,
    TX,
    PeerNetwork,
    gossip_frames,
)
from node.store import Store
from node.tls import PeerTLS, is_loopback
from node.worker import AppWorker, Outcome, WorkerBusy

log = logging.getLogger("vigil.node")

MAX_SERVE_BLOCKS = 64
"""Certified blocks sent in one catch-up answer."""
MAX_SERVE_BYTES = 16 * 1024 * 1024
"""Bytes of blocks and certificates in one catch-up answer; an answer always holds at least
one block, and the largest block with its certificate fits the bound, so every answer fits a
peer frame."""
SERVE_ENTRY_OVERHEAD = 16
"""Framing of one [block, certificate] entry in a BLOCKS answer."""
assert MAX_BLOCK_BYTES + CERTIFICATE_BYTES + SERVE_ENTRY_OVERHEAD <= MAX_SERVE_BYTES
assert (
    MAX_SERVE_BYTES + MAX_SERVE_BLOCKS * SERVE_ENTRY_OVERHEAD + FRAME_OVERHEAD_BYTES
    <= MAX_FRAME_BYTES
)
MAX_PROPOSAL_CANDIDATES = 20_000
"""Mempool transactions looked at when building one proposal."""
MAX_WAITERS = 10_000
"""Clients waiting (long-poll) for their transaction to commit."""
ARTIFACT_WAIT_S = 20.0
"""How long a proposal waits for a model artifact from peers before it is judged invalid."""
MAX_ARTIFACT_WAITERS = 1_000
"""Validations that may wait for one artifact at once; past it a validation is refused (the
replica then moves to another view). Builds only start a fetch, and the one certified block
being committed always waits."""

ARTIFACT_GRACE_BLOCKS = 10_000
"""Committed blocks an uploaded (or fetched) artifact that no committed block has read waits
before it is deleted: time for its uploader to propose it (approve_model, approve_round) or
submit it to a round. A committed block that reads it pins it for good (node/store.py), so
the vote that follows needs no more time. At least the default ``max_tx_window``, so a
proposal signed as the artifact is uploaded, valid for the whole window, still finds it."""
assert DEFAULT_PARAMS["max_tx_window"] <= ARTIFACT_GRACE_BLOCKS
MAX_ARTIFACTS_COLLECTED_PER_COMMIT = 16
"""Artifacts one commit deletes at most (oldest first; the rest wait for the next commit),
so collection adds bounded work to a commit on the application worker."""
MAX_UNREFERENCED_ARTIFACTS_PER_KEY = 8
"""Artifacts one uploading key may have on a node that no committed block has read yet; the
next upload is 429 ``upload_quota`` until one is proposed (pinned) or collected."""
MAX_UNREFERENCED_BYTES_PER_KEY = 64 * 1024 * 1024
"""Bytes of those artifacts per uploading key: four of the largest. So one authorised key can
make a node hold at most this much that nobody proposed, for ARTIFACT_GRACE_BLOCKS."""
assert MAX_ARTIFACT_BYTES <= MAX_UNREFERENCED_BYTES_PER_KEY
assert MAX_ARTIFACTS_COLLECTED_PER_COMMIT >= 1 and MAX_UNREFERENCED_ARTIFACTS_PER_KEY >= 1

MAX_GOSSIP_QUEUE_BYTES = 16 * 1024 * 1024
"""Bytes of peers' gossiped transactions waiting to be checked; past it they are dropped (the
sender's own node still proposes them)."""
MAX_GOSSIP_BATCH = 1_000
"""Gossiped transactions checked in one worker task."""
assert MAX_GOSSIP_QUEUE_BYTES >= MAX_TX_BYTES


class _Stale:
    """A worker answer for a height that committed meanwhile: the replica has moved on."""


STALE = _Stale()


T = TypeVar("T")


def _view_change_reason(event: Event) -> str:
    """What set a view change off, from the event that did: a timer, a rejected proposal, or
    messages from peers (f + 1 of them in a higher view, or a bad NEW-VIEW)."""
    if isinstance(event, TimerFired):
        return f"timeout_{event.name.split(':')[0].replace('-', '_')}"
    if isinstance(event, ProposalValidated):
        return "invalid_proposal"
    if isinstance(event, (MessageReceived, BlockPersisted)):
        return "peers"  # a commit replays the peers' messages buffered for the next height
    return "other"


def _changed_view(before: tuple[int, int], after: tuple[int, int]) -> bool:
    """Whether one event started a view change: a higher view at the same height, or a
    view above 0 at a new height (a commit resets the view, then buffered messages move it)."""
    if after[0] == before[0]:
        return after[1] > before[1]
    return after[1] > 0


TEST_CLOCK_SKEW_ENV = "VIGIL_TEST_CLOCK_SKEW_MS"
"""TEST HOOK, for fault injection only (scripts/chaos.py, docs/chaos.md): milliseconds added to
the ledger's clock, the one time source of block timestamps and of the future-timestamp check.
Unset in production; a node that has it logs a WARNING at start-up."""


def skewed_clock() -> Callable[[], int] | None:
    """The ledger's clock offset by ``VIGIL_TEST_CLOCK_SKEW_MS``, or None (the real clock)."""
    text = os.environ.get(TEST_CLOCK_SKEW_ENV, "")
    if not text:
        return None
    skew = int(text)
    log.warning("TEST HOOK: this node's ledger clock is skewed by %+d ms (%s)", skew,
                TEST_CLOCK_SKEW_ENV)  # fmt: skip
    return lambda: int(time.time() * 1000) + skew


class UploadRefused(Exception):
    """A model upload the node does not keep: ``status`` is the HTTP status, ``code`` the
    stable error code (node/api.py answers with both)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


UPLOAD_ROLE = "submit"
"""The client role that may upload model artifacts (the role that puts data on chain:
anchors, deploys, calls); a member's admin key may upload too (it proposes models)."""


@dataclass
class SubmitResult:
    tx_id: bytes | None
    code: str = ""
    message: str = ""
    new: bool = False


class Node:
    def __init__(self, home: Home, config: NodeConfig, genesis: Genesis, key: PrivateKey) -> None:
        self.home = home
        self.config = config
        self.genesis = genesis
        self.key = key
        self.store = Store(home.data_path, create=True)
        self.ledger = Ledger(self.store, genesis, clock_ms=skewed_clock())
        self.mempool = Mempool(config.mempool_max_txs, config.mempool_max_bytes)
        height = self.ledger.height + 1
        self.replica = Replica(
            ReplicaConfig(
                chain=self.ledger.genesis_hash,
                digest_of=self.ledger.block_digest,
                progress_timeout_ms=config.progress_timeout_ms,
                request_timeout_ms=config.request_timeout_ms,
                view_change_timeout_ms=config.view_change_timeout_ms,
            ),
            key,
            height=height,
            validators=tuple(self.ledger.validators(height)),
            last_certificate=self.ledger.certificate(height - 1),
            safety=self.store.safety(),
        )
        self.network = PeerNetwork(
            key,
            genesis.chain_id,
            self.ledger.genesis_hash,
            self._peer_addresses(),
            self._is_member,
            self._on_frame,
            tls=PeerTLS.create(key, home.path) if config.peer_tls else None,
        )
        self.byzantine = Byzantine.from_env(
            key, self.ledger.genesis_hash, self.network.peers, self.network.send, self._tip
        )
        """A TEST HOOK (node/byzantine.py): None unless VIGIL_TEST_BYZANTINE is set."""
        self._flood_task: asyncio.Task[None] | None = None
        self.faults: Counter[str] = Counter()
        self.budgets = PeerBudgets()
        self.started_at = time.time()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._waiters: dict[bytes, list[asyncio.Future[int]]] = {}
        self._artifact_waits: dict[bytes, list[Callable[[bool], None]]] = {}
        self._artifact_timers: dict[bytes, asyncio.TimerHandle] = {}
        self._catch_up: deque[tuple[bytes, Certificate]] = deque()
        self._catch_up_peer: bytes | None = None
        self._catch_up_from = 0
        self._gossip: deque[bytes] = deque()
        self._gossip_bytes = 0
        self._gossip_task: asyncio.Task[None] | None = None
        self._closed = False
        self.halted: str | None = None
        """Why the node stopped itself, if it did (run_node then exits with an error)."""
        self.worker = AppWorker(asyncio.get_running_loop())
        self.loop_thread_id = threading.get_native_id()
        """The event loop's thread (this constructor runs on it): its CPU is a metric."""
        self._stopping = asyncio.Event()
        self.loop_lag = LoopLagMonitor()
        self.metrics = NodeMetrics()
        self.loop_lag.observe = self.metrics.loop_lag.observe
        self.store.on_sync = lambda what, seconds: self.metrics.fsync.labels(what).observe(seconds)
        self._peer_names = self._names_of_peers()
        self.metrics.watch(self)
        gc.callbacks.append(self.metrics.gc_timer)
        me = next((m.org for m in genesis.members if m.node_key == key.public), None)
        name = me or key_hex(key.public)[:12]
        logs.set_context(
            lambda: {"node": name, "height": self.ledger.height, "view": self.replica.view}
        )

    def _is_member(self, key: bytes) -> bool:
        return self.replica.is_member(key)

    def _names_of_peers(self) -> dict[bytes, str]:
        """Each other member's node key -> its organisation (the metrics' peer label)."""
        out = {}
        for org, entry in governance.members(Overlay(self.store.get)).items():
            if type(entry) is dict and entry.get("node_key") not in (None, self.key.public):
                out[entry["node_key"]] = str(org)
        return out

    def _tip(self) -> tuple[bytes, bytes] | None:
        """The last committed block and its certificate, as stored (None before block 1)."""
        height = self.ledger.height
        block, cert = self.store.block(height), self.store.certificate(height)
        return None if block is None or cert is None else (block, cert)

    def peer_names(self) -> dict[bytes, str]:
        return self._peer_names

    @property
    def gossip_queue(self) -> deque[bytes]:
        """Gossiped transactions waiting to be checked (read by the metrics)."""
        return self._gossip

    def _peer_addresses(self) -> dict[bytes, str]:
        """Peer addresses of the current members (governance state, not only genesis)."""
        return governance.peer_addresses(Overlay(self.store.get))

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        host, port = split_address(self.config.peer_listen)
        if not self.config.peer_tls:
            if is_loopback(host):
                log.info("peer links are plain (peer_tls false): development on loopback only")
            else:
                log.warning(
                    "PEER LINKS ARE NOT ENCRYPTED: peer_tls is false and the peer port listens "
                    "on %s, not loopback; anyone on the path can read and inject peer frames. "
                    "Set peer_tls to true (the default) on every node.",
                    host,
                )
        await self.network.start(host, port)
        self.loop_lag.start()
        if self.byzantine is not None:
            self._flood_task = asyncio.create_task(self.byzantine.flood())
        self.feed(Start())
        log.info(
            "node %s up: height %d, peer %s (%s), api %s",
            key_hex(self.key.public)[:12],
            self.ledger.height,
            self.config.peer_listen,
            "TLS 1.3" if self.config.peer_tls else "plain",
            self.config.api_url,
        )

    async def stop(self) -> None:
        self._closed = True
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self.metrics.gc_timer)
        for handle in self._timers.values():
            handle.cancel()
        for handle in self._artifact_timers.values():
            handle.cancel()
        for task in (self._gossip_task, self._flood_task):
            if task is not None:
                task.cancel()
        await self.worker.close()  # the task under way finishes before the store closes
        await self.loop_lag.stop()
        await self.network.stop()
        self.store.close()

    def request_stop(self) -> None:
        self._stopping.set()

    async def wait_stopped(self) -> None:
        await self._stopping.wait()

    # ------------------------------------------------------------ the replica loop

    def feed(self, event: Event) -> None:
        if self.halted is not None:
            return  # its replica may be ahead of what it could persist: it acts no more
        pending: list[Event] = [event]
        for _ in range(10_000):
            if not pending:
                return
            event = pending.pop(0)
            before = (self.replica.height, self.replica.view)
            actions = self.replica.handle(event)
            after = (self.replica.height, self.replica.view)
            if not isinstance(event, Start) and _changed_view(before, after):
                self.metrics.view_changes.labels(_view_change_reason(event)).inc()
            for action in actions:
                reply = self._execute(action)
                if self.halted is not None:
                    return  # a Persist that failed halted it: no later action may leave
                if reply is not None:
                    pending.append(reply)
        raise AssertionError("replica event chain did not settle")

    def _persist(self, action: Persist) -> None:
        """Make the safety state durable before any later action of its batch; a store that
        cannot (a full disk, an I/O error) halts the node, since the votes that depend on it
        must never leave. Before this, the error escaped into whichever handler fed the
        replica (a peer's frame, a worker answer) and the node ran on until a commit failed."""
        try:
            self.store.put_safety(action.state)
        except Exception as exc:
            self.halt(f"cannot persist the consensus safety state: {exc}", exc)

    def _execute(self, action: Action) -> Event | None:
        if isinstance(action, Broadcast):
            if self.byzantine is not None:
                self.byzantine.broadcast(action.data)
            else:
                self.network.broadcast(CONSENSUS, action.data)
        elif isinstance(action, Send):
            if self.byzantine is not None:
                self.byzantine.send(action.to, action.data)
            else:
                self.network.send(action.to, CONSENSUS, action.data)
        elif isinstance(action, SetTimer):
            old = self._timers.pop(action.name, None)
            if old is not None:
                old.cancel()
            self._timers[action.name] = asyncio.get_running_loop().call_later(
                action.delay_ms / 1000, self.feed, TimerFired(action.name, action.token)
            )
        elif isinstance(action, CancelTimer):
            old = self._timers.pop(action.name, None)
            if old is not None:
                old.cancel()
        elif isinstance(action, Persist):
            self._persist(action)  # synced before any later action is carried out
        elif isinstance(action, BuildProposal):
            # Build on the next loop turn, so requests arriving together share a block.
            asyncio.get_running_loop().call_soon(self._build, action)
        elif isinstance(action, ValidateProposal):
            self._validate(action)
        elif isinstance(action, CommitBlock):
            self._commit(action.block, action.certificate)
        elif isinstance(action, FetchBlocks):
            self.network.send(action.peer, FETCH, action.from_height)
        elif isinstance(action, ServeBlocks):
            self._serve(action.peer, action.from_height)
        elif isinstance(action, Fault):
            self.faults[action.kind] += 1
            log.info("fault %s: %s", action.kind, action.detail,
                     extra={"event": "fault", "fields": {"kind": action.kind}})  # fmt: skip
        return None

    def _feed_answer(self, event: Event | None) -> None:
        if event is not None and not self._closed:
            self.feed(event)

    # ------------------------------------------------------------ application work (worker)

    def _at_height(
        self, height: int, work: Callable[[], object], answer: Callable[[Outcome], Event | None]
    ) -> None:
        """Run ``work`` on the worker for ``height`` and feed the replica ``answer(outcome)``;
        if ``height`` committed before the worker got to it, the outcome is STALE."""
        self.worker.consensus(
            lambda: STALE if self.ledger.height + 1 != height else work(),
            lambda outcome: None if self._closed else self._feed_answer(answer(outcome)),
        )

    def _validate(self, action: ValidateProposal) -> None:
        """Execute a proposal on the worker; the replica hears ProposalValidated later."""
        self._at_height(
            action.height,
            lambda: self._timed_execute(
                "validate", self.ledger.validate, action.height, action.block, action.view
            ),
            lambda outcome: self._validated(action, outcome),
        )

    def _validated(self, action: ValidateProposal, outcome: Outcome) -> Event | None:
        """The replica's answer for a validation that ran (None: it waits, or is stale)."""
        if isinstance(outcome.error, ArtifactMissing):
            model_id = outcome.error.model_id
            log.info("proposal %d/%d needs model %s; fetching it", action.height, action.view,
                     model_id.hex()[:12])  # fmt: skip
            if not self._await_artifact(model_id, lambda ok: self._validate_later(action, ok)):
                reason = "this node already waits for that model artifact on too many tasks"
                return ProposalValidated(action.height, action.view, action.digest, False, reason)
            return None
        if outcome.error is not None:
            log.error("validating proposal %d/%d failed", action.height, action.view,
                      exc_info=outcome.error)  # fmt: skip
            reason = f"the application failed on it ({type(outcome.error).__name__})"
            return ProposalValidated(action.height, action.view, action.digest, False, reason)
        if outcome.value is STALE:
            return None
        problem = outcome.value
        if problem is not None:
            log.warning("rejecting proposal %d/%d: %s", action.height, action.view, problem)
        return ProposalValidated(
            action.height, action.view, action.digest, problem is None, problem or ""
        )

    def _validate_later(self, action: ValidateProposal, available: bool) -> None:
        if not available:
            reason = "a model artifact the block needs could not be fetched"
            self._feed_answer(
                ProposalValidated(action.height, action.view, action.digest, False, reason)
            )
            return
        self._validate(action)

    def _build(self, action: BuildProposal) -> None:
        """Build a proposal from the oldest mempool transactions on the worker."""
        candidates = self.mempool.oldest(MAX_PROPOSAL_CANDIDATES)
        if not candidates and not action.required:
            self._feed_answer(ProposalBuilt(action.height, action.view, None))
            return
        me = self.key.public
        self._at_height(
            action.height,
            lambda: self._timed_execute(
                "build", self.ledger.build, action.height, action.view, me, candidates
            ),
            lambda outcome: self._built(action, outcome),
        )

    def _built(self, action: BuildProposal, outcome: Outcome) -> Event:
        if outcome.error is not None or outcome.value is STALE:
            if outcome.error is not None:
                log.error("building proposal %d/%d failed", action.height, action.view,
                          exc_info=outcome.error)  # fmt: skip
            return ProposalBuilt(action.height, action.view, None)
        proposal: Proposal = outcome.value
        for tx, exc in proposal.rejected:
            log.info("dropping %s from the mempool: %s", tx.id.hex()[:12], exc.message)
        for model_id in proposal.missing_models:  # fetch; its txs wait in the mempool meanwhile
            waiting = proposal.waiting.get(model_id, [])
            self._await_artifact(
                model_id, lambda ok, m=model_id, ids=waiting: ok or self._unfetchable(m, ids)
            )
        dropped = self.mempool.remove([tx.id for tx, _ in proposal.rejected])
        if dropped:
            asyncio.get_running_loop().call_soon(self._drop_requests, dropped)
        return ProposalBuilt(action.height, action.view, proposal.block)

    def _commit(self, block: bytes, certificate: Certificate) -> None:
        """Apply a certified block on the worker (one synced batch); then BlockPersisted."""
        self.worker.consensus(
            lambda: self._commit_and_count(block, certificate),
            lambda outcome: self._committed(block, certificate, outcome),
        )

    def _timed_execute(self, phase: str, fn: Callable[..., T], *args: object) -> T:
        with self.metrics.timed(self.metrics.execute.labels(phase)):
            return fn(*args)

    def _commit_and_count(
        self, block: bytes, certificate: Certificate
    ) -> tuple[list[bytes], list[bytes]]:
        """On the worker: commit, then count the block's transactions by kind and outcome."""
        with self.metrics.timed(self.metrics.commit):
            result = self.ledger.commit(block, certificate)
        self._collect_artifacts()
        assert self.ledger.last_committed is not None
        decoded, receipts = self.ledger.last_committed
        outcomes: Counter[tuple[str, str]] = Counter()
        verdicts: Counter[tuple[str, str]] = Counter()
        for tx, receipt in zip(decoded.txs, receipts, strict=True):
            outcomes[tx.kind, receipt.status] += 1
            if tx.kind == "score":
                verdict = "reverted" if receipt.status != "ok" else (
                    "flagged" if receipt.result[2] else "normal")  # fmt: skip
                verdicts[tx.payload.model, verdict] += 1  # type: ignore[attr-defined]
        for (kind, status), count in outcomes.items():  # one series update per label set
            self.metrics.committed_txs.labels(kind, status).inc(count)
        for (name, verdict), count in verdicts.items():
            self.metrics.scores.labels(self.metrics.model_label(name), verdict).inc(count)
        for name in sorted({name for name, _ in verdicts}):
            self._observe_drift(name)
        return result

    def _observe_drift(self, name: str) -> None:
        """Set the drift gauges of a family scored in the block just committed."""
        found = self.ledger.drift(name)
        if found is None or found.level == "unknown":
            return
        label = self.metrics.model_label(name)
        self.metrics.drift_psi.labels(label).set(found.record.last_psi_ppm / PSI_SCALE)  # type: ignore[operator]
        self.metrics.drift_level.labels(label).set(LEVELS.index(found.level))

    def _committed(self, block: bytes, certificate: Certificate, outcome: Outcome) -> None:
        if self._closed:
            return
        height = certificate.height
        if isinstance(outcome.error, ArtifactMissing):
            log.warning("certified block %d needs model %s; waiting for it", height,
                        outcome.error.model_id.hex()[:12])  # fmt: skip
            self._await_artifact(
                outcome.error.model_id, lambda ok: self._commit(block, certificate), bounded=False
            )
            return
        if outcome.error is not None:
            self.halt(f"cannot commit certified block {height}: {outcome.error}", outcome.error)
            return
        next_validators, tx_ids = outcome.value
        if tuple(next_validators) != self.replica.validators:
            log.info("validator set changes at height %d: %d validators", height + 1,
                     len(next_validators))  # fmt: skip
            self.network.update_peers(self._peer_addresses())
            self._peer_names = self._names_of_peers()
            self.budgets.forget(set(next_validators))
        self.mempool.remove(tx_ids)
        for tx_id in tx_ids:
            for fut in self._waiters.pop(tx_id, []):
                if not fut.done():
                    fut.set_result(height)
        expired = self.mempool.remove(self.mempool.expired(height + 1))
        log.info("committed height %d (%d txs, view %d)", height, len(tx_ids), certificate.view)
        self.feed(BlockPersisted(height, tuple(next_validators), tuple(tx_ids)))
        if expired:
            asyncio.get_running_loop().call_soon(self._drop_requests, expired)
        self._continue_catch_up()

    def halt(self, reason: str, error: BaseException | None = None) -> None:
        """Stop the node: its state can no longer follow the certified chain."""
        log.critical("halting: %s", reason, exc_info=error)
        self.halted = reason
        self.request_stop()

    # ------------------------------------------------------------ model artifacts

    def _await_artifact(
        self,
        model_id: bytes,
        callback: Callable[[bool], None] | None,
        *,
        bounded: bool = True,
    ) -> bool:
        """Ask every peer for an artifact; call back with True once stored, False on timeout.

        Without a callback, only make sure a fetch is under way. Returns False, and
        registers nothing, when MAX_ARTIFACT_WAITERS tasks already wait for it
        (``bounded=False`` is for the one certified block being committed, which
        must never be refused: at most one commit is under way).
        """
        fetching = model_id in self._artifact_waits
        waiting = self._artifact_waits.setdefault(model_id, [])
        if callback is not None:
            if bounded and len(waiting) >= MAX_ARTIFACT_WAITERS:
                log.warning("refusing to wait for model %s: %d tasks already wait for it",
                            model_id.hex()[:12], len(waiting))  # fmt: skip
                return False
            waiting.append(callback)
        if not fetching:
            self.network.broadcast(MODEL_FETCH, model_id)
            self._artifact_timers[model_id] = asyncio.get_running_loop().call_later(
                ARTIFACT_WAIT_S, self._artifact_arrived, model_id, False
            )
        return True

    def _artifact_arrived(self, model_id: bytes, available: bool) -> None:
        timer = self._artifact_timers.pop(model_id, None)
        if timer is not None:
            timer.cancel()
        for callback in self._artifact_waits.pop(model_id, []):
            callback(available)

    def upload_refusal(self, key: bytes) -> UploadRefused | None:
        """On the worker: why ``key`` may not upload a model artifact now, or None. It may if
        governance authorises it as a client with the UPLOAD_ROLE of a member organisation,
        or as a member's admin key."""
        if not is_acceptable_public_key(key):
            return UploadRefused(401, "weak_key", "the key is malformed, non-canonical or of "
                                 "small order")  # fmt: skip
        roles = governance.roles_of(Overlay(self.store.get), key)
        if roles is None:
            return UploadRefused(403, "unauthorised", f"key {key.hex()} is neither an "
                                 "authorised client nor a member's admin")  # fmt: skip
        if UPLOAD_ROLE not in roles and governance.MEMBER_ADMIN not in roles:
            return UploadRefused(403, "forbidden", f"key {key.hex()} lacks the {UPLOAD_ROLE!r} "
                                 "role model uploads need")  # fmt: skip
        return None

    async def add_artifact(self, data: bytes, key: bytes, signature: bytes) -> Model:
        """Check a signed upload on the worker and keep the artifact (raises UploadRefused,
        ml.errors.ModelError, WorkerBusy). It is not passed on: a peer fetches it
        (model-fetch) when a block it executes reads it."""
        model = await self.worker.client(lambda: self._keep_upload(data, key, signature))
        self._artifact_stored(model.model_id)
        return model

    def _keep_upload(self, data: bytes, key: bytes, signature: bytes) -> Model:
        """On the worker: the uploader's signature over the model id, its authorisation now,
        the artifact, then the uploader's quota of artifacts no committed block read yet."""
        refused = self.upload_refusal(key)
        if refused is not None:
            raise refused
        model_id = sha256(data)
        if not verify(key, DOMAIN_MODEL_UPLOAD, self.ledger.genesis_hash, model_id, signature):
            raise UploadRefused(401, "bad_signature", "X-Vigil-Signature is not this key's "
                                "signature of the artifact's model id on this chain")  # fmt: skip
        model = load_artifact(data, expected_id=model_id)
        if self.store.artifact(model_id) is not None:
            return model  # held already (uploaded, fetched or pinned): nothing to count
        count, size = self.store.unreferenced(key, MAX_UNREFERENCED_ARTIFACTS_PER_KEY)
        if (
            count >= MAX_UNREFERENCED_ARTIFACTS_PER_KEY
            or size + len(data) > MAX_UNREFERENCED_BYTES_PER_KEY
        ):
            raise UploadRefused(
                429, "upload_quota",
                f"this key already has {count} artifacts ({size} bytes) here that no block "
                f"has read; at most {MAX_UNREFERENCED_ARTIFACTS_PER_KEY} and "
                f"{MAX_UNREFERENCED_BYTES_PER_KEY} bytes: propose one, or wait until unused "
                f"ones are deleted ({ARTIFACT_GRACE_BLOCKS} blocks after upload)",
            )  # fmt: skip
        self.store.put_artifact(model_id, data, height=self.ledger.height, uploader=key)
        return model

    def _artifact_stored(self, model_id: bytes) -> None:
        """On the loop: wake what waits for this artifact."""
        if not self._closed and model_id in self._artifact_waits:
            asyncio.get_running_loop().call_soon(self._artifact_arrived, model_id, True)

    def _on_model(self, data: bytes) -> None:
        """A peer's artifact: kept only if this node asked for it (a block it builds,
        validates or commits reads it), after a check on the worker. Anything else is
        dropped, so only a signed upload adds an artifact nobody asked for to a node."""
        model_id = artifact_id(data)
        if self.store.artifact(model_id) is not None:
            return
        if model_id not in self._artifact_waits:
            self.faults["model-unrequested"] += 1
            return

        def keep() -> Model:
            model = load_artifact(data, expected_id=model_id)
            self.store.put_artifact(model_id, data, height=self.ledger.height)
            return model

        def done(outcome: Outcome) -> None:
            if isinstance(outcome.error, ModelError):
                log.warning("refused a model artifact from a peer: %s", outcome.error)
            elif outcome.error is not None:
                log.error("checking a peer's model artifact failed", exc_info=outcome.error)
            else:
                self._artifact_stored(model_id)

        try:
            self.worker.client_call(keep, done)
        except WorkerBusy:
            self.faults["model-dropped-busy"] += 1

    def _unfetchable(self, model_id: bytes, tx_ids: list[bytes]) -> None:
        """No peer sent a model's artifact within ARTIFACT_WAIT_S: the transactions waiting
        for it leave the mempool (left there, they kept primaries making empty blocks until
        they expired). A client may submit them again once a member holds the model."""
        dropped = self.mempool.remove(tx_ids)
        if dropped:
            log.warning("dropped %d transaction(s) waiting for model %s: no peer sent its "
                        "artifact in %.0f s", len(dropped), model_id.hex()[:12],
                        ARTIFACT_WAIT_S)  # fmt: skip
            self._drop_requests(dropped)

    def _collect_artifacts(self) -> None:
        """On the worker, after a commit: delete artifacts no committed block read that have
        waited ARTIFACT_GRACE_BLOCKS (at most MAX_ARTIFACTS_COLLECTED_PER_COMMIT)."""
        gone = self.store.collect_artifacts(
            self.ledger.height, ARTIFACT_GRACE_BLOCKS, MAX_ARTIFACTS_COLLECTED_PER_COMMIT
        )
        if gone:
            self.ledger.forget_models(gone)
            ids = ", ".join(g.hex()[:12] for g in gone)
            log.info("deleted %d model artifacts no block read within %d blocks: %s",
                     len(gone), ARTIFACT_GRACE_BLOCKS, ids)  # fmt: skip

    def _drop_requests(self, tx_ids: list[bytes]) -> None:
        for tx_id in tx_ids:
            self.feed(RequestDropped(tx_id))

    def _serve(self, peer: bytes, from_height: int) -> None:
        if type(from_height) is not int or from_height < 1:
            return
        blocks: list[list[bytes]] = []
        size = 0
        for height in range(
            from_height, min(self.ledger.height, from_height + MAX_SERVE_BLOCKS - 1) + 1
        ):
            block, cert = self.store.block(height), self.store.certificate(height)
            if block is None or cert is None:
                break
            entry = len(block) + len(cert) + SERVE_ENTRY_OVERHEAD
            if blocks and size + entry > MAX_SERVE_BYTES:
                break
            blocks.append([block, cert])
            size += entry
        if blocks:
            self.network.send(peer, BLOCKS, blocks)

    # ------------------------------------------------------------ peers

    def _on_frame(self, peer: bytes, kind: str, payload: object) -> None:
        if not self._is_member(peer):
            # The handshake admits current validators only, but a link accepted before a
            # validator-set change stays open until it is closed: frames from a removed
            # member are dropped here, so nothing (budget buckets, gossip, answers) is kept
            # or spent for a key that is no longer a validator.
            self.faults["frame-from-non-member"] += 1
            return
        if kind == CONSENSUS and type(payload) is bytes:
            self.feed(MessageReceived(payload))
        elif kind == TX and type(payload) is list:
            self._on_peer_txs(payload)
        elif kind == TX and type(payload) is bytes:  # one transaction (an older node's frame)
            self._on_peer_txs([payload])
        elif kind == FETCH:
            if self.budgets.allow(peer, FETCH, FETCH_PER_S, FETCH_BURST):
                self._serve(peer, payload)  # type: ignore[arg-type]
        elif kind == BLOCKS and type(payload) is list:
            self._on_blocks(peer, payload)
        elif kind == MODEL_FETCH and type(payload) is bytes:
            if not self.budgets.allow(peer, MODEL_FETCH, MODEL_FETCH_PER_S, MODEL_FETCH_BURST):
                return
            data = self.store.artifact(payload)
            if data is not None and self.budgets.first_send(peer, payload, MODEL_FETCH_REPEAT_S):
                self.network.send(peer, MODEL, data)
        elif kind == MODEL and type(payload) is bytes:
            self._on_model(payload)
        else:
            # A known kind with a payload of the wrong type: no honest node sends one, so it
            # is counted (a Byzantine member's junk shows in vigil_faults_total) and dropped.
            self.faults["bad-frame-payload"] += 1

    def _on_blocks(self, peer: bytes, items: list) -> None:
        """Queue a catch-up answer's certified blocks; they commit one at a time. An answer
        with a malformed entry is dropped whole: queued, its first entries would stay there
        (nothing feeds them) and every later answer would be ignored as still applying."""
        if self._catch_up:
            return  # still applying an earlier answer; its end asks again
        answer: list[tuple[bytes, Certificate]] = []
        for item in items[:MAX_SERVE_BLOCKS]:
            if type(item) is not list or len(item) != 2 or type(item[0]) is not bytes:
                return
            try:
                cert = Certificate.decode(item[1])
            except (codec.CodecError, FieldError):
                return
            answer.append((item[0], cert))
        self._catch_up.extend(answer)
        self._catch_up_peer = peer
        self._catch_up_from = self.ledger.height
        self._continue_catch_up()

    def _continue_catch_up(self) -> None:
        """Feed queued certified blocks until one starts a commit; at the end ask for more."""
        while self._catch_up and not self.replica.committing:
            block, cert = self._catch_up.popleft()
            if cert.height == self.replica.height:
                self.feed(CertifiedBlockReceived(block, cert))
        if self._catch_up or self.replica.committing or self._catch_up_peer is None:
            return
        peer, self._catch_up_peer = self._catch_up_peer, None
        if self.ledger.height > self._catch_up_from:
            # The answer moved us on (an answer is bounded by count and bytes, so the peer
            # may well have more): keep going without waiting for traffic. A peer with
            # nothing newer sends no answer, which ends the loop.
            self.network.send(peer, FETCH, self.ledger.height + 1)

    # ------------------------------------------------------------ clients

    async def submit_many(self, raws: list[bytes], *, gossip: bool = True) -> list[SubmitResult]:
        """Admit a batch (checked on the worker); the replica hears of the new ones together,
        so they can share a block. Raises WorkerBusy when the worker is full."""
        checked = await self.worker.client(lambda: self._check(raws))
        results = [self._accept(raw, c) for raw, c in zip(raws, checked, strict=True)]
        if gossip:
            fresh = [raw for raw, r in zip(raws, results, strict=True) if r.new]
            for frame in gossip_frames(fresh):  # one frame per batch, not one per transaction
                self.network.broadcast(TX, frame)
        source = "api" if gossip else "peer"
        for result in results:
            if result.tx_id is None:
                self.metrics.rejected.labels(source, result.code).inc()
                log.info("refused a transaction from %s: %s: %s", source, result.code,
                         result.message, extra={"event": "refused",
                         "fields": {"source": source, "code": result.code}})  # fmt: skip
        fresh_ids = tuple(r.tx_id for r in results if r.tx_id is not None and r.new)
        if fresh_ids:
            self.feed(RequestsSeen(fresh_ids))
        return results

    async def submit(self, raw: bytes, *, gossip: bool = True) -> SubmitResult:
        """Admit one encoded transaction to the mempool (and tell the other validators)."""
        return (await self.submit_many([raw], gossip=gossip))[0]

    def _check(self, raws: list[bytes]) -> list[Tx | SubmitResult]:
        """On the worker: decode and admission-check a batch (signatures verified together);
        each item becomes its admissible transaction or the refusal saying why not.

        Every copy is checked, also a copy of a pending transaction: a forged
        signature on a known id is refused, never waved through.
        """
        checked: list[Tx | SubmitResult] = []
        for raw in raws:
            if len(raw) > MAX_TX_BYTES:
                too_large = f"{len(raw)} bytes exceeds {MAX_TX_BYTES}"
                checked.append(SubmitResult(None, "too_large", too_large))
                continue
            try:
                checked.append(Tx.decode(raw))
            except (codec.CodecError, FieldError) as exc:
                checked.append(SubmitResult(None, "malformed", str(exc)))
        with self.metrics.timed(self.metrics.verify):
            verdicts = iter(self.ledger.admit_many([c for c in checked if isinstance(c, Tx)]))
        for i, item in enumerate(checked):
            if isinstance(item, Tx) and (rejected := next(verdicts)) is not None:
                checked[i] = SubmitResult(None, rejected.code, rejected.message)
        return checked

    def _accept(self, raw: bytes, checked: Tx | SubmitResult) -> SubmitResult:
        """On the loop: put a checked transaction in the mempool (``new`` if it was not)."""
        if isinstance(checked, SubmitResult):
            return checked
        tx = checked
        if tx.id in self.mempool:
            return SubmitResult(tx.id)  # another valid copy of a pending tx: nothing to add
        if self.store.tx_location(tx.id) is not None:
            return SubmitResult(tx.id)  # committed while it was being checked
        try:
            self.mempool.add(tx, len(raw))
        except ShareFull as exc:
            return SubmitResult(None, "share_full", str(exc))
        except MempoolFull as exc:
            return SubmitResult(None, "mempool_full", str(exc))
        return SubmitResult(tx.id, new=True)

    def _on_peer_txs(self, raws: list) -> None:
        """Queue gossiped transactions; one batch at a time is checked on the worker. A frame
        over MAX_GOSSIP_FRAME_TXS or holding anything but bytes is dropped whole."""
        if len(raws) > MAX_GOSSIP_FRAME_TXS or any(type(raw) is not bytes for raw in raws):
            self.faults["bad-tx-frame"] += 1
            return
        for raw in raws:
            if self._gossip_bytes + len(raw) > MAX_GOSSIP_QUEUE_BYTES:
                self.faults["gossip-queue-full"] += 1
                continue
            self._gossip.append(raw)
            self._gossip_bytes += len(raw)
        if self._gossip and self._gossip_task is None:
            self._gossip_task = asyncio.get_running_loop().create_task(self._drain_gossip())

    async def _drain_gossip(self) -> None:
        try:
            while self._gossip and not self._closed:
                batch = [
                    self._gossip.popleft() for _ in range(min(len(self._gossip), MAX_GOSSIP_BATCH))
                ]
                self._gossip_bytes -= sum(len(raw) for raw in batch)
                try:
                    await self.submit_many(batch, gossip=False)
                except WorkerBusy:
                    self.faults["gossip-dropped-busy"] += len(batch)
        finally:
            self._gossip_task = None

    async def wait_for_commit(self, tx_id: bytes, timeout_s: float) -> int | None:
        """Height at which ``tx_id`` committed, waiting up to ``timeout_s``; None on timeout."""
        where = self.store.tx_location(tx_id)
        if where is not None:
            return where[0]
        if sum(len(v) for v in self._waiters.values()) >= MAX_WAITERS:
            return None
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(tx_id, []).append(fut)
        try:
            return await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            return None
        finally:
            waiting = self._waiters.get(tx_id)
            if waiting is not None and fut in waiting:
                waiting.remove(fut)
                if not waiting:
                    del self._waiters[tx_id]

    def status(self) -> dict:
        r = self.replica
        return {
            "chain_id": self.genesis.chain_id,
            "genesis_hash": self.ledger.genesis_hash.hex(),
            "node": key_hex(self.key.public),
            "height": self.ledger.height,
            "state_root": self.store.state_root().hex(),
            "view": r.view,
            "in_view_change": r.in_view_change,
            "primary": key_hex(r.primary()),
            "validators": [key_hex(v) for v in r.validators],
            "peers": [key_hex(p) for p in self.network.connected()],
            "mempool": {"txs": len(self.mempool), "bytes": self.mempool.bytes},
            "uptime_s": round(time.time() - self.started_at, 1),
            **self.loop_lag.status(),
            "max_gc_pause_ms": round(self.metrics.gc_timer.longest_s * 1000, 1),
        }
