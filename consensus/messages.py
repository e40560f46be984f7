"""PBFT wire messages: signed envelopes around typed bodies, sizes bounded by construction.

Every consensus message travels as a :class:`Message` ``[envelope, block]``.
The :class:`Envelope` ``[kind, body, sender, signature]`` is what is signed:
``body`` is the canonical encoding of the kind's record, signed under the
kind's domain (``vigil/prepare/v1``, ...) and the chain's genesis hash. ``block`` is nil except
on a PRE-PREPARE or a BLOCK message, where it carries the block bytes *outside*
the signature: every signed body names a block only by its digest, and the
receiver checks ``digest_of(block) == digest``. So a prepared proof, a
VIEW-CHANGE and a NEW-VIEW hold headers of votes and digests, never blocks,
and every message kind has a maximum size that follows from the validator and
block limits (:data:`MAX_BODY_BYTES`, checked below at import time). A replica
that needs a block it lacks (the re-proposal of a NEW-VIEW, a pre-prepare
replayed from its buffer) asks for it by digest with BLOCK-REQUEST and any
validator holding it answers with BLOCK.

A COMMIT body is exactly the message a
:class:`~consensus.certificate.Certificate` vote signs, so commit signatures
collected during consensus become the certificate unchanged. All vote-like
bodies start ``[height, view, digest]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consensus import codec
from consensus.certificate import MAX_VALIDATORS, Certificate, quorum
from consensus.crypto import (
    DOMAIN_BLOCK,
    DOMAIN_BLOCK_REQUEST,
    DOMAIN_COMMIT,
    DOMAIN_NEW_VIEW,
    DOMAIN_PREPARE,
    DOMAIN_PREPREPARE,
    DOMAIN_VIEW_CHANGE,
    HASH_BYTES,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    PrivateKey,
    verify,
)
from consensus.record import Bytes, FieldError, Int, Nested, OneOf, Optional, Record, Seq, wire

MAX_BLOCK_BYTES_ON_WIRE = 8 * 1024 * 1024
"""Largest block a PRE-PREPARE or BLOCK message carries (the node's block limit is at most this)."""
MAX_PROOF_VOTES = quorum(MAX_VALIDATORS)
"""Votes in a prepared proof and view changes in a NEW-VIEW: exactly a quorum is needed."""
MAX_MESSAGE_BYTES = 12 * 1024 * 1024
"""Largest consensus message accepted from a peer; every kind's maximum is below it."""

PRE_PREPARE = "pre-prepare"
PREPARE = "prepare"
COMMIT = "commit"
VIEW_CHANGE = "view-change"
NEW_VIEW = "new-view"
BLOCK = "block"
BLOCK_REQUEST = "block-request"

DOMAINS = {
    PRE_PREPARE: DOMAIN_PREPREPARE,
    PREPARE: DOMAIN_PREPARE,
    COMMIT: DOMAIN_COMMIT,
    VIEW_CHANGE: DOMAIN_VIEW_CHANGE,
    NEW_VIEW: DOMAIN_NEW_VIEW,
    BLOCK: DOMAIN_BLOCK,
    BLOCK_REQUEST: DOMAIN_BLOCK_REQUEST,
}
CARRIES_BLOCK = frozenset({PRE_PREPARE, BLOCK})
"""Kinds whose message may carry block bytes next to the envelope (a BLOCK must)."""


# ---------------------------------------------------------------- size arithmetic (msgpack)


def _bin(n: int) -> int:
    return n + (2 if n < 1 << 8 else 3 if n < 1 << 16 else 5)


def _str(n: int) -> int:
    return n + (1 if n < 32 else 2 if n < 1 << 8 else 3 if n < 1 << 16 else 5)


def _array(n: int) -> int:
    return 1 if n < 16 else 3 if n < 1 << 16 else 5


_INT = 9
_KIND = max(len(k) for k in DOMAINS)
VOTE_BODY_BYTES = _array(3) + 2 * _INT + _bin(HASH_BYTES)
"""PRE-PREPARE, PREPARE and COMMIT bodies: [height, view, digest]."""
BLOCK_REF_BYTES = _array(2) + _INT + _bin(HASH_BYTES)
"""BLOCK and BLOCK-REQUEST bodies: [height, digest]."""


def envelope_bytes(body: int) -> int:
    """Largest envelope around a body of at most ``body`` bytes."""
    return _array(4) + _str(_KIND) + _bin(body) + _bin(PUBLIC_KEY_BYTES) + _bin(SIGNATURE_BYTES)


CERTIFICATE_BYTES = (
    _array(4) + 2 * _INT + _bin(HASH_BYTES)
    + _array(MAX_VALIDATORS)
    + MAX_VALIDATORS * (_array(2) + _bin(PUBLIC_KEY_BYTES) + _bin(SIGNATURE_BYTES))
)  # fmt: skip
PROOF_BYTES = (
    _array(2) + envelope_bytes(VOTE_BODY_BYTES)
    + _array(MAX_PROOF_VOTES) + MAX_PROOF_VOTES * envelope_bytes(VOTE_BODY_BYTES)
)  # fmt: skip
VIEW_CHANGE_BODY_BYTES = _array(4) + 2 * _INT + CERTIFICATE_BYTES + PROOF_BYTES
NEW_VIEW_BODY_BYTES = (
    _array(4) + 2 * _INT
    + _array(MAX_PROOF_VOTES) + MAX_PROOF_VOTES * envelope_bytes(VIEW_CHANGE_BODY_BYTES)
    + envelope_bytes(VOTE_BODY_BYTES)
)  # fmt: skip
MAX_BODY_BYTES = {
    PRE_PREPARE: VOTE_BODY_BYTES,
    PREPARE: VOTE_BODY_BYTES,
    COMMIT: VOTE_BODY_BYTES,
    VIEW_CHANGE: VIEW_CHANGE_BODY_BYTES,
    NEW_VIEW: NEW_VIEW_BODY_BYTES,
    BLOCK: BLOCK_REF_BYTES,
    BLOCK_REQUEST: BLOCK_REF_BYTES,
}
"""Each kind's largest body, derived from MAX_VALIDATORS and the record shapes."""
MAX_ENVELOPE_BYTES = envelope_bytes(max(MAX_BODY_BYTES.values()))
MAX_MESSAGE_BYTES_BY_KIND = {
    kind: _array(2)
    + envelope_bytes(body)
    + (_bin(MAX_BLOCK_BYTES_ON_WIRE) if kind in CARRIES_BLOCK else 1)
    for kind, body in MAX_BODY_BYTES.items()
}
"""Each kind's largest message on the wire."""
assert all(size <= MAX_MESSAGE_BYTES for size in MAX_MESSAGE_BYTES_BY_KIND.values()), (
    MAX_MESSAGE_BYTES_BY_KIND
)
assert MAX_ENVELOPE_BYTES + _array(2) + 1 <= MAX_MESSAGE_BYTES
assert set(MAX_BODY_BYTES) == set(DOMAINS)


class MessageError(ValueError):
    """A consensus message is malformed or its signature does not verify."""


@dataclass(frozen=True)
class Envelope(Record):
    """The signed part of a message; nested in proofs and NEW-VIEWs, it never holds a block."""

    NAME = "envelope"
    MAX_BYTES = MAX_ENVELOPE_BYTES
    kind: str = wire(OneOf(*DOMAINS))
    body: bytes = wire(Bytes(max_len=max(MAX_BODY_BYTES.values())))
    sender: bytes = wire(Bytes(PUBLIC_KEY_BYTES))
    signature: bytes = wire(Bytes(SIGNATURE_BYTES))

    def check_invariants(self, path: str) -> None:
        if len(self.body) > MAX_BODY_BYTES[self.kind]:
            raise FieldError(
                f"{path}.body", f"{len(self.body)} bytes exceed {MAX_BODY_BYTES[self.kind]} "
                f"for a {self.kind}"
            )  # fmt: skip

    def verify_signature(self, chain: bytes) -> bool:
        return verify(self.sender, DOMAINS[self.kind], chain, self.body, self.signature)

    def open(self) -> Any:
        """Decode the body as its kind's record (raises codec.CodecError or FieldError)."""
        return BODIES[self.kind].decode(self.body, max_size=MAX_BODY_BYTES[self.kind])


@dataclass(frozen=True)
class Message(Record):
    """What travels: an envelope and, for PRE-PREPARE and BLOCK, the block it names."""

    NAME = "message"
    MAX_BYTES = MAX_MESSAGE_BYTES
    envelope: Envelope = wire(Nested(Envelope))
    block: bytes | None = wire(Optional(Bytes(max_len=MAX_BLOCK_BYTES_ON_WIRE)))

    def check_invariants(self, path: str) -> None:
        kind = self.envelope.kind
        if self.block is not None and kind not in CARRIES_BLOCK:
            raise FieldError(f"{path}.block", f"a {kind} carries no block")
        if self.block is None and kind == BLOCK:
            raise FieldError(f"{path}.block", "a block message without its block")


@dataclass(frozen=True)
class PrePrepare(Record):
    """The primary's proposal of the block whose digest it names (the block travels beside)."""

    NAME = "pre_prepare"
    height: int = wire(Int(1))
    view: int = wire(Int(0))
    digest: bytes = wire(Bytes(HASH_BYTES))


@dataclass(frozen=True)
class Vote(Record):
    """PREPARE or COMMIT body."""

    NAME = "vote"
    height: int = wire(Int(1))
    view: int = wire(Int(0))
    digest: bytes = wire(Bytes(HASH_BYTES))


@dataclass(frozen=True)
class BlockRef(Record):
    """BLOCK and BLOCK-REQUEST body: which block (the BLOCK message carries its bytes)."""

    NAME = "block_ref"
    height: int = wire(Int(1))
    digest: bytes = wire(Bytes(HASH_BYTES))


@dataclass(frozen=True)
class PreparedProof(Record):
    """A PRE-PREPARE and a quorum of matching PREPAREs: the block was prepared in that view."""

    NAME = "prepared"
    pre_prepare: Envelope = wire(Nested(Envelope))
    prepares: tuple[Envelope, ...] = wire(Seq(Nested(Envelope), MAX_PROOF_VOTES))


@dataclass(frozen=True)
class ViewChange(Record):
    NAME = "view_change"
    height: int = wire(Int(1))
    view: int = wire(Int(1))
    last_certificate: Certificate | None = wire(Optional(Nested(Certificate)))
    prepared: PreparedProof | None = wire(Optional(Nested(PreparedProof)))


@dataclass(frozen=True)
class NewView(Record):
    NAME = "new_view"
    height: int = wire(Int(1))
    view: int = wire(Int(1))
    view_changes: tuple[Envelope, ...] = wire(Seq(Nested(Envelope), MAX_PROOF_VOTES))
    pre_prepare: Envelope = wire(Nested(Envelope))


BODIES: dict[str, type[Record]] = {
    PRE_PREPARE: PrePrepare,
    PREPARE: Vote,
    COMMIT: Vote,
    VIEW_CHANGE: ViewChange,
    NEW_VIEW: NewView,
    BLOCK: BlockRef,
    BLOCK_REQUEST: BlockRef,
}


def seal(key: PrivateKey, chain: bytes, kind: str, body: Record) -> Envelope:
    """Sign ``body`` as a message of ``kind`` from ``key``."""
    assert isinstance(body, BODIES[kind]), (kind, type(body))
    raw = body.encode()
    return Envelope(kind, raw, key.public, key.sign(DOMAINS[kind], chain, raw))


def wire_message(env: Envelope, block: bytes | None = None) -> bytes:
    """The bytes to send for ``env`` (with ``block`` for a PRE-PREPARE or BLOCK)."""
    return Message(env, block).encode()


def open_message(data: bytes) -> Message:
    """Decode a message from peer bytes; raise MessageError on any fault."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise MessageError(f"consensus message is {len(data)} bytes, over {MAX_MESSAGE_BYTES}")
    try:
        return Message.decode(data)
    except (codec.CodecError, FieldError) as exc:
        raise MessageError(f"malformed consensus message: {exc}") from None


def open_envelope(data: bytes) -> Envelope:
    """The envelope of a message from peer bytes; raise MessageError on any fault."""
    return open_message(data).envelope


def check_prepared_proof(
    proof: PreparedProof,
    chain: bytes,
    height: int,
    validators: list[bytes],
    primary_of: Any,
    verified: Any,
) -> PrePrepare:
    """Return the proof's PRE-PREPARE if it proves a prepared block at ``height``.

    ``primary_of(view)`` names the primary of a view at this height and
    ``verified(env)`` checks (and caches) an envelope's signature. The block
    itself is not in the proof: a quorum of prepares for its digest shows that
    honest replicas validated it. Raises MessageError.
    """
    pp_env = proof.pre_prepare
    if pp_env.kind != PRE_PREPARE:
        raise MessageError("prepared proof does not start with a pre-prepare")
    pp = _open(pp_env)
    if pp.height != height:
        raise MessageError(f"prepared proof is for height {pp.height}, not {height}")
    if pp_env.sender != primary_of(pp.view):
        raise MessageError("prepared proof's pre-prepare is not from that view's primary")
    if not verified(pp_env):
        raise MessageError("prepared proof's pre-prepare has a bad signature")
    members = set(validators)
    senders = set()
    for env in proof.prepares:
        if env.kind != PREPARE or env.sender not in members or env.sender in senders:
            raise MessageError("prepared proof holds a foreign, duplicate or non-prepare vote")
        vote = _open(env)
        if (vote.height, vote.view, vote.digest) != (pp.height, pp.view, pp.digest):
            raise MessageError("prepared proof holds a prepare for another proposal")
        if not verified(env):
            raise MessageError("prepared proof holds a prepare with a bad signature")
        senders.add(env.sender)
    if len(senders) < quorum(len(validators)):
        raise MessageError(f"prepared proof has {len(senders)} prepares, fewer than a quorum")
    return pp


def _open(env: Envelope) -> Any:
    try:
        return env.open()
    except (codec.CodecError, FieldError) as exc:
        raise MessageError(f"malformed {env.kind} body: {exc}") from None
