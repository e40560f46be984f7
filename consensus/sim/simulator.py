"""Deterministic PBFT simulator: n replicas, one process, a virtual clock, a seeded scheduler.

One seed fixes everything: keys, the fault schedule (drops, delays,
duplicates, reordering, partitions that heal, crashes and restarts from
persisted state, validator-set changes) and which replicas are Byzantine and
how (equivocating primary, invalid proposals, conflicting votes, silence,
replayed messages, garbage bytes, Twins copies sharing one key).

After every committed block the simulator checks *agreement* (no two honest
replicas commit different blocks at one height) and *certificate validity*
(a quorum of the height's validators signed it). When the chaos phase ends,
partitions heal, drops stop and crashed replicas restart; every honest replica
must then commit new blocks within a bounded virtual time (*liveness*).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from consensus.certificate import Certificate, CertificateError, max_faulty
from consensus.crypto import PrivateKey, sha256
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
    RequestSeen,
    Send,
    ServeBlocks,
    SetTimer,
    Start,
    TimerFired,
    ValidateProposal,
)
from consensus.messages import (
    COMMIT,
    PRE_PREPARE,
    PREPARE,
    PrePrepare,
    Vote,
    open_envelope,
    seal,
    wire_message,
)
from consensus.replica import Replica, ReplicaConfig
from consensus.sim.app import SimApp, digest_of

CHAIN = sha256(b"vigil-sim/genesis")
"""The simulated chain's genesis hash: the signing context of every message."""
BYZANTINE_MODES = ("silent", "equivocate", "invalid", "conflict", "replay", "garbage", "twins")
EXTRA_MODES = ("withhold", "flood", "outsider")
"""Behaviours the simulator supports but the default schedule does not pick (so the toy
application's seeds keep their meaning): a primary that sends its PRE-PREPARE to only q-1
replicas and never sends a COMMIT; a member that floods every peer with catch-up requests;
a member whose traffic comes with signed votes for future heights from made-up keys."""
MAX_CATCHUP_BLOCKS = 32
MAX_EVENTS = 400_000
"""Hard bound on scheduler steps for one seed; hitting it is reported as a failure."""
MAX_REPLAY_MEMORY = 200
LIVENESS_BLOCKS = 2


class AppKit:
    """How the simulator makes and talks to one replica's application.

    The default is the toy ledger of ``consensus/sim/app.py``; ``node/sim``
    plugs in the real ledger (the consensus package imports nothing from node).
    An application offers ``height``, ``chain`` (committed (block, certificate)
    pairs), ``validator_sets``, ``validators_at(h)``, ``pending``,
    ``add_request(raw)``, ``build(h, proposer, valid=, salt=)``,
    ``validate(h, block)`` and ``commit(block, cert)``.
    """

    def new_app(self, sim: Simulation, validators: tuple[bytes, ...], index: int) -> Any:
        return SimApp(validators)

    def digest_of(self, block: bytes) -> bytes:
        return digest_of(block)

    def request_id(self, request: bytes) -> bytes:
        return digest_of(request)

    def next_request(self, sim: Simulation) -> bytes:
        return f"req:{sim.cfg.seed}:{len(sim._submitted)}".encode()

    def next_requests(self, sim: Simulation) -> list[bytes]:
        """What the clients submit on one tick (a real workload may send several at once)."""
        return [self.next_request(sim)]

    build_delay_ms = 0
    """Virtual ms between BuildProposal and building (0: at once). A real node builds on the
    next turn of its loop, so a lone replica does not commit block after block in one
    synchronous chain."""

    def valset_changes(self) -> bool:
        """Whether a schedule may change the validator set (then one spare replica runs)."""
        return True

    def change_validators(self, sim: Simulation) -> None:
        """Called on every client tick of a schedule with validator-set changes: the toy
        application's join/leave requests (a real application's workload brings its own)."""
        sim._maybe_change_validators()

    def check_commit(self, sim: Simulation, node: Node, height: int) -> None:
        """Extra checks after an honest node commits ``height``."""

    def retry_after(self, sim: Simulation, index: int, error: Exception) -> int | None:
        """Virtual ms after which a validation or commit that raised ``error`` can go on
        (the application first has to fetch something, as a node fetches a model artifact),
        or None when ``error`` is a real failure."""
        return None

    def serve_allowed(self, sim: Simulation, index: int, requester: bytes) -> bool:
        """Whether replica ``index`` answers a catch-up request now (per-peer budgets)."""
        return True

    def finish(self, sim: Simulation) -> None:
        """Extra checks at the end of a run."""


