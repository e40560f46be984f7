"""Quorum arithmetic and commit certificates.

A certificate proves that a quorum of the validators of one height signed a
COMMIT for one block hash in one view. It is what makes a block final: a
client, a catching-up replica or an auditor checks it with nothing but the
validator set of that height.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from consensus import codec
from consensus.crypto import (
    DOMAIN_COMMIT,
    HASH_BYTES,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    SignedItem,
    key_hex,
    verify_batch,
)
from consensus.record import Bytes, FieldError, Int, Nested, Record, Seq, wire

MAX_VALIDATORS = 256
"""Largest validator set a certificate (and the consensus protocol) accepts."""


def max_faulty(n: int) -> int:
    """f: the most Byzantine validators n validators tolerate, floor((n - 1) / 3)."""
    if n < 1:
        raise ValueError(f"a validator set needs at least one member, got {n}")
    return (n - 1) // 3


def quorum(n: int) -> int:
    """q = ceil((n + f + 1) / 2): any two quorums share at least f + 1 validators."""
    f = max_faulty(n)
    return (n + f + 2) // 2


def commit_message(height: int, view: int, block_hash: bytes) -> bytes:
    """The bytes a validator signs (under DOMAIN_COMMIT) to commit ``block_hash``."""
    return codec.encode([height, view, block_hash])


@dataclass(frozen=True)
class Vote(Record):
    NAME = "vote"
    validator: bytes = wire(Bytes(PUBLIC_KEY_BYTES))
    signature: bytes = wire(Bytes(SIGNATURE_BYTES))


@dataclass(frozen=True)
class Certificate(Record):
    """COMMIT signatures of distinct validators over (height, view, block hash)."""

    NAME = "certificate"
    height: int = wire(Int(1))
    view: int = wire(Int(0))
    block_hash: bytes = wire(Bytes(HASH_BYTES))
    votes: tuple[Vote, ...] = wire(Seq(Nested(Vote), MAX_VALIDATORS, sorted_unique=True))

    def check_invariants(self, path: str) -> None:
        keys = [v.validator for v in self.votes]
        if len(set(keys)) != len(keys):
            raise FieldError(f"{path}.votes", "a validator appears twice")

    def signers(self) -> list[bytes]:
        return [v.validator for v in self.votes]

    def verify(self, chain: bytes, validators: Collection[bytes]) -> None:
        """Raise CertificateError unless a quorum of ``validators`` validly signed."""
        members = set(validators)
        need = quorum(len(members))
        outsiders = [v.validator for v in self.votes if v.validator not in members]
        if outsiders:
            raise CertificateError(
                f"certificate for height {self.height} has a vote from "
                f"{key_hex(outsiders[0])}, not a validator of that height"
            )
        if len(self.votes) < need:
            raise CertificateError(
                f"certificate for height {self.height} has {len(self.votes)} votes, "
                f"quorum is {need} of {len(members)}"
            )
        message = commit_message(self.height, self.view, self.block_hash)
        items = [
            SignedItem(v.validator, DOMAIN_COMMIT, chain, message, v.signature) for v in self.votes
        ]
        for vote, ok in zip(self.votes, verify_batch(items), strict=True):
            if not ok:
                raise CertificateError(
                    f"certificate for height {self.height}: bad signature from "
                    f"{key_hex(vote.validator)}"
                )


class CertificateError(Exception):
    """A certificate does not prove a commit under the given validator set."""
