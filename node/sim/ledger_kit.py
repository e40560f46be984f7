"""The seeded simulator driving the real application: n Ledgers on MemoryStorage.

Every replica of ``consensus/sim`` gets a real :class:`~node.app.ledger.Ledger`
(the real system contracts from genesis, real signature checks, a real model
artifact) instead of the toy ledger. The simulated clients send every
transaction kind and carry governance through proposals and votes
(``node/sim/workload.py``): contract approval and deployment, model approval
and activation, and in some seeds adding a member and removing another, so the
validator set follows governance.

A model artifact reaches each node at its own seeded time; until then a node
validating or committing a block that scores with it waits (the simulator's
``retry_after``), as a real node fetches it, and its builds leave score
transactions in the mempool.

Byzantine members may, besides the consensus-level behaviours, swap a pending
transaction's signature for garbage before proposing (``swap-signature``),
propose blocks over ``max_block_bytes`` (``oversize``), let a block prepare and
withhold their COMMIT (``withhold``), flood every peer with catch-up requests
(``flood``, served within the node's real per-peer budgets), or send signed
votes for future heights from made-up keys (``outsider``).

Checks, on top of the simulator's agreement, certificate and liveness checks:
after every honest commit, the same state root and receipts as every other
honest node at that height, and a validator set equal to governance's member
list; at the end, a fresh ledger replaying the longest honest chain from
genesis accepts every certified block and reaches the same state root.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from consensus.certificate import Certificate
from consensus.crypto import PrivateKey
from consensus.sim.simulator import (
    BYZANTINE_MODES,
    EXTRA_MODES,
    AppKit,
    Node,
    SimConfig,
    Simulation,
)
from node.app import governance
from node.app.execution import TxRejected
from node.app.genesis import DEFAULT_PARAMS, Genesis, Member
from node.app.genesis import Client as GenesisClient
from node.app.ledger import Ledger
from node.app.scoring import ArtifactMissing
from node.app.state import Overlay
from node.app.storage import MemoryStorage
from node.app.types import NONCE_BYTES, Block, CallPayload, Receipt, Tx, tx_root
from node.budget import FETCH_BURST, FETCH_PER_S, PeerBudgets
from node.sim.workload import CONTRACT, Workload, sim_model
from vm.gas import MAX_VALUE_BYTES
from vm.values import encode_value

CHAIN_ID = "vigil-sim"
BASE_TIME_MS = 1_700_000_000_000
"""Virtual time 0 as a ledger timestamp."""
LEDGER_MODES = (*BYZANTINE_MODES, "swap-signature", "oversize", *EXTRA_MODES)
MAX_CANDIDATES = 64
"""Pending transactions a simulated primary offers its ledger per block."""
TX_LIFETIME = 200
"""Heights a simulated transaction stays valid."""
SIM_PARAMS = {
    **DEFAULT_PARAMS,
    "max_block_txs": 32,
    "max_block_bytes": 16 * 1024,
    "max_tx_gas": 50_000,
    "max_block_gas": 150_000,
    "require_anchored_training": 0,
}
"""Small blocks and gas budgets, so that seeds reach every limit in a few hundred blocks.
The simulated model is trained on generated rows that nobody anchors, so the rule that
training data be anchored is off here (tests/node/test_model_approval.py tests it)."""
ARTIFACT_DELAYS_MS = ((0, 0), (0, 0), (200, 2_000), (2_000, 8_000))
"""How late the model artifact reaches a node after it is published: (low, high) ranges,
one drawn per node."""
SPARE_ORG = "org9"
OVERSIZE_NOTE_BYTES = 8_000
"""Blob size of the calls an ``oversize`` primary pads its blocks with."""
LEDGER_CHAOS_MS = 10_000
"""The faulty phase of a ledger seed: long enough for the governance stories to run."""
LEDGER_REQUEST_INTERVAL_MS = 300

_CLIENT = PrivateKey.from_seed(hashlib.sha256(b"vigil-sim/client").digest())


def ledger_config(
    seed: int,
    nodes: int,
    byzantine: int,
    *,
    modes: tuple[str, ...] = LEDGER_MODES,
    trace: bool = False,
) -> SimConfig:
    """The simulator's configuration for one seed of the real application."""
    return SimConfig(
        seed=seed,
        nodes=nodes,
        byzantine=byzantine,
        chaos_ms=LEDGER_CHAOS_MS,
        request_interval_ms=LEDGER_REQUEST_INTERVAL_MS,
        modes=modes,
        trace=trace,
        kit=LedgerKit(),
    )


