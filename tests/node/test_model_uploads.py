"""Signed model uploads, the uploader's quota, what a node keeps from its peers, and the
collection of artifacts no committed block read (node/service.py, node/store.py).

One node in process on tests/node/perm_chain.py's consortium after real governance:
``client_all`` is a `submit` client of bank-b, bank-a's admin proposes and bank-a, bank-c
and bank-d approve. Blocks commit through the node's own commit path (``_commit_and_count``
on the application worker), which runs the collection.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from perm_chain import (
    ADMIN_KEYS,
    GENESIS,
    KEYS,
    NODE_KEYS,
    call_payload,
    certify,
    decided,
    proposer,
    setup,
    sign,
)

from consensus.crypto import DOMAIN_MODEL_UPLOAD, DOMAIN_TX, PrivateKey
from ml.limits import MAX_ARTIFACT_BYTES
from ml.train import TrainParams, train
from node import service
from node.api import make_app
from node.app.types import Receipt, Tx
from node.config import Home, NodeConfig
from node.p2p import MODEL
from node.service import (
    ARTIFACT_GRACE_BLOCKS,
    MAX_ARTIFACTS_COLLECTED_PER_COMMIT,
    MAX_UNREFERENCED_ARTIFACTS_PER_KEY,
    MAX_UNREFERENCED_BYTES_PER_KEY,
    Node,
)
from node.sim.workload import FEATURES
from node.store import Store

UPLOADER = KEYS["client_all"]


def _model(seed: int):  # type: ignore[no-untyped-def]
    rows = np.random.default_rng(seed).normal(size=(64, len(FEATURES)))
    return train(rows, FEATURES, TrainParams(n_estimators=2)).model


def _headers(key: PrivateKey, model_id: bytes, chain: bytes = GENESIS.hash()) -> dict:
    signature = key.sign(DOMAIN_MODEL_UPLOAD, chain, model_id)
    return {"X-Vigil-Key": key.public.hex(), "X-Vigil-Signature": signature.hex()}


@dataclass
class Served:
    node: Node
    client: TestClient
    open_id: int
    """The id the next proposal gets."""

    async def upload(self, data: bytes, key: PrivateKey = UPLOADER) -> tuple[int, dict]:
        model_id = hashlib.sha256(data).digest()
        response = await self.client.post("/v1/models", data=data, headers=_headers(key, model_id))
        return response.status, await response.json()

    async def commit(self, txs: Sequence[Tx] = ()) -> list[Receipt]:
        """Build, certify and commit the next block through the node's commit path."""
        node = self.node

        def run() -> list[Receipt]:
            height = node.ledger.height + 1
            block = node.ledger.build(height, 0, proposer(node.ledger, height), list(txs)).block
            node._commit_and_count(block, certify(node.ledger, height, block))
            return [Receipt.decode(r) for r in node.store.receipts(height) or []]

        return await node.worker.client(run)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    node = Node(Home(tmp_path), NodeConfig("127.0.0.1:1", "127.0.0.1:2"), GENESIS,
                NODE_KEYS["bank-a"])  # fmt: skip
    open_id = await node.worker.client(lambda: setup(node.ledger))
    client = TestClient(TestServer(make_app(node)))
    await client.start_server()
    try:
        yield Served(node, client, open_id + 1)
    finally:
        await client.close()
        await node.stop()


def _approve(model, name: str) -> dict:  # type: ignore[no-untyped-def]
    return {
        "name": name,
        "model_id": model.model_id,
        "size": len(model.data),
        "contributors": {"bank-a": 1},
        "anchors": [hashlib.sha256(b"training").digest()],
    }


# ------------------------------------------------------------ the signature


async def test_an_upload_is_checked_before_its_body_is_read(served: Served) -> None:
    """No headers: 401 even for a body over the limit (read_body's 413 never comes)."""
    response = await served.client.post("/v1/models", data=b"\0" * (MAX_ARTIFACT_BYTES + 1))
    assert response.status == 401 and (await response.json())["error"]["code"] == "unsigned"
    for bad in ({"X-Vigil-Key": "zz" * 32, "X-Vigil-Signature": "00" * 64},
                {"X-Vigil-Key": "00" * 32, "X-Vigil-Signature": "00" * 63}):  # fmt: skip
        response = await served.client.post("/v1/models", data=b"x", headers=bad)
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "bad_signature"


