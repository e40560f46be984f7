"""PBFT replica as a pure state machine: events in, actions out.

Sequence number = block height; one height is decided at a time and every
height has its own views, starting at 0, with the primary of (height, view)
being ``validators[(height + view) % n]`` (rotation spreads the proposer role;
a faulty member costs one view change when its turn comes).

Normal case at height h, view v (Castro & Liskov, one slot):

1. the primary asks the application to build a block and broadcasts
   PRE-PREPARE(h, v, digest, block);
2. each replica has its application execute the block (execute-then-vote) and,
   only if it accepts, persists and broadcasts PREPARE(h, v, digest);
3. with a quorum q of matching PREPAREs a replica is *prepared*: it persists
   the prepared proof and broadcasts COMMIT(h, v, digest);
4. q matching COMMITs form the certificate; the replica hands the block and
   certificate to the application and moves to h + 1 once it is persisted.

View change: timers (progress after a proposal, request for a client request
the primary ignores, view change while waiting for NEW-VIEW) grow
exponentially with the view. VIEW-CHANGE carries the last certificate and the
highest prepared proof; the new primary's NEW-VIEW carries q of them and a
PRE-PREPARE that re-proposes the highest prepared block, or a fresh block when
none was prepared. Every replica checks that rule before accepting it.

Nothing here reads a clock, a socket, a disk or a random source.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from consensus import codec
from consensus.bounded import BoundedMap
from consensus.certificate import (
    MAX_VALIDATORS,
    Certificate,
    CertificateError,
    max_faulty,
    quorum,
)
from consensus.certificate import Vote as CertVote
from consensus.crypto import PrivateKey
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
    RequestSeen,
    RequestsSeen,
    Send,
    ServeBlocks,
    SetTimer,
    Start,
    TimerFired,
    ValidateProposal,
)
from consensus.messages import (
    BLOCK,
    BLOCK_REQUEST,
    COMMIT,
    MAX_BLOCK_BYTES_ON_WIRE,
    NEW_VIEW,
    PRE_PREPARE,
    PREPARE,
    VIEW_CHANGE,
    BlockRef,
    Envelope,
    MessageError,
    NewView,
    PreparedProof,
    PrePrepare,
    ViewChange,
    Vote,
    check_prepared_proof,
    open_message,
    seal,
    wire_message,
)
from consensus.record import Bool, Bytes, FieldError, Int, Nested, Optional, Record, wire

TIMER_PROGRESS = "progress"
TIMER_VIEW_CHANGE = "view-change"
TIMER_REQUEST = "request"
TIMER_BEHIND = "behind"


@dataclass(frozen=True)
class ReplicaConfig:
    """Tunables; every bound the replica keeps is named here."""

    chain: bytes
    """The genesis hash: every signature is bound to it (see consensus/crypto.py)."""
    digest_of: Callable[[bytes], bytes]
    """Pure function: the digest (block hash) of block bytes. Raises ValueError on junk."""
    progress_timeout_ms: int = 2_000
    request_timeout_ms: int = 4_000
    view_change_timeout_ms: int = 2_000
    behind_delay_ms: int = 500
    max_backoff_exp: int = 6
    """Timeouts double per view up to 2**max_backoff_exp times the base."""
    height_window: int = 16
    """Messages for heights h+1 .. h+height_window are buffered; further ones dropped."""
    view_window: int = 64
    """Votes and view changes for views above v + view_window are dropped."""
    max_buffered: int = 4_096
    max_buffered_per_sender: int = 512
    max_outstanding_requests: int = 200_000
    verified_cache_size: int = 8_192
    max_slot_blocks: int = 4
    """Blocks kept for the current height (proposals of its views, blocks asked for)."""
    max_buffered_blocks: int = 2
    """Blocks of later heights' pre-prepares kept; beyond that they are asked for later."""
    max_block_answers: int = 64
    """BLOCK answers one height sends (each at most once per asker and digest)."""


@dataclass(frozen=True)
class SafetyState(Record):
    """What must survive a crash so the replica never signs two votes for one (height, view)."""

    NAME = "safety"
    height: int = wire(Int(1))
    view: int = wire(Int(0))
    in_view_change: bool = wire(Bool())
    prepare_vote: Vote | None = wire(Optional(Nested(Vote)))
    commit_vote: Vote | None = wire(Optional(Nested(Vote)))
    prepared: PreparedProof | None = wire(Optional(Nested(PreparedProof)))
    prepared_block: bytes | None = wire(Optional(Bytes(max_len=MAX_BLOCK_BYTES_ON_WIRE)))
    """The prepared block's bytes: proofs name it by digest, and after a crash this
    replica may be the one that must re-propose it or hand it to the others."""


