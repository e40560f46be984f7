"""The node driver with its application worker: answers, stale work, halts and the API's bounds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from ledger_helpers import NODES, anchor_tx, certify, genesis, proposer

from consensus.events import (
    BuildProposal,
    ProposalBuilt,
    ProposalValidated,
    RequestSeen,
    SetTimer,
    TimerFired,
    ValidateProposal,
)
from consensus.replica import TIMER_REQUEST
from node import worker as worker_module
from node.api import make_app
from node.config import Home, NodeConfig
from node.p2p import CONSENSUS
from node.service import STALE, Node
from node.worker import Outcome


def _node(path: Path) -> Node:
    return Node(Home(path), NodeConfig("127.0.0.1:1", "127.0.0.1:2"), genesis(), NODES[0])


async def test_a_validation_for_a_height_committed_meanwhile_is_dropped(tmp_path: Path) -> None:
    node = _node(tmp_path)
    try:
        action = ValidateProposal(1, 0, bytes(32), b"block")
        assert node._validated(action, Outcome(value=STALE)) is None
        answer = node._validated(action, Outcome(value="bad block"))
        assert answer == ProposalValidated(1, 0, bytes(32), False, "bad block")
        broken = node._validated(action, Outcome(error=KeyError("x")))
        assert isinstance(broken, ProposalValidated) and not broken.ok
        assert "KeyError" in broken.reason
        assert node._built(BuildProposal(1, 0), Outcome(value=STALE)) == ProposalBuilt(1, 0, None)
    finally:
        await node.stop()


async def test_a_certified_block_this_node_cannot_apply_halts_it(tmp_path: Path) -> None:
    node = _node(tmp_path)
    try:
        block = node.ledger.build(1, 0, proposer(node.ledger, 1), []).block
        node._committed(block, certify(1, block), Outcome(error=AssertionError("diverged")))
        assert node.halted is not None and "diverged" in node.halted
        await node.wait_stopped()  # request_stop was called
        assert node.ledger.height == 0
    finally:
        await node.stop()


async def test_a_safety_state_the_store_cannot_write_halts_the_node_before_its_vote_leaves(
    tmp_path: Path,
) -> None:
    """Found by scripts/chaos (a full disk): the store's error escaped into whichever handler
    fed the replica and the node ran on. Now it halts, and the vote that needed the write
    never leaves. The store here really cannot write: its database is closed."""
    node = _node(tmp_path)
    try:
        actions = node.replica.handle(RequestSeen(b"r" * 32))
        timer = next(a for a in actions if isinstance(a, SetTimer) and a.name == TIMER_REQUEST)
        node.store.db.close()
        node.feed(TimerFired(TIMER_REQUEST, timer.token))  # a view change: Persist, then send
        assert node.halted is not None and "safety state" in node.halted
        assert not any(kind == CONSENSUS for kind, _ in node.network.traffic)
        node.feed(RequestSeen(b"s" * 32))  # a halted node's replica acts no more
        assert not any(kind == CONSENSUS for kind, _ in node.network.traffic)
        await node.wait_stopped()  # request_stop was called
    finally:
        await node.stop()


async def test_a_block_commits_through_the_worker(tmp_path: Path) -> None:
    node = _node(tmp_path)
    try:
        tx = anchor_tx(b"through the worker")
        admitted = await node.submit(tx.encode(), gossip=False)
        assert admitted.new and tx in node.mempool.oldest(10)
        proposal = await node.worker.client(
            lambda: node.ledger.build(1, 0, proposer(node.ledger, 1), [tx])
        )
        node.replica.committing = True  # what the replica does before CommitBlock
        node.replica._pending_certificate = certify(1, proposal.block)
        node._commit(proposal.block, certify(1, proposal.block))
        assert await node.wait_for_commit(tx.id, 10) == 1  # may answer from the store at once
        for _ in range(500):  # the loop's side of the commit follows the worker's
            if tx.id not in node.mempool:
                break
            await asyncio.sleep(0.01)
        assert node.ledger.height == 1 and tx.id not in node.mempool
        again = await node.submit(tx.encode(), gossip=False)
        assert again.tx_id is None and again.code == "duplicate"
    finally:
        await node.stop()


async def test_the_api_answers_busy_when_the_worker_queue_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = _node(tmp_path)
    client = TestClient(TestServer(make_app(node)))
    await client.start_server()
    try:
        tx = anchor_tx(b"api")
        response = await client.post("/v1/txs", json={"tx": tx.encode().hex()})
        assert response.status == 202, await response.text()
        pending = await client.get(f"/v1/txs/{tx.id.hex()}")
        assert (await pending.json())["status"] == "pending"
        monkeypatch.setattr(worker_module, "MAX_CLIENT_TASKS", 0)
        for method, path in (("GET", f"/v1/txs/{tx.id.hex()}"), ("POST", "/v1/txs")):
            body = {"tx": tx.encode().hex()} if method == "POST" else None
            busy = await client.request(method, path, json=body)
            assert busy.status == 503
            assert (await busy.json())["error"]["code"] == "busy"
    finally:
        await client.close()
        await node.stop()


async def test_state_proofs_and_validator_changes_served_by_the_api_verify(tmp_path: Path) -> None:
    from consensus import codec, smt
    from consensus.certificate import Certificate
    from node.app.light import LightClient, VerificationError
    from node.app.state import ANCHOR
    from node.app.types import Header

    node = _node(tmp_path)
    client = TestClient(TestServer(make_app(node)))
    await client.start_server()
    try:
        empty = await client.get("/v1/state/00")
        assert empty.status == 404  # nothing certified yet
        tx = anchor_tx(b"proved")
        proposal = await node.worker.client(
            lambda: node.ledger.build(1, 0, proposer(node.ledger, 1), [tx])
        )
        await node.worker.client(
            lambda: node.ledger.commit(proposal.block, certify(1, proposal.block))
        )
        light = LightClient(genesis())
        for key, present in ((ANCHOR + tx.payload.digest, True), (ANCHOR + bytes(32), False)):  # type: ignore[attr-defined]
            answer = await (await client.get(f"/v1/state/{key.hex()}")).json()
            header = Header.decode(bytes.fromhex(answer["header"]))
            cert = Certificate.decode(bytes.fromhex(answer["certificate"]))
            proof = smt.Proof.from_wire(codec.decode(bytes.fromhex(answer["proof"])))
            value = None if answer["value"] is None else bytes.fromhex(answer["value"])
            assert (value is not None) == present and answer["height"] == 1
            light.verify_state(header, cert, key, value, proof)
            with pytest.raises(VerificationError):
                light.verify_state(header, cert, key, b"a lie", proof)
        changes = await (await client.get("/v1/light/changes?after=0")).json()
        assert changes == {"changes": [], "complete": True}
        for bad in ("/v1/state/zz", "/v1/state/" + "00" * 1025, "/v1/light/changes?after=-1"):
            assert (await client.get(bad)).status == 400
    finally:
        await client.close()
        await node.stop()


def test_gossip_frames_hold_the_count_and_byte_bounds_at_their_edges() -> None:
    from node.p2p import (
        FRAME_OVERHEAD_BYTES,
        GOSSIP_ITEM_OVERHEAD,
        MAX_FRAME_BYTES,
        MAX_GOSSIP_FRAME_BYTES,
        MAX_GOSSIP_FRAME_TXS,
        encode_frame,
        gossip_frames,
    )

    small = [bytes([i % 256]) * 10 for i in range(MAX_GOSSIP_FRAME_TXS + 1)]
    frames = gossip_frames(small)
    assert [len(f) for f in frames] == [MAX_GOSSIP_FRAME_TXS, 1]
    assert [raw for frame in frames for raw in frame] == small  # order kept, nothing lost
    item = MAX_GOSSIP_FRAME_BYTES // 4 - GOSSIP_ITEM_OVERHEAD
    big = [b"a" * item] * 4 + [b"b"]  # four fill a frame exactly; the fifth starts the next
    assert [len(f) for f in gossip_frames(big)] == [4, 1]
    assert len(encode_frame("tx", gossip_frames(big)[0])) <= MAX_FRAME_BYTES - FRAME_OVERHEAD_BYTES
    assert gossip_frames([]) == []


async def test_a_gossip_frame_is_queued_whole_or_dropped_whole(tmp_path: Path) -> None:
    """A peer's TX frame carries a list of transactions: over MAX_GOSSIP_FRAME_TXS, or holding
    anything but bytes, it is dropped and counted; a good one is checked and admitted."""
    from node.p2p import MAX_GOSSIP_FRAME_TXS, TX

    node = _node(tmp_path)
    try:
        peer = NODES[1].public
        node._on_frame(peer, TX, [b"x"] * (MAX_GOSSIP_FRAME_TXS + 1))
        node._on_frame(peer, TX, [anchor_tx(b"one").encode(), 7])
        assert node.faults["bad-tx-frame"] == 2 and not node.gossip_queue
        txs = [anchor_tx(f"gossiped {i}".encode()) for i in range(3)]
        node._on_frame(peer, TX, [t.encode() for t in txs])
        node._on_frame(peer, TX, anchor_tx(b"alone").encode())  # a single tx (older frame)
        for _ in range(500):
            if len(node.mempool) == 4:
                break
            await asyncio.sleep(0.01)
        assert all(t.id in node.mempool for t in txs) and len(node.mempool) == 4
    finally:
        await node.stop()


async def test_transactions_waiting_for_a_model_no_peer_has_leave_the_mempool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Left pending, they kept primaries making empty blocks until they expired (issue 16);
    once no peer sends the artifact within ARTIFACT_WAIT_S they are dropped."""
    from node import service as service_module
    from node.app.ledger import Proposal

    monkeypatch.setattr(service_module, "ARTIFACT_WAIT_S", 0.05)
    node = _node(tmp_path)
    try:
        waiting, other = anchor_tx(b"needs the model"), anchor_tx(b"needs nothing")
        for tx in (waiting, other):
            node.mempool.add(tx, len(tx.encode()))
        model_id = bytes(range(32))
        built = Proposal(b"block", [], [model_id], {model_id: [waiting.id]})
        assert node._built(BuildProposal(1, 0), Outcome(value=built)) == ProposalBuilt(
            1, 0, b"block"
        )
        assert waiting.id in node.mempool  # still waiting while the fetch is under way
        await asyncio.sleep(0.3)
        assert waiting.id not in node.mempool and other.id in node.mempool
    finally:
        await node.stop()