def block_digest(raw: bytes) -> bytes:
    """A ledger block's digest (its header hash); raises on junk."""
    return Block.decode(raw).hash()


class LedgerApp:
    """One simulated replica's application: a real Ledger on MemoryStorage."""

    def __init__(self, sim: Simulation, genesis: Genesis, index: int) -> None:
        self.sim = sim
        self.index = index
        self.storage = MemoryStorage()
        self.ledger = Ledger(self.storage, genesis, clock_ms=lambda: BASE_TIME_MS + sim.now)
        self.chain: list[tuple[bytes, Certificate]] = []
        self.validator_sets: list[tuple[bytes, ...]] = [tuple(genesis.validators())]
        self.pending: dict[bytes, Tx] = {}
        self.artifact_at: int | None = None
        """Virtual time the model artifact reaches this node (None: not published yet)."""

    @property
    def height(self) -> int:
        return self.ledger.height

    def validators_at(self, height: int) -> tuple[bytes, ...]:
        return tuple(self.ledger.validators(height))

    def receive_artifacts(self) -> None:
        """Store the model artifact once its seeded arrival time has come."""
        if self.artifact_at is not None and self.sim.now >= self.artifact_at:
            model = sim_model()
            if self.storage.artifact(model.model_id) is None:
                self.storage.put_artifact(model.model_id, model.data)

    def add_request(self, raw: bytes) -> bool:
        tx = Tx.decode(raw)
        if tx.id in self.pending or self.storage.tx_location(tx.id) is not None:
            return False
        try:
            self.ledger.admit(tx)
        except TxRejected:
            return False
        self.pending[tx.id] = tx
        return True

    def _mode(self) -> str | None:
        node: Node = self.sim.nodes[self.index] if 0 <= self.index < len(self.sim.nodes) else None
        return None if node is None else node.mode

    def build(self, height: int, proposer: bytes, *, valid: bool = True, salt: int = 0) -> bytes:
        self.receive_artifacts()
        candidates = list(self.pending.values())[:MAX_CANDIDATES]
        view = salt
        if salt >= 1_000:  # the simulator's equivocation: another block for the same view
            view, candidates = salt - 1_000, candidates[1:]
        raw = self.ledger.build(height, view, proposer, candidates).block
        block = Block.decode(raw)
        mode = self._mode()
        if not valid:
            header = dataclasses.replace(block.header, state_root=bytes(32))
            return Block(header, block.txs).encode()
        if mode == "swap-signature" and block.txs:
            forged = dataclasses.replace(block.txs[0], signature=bytes(64))
            return _with_txs(block, (forged, *block.txs[1:]))
        if mode == "oversize":
            return self._oversize(block)
        return raw

    def _oversize(self, block: Block) -> bytes:
        """The built block padded past ``max_block_bytes`` with bulky calls of its own."""
        limit = self.ledger.param("max_block_bytes")
        node: Node = self.sim.nodes[self.index]
        txs = list(block.txs)
        size = len(block.encode())
        while size <= limit:
            note = CallPayload(
                CONTRACT, "note", encode_value([bytes(OVERSIZE_NOTE_BYTES)], MAX_VALUE_BYTES)
            )
            nonce = self.sim.rng.randbytes(NONCE_BYTES)
            tx = Tx.create(
                node.key, CHAIN_ID, self.ledger.genesis_hash, note, block.header.height + 1, nonce
            )
            txs.append(tx)
            size += len(tx.encode())
        return _with_txs(block, tuple(txs))

    def validate(self, height: int, block: bytes, view: int | None = None) -> str | None:
        self.receive_artifacts()
        return self.ledger.validate(height, block, view)

    def commit(
        self, block: bytes, cert: Certificate
    ) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        self.receive_artifacts()
        next_validators, tx_ids = self.ledger.commit(block, cert)
        self.chain.append((block, cert))
        self.validator_sets.append(tuple(next_validators))
        for tx_id in tx_ids:
            self.pending.pop(tx_id, None)
        return tuple(next_validators), tuple(tx_ids)


