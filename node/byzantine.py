"""A member node turned hostile: fault injection for scripts/chaos.py (TEST HOOK only).

A real Byzantine member holds a real node key, so every check that rests on "this came
from a member" passes for it; what must hold is that the others' checks of *what* it says
stop it. ``VIGIL_TEST_BYZANTINE=<seed>`` makes a node that member. Its replica stays the
honest one (it keeps in step, so its own chain and state stay honest and the run's
end-of-run comparison covers it), but everything it sends to peers is joined or replaced
by what an insider can forge with its key:

- **equivocation**: as primary, a second block under a second signed PRE-PREPARE for the
  same height and view, sent to some peers instead of the real one (and to one peer as
  well as the real one), with its PREPAREs and COMMITs for that block sent to the same
  peers; the second block is either valid (a later timestamp) or invalid (a wrong state
  root, or a transaction dropped with the roots left as they were);
- **conflicting votes**: a PREPARE or COMMIT for a random digest in the same view;
- **forged signatures**: its messages again with one signature bit flipped, and its votes
  under another member's name;
- **a forged catch-up answer**: a block for the next height with a certificate whose other
  members' signatures are forged;
- **replays** of its earlier messages and junk consensus messages;
- **flooding** (``flood``): fetches of unknown models, junk transactions, malformed
  payloads and unknown frame kinds, FLOOD_FRAMES_PER_S to every peer, and catch-up
  requests from height 1.

Nothing here runs without the environment variable; a node that has it logs a WARNING at
start-up. Never set it in production.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from consensus import codec
from consensus.certificate import Certificate, commit_message
from consensus.certificate import Vote as CommitVote
from consensus.crypto import DOMAIN_COMMIT, PrivateKey
from consensus.messages import (
    COMMIT,
    PRE_PREPARE,
    PREPARE,
    Envelope,
    MessageError,
    PrePrepare,
    Vote,
    open_message,
    seal,
    wire_message,
)
from consensus.record import FieldError
from node.app.types import Block, Header, tx_root
from node.budget import FETCH_PER_S
from node.p2p import BLOCKS, CONSENSUS, FETCH, MODEL, MODEL_FETCH, TX

log = logging.getLogger("vigil.byzantine")

TEST_BYZANTINE_ENV = "VIGIL_TEST_BYZANTINE"
"""TEST HOOK, for fault injection only (scripts/chaos.py, docs/chaos.md): a seed; the node
sends the forgeries this module describes. Unset in production."""

FLOOD_FRAMES_PER_S = 40
"""Junk frames the flood sends each peer per second, beside its catch-up requests."""
FLOOD_TICK_S = 0.25
FLOOD_FETCH_EVERY = 2
"""One flood tick in this many also sends a catch-up request (from height 1, or junk): half of
a peer's FETCH_PER_S budget, so the node's own catch-up still gets answers and it stays in
step to forge votes at the current height. Every request, even junk, spends budget."""
assert 1 / (FLOOD_FETCH_EVERY * FLOOD_TICK_S) <= FETCH_PER_S / 2
REMEMBERED_MESSAGES = 64
"""Earlier messages kept for replays."""
MAX_EQUIVOCATIONS = 16
"""(height, view) pairs whose second block is remembered, for the votes that follow it."""
FORGED_CATCH_UP_EVERY = 8
"""One flood tick in this many also sends every peer a forged catch-up answer."""

SendFn = Callable[[bytes, str, object], object]
"""PeerNetwork.send: (peer, frame kind, payload)."""


class Byzantine:
    """The forgeries of one hostile member; the node routes its consensus sends through it."""

    def __init__(
        self,
        key: PrivateKey,
        chain: bytes,
        seed: int,
        peers: Callable[[], list[bytes]],
        send: SendFn,
        tip: Callable[[], tuple[bytes, bytes] | None],
    ) -> None:
        self.key, self.chain = key, chain
        self.rng = random.Random(seed)
        self.peers, self._send, self.tip = peers, send, tip
        self.sent: deque[bytes] = deque(maxlen=REMEMBERED_MESSAGES)
        self.second: dict[tuple[int, int], tuple[bytes, list[bytes]]] = {}
        """(height, view) -> the second block's digest and the peers it went to."""
        self.forged = 0
        """Forged or junk frames sent."""
        self.equivocations = 0

    @classmethod
    def from_env(cls, key: PrivateKey, chain: bytes, peers: Callable[[], list[bytes]],
                 send: SendFn, tip: Callable[[], tuple[bytes, bytes] | None]
                 ) -> Byzantine | None:  # fmt: skip
        text = os.environ.get(TEST_BYZANTINE_ENV, "")
        if not text:
            return None
        log.warning("TEST HOOK: this node is Byzantine (%s=%s): it equivocates, forges "
                    "signatures and floods its peers", TEST_BYZANTINE_ENV, text)  # fmt: skip
        return cls(key, chain, int(text), peers, send, tip)

    # ------------------------------------------------------------ consensus traffic

    def broadcast(self, data: bytes) -> None:
        """What the honest replica broadcasts, with the forgeries it invites."""
        self._route(self.peers(), data)

    def send(self, peer: bytes, data: bytes) -> None:
        self._route([peer], data)

    def _route(self, targets: list[bytes], data: bytes) -> None:
        try:
            message = open_message(data)
        except MessageError:  # the honest replica's own output always opens
            raise AssertionError("the replica sent a message that does not open") from None
        env = message.envelope
        if env.kind == PRE_PREPARE and message.block is not None and len(targets) > 1:
            self._equivocate(targets, env, message.block)
        elif env.kind in (PREPARE, COMMIT):
            self._vote(targets, env, data)
        else:
            self._out(targets, data)
        self._extras(targets, env, message.block)
        self.sent.append(data)

    def _out(self, targets: list[bytes], data: bytes) -> None:
        for peer in targets:
            self._send(peer, CONSENSUS, data)

    def _forge(self, peer: bytes, data: bytes) -> None:
        self._send(peer, CONSENSUS, data)
        self.forged += 1

    def _equivocate(self, targets: list[bytes], env: Envelope, block: bytes) -> None:
        pp = PrePrepare.decode(env.body)
        second, digest = self._second_block(block)
        alt = PrePrepare(pp.height, pp.view, digest)
        alt_data = wire_message(seal(self.key, self.chain, PRE_PREPARE, alt), second)
        shuffled = self.rng.sample(targets, len(targets))
        cut = self.rng.randint(1, len(shuffled) - 1)
        honest, fooled = shuffled[:cut], shuffled[cut:]
        self._out(honest, wire_message(env, block))
        for peer in fooled:
            self._forge(peer, alt_data)
        self._forge(self.rng.choice(honest), alt_data)  # this one sees both
        self.second[(pp.height, pp.view)] = (alt.digest, fooled)
        while len(self.second) > MAX_EQUIVOCATIONS:
            self.second.pop(next(iter(self.second)))

    def _second_block(self, raw: bytes) -> tuple[bytes, bytes]:
        """Another block for the same height and its digest: a later timestamp (valid if the
        first was), a wrong state root, or one transaction dropped under the first block's
        roots (it does not even decode: its roots no longer match)."""
        block = Block.decode(raw)
        header = block.header
        self.equivocations += 1
        choice = self.equivocations % 3  # each kind in turn, so a short run sees all three
        if choice == 2 and block.txs:
            short = replace(header, tx_count=len(block.txs) - 1)
            parts = [codec.array_header(2), short.encode(), codec.array_header(len(block.txs) - 1)]
            parts.extend(tx.encode() for tx in block.txs[:-1])
            return b"".join(parts), short.hash()
        if choice == 1:
            header = replace(header, state_root=self.rng.randbytes(32))
        else:
            header = replace(header, timestamp_ms=header.timestamp_ms + 1)
        return Block(header, block.txs).encode(), header.hash()

    def _vote(self, targets: list[bytes], env: Envelope, data: bytes) -> None:
        """Its vote; to peers it fooled with a second block, a vote for that block instead."""
        vote = Vote.decode(env.body)
        second = self.second.get((vote.height, vote.view))
        fooled = second[1] if second is not None else []
        self._out([p for p in targets if p not in fooled], data)
        if second is not None:
            alt = wire_message(
                seal(self.key, self.chain, env.kind, replace(vote, digest=second[0]))
            )
            for peer in targets:
                if peer in fooled:
                    self._forge(peer, alt)
        if targets:
            other = replace(vote, digest=self.rng.randbytes(32))
            forged = wire_message(seal(self.key, self.chain, env.kind, other))
            self._forge(self.rng.choice(targets), forged)

    def _extras(self, targets: list[bytes], env: Envelope, block: bytes | None) -> None:
        """Flipped signatures, votes in other members' names, replays and junk."""
        if not targets:
            return
        peer = self.rng.choice(targets)
        bad = bytearray(env.signature)
        bad[self.rng.randrange(len(bad))] ^= 1 << self.rng.randrange(8)
        self._forge(peer, wire_message(replace(env, signature=bytes(bad)), block))
        others = [p for p in self.peers() if p != peer]
        if env.kind in (PREPARE, COMMIT) and others:
            name = self.rng.choice(others)
            self._forge(peer, wire_message(replace(env, sender=name), block))
        if self.sent and self.rng.random() < 0.5:
            self._forge(peer, self.rng.choice(self.sent))
        if self.rng.random() < 0.3:
            self._forge(peer, self.rng.randbytes(self.rng.randint(0, 300)))

    # ------------------------------------------------------------ flooding

    async def flood(self) -> None:
        """Junk to every peer, FLOOD_FRAMES_PER_S each, until cancelled."""
        try:
            await self._flood()
        except Exception:
            log.exception("the Byzantine flood stopped")  # a broken hook must be seen
            raise

    async def _flood(self) -> None:
        per_tick = max(1, round(FLOOD_FRAMES_PER_S * FLOOD_TICK_S))
        tick = 0
        while True:
            await asyncio.sleep(FLOOD_TICK_S)
            tick += 1
            for peer in self.peers():
                for _ in range(per_tick):
                    kind, payload = self._junk_frame()
                    self._send(peer, kind, payload)
                    self.forged += 1
                if tick % FLOOD_FETCH_EVERY == 0:
                    self._send(peer, FETCH, self.rng.choice((1, -1, 0, 2**63, "1", None, [1])))
                if tick % FORGED_CATCH_UP_EVERY == 0:
                    self._forged_catch_up(peer)

    def _junk_frame(self) -> tuple[str, object]:
        rng = self.rng
        choice = rng.randrange(5)
        if choice == 0:
            return MODEL_FETCH, rng.randbytes(32)
        if choice == 1:
            txs: list[object] = [
                rng.randbytes(rng.randint(0, 200)) for _ in range(rng.randint(1, 9))
            ]
            if rng.random() < 0.5:
                txs.append(rng.randint(0, 9))  # not bytes: the whole frame is refused
            return TX, txs
        if choice == 2:
            return BLOCKS, [[rng.randbytes(40), rng.randbytes(40)]]
        if choice == 3:
            return MODEL, rng.randbytes(rng.randint(0, 500))
        return rng.choice(("zzz", CONSENSUS, TX, "")), rng.randint(-9, 9)

    def _forged_catch_up(self, peer: bytes) -> None:
        """A block for the next height, 'certified' by every member: its own COMMIT is real,
        the others' signatures are random bytes."""
        tip = self.tip()
        if tip is None:
            return
        raw, cert_raw = tip
        try:
            block, cert = Block.decode(raw), Certificate.decode(cert_raw)
        except (codec.CodecError, FieldError):
            raise AssertionError("this node's own committed block does not decode") from None
        header = _next_header(block.header, self.rng.randbytes(32))
        fake = Block(header, ())
        digest = fake.hash()
        message = commit_message(header.height, 0, digest)
        votes = []
        for signer in sorted(cert.signers()):
            signature = (
                self.key.sign(DOMAIN_COMMIT, self.chain, message)
                if signer == self.key.public
                else self.rng.randbytes(64)
            )
            votes.append(CommitVote(signer, signature))
        forged = Certificate(header.height, 0, digest, tuple(votes))
        self._send(peer, BLOCKS, [[fake.encode(), forged.encode()]])
        self.forged += 1


def _next_header(header: Header, state_root: bytes) -> Header:
    return replace(
        header,
        height=header.height + 1,
        prev_hash=header.hash(),
        timestamp_ms=header.timestamp_ms + 1,
        view=0,
        tx_count=0,
        tx_root=tx_root(()),
        state_root=state_root,
    )
