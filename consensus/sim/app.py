"""The simulator's application: a tiny deterministic ledger of request ids.

A block is ``[height, prev_digest, requests, proposer, valid, ops]`` where
``ops`` are validator-set changes (``["join", key]`` / ``["leave", key]``)
that take effect at the next height. Validation is a pure function of the
committed chain, so every honest replica accepts or rejects the same block.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from consensus import codec
from consensus.certificate import Certificate

GENESIS_DIGEST = b"\x00" * 32
MAX_BLOCK_REQUESTS = 64


def digest_of(block: bytes) -> bytes:
    return hashlib.sha256(block).digest()


def make_block(
    height: int,
    prev: bytes,
    requests: list[bytes],
    proposer: bytes,
    *,
    valid: bool = True,
    ops: list[list] | None = None,
    salt: int = 0,
) -> bytes:
    return codec.encode([height, prev, requests, proposer, valid, ops or [], salt])


@dataclass
class SimApp:
    """One replica's application state: its chain, the validator sets, its mempool."""

    genesis_validators: tuple[bytes, ...]
    chain: list[tuple[bytes, Certificate]] = field(default_factory=list)
    validator_sets: list[tuple[bytes, ...]] = field(default_factory=list)
    committed: set[bytes] = field(default_factory=set)
    pending: dict[bytes, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.validator_sets:
            self.validator_sets = [self.genesis_validators]

    @property
    def height(self) -> int:
        """Height of the last committed block (0 before the first)."""
        return len(self.chain)

    def validators_at(self, height: int) -> tuple[bytes, ...]:
        return self.validator_sets[height - 1]

    def last_digest(self) -> bytes:
        return self.chain[-1][1].block_hash if self.chain else GENESIS_DIGEST

    def add_request(self, request: bytes) -> bool:
        """Remember a request; False if it is already committed or known."""
        rid = digest_of(request)
        if rid in self.committed or rid in self.pending:
            return False
        self.pending[rid] = request
        return True

    def build(self, height: int, proposer: bytes, *, valid: bool = True, salt: int = 0) -> bytes:
        assert height == self.height + 1
        requests = list(self.pending.values())[:MAX_BLOCK_REQUESTS]
        ops = [op for op in (self._op(r) for r in requests) if op is not None]
        ops = self._applicable(ops, self.validators_at(height))
        return make_block(
            height, self.last_digest(), requests, proposer, valid=valid, ops=ops, salt=salt
        )

    @staticmethod
    def _op(request: bytes) -> list | None:
        for kind in ("join", "leave"):
            prefix = kind.encode() + b":"
            if request.startswith(prefix):
                return [kind, request[len(prefix) :]]
        return None

    @staticmethod
    def _applicable(ops: list[list], validators: tuple[bytes, ...]) -> list[list]:
        out, current = [], list(validators)
        for kind, key in ops:
            if kind == "join" and key not in current:
                current.append(key)
                out.append([kind, key])
            elif kind == "leave" and key in current and len(current) > 1:
                current.remove(key)
                out.append([kind, key])
        return out

    def validate(self, height: int, block: bytes, view: int | None = None) -> str | None:
        """None if ``block`` is a valid next block, else the reason it is not (the toy block
        names no view, so ``view``, the view it was proposed in, checks nothing here)."""
        try:
            value = codec.decode(block)
            h, prev, requests, _proposer, valid, ops, _salt = value
        except (codec.CodecError, ValueError, TypeError):
            return "undecodable block"
        if h != height or height != self.height + 1:
            return f"block height {h} is not {self.height + 1}"
        if prev != self.last_digest():
            return "block does not extend our chain"
        if valid is not True:
            return "block marked invalid"
        if not isinstance(requests, list) or len(requests) > MAX_BLOCK_REQUESTS:
            return "bad request list"
        ids = [digest_of(r) for r in requests if isinstance(r, bytes)]
        if len(ids) != len(requests) or len(set(ids)) != len(ids):
            return "duplicate or malformed requests"
        if any(rid in self.committed for rid in ids):
            return "request already committed"
        expected = [op for op in (self._op(r) for r in requests) if op is not None]
        if ops != self._applicable(expected, self.validators_at(height)):
            return "validator-set changes do not follow from the requests"
        return None

    def commit(
        self, block: bytes, cert: Certificate
    ) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        """Apply a certified block; return (next validator set, included request ids)."""
        assert cert.height == self.height + 1
        problem = self.validate(cert.height, block)
        assert problem is None, f"certified block is invalid here: {problem}"
        _h, _prev, requests, _p, _v, ops, _s = codec.decode(block)
        ids = tuple(digest_of(r) for r in requests)
        for rid in ids:
            self.committed.add(rid)
            self.pending.pop(rid, None)
        current = list(self.validators_at(cert.height))
        for kind, key in ops:
            if kind == "join":
                current.append(key)
            else:
                current.remove(key)
        self.chain.append((block, cert))
        self.validator_sets.append(tuple(current))
        return tuple(current), ids