def _with_txs(block: Block, txs: tuple[Tx, ...]) -> bytes:
    header = dataclasses.replace(block.header, tx_count=len(txs), tx_root=tx_root(txs))
    return Block(header, txs).encode()


class LedgerKit(AppKit):
    """Plugs real ledgers and a workload of signed transactions into the simulator."""

    build_delay_ms = 1

    def __init__(self) -> None:
        self.genesis: Genesis | None = None
        self.workload: Workload | None = None
        self.roots: dict[int, tuple[bytes, list[bytes]]] = {}
        self.keys: dict[bytes, PrivateKey] = {}
        self.budgets: dict[int, PeerBudgets] = {}
        self._planned = False

    def _genesis(self, validators: tuple[bytes, ...]) -> Genesis:
        if self.genesis is None:
            members = tuple(
                Member(f"org{i}", key, f"127.0.0.1:{7000 + i}", f"127.0.0.1:{8000 + i}", (key,))
                for i, key in enumerate(validators)
            )
            clients = (GenesisClient(_CLIENT.public, "org0", ("score", "submit")),)
            self.genesis = Genesis(CHAIN_ID, 0, members, clients, tuple(sorted(SIM_PARAMS.items())))
            self.workload = Workload(CHAIN_ID, self.genesis.hash(), _CLIENT)
        return self.genesis

    def new_app(self, sim: Simulation, validators: tuple[bytes, ...], index: int) -> Any:
        return LedgerApp(sim, self._genesis(validators), index)

    def digest_of(self, block: bytes) -> bytes:
        return block_digest(block)

    def request_id(self, request: bytes) -> bytes:
        return Tx.decode(request).id

    def change_validators(self, sim: Simulation) -> None:
        """Membership changes come from the workload's governance stories instead."""

    # ------------------------------------------------------------ client

    def _plan(self, sim: Simulation) -> None:
        """Once the nodes exist: the keys the client signs with and the governance stories."""
        assert self.workload is not None and self.genesis is not None
        self._planned = True
        for node in sim.nodes:
            self.keys[node.key.public] = node.key
        spare = (SPARE_ORG, sim.spares[0]) if sim.valset and sim.spares else None
        orgs = [m.org for m in self.genesis.members]
        victim = orgs[1 + sim.cfg.seed % (len(orgs) - 1)] if len(orgs) > 1 else orgs[0]
        self.workload.plan({m.org: m.node_key for m in self.genesis.members}, spare, victim)

    def _view(self, sim: Simulation) -> LedgerApp:
        """The most advanced honest node: the one the client reads committed state from."""
        return max((n.app for n in sim.nodes if n.honest), key=lambda app: app.height)

    def next_requests(self, sim: Simulation) -> list[bytes]:
        workload = self.workload
        assert workload is not None
        if not self._planned:
            self._plan(sim)
        app = self._view(sim)
        state = Overlay(app.storage.get)
        admins = {
            org: self.keys[m["admins"][0]]
            for org, m in governance.members(state).items()
            if m.get("admins") and m["admins"][0] in self.keys
        }
        until = max(n.app.height for n in sim.nodes) + TX_LIFETIME
        published = workload.published_at
        raws = workload.next_requests(sim.rng, sim.now, (state, app.height), admins, until)
        if published is None and workload.published_at is not None:
            self._publish(sim)
        return raws

    def _publish(self, sim: Simulation) -> None:
        """The model artifact is uploaded: each node receives it at its own seeded time."""
        for node in sim.nodes:
            low, high = sim.rng.choice(ARTIFACT_DELAYS_MS)
            node.app.artifact_at = sim.now + sim.rng.randint(low, high)

    def retry_after(self, sim: Simulation, index: int, error: Exception) -> int | None:
        if not isinstance(error, ArtifactMissing):
            return None
        app: LedgerApp = sim.nodes[index].app
        assert app.artifact_at is not None, "a block needs a model nobody has published"
        return max(1, app.artifact_at - sim.now)

    def serve_allowed(self, sim: Simulation, index: int, requester: bytes) -> bool:
        """The node's real FETCH budget per peer, on the simulator's virtual clock."""
        budgets = self.budgets.get(index)
        if budgets is None:
            budgets = self.budgets[index] = PeerBudgets(clock=lambda: sim.now / 1000)
        allowed = budgets.allow(requester, "fetch", FETCH_PER_S, FETCH_BURST)
        if not allowed:
            sim.stats["fetch_refused"] = sim.stats.get("fetch_refused", 0) + 1
        return allowed

    # ------------------------------------------------------------ checks

    def check_commit(self, sim: Simulation, node: Node, height: int) -> None:
        app: LedgerApp = node.app
        mine = (app.storage.state_root(), app.storage.receipts(height) or [])
        known = self.roots.setdefault(height, mine)
        if known[0] != mine[0]:
            sim._violation("state", f"{node.name} has another state root at height {height}")
        elif known[1] != mine[1]:
            sim._violation("receipts", f"{node.name} has other receipts at height {height}")
        members = governance.members(Overlay(app.storage.get))
        if app.validator_sets[-1] != tuple(governance.validators_of(members)):
            sim._violation(
                "validators", f"{node.name}: the validator set after {height} is not governance's"
            )

    def finish(self, sim: Simulation) -> None:
        """A fresh ledger replays the longest honest chain from genesis."""
        honest = [n.app for n in sim.nodes if n.honest]
        longest: LedgerApp = max(honest, key=lambda app: app.height)
        assert self.genesis is not None
        storage = MemoryStorage()
        model = sim_model()
        storage.put_artifact(model.model_id, model.data)
        fresh = Ledger(storage, self.genesis, clock_ms=lambda: 2**62)
        for height, (block, cert) in enumerate(longest.chain, start=1):
            problem = fresh.validate(height, block, check_clock=False)
            if problem is not None:
                sim._violation("replay", f"a fresh node refuses block {height}: {problem}")
                return
            fresh.commit(block, cert)
        if fresh.store.state_root() != longest.storage.state_root():
            sim._violation("replay", "a fresh node replaying the chain reaches another state root")
        self._count(sim, longest)

    def _count(self, sim: Simulation, app: LedgerApp) -> None:
        """What the run exercised (the tests check the workload reaches every part)."""
        kinds: dict[str, int] = {}
        for height, (raw, _) in enumerate(app.chain, start=1):
            block = Block.decode(raw)
            receipts = [Receipt.decode(r) for r in app.storage.receipts(height) or []]
            sim.stats["max_block_bytes_used"] = max(
                sim.stats.get("max_block_bytes_used", 0), len(raw)
            )
            for tx, receipt in zip(block.txs, receipts, strict=True):
                name = f"{tx.kind}:{receipt.status}"
                kinds[name] = kinds.get(name, 0) + 1
                if "out of gas" in receipt.error:
                    kinds["out_of_gas"] = kinds.get("out_of_gas", 0) + 1
        sim.stats["ledger_txs"] = sum(v for k, v in kinds.items() if ":" in k)
        sim.stats["ledger_kinds"] = kinds  # type: ignore[assignment]
        stories = self.workload.stories if self.workload else []
        sim.stats["stories_done"] = [s.kind for s in stories if s.done]  # type: ignore[assignment]
