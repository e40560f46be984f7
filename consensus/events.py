"""What the replica consumes (events) and what it asks its caller to do (actions).

The caller owns the clock, the sockets, the disk and the application. It feeds
events to :meth:`consensus.replica.Replica.handle` and carries out the
returned actions *in order*: a :class:`Persist` must be durable before any
later :class:`Send` or :class:`Broadcast` in the same list leaves the process,
because those messages are promises the persisted state records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus.certificate import Certificate

# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Start:
    """First event after construction (or a restart)."""


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """Raw bytes from a peer; the replica decodes and checks them itself."""

    data: bytes


@dataclass(frozen=True, slots=True)
class TimerFired:
    name: str
    token: int


@dataclass(frozen=True, slots=True)
class ProposalBuilt:
    """Answer to BuildProposal: the block bytes, or None when there is nothing to propose."""

    height: int
    view: int
    block: bytes | None


@dataclass(frozen=True, slots=True)
class ProposalValidated:
    """Answer to ValidateProposal: whether the application executed it and accepts it."""

    height: int
    view: int
    digest: bytes
    ok: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class BlockPersisted:
    """Answer to CommitBlock: the block is durable; here is who validates the next height.

    ``included`` lists the request ids the block carried, so the request
    timer can tell a censored request from a served one.
    """

    height: int
    next_validators: tuple[bytes, ...]
    included: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class RequestSeen:
    """The application holds a client request that should be committed soon."""

    request_id: bytes


@dataclass(frozen=True, slots=True)
class RequestsSeen:
    """``RequestSeen`` for each of a batch, in order, handled as one event: a node admits
    client requests in batches, and feeding them one by one ran the replica once per
    request on the event loop (issue 15). The replica ends in the state the single events
    would leave it in, and proposes at most once, after the whole batch."""

    request_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class RequestDropped:
    """The application gave up on a request (expired, invalid): stop waiting for it."""

    request_id: bytes


@dataclass(frozen=True, slots=True)
class CertifiedBlockReceived:
    """A block and its certificate from a peer (answer to FetchBlocks)."""

    block: bytes
    certificate: Certificate


Event = (
    Start
    | MessageReceived
    | TimerFired
    | ProposalBuilt
    | ProposalValidated
    | BlockPersisted
    | RequestSeen
    | RequestsSeen
    | RequestDropped
    | CertifiedBlockReceived
)

# ---------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send to every other validator of the current height."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Send:
    to: bytes
    data: bytes


@dataclass(frozen=True, slots=True)
class SetTimer:
    """(Re)start the timer ``name``; fire TimerFired(name, token) after ``delay_ms``."""

    name: str
    delay_ms: int
    token: int


@dataclass(frozen=True, slots=True)
class CancelTimer:
    name: str


@dataclass(frozen=True, slots=True)
class BuildProposal:
    """Build a block for (height, view). ``required``: answer with a block even if empty."""

    height: int
    view: int
    required: bool = False


@dataclass(frozen=True, slots=True)
class ValidateProposal:
    """Execute ``block`` on top of the last committed block; answer with ProposalValidated."""

    height: int
    view: int
    digest: bytes
    block: bytes


@dataclass(frozen=True, slots=True)
class CommitBlock:
    """``block`` is final: apply and store it with ``certificate``; answer with BlockPersisted."""

    height: int
    block: bytes
    certificate: Certificate


@dataclass(frozen=True, slots=True)
class Persist:
    """Durably store ``state`` (the replica's safety state) before any later action runs."""

    state: bytes


@dataclass(frozen=True, slots=True)
class FetchBlocks:
    """Ask ``peer`` for certified blocks from ``from_height`` on (CertifiedBlockReceived)."""

    peer: bytes
    from_height: int


@dataclass(frozen=True, slots=True)
class ServeBlocks:
    """``peer`` is behind: send it certified blocks from ``from_height`` on."""

    peer: bytes
    from_height: int


@dataclass(frozen=True, slots=True)
class Fault:
    """Evidence of misbehaviour or a refused input, for logs and metrics (no action needed)."""

    kind: str
    detail: str
    peer: bytes | None = field(default=None)


Action = (
    Broadcast
    | Send
    | SetTimer
    | CancelTimer
    | BuildProposal
    | ValidateProposal
    | CommitBlock
    | Persist
    | FetchBlocks
    | ServeBlocks
    | Fault
)
