"""Faults a Byzantine member could exploit in the application, each found on an old main.

Every test here failed before its fix; the docstring names the fault.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ledger_helpers import anchor_tx, certify, open_ledger, proposer

from node.app.ledger import Ledger
from node.app.types import Block, Header, tx_root


def _forged(tx):  # type: ignore[no-untyped-def]
    return dataclasses.replace(tx, signature=bytes(64))


def _propose_raw(ledger: Ledger, height: int, txs: list) -> bytes:  # type: ignore[type-arg]
    """What a Byzantine primary sends: the honest build's roots, then its own tx list."""
    honest = Block.decode(ledger.build(height, 0, proposer(ledger, height), txs).block)
    header = dataclasses.replace(honest.header, tx_count=len(txs), tx_root=tx_root(txs))
    assert isinstance(header, Header)
    return Block(header, tuple(txs)).encode()


def test_a_forged_copy_of_a_verified_transaction_is_refused(tmp_path: Path) -> None:
    """Fault 1: the signature cache was keyed by tx id (the unsigned body's hash).

    A node that verified the genuine transaction found the forged copy's id in
    its cache and accepted a block carrying it; a node replaying the chain later
    refused the certified block and halted.
    """
    primary, voter = open_ledger(tmp_path / "p"), open_ledger(tmp_path / "v")
    genuine = anchor_tx(b"payment")
    assert voter.signatures.verify([genuine]) == [True]  # the voter saw the genuine copy
    block = _propose_raw(primary, 1, [_forged(genuine)])
    problem = voter.validate(1, block)
    assert problem is not None and "signature does not verify" in problem


def test_a_forged_copy_seen_first_does_not_poison_the_genuine_one(tmp_path: Path) -> None:
    """Fault 1, other order: a bad copy cached first made the genuine tx look forged."""
    ledger = open_ledger(tmp_path / "a")
    genuine = anchor_tx(b"payment")
    assert ledger.signatures.verify([_forged(genuine)]) == [False]
    assert ledger.signatures.verify([genuine]) == [True]
    proposal = ledger.build(1, 0, proposer(ledger, 1), [genuine])
    assert [tx.id for tx in Block.decode(proposal.block).txs] == [genuine.id]
    ledger.commit(proposal.block, certify(1, proposal.block))


async def test_a_forged_copy_of_a_pending_transaction_is_refused_at_admission(
    tmp_path: Path,
) -> None:
    """Fault 1, admission: an id already in the mempool skipped every check for any copy.

    The client sending the forged copy was told it was accepted.
    """
    from ledger_helpers import NODES, genesis

    from node.config import Home, NodeConfig
    from node.service import Node

    node = Node(Home(tmp_path), NodeConfig("127.0.0.1:1", "127.0.0.1:2"), genesis(), NODES[0])
    try:
        genuine = anchor_tx(b"payment")
        first = await node.submit(genuine.encode(), gossip=False)
        assert first.tx_id == genuine.id and first.new
        again = await node.submit(genuine.encode(), gossip=False)
        assert again.tx_id == genuine.id and not again.new
        forged = await node.submit(_forged(genuine).encode(), gossip=False)
        assert forged.tx_id is None and forged.code == "bad_signature"
        assert node.mempool.get(genuine.id) == genuine
    finally:
        await node.stop()