@dataclass
class _Slot:
    """Everything the replica knows about its current height; dropped when the height commits."""

    pre_prepares: dict[int, tuple[PrePrepare, Envelope]] = field(default_factory=dict)
    validated: dict[int, bool] = field(default_factory=dict)
    prepares: dict[tuple[int, bytes], dict[bytes, Envelope]] = field(default_factory=dict)
    commits: dict[tuple[int, bytes], dict[bytes, Envelope]] = field(default_factory=dict)
    view_changes: dict[int, dict[bytes, tuple[ViewChange, Envelope]]] = field(default_factory=dict)
    new_view_done: set[int] = field(default_factory=set)
    pending_new_view: dict[int, tuple[Envelope, ...]] = field(default_factory=dict)
    building: int | None = None
    served: dict[bytes, int] = field(default_factory=dict)
    blocks: OrderedDict[bytes, bytes] = field(default_factory=OrderedDict)
    """Block bytes by digest, for pre-prepares of this height (bounded: max_slot_blocks)."""
    wanted: set[bytes] = field(default_factory=set)
    """Digests of pre-prepared blocks this replica lacks and has asked for."""
    answered: set[tuple[bytes, bytes]] = field(default_factory=set)
    """(asker, digest) pairs already answered with a BLOCK."""


class Replica:
    """One PBFT replica. Feed events to :meth:`handle`; carry out the actions it returns."""

    def __init__(
        self,
        config: ReplicaConfig,
        key: PrivateKey,
        *,
        height: int,
        validators: tuple[bytes, ...],
        last_certificate: Certificate | None = None,
        safety: bytes | None = None,
    ) -> None:
        assert height >= 1
        self.config = config
        self.key = key
        self.me = key.public
        self.height = height
        self.validators: tuple[bytes, ...] = ()
        self._set_validators(validators)
        self.last_certificate = last_certificate
        self.view = 0
        self.in_view_change = False
        self.prepare_vote: Vote | None = None
        self.commit_vote: Vote | None = None
        self.prepared: PreparedProof | None = None
        self.prepared_block: bytes | None = None
        self.committing = False
        self.slot = _Slot()
        self._future: dict[int, list[tuple[Envelope, object]]] = {}
        self._future_blocks: OrderedDict[tuple[int, bytes], bytes] = OrderedDict()
        self._future_count = 0
        self._future_by_sender: dict[bytes, int] = {}
        self._outstanding: OrderedDict[bytes, None] = OrderedDict()
        self._watched: bytes | None = None
        self._timer_tokens: dict[str, int] = {}
        self._next_token = 1
        self._verified: BoundedMap[bytes, bool] = BoundedMap(config.verified_cache_size)
        self._behind_peer: bytes | None = None
        self._pending_certificate: Certificate | None = None
        self._out: list[Action] = []
        if safety is not None:
            self._restore(safety)

    # ------------------------------------------------------------ helpers

    def _set_validators(self, validators: tuple[bytes, ...]) -> None:
        vals = tuple(validators)
        if not 1 <= len(vals) <= MAX_VALIDATORS or len(set(vals)) != len(vals):
            raise ValueError(f"validator set must hold 1..{MAX_VALIDATORS} distinct keys")
        self.validators = vals
        self._members = frozenset(vals)
        self.f = max_faulty(len(vals))
        self.q = quorum(len(vals))

    def primary(self, view: int | None = None) -> bytes:
        v = self.view if view is None else view
        return self.validators[(self.height + v) % len(self.validators)]

    def is_member(self, key: bytes) -> bool:
        """Whether ``key`` is a validator of the current height."""
        return key in self._members

    @property
    def is_validator(self) -> bool:
        return self.me in self._members

    def _timeout(self, base: int, view: int) -> int:
        return base * 2 ** min(view, self.config.max_backoff_exp)

    def _set_timer(self, name: str, delay_ms: int) -> None:
        token = self._next_token
        self._next_token += 1
        self._timer_tokens[name] = token
        self._out.append(SetTimer(name, delay_ms, token))

    def _cancel_timer(self, name: str) -> None:
        if self._timer_tokens.pop(name, None) is not None:
            self._out.append(CancelTimer(name))

    def _fault(self, kind: str, detail: str, peer: bytes | None = None) -> None:
        self._out.append(Fault(kind, detail, peer))

    def _verified_ok(self, env: Envelope) -> bool:
        key = hashlib.sha256(env.kind.encode() + env.sender + env.signature + env.body).digest()
        hit = self._verified.get(key)
        if hit is not None:
            return hit
        ok = env.verify_signature(self.config.chain)
        self._verified.remember(key, ok)
        return ok

    def _digest(self, block: bytes) -> bytes | None:
        try:
            return self.config.digest_of(block)
        except (ValueError, codec.CodecError, FieldError):
            return None

    def _safety_state(self) -> SafetyState:
        return SafetyState(
            self.height,
            self.view,
            self.in_view_change,
            self.prepare_vote,
            self.commit_vote,
            self.prepared,
            self.prepared_block,
        )

    def _persist(self) -> None:
        self._out.append(Persist(self._safety_state().encode()))

    def _restore(self, raw: bytes) -> None:
        state = SafetyState.decode(raw)
        assert state.height <= self.height + 1, "safety state is ahead of the committed chain"
        if state.height != self.height:
            return
        self.view = state.view
        self.in_view_change = state.in_view_change
        self.prepare_vote = state.prepare_vote
        self.commit_vote = state.commit_vote
        self.prepared = state.prepared
        self.prepared_block = state.prepared_block
        if state.prepared is not None and state.prepared_block is not None:
            pp = PrePrepare.decode(state.prepared.pre_prepare.body)
            if pp.height == self.height and self._digest(state.prepared_block) == pp.digest:
                self._keep_block(pp.digest, state.prepared_block)

    # ------------------------------------------------------------ entry point

    def handle(self, event: Event) -> list[Action]:
        """Consume one event; return the actions to carry out, in order."""
        self._out = []
        if isinstance(event, MessageReceived):
            self._on_message(event.data)
        elif isinstance(event, TimerFired):
            self._on_timer(event)
        elif isinstance(event, ProposalBuilt):
            self._on_proposal_built(event)
        elif isinstance(event, ProposalValidated):
            self._on_validated(event)
        elif isinstance(event, BlockPersisted):
            self._on_persisted(event)
        elif isinstance(event, RequestSeen):
            self._on_request(event.request_id)
        elif isinstance(event, RequestsSeen):
            noted = [self._note_request(request_id) for request_id in event.request_ids]
            if any(noted):
                self._maybe_propose()
        elif isinstance(event, RequestDropped):
            self._forget_requests((event.request_id,))
        elif isinstance(event, CertifiedBlockReceived):
            self._on_certified_block(event)
        elif isinstance(event, Start):
            self._on_start()
        else:
            raise TypeError(f"unknown event {event!r}")
        out, self._out = self._out, []
        return out

    def _on_start(self) -> None:
        if self.in_view_change:
            self._set_timer(
                TIMER_VIEW_CHANGE, self._timeout(self.config.view_change_timeout_ms, self.view)
            )
            if self.is_validator:
                self._broadcast_view_change()
        self._maybe_propose()

    # ------------------------------------------------------------ messages

    def _on_message(self, data: bytes) -> None:
        try:
            message = open_message(data)
            env = message.envelope
            body = env.open()
        except (MessageError, codec.CodecError, FieldError) as exc:
            self._fault("malformed", str(exc))
            return
        self._dispatch(env, body, message.block)

    def _dispatch(self, env: Envelope, body: object, block: bytes | None = None) -> None:
        height = body.height  # type: ignore[attr-defined]
        if height > self.height:
            # Checked before anything is kept: only a current validator's signed message may
            # take a buffer slot (a validator that joins later is caught up by certified blocks).
            if env.sender not in self._members:
                self._fault("not-a-validator", f"{env.kind} for a later height", env.sender)
                return
            if not self._verified_ok(env):
                self._fault("bad-signature", f"{env.kind} for a later height", env.sender)
                return
            self._buffer_future(env, body, height, block)
            return
        if height < self.height:
            self._peer_behind(env, height)
            return
        if env.sender not in self._members:
            self._fault("not-a-validator", f"{env.kind} from a non-member", env.sender)
            return
        if not self._verified_ok(env):
            self._fault("bad-signature", env.kind, env.sender)
            return
        if env.kind == PRE_PREPARE:
            self._on_pre_prepare(env, body, block)  # type: ignore[arg-type]
        elif env.kind == BLOCK:
            self._on_block(body, block)  # type: ignore[arg-type]
        elif env.kind == BLOCK_REQUEST:
            self._on_block_request(env, body)  # type: ignore[arg-type]
        elif env.kind == PREPARE:
            self._on_prepare(env, body)  # type: ignore[arg-type]
        elif env.kind == COMMIT:
            self._on_commit(env, body)  # type: ignore[arg-type]
        elif env.kind == VIEW_CHANGE:
            self._on_view_change(env, body)  # type: ignore[arg-type]
        else:
            self._on_new_view(env, body)  # type: ignore[arg-type]

    def _buffer_future(
        self, env: Envelope, body: object, height: int, block: bytes | None = None
    ) -> None:
        """Keep a message for a later height (within the window); either way it shows we lag.

        A pre-prepare's block is kept only while few are (max_buffered_blocks): the
        rest are asked for by digest once their height comes.
        """
        cfg = self.config
        self._note_behind(env)
        if height > self.height + cfg.height_window or env.kind in (BLOCK, BLOCK_REQUEST):
            return
        if block is not None and env.kind == PRE_PREPARE:
            key = (height, body.digest)  # type: ignore[attr-defined]
            room = len(self._future_blocks) < cfg.max_buffered_blocks
            if room and key not in self._future_blocks and self._digest(block) == key[1]:
                self._future_blocks[key] = block
        per_sender = self._future_by_sender.get(env.sender, 0)
        if self._future_count >= cfg.max_buffered or per_sender >= cfg.max_buffered_per_sender:
            self._fault("buffer-full", f"dropped {env.kind} for height {height}", env.sender)
            return
        self._future.setdefault(height, []).append((env, body))
        self._future_count += 1
        self._future_by_sender[env.sender] = per_sender + 1

    def _note_behind(self, env: Envelope) -> None:
        """A signed message from a later height: fetch certified blocks from its sender soon."""
        idle = not self.committing and TIMER_BEHIND not in self._timer_tokens
        if idle and self._verified_ok(env):
            self._behind_peer = env.sender
            self._set_timer(TIMER_BEHIND, self.config.behind_delay_ms)

    def _peer_behind(self, env: Envelope, height: int) -> None:
        """A validator still works on a height we committed: offer it our blocks."""
        if env.sender not in self._members or env.sender == self.me:
            return
        last = self.slot.served.get(env.sender)
        if env.kind != VIEW_CHANGE and last == height:
            return
        if not self._verified_ok(env):
            return
        self.slot.served[env.sender] = height
        self._out.append(ServeBlocks(env.sender, height))

    def _replay_future(self) -> None:
        pending = self._future.pop(self.height, [])
        for h in [h for h in self._future if h < self.height]:
            pending_old = self._future.pop(h)
            self._future_count -= len(pending_old)
            for env, _ in pending_old:
                self._future_by_sender[env.sender] -= 1
        self._future_count -= len(pending)
        for env, _ in pending:
            self._future_by_sender[env.sender] -= 1
        self._future_by_sender = {k: v for k, v in self._future_by_sender.items() if v > 0}
        for key in [k for k in self._future_blocks if k[0] <= self.height]:
            block = self._future_blocks.pop(key)
            if key[0] == self.height:
                self._keep_block(key[1], block)
        for env, body in pending:
            self._dispatch(env, body)

    # ------------------------------------------------------------ normal case

    def _maybe_propose(self) -> None:
        if (
            self.view == 0
            and not self.in_view_change
            and not self.committing
            and self.is_validator
            and self.primary() == self.me
            and 0 not in self.slot.pre_prepares
            and self.slot.building is None
            and self._outstanding
            and not self._voted_in(0)
        ):
            self.slot.building = 0
            self._out.append(BuildProposal(self.height, 0))

    def _voted_in(self, view: int) -> bool:
        """We prepared in (height, view) already, yet hold no pre-prepare for it: only after a
        restart. A new block now would be a second PRE-PREPARE for one view (equivocation);
        the view's timers move the height on instead."""
        vote = self.prepare_vote
        return vote is not None and (vote.height, vote.view) == (self.height, view)

    def _on_proposal_built(self, event: ProposalBuilt) -> None:
        if event.height != self.height or event.view != self.slot.building:
            return
        self.slot.building = None
        if event.view != self.view or self.committing:
            return
        if event.block is None:
            if event.view in self.slot.pending_new_view:
                self._fault("no-proposal", "application built no block for a new view")
            return
        digest = self._digest(event.block)
        assert digest is not None, "application built a block it cannot digest"
        pp = PrePrepare(self.height, event.view, digest)
        pp_env = seal(self.key, self.config.chain, PRE_PREPARE, pp)
        self._keep_block(digest, event.block)
        if event.view in self.slot.pending_new_view:
            vcs = self.slot.pending_new_view.pop(event.view)
            self._send_new_view(event.view, vcs, pp_env)
            return
        if self.in_view_change:
            return
        self._out.append(Broadcast(wire_message(pp_env, event.block)))
        self._accept_pre_prepare(pp, pp_env)

    def _on_pre_prepare(self, env: Envelope, pp: PrePrepare, block: bytes | None) -> None:
        if pp.view != 0 or self.view != 0 or self.in_view_change:
            return  # later views start with the pre-prepare inside NEW-VIEW
        if env.sender != self.primary(0):
            self._fault("not-primary", "pre-prepare from a non-primary", env.sender)
            return
        if block is not None and self._digest(block) != pp.digest:
            self._fault("bad-digest", "pre-prepare block does not match digest", env.sender)
            self._start_view_change(self.view + 1)
            return
        known = self.slot.pre_prepares.get(0)
        if known is not None:
            if known[0].digest != pp.digest:
                self._fault("equivocation", "two pre-prepares for one view", env.sender)
                self._start_view_change(self.view + 1)
            elif block is not None and pp.digest in self.slot.wanted:
                self._on_block(BlockRef(pp.height, pp.digest), block)
            return
        if block is not None:
            self._keep_block(pp.digest, block)
        self._accept_pre_prepare(pp, env)

    def _accept_pre_prepare(self, pp: PrePrepare, env: Envelope) -> None:
        self.slot.pre_prepares[pp.view] = (pp, env)
        self._set_timer(TIMER_PROGRESS, self._timeout(self.config.progress_timeout_ms, pp.view))
        block = self.slot.blocks.get(pp.digest)
        if block is None:
            self._want_block(pp.digest)
            return
        self._out.append(ValidateProposal(pp.height, pp.view, pp.digest, block))

    # ------------------------------------------------------------ blocks by digest

    def _keep_block(self, digest: bytes, block: bytes) -> None:
        """Remember a block of this height whose bytes match ``digest`` (checked by the caller)."""
        self.slot.blocks[digest] = block
        self.slot.blocks.move_to_end(digest)
        self.slot.wanted.discard(digest)
        current = self.slot.pre_prepares.get(self.view)
        keep = current[0].digest if current is not None else None
        while len(self.slot.blocks) > self.config.max_slot_blocks:
            oldest = next(d for d in self.slot.blocks if d != keep)
            del self.slot.blocks[oldest]

    def _want_block(self, digest: bytes) -> None:
        """Ask every validator for a pre-prepared block this replica lacks."""
        if digest in self.slot.wanted:
            return
        self.slot.wanted.add(digest)
        ref = seal(self.key, self.config.chain, BLOCK_REQUEST, BlockRef(self.height, digest))
        self._out.append(Broadcast(wire_message(ref)))

    def _on_block(self, ref: BlockRef, block: bytes | None) -> None:
        """A block by digest: keep it only if this replica asked for it, then validate it."""
        if block is None or ref.digest not in self.slot.wanted:
            return
        if self._digest(block) != ref.digest:
            self._fault("bad-digest", "block does not match the digest it answers")
            return
        self._keep_block(ref.digest, block)
        for view, (pp, _) in sorted(self.slot.pre_prepares.items()):
            if pp.digest == ref.digest and view == self.view and view not in self.slot.validated:
                self._out.append(ValidateProposal(pp.height, view, pp.digest, block))
        for (view, digest), _votes in list(self.slot.commits.items()):
            if digest == ref.digest:
                self._check_committed(view, digest)

    def _on_block_request(self, env: Envelope, ref: BlockRef) -> None:
        """Answer a validator's request for a block of this height, once per digest."""
        block = self.slot.blocks.get(ref.digest)
        key = (env.sender, ref.digest)
        if block is None or env.sender == self.me or key in self.slot.answered:
            return
        if len(self.slot.answered) >= self.config.max_block_answers:
            self._fault("block-answers-full", "not answering more block requests", env.sender)
            return
        self.slot.answered.add(key)
        answer = seal(self.key, self.config.chain, BLOCK, BlockRef(self.height, ref.digest))
        self._out.append(Send(env.sender, wire_message(answer, block)))

    def _on_validated(self, event: ProposalValidated) -> None:
        if event.height != self.height or event.view != self.view or self.in_view_change:
            return
        known = self.slot.pre_prepares.get(event.view)
        if known is None or known[0].digest != event.digest or event.view in self.slot.validated:
            return
        self.slot.validated[event.view] = event.ok
        if not event.ok:
            self._fault("invalid-proposal", event.reason or "rejected by the application")
            self._start_view_change(self.view + 1)
            return
        if not self.is_validator:
            return
        vote = Vote(self.height, event.view, event.digest)
        old = self.prepare_vote
        if old is not None and (old.height, old.view) == (vote.height, vote.view):
            if old.digest != vote.digest:
                # Only after a restart: the primary re-proposed something else in a view
                # we already voted in. Never sign a second prepare for it.
                self._fault("equivocation", "primary changed its proposal across our restart")
                return
        else:
            self.prepare_vote = vote
            self._persist()
        env = seal(self.key, self.config.chain, PREPARE, vote)
        self.slot.prepares.setdefault((vote.view, vote.digest), {})[self.me] = env
        self._out.append(Broadcast(wire_message(env)))
        self._check_prepared()

    def _view_in_range(self, view: int) -> bool:
        return self.view <= view <= self.view + self.config.view_window

    def _on_prepare(self, env: Envelope, vote: Vote) -> None:
        if not self._view_in_range(vote.view):
            return
        if not self._record_vote(self.slot.prepares, env, vote):
            return
        self._check_prepared()

    def _record_vote(
        self, table: dict[tuple[int, bytes], dict[bytes, Envelope]], env: Envelope, vote: Vote
    ) -> bool:
        """Keep one vote per sender and view; a second, different one is evidence, not a vote."""
        for (view, digest), senders in table.items():
            if view == vote.view and env.sender in senders:
                if digest != vote.digest:
                    self._fault("conflicting-vote", f"two {env.kind}s for one view", env.sender)
                return False
        table.setdefault((vote.view, vote.digest), {})[env.sender] = env
        return True

    def _check_prepared(self) -> None:
        view = self.view
        known = self.slot.pre_prepares.get(view)
        if self.in_view_change or known is None or not self.slot.validated.get(view):
            return
        pp, pp_env = known
        votes = self.slot.prepares.get((view, pp.digest), {})
        if self.me not in votes or len(votes) < self.q:
            return
        cv = self.commit_vote
        voted_here = cv is not None and (cv.height, cv.view) == (self.height, view)
        if voted_here and (
            cv.digest != pp.digest or self.me in self.slot.commits.get((view, pp.digest), {})
        ):
            return
        if not voted_here:
            proof_votes = tuple(votes[k] for k in sorted(votes)[: self.q])
            self.prepared = PreparedProof(pp_env, proof_votes)
            self.prepared_block = self.slot.blocks.get(pp.digest)
            self.commit_vote = Vote(self.height, view, pp.digest)
            self._persist()
        env = seal(self.key, self.config.chain, COMMIT, self.commit_vote)
        self.slot.commits.setdefault((view, pp.digest), {})[self.me] = env
        self._out.append(Broadcast(wire_message(env)))
        self._check_committed(view, pp.digest)

    def _on_commit(self, env: Envelope, vote: Vote) -> None:
        if vote.view > self.view + self.config.view_window:
            return
        if not self._record_vote(self.slot.commits, env, vote):
            return
        self._check_committed(vote.view, vote.digest)

    def _block_for(self, digest: bytes) -> bytes | None:
        return self.slot.blocks.get(digest)

    def _check_committed(self, view: int, digest: bytes) -> None:
        if self.committing:
            return
        votes = self.slot.commits.get((view, digest), {})
        if len(votes) < self.q:
            return
        block = self._block_for(digest)
        if block is None:
            if len(votes) == self.q:
                peer = next(k for k in sorted(votes) if k != self.me)
                self._out.append(FetchBlocks(peer, self.height))
            return
        cert = Certificate(
            self.height,
            view,
            digest,
            tuple(CertVote(k, votes[k].signature) for k in sorted(votes)),
        )
        self._commit(block, cert)

    def _commit(self, block: bytes, cert: Certificate) -> None:
        assert cert.height == self.height and not self.committing
        self.committing = True
        self._cancel_timer(TIMER_PROGRESS)
        self._cancel_timer(TIMER_VIEW_CHANGE)
        self._cancel_timer(TIMER_BEHIND)
        self._pending_certificate = cert
        self._out.append(CommitBlock(self.height, block, cert))

    def _on_persisted(self, event: BlockPersisted) -> None:
        assert self.committing and event.height == self.height, (
            f"BlockPersisted({event.height}) while at {self.height}, committing={self.committing}"
        )
        assert self._pending_certificate is not None
        self.last_certificate = self._pending_certificate
        self._pending_certificate = None
        self.height += 1
        self._set_validators(event.next_validators)
        self.view = 0
        self.in_view_change = False
        self.committing = False
        self.slot = _Slot()
        self.prepared_block = None
        self._forget_requests(event.included)
        self._replay_future()
        self._maybe_propose()

    # ------------------------------------------------------------ requests

    def _on_request(self, request_id: bytes) -> None:
        if self._note_request(request_id):
            self._maybe_propose()

    def _note_request(self, request_id: bytes) -> bool:
        """Track a new request (watched if it is the only one); False if it was not new."""
        if request_id in self._outstanding:
            return False
        if len(self._outstanding) >= self.config.max_outstanding_requests:
            self._fault("requests-full", "not tracking more client requests")
            return False
        self._outstanding[request_id] = None
        if self._watched is None:
            self._watch_oldest()
        return True

    def _forget_requests(self, ids: tuple[bytes, ...]) -> None:
        for rid in ids:
            self._outstanding.pop(rid, None)
        if self._watched is not None and self._watched not in self._outstanding:
            self._watch_oldest()

    def _watch_oldest(self) -> None:
        self._watched = next(iter(self._outstanding), None)
        if self._watched is None:
            self._cancel_timer(TIMER_REQUEST)
        else:
            delay = self._timeout(self.config.request_timeout_ms, self.view)
            self._set_timer(TIMER_REQUEST, delay)

    # ------------------------------------------------------------ timers

    def _on_timer(self, event: TimerFired) -> None:
        if self._timer_tokens.get(event.name) != event.token:
            return
        del self._timer_tokens[event.name]
        if event.name == TIMER_BEHIND:
            if self._behind_peer is not None and not self.committing:
                self._out.append(FetchBlocks(self._behind_peer, self.height))
            self._behind_peer = None
            return
        if event.name == TIMER_REQUEST:
            if self._watched is None:
                return
            self._set_timer(TIMER_REQUEST, self._timeout(self.config.request_timeout_ms, self.view))
            if self.in_view_change or self.committing:
                return
            self._fault("request-timeout", "a client request waits too long", self.primary())
        if self.committing:
            return
        self._start_view_change(self.view + 1)

    # ------------------------------------------------------------ view change

    def _start_view_change(self, new_view: int) -> None:
        if self.committing or (
            new_view <= self.view and (self.in_view_change or new_view < self.view)
        ):
            return
        self.view = new_view
        self.in_view_change = True
        self._cancel_timer(TIMER_PROGRESS)
        self._set_timer(
            TIMER_VIEW_CHANGE, self._timeout(self.config.view_change_timeout_ms, new_view)
        )
        if not self.is_validator:
            return
        self._persist()
        self._broadcast_view_change()

    def _broadcast_view_change(self) -> None:
        prepared = self.prepared
        if prepared is not None:
            pp = PrePrepare.decode(prepared.pre_prepare.body)
            if pp.height != self.height:
                prepared = None
        vc = ViewChange(self.height, self.view, self.last_certificate, prepared)
        env = seal(self.key, self.config.chain, VIEW_CHANGE, vc)
        self.slot.view_changes.setdefault(self.view, {})[self.me] = (vc, env)
        self._out.append(Broadcast(wire_message(env)))
        self._check_new_view(self.view)

    def _check_view_change_body(self, vc: ViewChange) -> str | None:
        cert = vc.last_certificate
        expected = self.height - 1
        if cert is not None and cert.height != expected:
            return f"last certificate is for height {cert.height}, expected {expected}"
        if vc.prepared is not None:
            try:
                pp = check_prepared_proof(
                    vc.prepared,
                    self.config.chain,
                    self.height,
                    list(self.validators),
                    self.primary,
                    self._verified_ok,
                )
            except MessageError as exc:
                return str(exc)
            if pp.view >= vc.view:
                return "prepared proof is not from an earlier view"
        return None

    def _on_view_change(self, env: Envelope, vc: ViewChange) -> None:
        if vc.view < self.view or vc.view > self.view + self.config.view_window:
            return
        by_sender = self.slot.view_changes.setdefault(vc.view, {})
        if env.sender in by_sender:
            return
        problem = self._check_view_change_body(vc)
        if problem is not None:
            self._fault("bad-view-change", problem, env.sender)
            return
        by_sender[env.sender] = (vc, env)
        self._join_higher_views()
        self._check_new_view(vc.view)

    def _join_higher_views(self) -> None:
        """f+1 validators want a higher view: at least one is honest, so follow them."""
        higher: dict[bytes, int] = {}
        for view, senders in self.slot.view_changes.items():
            if view > self.view:
                for sender in senders:
                    higher[sender] = min(view, higher.get(sender, view))
        if len(higher) >= self.f + 1:
            self._start_view_change(min(higher.values()))

    def _check_new_view(self, view: int) -> None:
        if (
            view != self.view
            or not self.in_view_change
            or self.primary(view) != self.me
            or view in self.slot.new_view_done
            or view in self.slot.pending_new_view
        ):
            return
        senders = self.slot.view_changes.get(view, {})
        if len(senders) < self.q:
            return
        chosen = tuple(senders[k][1] for k in sorted(senders)[: self.q])
        best = self._highest_prepared([senders[k][0] for k in sorted(senders)[: self.q]])
        if best is not None:
            pp = PrePrepare(self.height, view, best.digest)
            pp_env = seal(self.key, self.config.chain, PRE_PREPARE, pp)
            self._send_new_view(view, chosen, pp_env)
            return
        self.slot.pending_new_view[view] = chosen
        self.slot.building = view
        self._out.append(BuildProposal(self.height, view, required=True))

    @staticmethod
    def _highest_prepared(vcs: list[ViewChange]) -> PrePrepare | None:
        best: PrePrepare | None = None
        for vc in vcs:
            if vc.prepared is None:
                continue
            pp = PrePrepare.decode(vc.prepared.pre_prepare.body)
            if best is None or (pp.view, pp.digest) > (best.view, best.digest):
                best = pp
        return best

    def _send_new_view(self, view: int, vcs: tuple[Envelope, ...], pp_env: Envelope) -> None:
        nv = NewView(self.height, view, vcs, pp_env)
        env = seal(self.key, self.config.chain, NEW_VIEW, nv)
        self.slot.new_view_done.add(view)
        self._out.append(Broadcast(wire_message(env)))
        pp = PrePrepare.decode(pp_env.body)
        block = self.slot.blocks.get(pp.digest)
        if block is not None:  # spare the replicas a request: they all need it
            ref = seal(self.key, self.config.chain, BLOCK, BlockRef(self.height, pp.digest))
            self._out.append(Broadcast(wire_message(ref, block)))
        self._enter_view(view, pp, pp_env)

    def _on_new_view(self, env: Envelope, nv: NewView) -> None:
        if nv.view < self.view or nv.view in self.slot.new_view_done:
            return
        if nv.view > self.view + self.config.view_window:
            return
        if env.sender != self.primary(nv.view):
            self._fault("not-primary", "new-view from a non-primary", env.sender)
            return
        problem = self._check_new_view_body(nv)
        if problem is not None:
            self._fault("bad-new-view", problem, env.sender)
            if nv.view == self.view:  # the primary we wait for failed: on to the next view
                self._start_view_change(nv.view + 1)
            # A bad NEW-VIEW for a view still ahead moves nothing: obeyed, it let one
            # validator push a replica up to view_window views at a time, and the tables of
            # the views it skipped were never pruned at that height (found by fuzzing).
            return
        self.slot.new_view_done.add(nv.view)
        self._enter_view(nv.view, PrePrepare.decode(nv.pre_prepare.body), nv.pre_prepare)

    def _check_new_view_body(self, nv: NewView) -> str | None:
        vcs: list[ViewChange] = []
        senders: set[bytes] = set()
        for vc_env in nv.view_changes:
            if vc_env.kind != VIEW_CHANGE or vc_env.sender not in self._members:
                return "holds a foreign or non-view-change message"
            if vc_env.sender in senders:
                return "holds two view changes from one validator"
            if not self._verified_ok(vc_env):
                return "holds a view change with a bad signature"
            try:
                vc = vc_env.open()
            except (codec.CodecError, FieldError) as exc:
                return f"holds a malformed view change: {exc}"
            if vc.height != self.height or vc.view != nv.view:
                return "holds a view change for another height or view"
            problem = self._check_view_change_body(vc)
            if problem is not None:
                return f"holds a bad view change: {problem}"
            senders.add(vc_env.sender)
            vcs.append(vc)
        if len(senders) < self.q:
            return f"holds {len(senders)} view changes, fewer than a quorum"
        pp_env = nv.pre_prepare
        if pp_env.kind != PRE_PREPARE or pp_env.sender != self.primary(nv.view):
            return "pre-prepare is not from the new primary"
        if not self._verified_ok(pp_env):
            return "pre-prepare has a bad signature"
        try:
            pp = PrePrepare.decode(pp_env.body)
        except (codec.CodecError, FieldError) as exc:
            return f"malformed pre-prepare: {exc}"
        if pp.height != self.height or pp.view != nv.view:
            return "pre-prepare is for another height or view"
        best = self._highest_prepared(vcs)
        if best is not None and best.digest != pp.digest:
            return "does not re-propose the highest prepared block"
        return None

    def _enter_view(self, view: int, pp: PrePrepare, pp_env: Envelope) -> None:
        self.view = view
        self.in_view_change = False
        self._cancel_timer(TIMER_VIEW_CHANGE)
        if self._watched is not None:
            self._set_timer(TIMER_REQUEST, self._timeout(self.config.request_timeout_ms, view))
        self._accept_pre_prepare(pp, pp_env)

    # ------------------------------------------------------------ catch-up

    def _on_certified_block(self, event: CertifiedBlockReceived) -> None:
        cert = event.certificate
        if self.committing or cert.height != self.height:
            return
        if self._digest(event.block) != cert.block_hash:
            self._fault("bad-catch-up", "block does not match its certificate")
            return
        try:
            cert.verify(self.config.chain, self.validators)
        except CertificateError as exc:
            self._fault("bad-catch-up", str(exc))
            return
        self._commit(event.block, cert)