@dataclass
class SimConfig:
    seed: int
    nodes: int = 4
    byzantine: int = 0
    chaos_ms: int = 6_000
    liveness_ms: int = 60_000
    request_interval_ms: int = 400
    valset_changes: bool | None = None
    """None: decided by the seed (about one schedule in four)."""
    modes: tuple[str, ...] = BYZANTINE_MODES
    trace: bool = False
    kit: AppKit | None = None
    """The application under test (None: the toy ledger)."""


@dataclass
class Violation:
    kind: str
    detail: str
    time_ms: int


@dataclass
class SimResult:
    seed: int
    ok: bool
    violations: list[Violation]
    heights: dict[str, int]
    stats: dict[str, int]
    schedule: dict[str, object]
    trace: list[str]

    def summary(self) -> str:
        v = "; ".join(f"{x.kind} at {x.time_ms} ms: {x.detail}" for x in self.violations)
        return f"seed {self.seed}: {'ok' if self.ok else 'FAILED: ' + v}"


@dataclass
class Node:
    name: str
    key: PrivateKey
    app: Any
    replica: Replica | None = None
    mode: str | None = None
    honest: bool = True
    alive: bool = True
    incarnation: int = 0
    safety: bytes | None = None
    timers: dict[str, int] = field(default_factory=dict)
    memory: list[bytes] = field(default_factory=list)