async def test_a_signature_binds_the_model_id_and_the_chain(served: Served) -> None:
    model, other = _model(1), _model(2)
    for headers in (
        _headers(UPLOADER, other.model_id),  # another artifact's signature
        _headers(UPLOADER, model.model_id, chain=bytes(32)),  # another chain's
    ):
        response = await served.client.post("/v1/models", data=model.data, headers=headers)
        answer = await response.json()
        assert (response.status, answer["error"]["code"]) == (401, "bad_signature"), answer
        assert served.node.store.artifact(model.model_id) is None
    # a transaction signature over the same bytes is another domain
    tx_signature = UPLOADER.sign(DOMAIN_TX, GENESIS.hash(), model.model_id)
    headers = {"X-Vigil-Key": UPLOADER.public.hex(), "X-Vigil-Signature": tx_signature.hex()}
    response = await served.client.post("/v1/models", data=model.data, headers=headers)
    assert response.status == 401
    status, answer = await served.upload(model.data)
    assert (status, answer["model_id"]) == (201, model.model_id.hex())


async def test_a_signed_upload_keeps_the_body_limits(served: Served) -> None:
    over = b"\0" * (MAX_ARTIFACT_BYTES + 1)
    status, answer = await served.upload(over)
    assert (status, answer["error"]["code"]) == (413, "too_large")
    model = _model(3)
    headers = {**_headers(UPLOADER, model.model_id), "Content-Encoding": "gzip"}
    response = await served.client.post("/v1/models", data=gzip.compress(model.data),
                                        headers=headers)  # fmt: skip
    assert (response.status, (await response.json())["error"]["code"]) == (
        415, "unsupported_encoding")  # fmt: skip
    not_a_model = b"not a model"
    status, answer = await served.upload(not_a_model)
    assert (status, answer["error"]["code"]) == (400, "bad_artifact")


# ------------------------------------------------------------ the quota


async def test_the_count_quota_holds_at_its_edge_per_key(served: Served) -> None:
    models = [_model(10 + i) for i in range(MAX_UNREFERENCED_ARTIFACTS_PER_KEY + 1)]
    for model in models[:-1]:
        status, answer = await served.upload(model.data)
        assert status == 201, answer
    status, answer = await served.upload(models[-1].data)
    assert (status, answer["error"]["code"]) == (429, "upload_quota"), answer
    assert served.node.store.artifact(models[-1].model_id) is None
    assert (await served.upload(models[0].data))[0] == 201  # held already: counts nothing
    assert (await served.upload(models[-1].data, ADMIN_KEYS["bank-b"]))[0] == 201  # its own


async def test_the_byte_quota_holds_at_its_edge(served: Served) -> None:
    first, second = _model(30), _model(31)
    filler = b"\0" * (MAX_UNREFERENCED_BYTES_PER_KEY - len(first.data))
    store, height = served.node.store, served.node.ledger.height
    store.put_artifact(hashlib.sha256(filler).digest(), filler, height=height,
                       uploader=UPLOADER.public)  # fmt: skip
    status, answer = await served.upload(first.data)  # exactly at the bound
    assert status == 201, answer
    assert store.unreferenced(UPLOADER.public, 100) == (2, MAX_UNREFERENCED_BYTES_PER_KEY)
    status, answer = await served.upload(second.data)
    assert (status, answer["error"]["code"]) == (429, "upload_quota"), answer


# ------------------------------------------------------------ collection


def test_collection_waits_exactly_the_grace_period_and_is_bounded(tmp_path: Path) -> None:
    store = Store(tmp_path / "data", create=True)
    try:
        late = b"late artifact"
        store.put_artifact(hashlib.sha256(late).digest(), late, height=5, uploader=b"k" * 32)
        batch = [bytes([i]) * 7 for i in range(MAX_ARTIFACTS_COLLECTED_PER_COMMIT + 1)]
        for data in batch:
            store.put_artifact(hashlib.sha256(data).digest(), data, height=4)
        assert store.collect_artifacts(3 + ARTIFACT_GRACE_BLOCKS, ARTIFACT_GRACE_BLOCKS,
                                       MAX_ARTIFACTS_COLLECTED_PER_COMMIT) == []  # fmt: skip
        first = store.collect_artifacts(4 + ARTIFACT_GRACE_BLOCKS, ARTIFACT_GRACE_BLOCKS,
                                        MAX_ARTIFACTS_COLLECTED_PER_COMMIT)  # fmt: skip
        assert len(first) == MAX_ARTIFACTS_COLLECTED_PER_COMMIT
        assert all(store.artifact(i) is None for i in first)
        rest = store.collect_artifacts(4 + ARTIFACT_GRACE_BLOCKS, ARTIFACT_GRACE_BLOCKS,
                                       MAX_ARTIFACTS_COLLECTED_PER_COMMIT)  # fmt: skip
        assert sorted(first + rest) == sorted(hashlib.sha256(d).digest() for d in batch)
        assert store.artifact(hashlib.sha256(late).digest()) == late  # arrived later
        assert store.unreferenced(b"k" * 32, 10) == (1, len(late))
        gone = store.collect_artifacts(5 + ARTIFACT_GRACE_BLOCKS, ARTIFACT_GRACE_BLOCKS, 1)
        assert gone == [hashlib.sha256(late).digest()] and store.artifact(gone[0]) is None
        assert store.unreferenced(b"k" * 32, 10) == (0, 0)
        kept = b"kept for good"  # stored without an arrival height: never collected
        store.put_artifact(hashlib.sha256(kept).digest(), kept)
        assert store.collect_artifacts(10**9, ARTIFACT_GRACE_BLOCKS, 100) == []
    finally:
        store.close()