async def test_waiting_for_an_artifact_is_bounded_by_refusal_not_assert(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Fault 9: the artifact-waiter bound was an assert.

    Every build for a missing model added a waiter, so a busy primary crashed
    with AssertionError (and under python -O the bound vanished). Now builds only
    start a fetch, and a validation past the bound is refused with a reason.
    """
    from ledger_helpers import NODES, genesis

    from consensus.events import ProposalValidated, ValidateProposal
    from node import service
    from node.app.scoring import ArtifactMissing
    from node.config import Home, NodeConfig
    from node.service import Node
    from node.worker import Outcome

    monkeypatch.setattr(service, "MAX_ARTIFACT_WAITERS", 2)
    node = Node(Home(tmp_path), NodeConfig("127.0.0.1:1", "127.0.0.1:2"), genesis(), NODES[0])
    missing = b"\x07" * 32

    try:
        for _ in range(5):  # builds while the model is missing register no waiter
            assert node._await_artifact(missing, None)
        lacks_model = Outcome(error=ArtifactMissing(missing))
        answers = [
            node._validated(ValidateProposal(1, view, bytes(32), b"block"), lacks_model)
            for view in range(3)
        ]
        assert answers[:2] == [None, None]  # two validations wait for the artifact
        refused = answers[2]
        assert isinstance(refused, ProposalValidated) and not refused.ok
        assert "too many tasks" in refused.reason
    finally:
        await node.stop()


async def test_catch_up_answers_fit_a_frame_and_floods_are_throttled(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Fault 3: a catch-up answer held 64 blocks whatever their size (past the 20 MiB frame,
    so a lagging node asked and failed forever), and FETCH was served without a throttle."""
    from ledger_helpers import NODES, genesis

    from node import service
    from node.budget import FETCH_BURST
    from node.config import Home, NodeConfig
    from node.p2p import BLOCKS, FETCH, MAX_FRAME_BYTES, encode_frame
    from node.service import MAX_SERVE_BYTES, Node

    node = Node(Home(tmp_path), NodeConfig("127.0.0.1:1", "127.0.0.1:2"), genesis(), NODES[0])
    block = bytes(3 * 1024 * 1024)
    monkeypatch.setattr(node.store, "height", lambda: 100)
    monkeypatch.setattr(node.store, "block", lambda h: block)
    monkeypatch.setattr(node.store, "certificate", lambda h: b"c" * 500)
    sent: list[tuple[str, object]] = []
    monkeypatch.setattr(node.network, "send", lambda peer, kind, data: sent.append((kind, data)))
    try:
        node._on_frame(NODES[1].public, FETCH, 1)
        [(kind, answer)] = sent
        assert kind == BLOCKS and 1 <= len(answer) < service.MAX_SERVE_BLOCKS
        assert sum(len(b) + len(c) for b, c in answer) <= MAX_SERVE_BYTES
        assert len(encode_frame(BLOCKS, answer)) <= MAX_FRAME_BYTES
        sent.clear()
        for _ in range(100):
            node._on_frame(NODES[2].public, FETCH, 1)
        assert len(sent) == FETCH_BURST  # the rest of the flood is refused at the bucket
    finally:
        await node.stop()


async def test_model_fetch_floods_are_throttled_per_peer_and_per_artifact(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Fault 3, MODEL_FETCH: each answer can be a 16 MiB artifact, so a flood of requests was
    a flood of artifacts. A peer gets one copy of an artifact per MODEL_FETCH_REPEAT_S and at
    most MODEL_FETCH_BURST answers at once; another peer keeps its own budget."""
    from ledger_helpers import NODES, genesis

    from node.budget import MODEL_FETCH_BURST, MODEL_FETCH_REPEAT_S, PeerBudgets
    from node.config import Home, NodeConfig
    from node.p2p import MODEL, MODEL_FETCH
    from node.service import Node

    node = Node(Home(tmp_path), NodeConfig("127.0.0.1:1", "127.0.0.1:2"), genesis(), NODES[0])
    now = [1_000.0]
    node.budgets = PeerBudgets(clock=lambda: now[0])
    artifacts = {bytes([i]) * 32: bytes([i]) * 1_000 for i in range(10)}
    monkeypatch.setattr(node.store, "artifact", artifacts.get)
    sent: list[tuple[bytes, str]] = []
    monkeypatch.setattr(node.network, "send", lambda peer, kind, data: sent.append((peer, kind)))
    flooder, honest = NODES[1].public, NODES[2].public
    try:
        for _ in range(50):  # the same artifact over and over: one copy
            node._on_frame(flooder, MODEL_FETCH, bytes([0]) * 32)
        assert sent == [(flooder, MODEL)]
        for model_id in list(artifacts)[1:]:  # many artifacts at once: the bucket's burst
            node._on_frame(flooder, MODEL_FETCH, model_id)
        assert len(sent) <= MODEL_FETCH_BURST
        node._on_frame(honest, MODEL_FETCH, bytes([0]) * 32)  # another peer is not starved
        assert sent[-1] == (honest, MODEL)
        now[0] += MODEL_FETCH_REPEAT_S + 60  # later, the flooder may ask again
        node._on_frame(flooder, MODEL_FETCH, bytes([0]) * 32)
        assert sent[-1] == (flooder, MODEL)
    finally:
        await node.stop()


def test_a_small_order_sender_key_is_refused_at_admission(tmp_path: Path) -> None:
    """Fault 6, client keys: with the identity point as sender, one fixed signature
    verifies for every message. Such a sender is refused before its signature counts."""
    import hashlib

    from node.app.execution import TxRejected
    from node.app.types import AnchorPayload, Tx

    ledger = open_ledger(tmp_path / "a")
    identity = bytes([1]) + bytes(31)
    payload = AnchorPayload(hashlib.sha256(b"x").digest(), 1, "text/plain", (), ())
    forged = Tx("vigil-test", identity, bytes(16), 50, "anchor", payload, identity + bytes(32))
    import pytest

    with pytest.raises(TxRejected) as info:
        ledger.admit(forged)
    assert info.value.code == "weak_key"