class Simulation:
    """Run one seeded schedule; :meth:`run` returns a SimResult."""

    def __init__(self, config: SimConfig) -> None:
        self.cfg = config
        self.kit = config.kit or AppKit()
        self.rng = random.Random(config.seed)
        self.now = 0
        self._seq = 0
        self._queue: list[tuple[int, int, str, int, object]] = []
        self.trace: list[str] = []
        self.violations: list[Violation] = []
        self.stats = {"delivered": 0, "dropped": 0, "commits": 0, "faults": 0, "crashes": 0}
        self._committed: dict[int, bytes] = {}
        self._checked_certs: set[bytes] = set()
        self._submitted: list[bytes] = []
        self._plan_schedule()
        self._make_nodes()

    # ------------------------------------------------------------ setup

    def _plan_schedule(self) -> None:
        cfg, rng = self.cfg, self.rng
        f = max_faulty(cfg.nodes)
        if cfg.byzantine > f:
            raise ValueError(
                f"{cfg.byzantine} Byzantine replicas exceed f = {f} for n = {cfg.nodes}"
            )
        self.drop_p = rng.choice([0.0, 0.02, 0.1, 0.25])
        self.dup_p = rng.choice([0.0, 0.05, 0.2])
        self.max_delay = rng.choice([5, 40, 150, 400])
        self.partitions = self._plan_partitions()
        self.crashes = self._plan_crashes()
        self.valset = (
            rng.random() < 0.25 and cfg.nodes > 1
            if cfg.valset_changes is None
            else cfg.valset_changes
        ) and (cfg.kit is None or cfg.kit.valset_changes())
        self.modes = [rng.choice(cfg.modes) for _ in range(cfg.byzantine)]
        self.schedule = {
            "drop_p": self.drop_p,
            "dup_p": self.dup_p,
            "max_delay_ms": self.max_delay,
            "partitions": self.partitions,
            "crashes": self.crashes,
            "valset_changes": self.valset,
            "byzantine": self.modes,
        }

    def _plan_partitions(self) -> list[tuple[int, int, list[int]]]:
        rng, cfg = self.rng, self.cfg
        plans = []
        for _ in range(rng.choice([0, 0, 1, 2])):
            start = rng.randrange(0, cfg.chaos_ms)
            end = min(cfg.chaos_ms, start + rng.randrange(200, 3_000))
            side = sorted(rng.sample(range(cfg.nodes), rng.randint(1, max(1, cfg.nodes // 2))))
            plans.append((start, end, side))
        return plans

    def _plan_crashes(self) -> list[tuple[int, int, int]]:
        rng, cfg = self.rng, self.cfg
        plans = []
        for _ in range(rng.choice([0, 0, 1, 2])):
            node = rng.randrange(cfg.nodes)
            start = rng.randrange(0, cfg.chaos_ms)
            end = min(cfg.chaos_ms, start + rng.randrange(100, 4_000))
            plans.append((node, start, end))
        return plans

    def _make_nodes(self) -> None:
        cfg = self.cfg
        keys = [PrivateKey.from_seed(self.rng.randbytes(32)) for _ in range(cfg.nodes)]
        spares = [
            PrivateKey.from_seed(self.rng.randbytes(32)) for _ in range(1 if self.valset else 0)
        ]
        self.genesis = tuple(k.public for k in keys)
        self.nodes: list[Node] = []
        byz = self.rng.sample(range(cfg.nodes), cfg.byzantine) if cfg.byzantine else []
        for i, key in enumerate(keys):
            mode = self.modes[byz.index(i)] if i in byz else None
            app = self.kit.new_app(self, self.genesis, len(self.nodes))
            self.nodes.append(Node(f"n{i}", key, app, mode=mode, honest=mode is None))
            if mode == "twins":
                twin_app = self.kit.new_app(self, self.genesis, len(self.nodes))
                twin = Node(f"n{i}'", key, twin_app, mode="twin", honest=False)
                self.nodes.append(twin)
        self.spares = []
        for j, key in enumerate(spares):
            self.nodes.append(Node(f"s{j}", key, self.kit.new_app(self, self.genesis, -1)))
            self.spares.append(key.public)
        self.by_key: dict[bytes, list[int]] = {}
        for idx, node in enumerate(self.nodes):
            self.by_key.setdefault(node.key.public, []).append(idx)
        self.replica_config = ReplicaConfig(
            chain=CHAIN,
            digest_of=self.kit.digest_of,
            progress_timeout_ms=800,
            request_timeout_ms=1_600,
            view_change_timeout_ms=800,
            behind_delay_ms=300,
            max_backoff_exp=5,
        )

    # ------------------------------------------------------------ scheduling

    def _push(self, at: int, kind: str, node: int, payload: object = None) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, kind, node, payload))

    def _log(self, text: str) -> None:
        if self.cfg.trace:
            self.trace.append(f"{self.now:>7} ms  {text}")

    def _violation(self, kind: str, detail: str) -> None:
        self.violations.append(Violation(kind, detail, self.now))
        self._log(f"VIOLATION {kind}: {detail}")

    @property
    def healed(self) -> bool:
        return self.now >= self.cfg.chaos_ms

    def _partitioned(self, a: int, b: int) -> bool:
        if self.healed:
            return False
        ia = self._orig_index(a)
        ib = self._orig_index(b)
        for start, end, side in self.partitions:
            if start <= self.now < end and ((ia in side) != (ib in side)):
                return True
        return False

    def _orig_index(self, idx: int) -> int:
        name = self.nodes[idx].name.rstrip("'")
        return int(name[1:]) if name.startswith("n") else -1

    def _transmit(self, src: int, dst: int, kind: str, payload: object) -> None:
        """Put one message on the simulated wire, subject to the fault model."""
        if src == dst:
            return
        if self._partitioned(src, dst) or (not self.healed and self.rng.random() < self.drop_p):
            self.stats["dropped"] += 1
            return
        copies = 2 if not self.healed and self.rng.random() < self.dup_p else 1
        for _ in range(copies):
            max_delay = 20 if self.healed else self.max_delay
            self._push(self.now + self.rng.randint(1, max_delay), kind, dst, payload)

    # ------------------------------------------------------------ node lifecycle

    def _boot(self, idx: int) -> None:
        node = self.nodes[idx]
        app = node.app
        height = app.height + 1
        node.replica = Replica(
            self.replica_config,
            node.key,
            height=height,
            validators=app.validators_at(height),
            last_certificate=app.chain[-1][1] if app.chain else None,
            safety=node.safety,
        )
        node.alive = True
        node.timers = {}
        node.incarnation += 1
        self._feed(idx, Start())
        for request in self._submitted:
            self._offer_request(idx, request)

    def _crash(self, idx: int) -> None:
        node = self.nodes[idx]
        if not node.alive:
            return
        node.alive = False
        node.replica = None
        node.app.pending.clear()  # the mempool is memory; chain and safety state are durable
        self.stats["crashes"] += 1
        self._log(f"{node.name} CRASH")

    # ------------------------------------------------------------ driving replicas

    def _feed(self, idx: int, event: Event) -> None:
        work: list[Event] = [event]
        budget = 64
        while work:
            budget -= 1
            assert budget > 0, "runaway synchronous event chain"
            node = self.nodes[idx]
            if not node.alive or node.replica is None:
                return
            ev = work.pop(0)
            actions = node.replica.handle(ev)
            cut = self._crash_point(idx, actions)
            for n, action in enumerate(actions):
                if n == cut:
                    self._crash(idx)
                    return
                reply = self._execute(idx, action)
                if reply is not None:
                    work.append(reply)

    def _crash_point(self, idx: int, actions: list[Action]) -> int | None:
        """Sometimes crash part-way through a list of actions (tests persist-before-send)."""
        if self.healed or not actions or self.rng.random() > 0.002:
            return None
        if not self.nodes[idx].honest:
            return None
        self._schedule_restart(idx, self.now + self.rng.randint(50, 1_000))
        return self.rng.randrange(len(actions))

    def _schedule_restart(self, idx: int, at: int) -> None:
        self._push(min(at, self.cfg.chaos_ms), "restart", idx)

    def _execute(self, idx: int, action: Action) -> Event | None:
        node = self.nodes[idx]
        if isinstance(action, Broadcast):
            self._send_out(idx, None, action.data)
        elif isinstance(action, Send):
            self._send_out(idx, action.to, action.data)
        elif isinstance(action, SetTimer):
            node.timers[action.name] = action.token
            self._push(
                self.now + action.delay_ms,
                "timer",
                idx,
                (node.incarnation, action.name, action.token),
            )
        elif isinstance(action, CancelTimer):
            node.timers.pop(action.name, None)
        elif isinstance(action, Persist):
            node.safety = action.state
        elif isinstance(action, BuildProposal):
            if self.kit.build_delay_ms:
                self._push(
                    self.now + self.kit.build_delay_ms, "build", idx, (node.incarnation, action)
                )
                return None
            return self._build(idx, action)
        elif isinstance(action, ValidateProposal):
            return self._validate(idx, action)
        elif isinstance(action, CommitBlock):
            return self._commit(idx, action)
        elif isinstance(action, FetchBlocks):
            for dst in self.by_key.get(action.peer, []):
                self._transmit(idx, dst, "fetch", (self.nodes[idx].key.public, action.from_height))
        elif isinstance(action, ServeBlocks):
            self._serve(idx, action.peer, action.from_height)
        elif isinstance(action, Fault):
            self.stats["faults"] += 1
            self._log(f"{node.name} fault {action.kind}: {action.detail}")
        return None

    def _later(self, idx: int, action: Action, error: Exception) -> None:
        """Run ``action`` again once the application has what it lacked (or re-raise)."""
        delay = self.kit.retry_after(self, idx, error)
        if delay is None:
            raise error
        node = self.nodes[idx]
        self._log(f"{node.name} waits {delay} ms: {type(error).__name__}")
        self.stats["app_waits"] = self.stats.get("app_waits", 0) + 1
        self._push(self.now + max(1, delay), "retry", idx, (node.incarnation, action))

    def _validate(self, idx: int, action: ValidateProposal) -> Event | None:
        try:
            problem = self.nodes[idx].app.validate(action.height, action.block, action.view)
        except Exception as exc:
            self._later(idx, action, exc)
            return None
        return ProposalValidated(
            action.height, action.view, action.digest, problem is None, problem or ""
        )

    def _build(self, idx: int, action: BuildProposal) -> Event:
        node = self.nodes[idx]
        if node.app.height + 1 != action.height:
            return ProposalBuilt(action.height, action.view, None)
        if not node.app.pending and not action.required:
            return ProposalBuilt(action.height, action.view, None)
        block = node.app.build(
            action.height, node.key.public, valid=node.mode != "invalid", salt=action.view
        )
        return ProposalBuilt(action.height, action.view, block)

    def _commit(self, idx: int, action: CommitBlock) -> Event | None:
        node = self.nodes[idx]
        cert = action.certificate
        if node.honest:
            self._check_commit(node, action)
        try:
            problem = node.app.validate(action.height, action.block)  # certified: no view
        except Exception as exc:
            self._later(idx, action, exc)
            return None
        if problem is not None:
            if node.honest:
                self._violation(
                    "validity",
                    f"{node.name} was handed a certified block it cannot apply at height "
                    f"{action.height}: {problem}",
                )
            self._crash(idx)
            return None
        next_vals, included = node.app.commit(action.block, cert)
        if node.honest:
            self.kit.check_commit(self, node, action.height)
        self.stats["commits"] += 1
        self._log(
            f"{node.name} COMMIT h={action.height} v={cert.view} {cert.block_hash.hex()[:12]}"
        )
        return BlockPersisted(action.height, next_vals, included)

    def _check_commit(self, node: Node, action: CommitBlock) -> None:
        cert = action.certificate
        known = self._committed.setdefault(action.height, cert.block_hash)
        if known != cert.block_hash:
            self._violation(
                "agreement",
                f"{node.name} committed {cert.block_hash.hex()[:12]} at height {action.height}, "
                f"another honest replica committed {known.hex()[:12]}",
            )
        if self.kit.digest_of(action.block) != cert.block_hash:
            self._violation("certificate", f"{node.name}: block does not match its certificate")
        key = cert.hash()
        if key not in self._checked_certs:
            try:
                cert.verify(CHAIN, node.app.validators_at(action.height))
                self._checked_certs.add(key)
            except CertificateError as exc:
                self._violation("certificate", f"{node.name} height {action.height}: {exc}")

    def _serve(self, idx: int, peer: bytes, from_height: int) -> None:
        node = self.nodes[idx]
        blocks = node.app.chain[from_height - 1 : from_height - 1 + MAX_CATCHUP_BLOCKS]
        if not blocks:
            return
        for dst in self.by_key.get(peer, []):
            self._transmit(idx, dst, "certified", list(blocks))

    # ------------------------------------------------------------ Byzantine behaviour

    def _send_out(self, idx: int, to: bytes | None, data: bytes) -> None:
        node = self.nodes[idx]
        targets = (
            [j for j in range(len(self.nodes)) if j != idx]
            if to is None
            else self.by_key.get(to, [])
        )
        mode = node.mode
        if mode == "silent":
            return
        if mode == "withhold" and self._withheld(idx, data, targets):
            return
        if mode == "flood":
            for j in targets:
                self._transmit(idx, j, "fetch", (node.key.public, 1))
        elif mode == "outsider" and targets:
            self._outsider_votes(idx, data, targets)
        if mode == "equivocate" and to is None:
            alt = self._equivocation(node, data)
            if alt is not None:
                for n, j in enumerate(targets):
                    self._transmit(idx, j, "msg", alt if n % 2 else data)
                return
        for j in targets:
            self._transmit(idx, j, "msg", data)
        if mode == "conflict":
            self._conflicting_votes(idx, data, targets)
        elif mode == "replay" and node.memory:
            for _ in range(2):
                self._transmit(idx, self.rng.choice(targets), "msg", self.rng.choice(node.memory))
        elif mode == "garbage" and targets:
            junk = self.rng.randbytes(self.rng.randint(0, 200))
            flipped = bytearray(data)
            flipped[self.rng.randrange(len(flipped))] ^= 1 << self.rng.randrange(8)
            self._transmit(idx, self.rng.choice(targets), "msg", junk)
            self._transmit(idx, self.rng.choice(targets), "msg", bytes(flipped))

    def _equivocation(self, node: Node, data: bytes) -> bytes | None:
        env = open_envelope(data)
        if env.kind != PRE_PREPARE:
            return None
        pp = PrePrepare.decode(env.body)
        block = (
            node.app.build(pp.height, node.key.public, salt=pp.view + 1_000)
            if node.app.height + 1 == pp.height
            else None
        )
        if block is None:
            return None
        alt = PrePrepare(pp.height, pp.view, self.kit.digest_of(block))
        return wire_message(seal(node.key, CHAIN, PRE_PREPARE, alt), block)

    def _withheld(self, idx: int, data: bytes, targets: list[int]) -> bool:
        """A primary that lets a block prepare and then withholds its vote: its PRE-PREPARE
        reaches only q-1 replicas and its COMMITs reach nobody. True: handled here."""
        env = open_envelope(data)
        if env.kind == COMMIT:
            return True
        if env.kind != PRE_PREPARE:
            return False
        replica = self.nodes[idx].replica
        quorum = replica.q if replica is not None else len(targets)
        for j in targets[: max(0, quorum - 1)]:
            self._transmit(idx, j, "msg", data)
        return True

    def _outsider_votes(self, idx: int, data: bytes, targets: list[int]) -> None:
        """Signed votes for the next heights from keys that are no member's: a replica must
        check membership before it keeps a future-height message."""
        env = open_envelope(data)
        if env.kind not in (PREPARE, COMMIT):
            return
        vote = Vote.decode(env.body)
        for ahead in range(1, 4):
            stranger = PrivateKey.from_seed(self.rng.randbytes(32))
            fake = Vote(vote.height + ahead, vote.view, self.rng.randbytes(32))
            forged = wire_message(seal(stranger, CHAIN, env.kind, fake))
            self._transmit(idx, self.rng.choice(targets), "msg", forged)

    def _conflicting_votes(self, idx: int, data: bytes, targets: list[int]) -> None:
        env = open_envelope(data)
        if env.kind not in (PREPARE, COMMIT) or not targets:
            return
        vote = Vote.decode(env.body)
        fake = Vote(vote.height, vote.view, self.rng.randbytes(32))
        forged = wire_message(seal(self.nodes[idx].key, CHAIN, env.kind, fake))
        self._transmit(idx, self.rng.choice(targets), "msg", forged)

    # ------------------------------------------------------------ client

    def _submit(self, request: bytes) -> None:
        self._submitted.append(request)
        for idx in range(len(self.nodes)):
            self._push(self.now + self.rng.randint(1, 30), "request", idx, request)

    def _offer_request(self, idx: int, request: bytes) -> None:
        node = self.nodes[idx]
        if node.alive and node.app.add_request(request):
            self._feed(idx, RequestSeen(self.kit.request_id(request)))

    def _client_tick(self) -> None:
        for request in self.kit.next_requests(self):
            self._submit(request)
        if self.valset and self.spares:
            self.kit.change_validators(self)
        self._push(self.now + self.cfg.request_interval_ms, "client", -1)

    def _maybe_change_validators(self) -> None:
        spare = self.spares[0]
        join = b"join:" + spare
        if join not in self._submitted and self.now > self.cfg.chaos_ms // 4:
            self._submit(join)
            return
        honest_heights = [n.app for n in self.nodes if n.honest and n.app.height]
        joined = any(spare in app.validator_sets[-1] for app in honest_heights)
        leave_victims = [n for n in self.nodes if n.honest and n.name.startswith("n")]
        if joined and leave_victims and not any(r.startswith(b"leave:") for r in self._submitted):
            victim = leave_victims[self.cfg.seed % len(leave_victims)]
            self._submit(b"leave:" + victim.key.public)

    # ------------------------------------------------------------ main loop

    def run(self) -> SimResult:
        for idx in range(len(self.nodes)):
            self._boot(idx)
        for node_idx, start, end in self.crashes:
            self._push(start, "crash", node_idx)
            self._schedule_restart(node_idx, end)
        self._push(self.cfg.chaos_ms, "heal", -1)
        self._push(0, "client", -1)
        deadline = self.cfg.chaos_ms + self.cfg.liveness_ms
        target: int | None = None
        steps = 0
        while self._queue and not self.violations:
            at, _, kind, idx, payload = heapq.heappop(self._queue)
            if at > deadline:
                break
            self.now = at
            steps += 1
            if steps > MAX_EVENTS:
                self._violation("runaway", f"more than {MAX_EVENTS} events")
                break
            self._step(kind, idx, payload)
            if kind == "heal":
                target = max(n.app.height for n in self.nodes if n.honest) + LIVENESS_BLOCKS
            if target is not None and all(n.app.height >= target for n in self._must_progress()):
                break
        if not self.violations:
            if target is None:
                self._violation("liveness", "the run ended before the faults healed")
            else:
                slow = [
                    f"{n.name}@{n.app.height}"
                    for n in self._must_progress()
                    if n.app.height < target
                ]
                if slow:
                    self._violation(
                        "liveness",
                        f"within {self.cfg.liveness_ms} ms after healing, {', '.join(slow)} "
                        f"did not reach height {target}",
                    )
        if not self.violations:
            self.kit.finish(self)
        self.stats["steps"] = steps
        longest = max((n.app for n in self.nodes if n.honest), key=lambda app: app.height)
        sets = longest.validator_sets
        self.stats["validator_set_changes"] = sum(a != b for a, b in itertools.pairwise(sets))
        return SimResult(
            seed=self.cfg.seed,
            ok=not self.violations,
            violations=self.violations,
            heights={n.name: n.app.height for n in self.nodes},
            stats=self.stats,
            schedule=self.schedule,
            trace=self.trace,
        )

    def _must_progress(self) -> list[Node]:
        return [n for n in self.nodes if n.honest]

    def _step(self, kind: str, idx: int, payload: object) -> None:
        if kind == "client":
            self._client_tick()
        elif kind == "heal":
            self._log("HEAL: partitions end, drops stop, crashed replicas restart")
            for j, node in enumerate(self.nodes):
                if not node.alive:
                    self._boot(j)
        elif kind == "crash":
            self._crash(idx)
        elif kind == "restart":
            if not self.nodes[idx].alive:
                self._log(f"{self.nodes[idx].name} RESTART")
                self._boot(idx)
        elif kind == "request":
            self._offer_request(idx, payload)  # type: ignore[arg-type]
        else:
            self._deliver(kind, idx, payload)

    def _deliver(self, kind: str, idx: int, payload: object) -> None:
        node = self.nodes[idx]
        if not node.alive:
            return
        if kind == "timer":
            incarnation, name, token = payload  # type: ignore[misc]
            if incarnation == node.incarnation and node.timers.get(name) == token:
                del node.timers[name]
                self._feed(idx, TimerFired(name, token))
        elif kind == "msg":
            self.stats["delivered"] += 1
            data: bytes = payload  # type: ignore[assignment]
            if node.mode == "replay" and len(node.memory) < MAX_REPLAY_MEMORY:
                node.memory.append(data)
            if self.cfg.trace:
                self._log(f"{node.name} <- {describe(data)}")
            self._feed(idx, MessageReceived(data))
        elif kind == "fetch":
            requester, from_height = payload  # type: ignore[misc]
            if node.mode != "silent" and self.kit.serve_allowed(self, idx, requester):
                self.stats["served"] = self.stats.get("served", 0) + 1
                self._serve(idx, requester, from_height)
        elif kind == "build":
            incarnation, action = payload  # type: ignore[misc]
            if incarnation == node.incarnation and node.replica is not None:
                self._feed(idx, self._build(idx, action))
        elif kind == "retry":
            incarnation, action = payload  # type: ignore[misc]
            if incarnation != node.incarnation or node.replica is None:
                return
            event = (
                self._validate(idx, action)
                if isinstance(action, ValidateProposal)
                else self._commit(idx, action)
            )
            if event is not None:
                self._feed(idx, event)
        elif kind == "certified":
            for block, cert in payload:  # type: ignore[union-attr]
                if node.alive and cert.height == node.app.height + 1:
                    self._feed(idx, CertifiedBlockReceived(block, cert))


def describe(data: bytes) -> str:
    """One line naming a wire message, for traces."""
    try:
        env = open_envelope(data)
        body = env.open()
    except Exception as exc:
        return f"garbage ({len(data)} bytes: {type(exc).__name__})"
    parts = [env.kind, f"h={body.height}"]
    if hasattr(body, "view"):
        parts.append(f"v={body.view}")
    digest = getattr(body, "digest", None)
    if digest is not None:
        parts.append(digest.hex()[:8])
    return " ".join(parts) + f" from {env.sender.hex()[:8]}"


def run_seed(
    seed: int,
    nodes: int,
    byzantine: int,
    *,
    trace: bool = False,
    hook: Callable[[Simulation], None] | None = None,
) -> SimResult:
    sim = Simulation(SimConfig(seed=seed, nodes=nodes, byzantine=byzantine, trace=trace))
    if hook is not None:
        hook(sim)
    return sim.run()


__all__ = [
    "BYZANTINE_MODES",
    "EXTRA_MODES",
    "Certificate",
    "SimConfig",
    "SimResult",
    "Simulation",
    "run_seed",
]