async def test_collection_keeps_what_a_committed_block_read(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An artifact nobody proposed goes at the first commit GRACE blocks after it arrived;
    one an open proposal names, and one an approved version is, stay."""
    grace = 3
    monkeypatch.setattr(service, "ARTIFACT_GRACE_BLOCKS", grace)
    spare, proposed, approved = _model(40), _model(41), _model(42)
    for model in (spare, proposed, approved):
        assert (await served.upload(model.data))[0] == 201
    arrived = served.node.ledger.height
    store = served.node.store
    sizes = sum(len(m.data) for m in (spare, proposed, approved))
    assert store.unreferenced(UPLOADER.public, 10) == (3, sizes)
    pid = served.open_id
    txs = decided(pid, [("approve_model", _approve(approved, "second"))])
    txs.append(sign(ADMIN_KEYS["bank-a"], call_payload(
        "governance", "propose", ["approve_model", _approve(proposed, "third")])))  # fmt: skip
    receipts = await served.commit(txs)
    assert [r.status for r in receipts] == ["ok"] * len(txs), [r.error for r in receipts]
    assert store.artifact_pinned(proposed.model_id) and store.artifact_pinned(approved.model_id)
    assert not store.artifact_pinned(spare.model_id)
    assert store.unreferenced(UPLOADER.public, 10) == (1, len(spare.data))  # quota freed
    while served.node.ledger.height < arrived + grace - 1:
        await served.commit()
    assert store.artifact(spare.model_id) == spare.data  # one block short of the grace
    await served.commit()
    assert served.node.ledger.height == arrived + grace
    assert store.artifact(spare.model_id) is None
    assert store.artifact(proposed.model_id) == proposed.data
    assert store.artifact(approved.model_id) == approved.data
    response = await served.client.get(f"/v1/models/{spare.model_id.hex()}")
    assert response.status == 404
    assert store.unreferenced(UPLOADER.public, 10) == (0, 0)
    for _ in range(grace):
        await served.commit()
    assert store.artifact(proposed.model_id) == proposed.data  # pinned: never collected


# ------------------------------------------------------------ peers


async def test_an_upload_is_not_pushed_and_a_peer_keeps_only_what_it_asked_for(
    served: Served,
) -> None:
    node = served.node
    sent: list[tuple[str, object]] = []
    node.network.broadcast = lambda kind, payload: sent.append((kind, payload))  # type: ignore[method-assign]
    uploaded = _model(50)
    assert (await served.upload(uploaded.data))[0] == 201
    assert [kind for kind, _ in sent] == []  # nothing pushed: peers fetch on demand

    unasked = _model(51)
    node._on_model(unasked.data)
    await node.worker.client(lambda: None)  # what was queued before has answered
    assert node.store.artifact(unasked.model_id) is None
    assert node.faults["model-unrequested"] == 1

    asked = _model(52)
    arrived: list[bool] = []
    assert node._await_artifact(asked.model_id, arrived.append)
    assert [kind for kind, _ in sent] == ["model-fetch"]
    node._on_model(asked.data)
    await node.worker.client(lambda: None)
    await node.worker.client(lambda: None)  # the wake-up is scheduled on the loop
    assert node.store.artifact(asked.model_id) == asked.data and arrived == [True]
    # fetched, not uploaded: collectable, on nobody's quota
    assert not node.store.artifact_pinned(asked.model_id)
    assert node.store.unreferenced(UPLOADER.public, 10) == (1, len(uploaded.data))
    assert MODEL not in [kind for kind, _ in sent]
