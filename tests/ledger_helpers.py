"""A ledger on a real LevelDB directory with a fixed genesis, for tests of the node's parts."""

from __future__ import annotations

import hashlib
from pathlib import Path

from consensus.certificate import Certificate, Vote, commit_message
from consensus.crypto import DOMAIN_COMMIT, PrivateKey
from node.app.genesis import DEFAULT_PARAMS, Genesis, Member
from node.app.genesis import Client as GenesisClient
from node.app.ledger import Ledger
from node.app.types import AnchorPayload, Block, Receipt, Tx
from node.store import Store

NODES = [PrivateKey.from_seed(bytes([i + 1]) * 32) for i in range(4)]
CLIENT = PrivateKey.from_seed(b"c" * 32)
AUDITOR = PrivateKey.from_seed(b"a" * 32)
STRANGER = PrivateKey.from_seed(b"s" * 32)
ADMIN = PrivateKey.from_seed(b"d" * 32)


def genesis() -> Genesis:
    members = tuple(
        Member(f"org{i}", k.public, f"127.0.0.1:{100 + i}", f"127.0.0.1:{200 + i}", (k.public,))
        for i, k in enumerate(NODES)
    )
    clients = tuple(
        sorted(
            [
                GenesisClient(CLIENT.public, "org0", ("submit",)),
                GenesisClient(AUDITOR.public, "org1", ("audit",)),
                GenesisClient(ADMIN.public, "org2", ("admin", "score", "submit")),
            ],
            key=lambda c: c.key,
        )
    )
    # These ledgers test execution, scoring and proofs with models trained on made-up data;
    # the rule that training data be anchored is tested with it on (test_model_approval.py).
    params = {**DEFAULT_PARAMS, "require_anchored_training": 0}
    return Genesis("vigil-test", 0, members, clients, tuple(sorted(params.items())))


GENESIS_HASH = genesis().hash()
"""What this chain's transactions and votes are signed for."""


def open_ledger(path: Path, clock: int = 1_000) -> Ledger:
    return Ledger(Store(path, create=True), genesis(), clock_ms=lambda: clock)


def certify(
    height: int, block: bytes, signers: list[PrivateKey] | None = None, chain: bytes = GENESIS_HASH
) -> Certificate:
    """A commit certificate for ``block`` (by default a quorum of the genesis members)."""
    digest = Block.decode(block).hash()
    votes = sorted(
        (Vote(k.public, k.sign(DOMAIN_COMMIT, chain, commit_message(height, 0, digest)))
         for k in (NODES[:3] if signers is None else signers)),
        key=lambda v: v.encode(),
    )  # fmt: skip
    return Certificate(height, 0, digest, tuple(votes))


def anchor_tx(
    data: bytes, parents: tuple[bytes, ...] = (), key: PrivateKey = CLIENT, until: int = 50
) -> Tx:
    payload = AnchorPayload(hashlib.sha256(data).digest(), len(data), "text/plain", parents, ())
    return Tx.create(key, "vigil-test", GENESIS_HASH, payload, until)


def proposer(ledger: Ledger, height: int) -> bytes:
    vals = ledger.validators(height)
    return vals[height % len(vals)]


def commit(ledger: Ledger, txs: list[Tx]) -> list[Receipt]:
    """Build, certify and commit the next block; return its receipts."""
    height = ledger.height + 1
    proposal = ledger.build(height, 0, proposer(ledger, height), txs)
    ledger.commit(proposal.block, certify(height, proposal.block))
    return [Receipt.decode(r) for r in ledger.store.receipts(height) or []]


def govern(ledger: Ledger, key: str, value: object) -> None:
    """Write a governance storage entry directly, as if the members had approved it."""
    from node.app.state import storage_key
    from node.store import STATE as STATE_PREFIX_IN_STORE
    from vm.gas import MAX_STORAGE_VALUE_BYTES
    from vm.values import encode_value

    raw = encode_value(value, MAX_STORAGE_VALUE_BYTES)
    ledger.store.db.put(STATE_PREFIX_IN_STORE + storage_key("governance", key), raw)
