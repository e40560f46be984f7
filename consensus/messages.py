"""PBFT wire messages: signed envelopes around typed bodies.

Every consensus message travels as an :class:`Envelope`
``[kind, body, sender, signature]`` where ``body`` is the canonical encoding of
the kind's record and the signature is over ``body`` under the kind's domain
(``vigil/prepare/v1``, ...) and the chain id. A COMMIT body is exactly the
message a :class:`~consensus.certificate.Certificate` vote signs, so commit
signatures collected during consensus become the certificate unchanged.

All vote-like bodies start ``[height, view, digest]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consensus import codec
from consensus.certificate import Certificate, quorum
from consensus.crypto import (
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
"""Largest block a PRE-PREPARE may carry (the node's own block limit is at most this)."""
MAX_ENVELOPE_BYTES = 12 * 1024 * 1024
"""Largest consensus message accepted from a peer (a NEW-VIEW carries a block and proofs)."""
MAX_PROOF_VOTES = 256

PRE_PREPARE = "pre-prepare"
PREPARE = "prepare"
COMMIT = "commit"
VIEW_CHANGE = "view-change"
NEW_VIEW = "new-view"

DOMAINS = {
    PRE_PREPARE: DOMAIN_PREPREPARE,
    PREPARE: DOMAIN_PREPARE,
    COMMIT: DOMAIN_COMMIT,
    VIEW_CHANGE: DOMAIN_VIEW_CHANGE,
    NEW_VIEW: DOMAIN_NEW_VIEW,
}


class MessageError(ValueError):
    """A consensus message is malformed or its signature does not verify."""


@dataclass(frozen=True)
class Envelope(Record):
    NAME = "envelope"
    MAX_BYTES = MAX_ENVELOPE_BYTES
    kind: str = wire(OneOf(*DOMAINS))
    body: bytes = wire(Bytes(max_len=MAX_ENVELOPE_BYTES))
    sender: bytes = wire(Bytes(PUBLIC_KEY_BYTES))
    signature: bytes = wire(Bytes(SIGNATURE_BYTES))

    def verify_signature(self, chain_id: str) -> bool:
        return verify(self.sender, DOMAINS[self.kind], chain_id, self.body, self.signature)

    def open(self) -> Any:
        """Decode the body as its kind's record (raises codec.CodecError or FieldError)."""
        return BODIES[self.kind].decode(self.body, max_size=MAX_ENVELOPE_BYTES)


@dataclass(frozen=True)
class PrePrepare(Record):
    NAME = "pre_prepare"
    height: int = wire(Int(1))
    view: int = wire(Int(0))
    digest: bytes = wire(Bytes(HASH_BYTES))
    block: bytes = wire(Bytes(max_len=MAX_BLOCK_BYTES_ON_WIRE))


@dataclass(frozen=True)
class Vote(Record):
    """PREPARE or COMMIT body."""

    NAME = "vote"
    height: int = wire(Int(1))
    view: int = wire(Int(0))
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
}


def seal(key: PrivateKey, chain_id: str, kind: str, body: Record) -> Envelope:
    """Sign ``body`` as a message of ``kind`` from ``key``."""
    assert isinstance(body, BODIES[kind]), (kind, type(body))
    raw = body.encode()
    return Envelope(kind, raw, key.public, key.sign(DOMAINS[kind], chain_id, raw))


def open_envelope(data: bytes) -> Envelope:
    """Decode an envelope from peer bytes; raise MessageError on any fault."""
    try:
        return Envelope.decode(data)
    except (codec.CodecError, FieldError) as exc:
        raise MessageError(f"malformed consensus message: {exc}") from None


def check_prepared_proof(
    proof: PreparedProof,
    chain_id: str,
    height: int,
    validators: list[bytes],
    primary_of: Any,
    digest_of: Any,
    verified: Any,
) -> PrePrepare:
    """Return the proof's PRE-PREPARE if it proves a prepared block at ``height``.

    ``primary_of(view)`` names the primary of a view at this height,
    ``digest_of(block)`` recomputes a block's digest and ``verified(env)``
    checks (and caches) an envelope's signature. Raises MessageError.
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
    if digest_of(pp.block) != pp.digest:
        raise MessageError("prepared proof's block does not match its digest")
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