async def test_a_catch_up_answer_with_a_malformed_entry_is_dropped_whole(tmp_path: Path) -> None:
    """Found by the frame fuzzer: an answer whose second entry was malformed left its first
    entry queued with nothing to feed it, so the node ignored every later answer as "still
    applying an earlier one" until it committed otherwise; a lagging node never did."""
    from node.p2p import BLOCKS

    node = _node(tmp_path)
    try:
        proposal = await node.worker.client(
            lambda: node.ledger.build(1, 0, proposer(node.ledger, 1), [])
        )
        entry = [proposal.block, certify(1, proposal.block).encode()]
        node._on_frame(NODES[1].public, BLOCKS, [entry, [b"not a block"]])
        assert not node._catch_up
        node._on_frame(NODES[2].public, BLOCKS, [entry])  # an honest answer is applied
        for _ in range(500):
            if node.ledger.height == 1:
                break
            await asyncio.sleep(0.01)
        assert node.ledger.height == 1
    finally:
        await node.stop()


async def test_frames_from_a_key_that_is_not_a_validator_are_dropped(tmp_path: Path) -> None:
    """A link accepted before a validator-set change stays open until it is closed, so
    frames can arrive from a key that is no longer a validator: each was served, queued for
    admission and given a budget bucket of its own (one per key, never forgotten)."""
    from ledger_helpers import STRANGER

    from node.p2p import FETCH, MODEL_FETCH, TX

    node = _node(tmp_path)
    try:
        for kind, payload in ((TX, [anchor_tx(b"from a stranger").encode()]), (FETCH, 1),
                              (MODEL_FETCH, bytes(32))):  # fmt: skip
            node._on_frame(STRANGER.public, kind, payload)
        assert node.faults["frame-from-non-member"] == 3
        assert not node.gossip_queue and not node.budgets._buckets
        node._on_frame(NODES[1].public, FETCH, 1)  # a validator's frame is handled as before
        assert node.faults["frame-from-non-member"] == 3 and node.budgets._buckets
    finally:
        await node.stop()
