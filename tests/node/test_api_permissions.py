"""Every route of the node's API (node/api.py ``Api.routes``) against who is asking.

The API has no sessions or tokens: its credentials are the signature a submitted
transaction carries, checked by admission (tests/node/test_permission_matrix.py holds those
rules for every kind), and the signature a model upload carries in its headers. So a route
is either *open* (anyone may ask, no credential is read, and the chain's state does not
change: only committed transactions change it) or *signed* (what it takes is admitted or
kept only for a key the chain authorises). The table below says
which, and what each kind of caller gets back. docs/permissions.md states it in words.

One node, in process, no network (tests/node/test_service.py's way), on the consortium of
tests/node/perm_chain.py after real governance: ``client_all`` is an authorised client,
``client_submit`` was revoked by a vote, ``stranger`` is unknown to the chain.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from perm_chain import (
    CONTRACT,
    GENESIS,
    KEYS,
    MODEL,
    NODE_KEYS,
    commit,
    revoke_clients,
    setup,
    sign,
)

from consensus.crypto import DOMAIN_MODEL_UPLOAD
from ml.train import TrainParams, train
from node.api import Api, make_app
from node.app.state import storage_key
from node.app.types import AnchorPayload, Tx
from node.config import Home, NodeConfig
from node.service import Node
from node.sim.workload import FEATURES, sim_model

ON_THE_FIXTURE_LOOP = pytest.mark.asyncio(loop_scope="module")
"""The async tests share the module's node and its event loop."""

CALLERS = ("none", "unknown", "authorised", "revoked", "admin_as_client")
"""Who sends a signed submission: a transaction of an authorised client's key that carries
no valid signature; one signed by a key the chain never saw; by an authorised client; by a
client governance revoked; by a member's admin key (a kind only clients may send)."""

OPEN = "open"
"""Anyone may ask; no credentials are read."""

# Route (method, pattern) -> OPEN and the request and status every caller gets, or the
# status and error code per caller of CALLERS for a signed route. {tx}, {digest}, {model_id}
# are filled from the chain the fixture builds.
ROUTES: dict[tuple[str, str], tuple] = {
    ("POST", "/v1/txs"): (
        "signed",
        {
            "none": (400, "bad_signature"),
            "unknown": (400, "unauthorised"),
            "authorised": (202, None),
            "revoked": (400, "unauthorised"),
            "admin_as_client": (400, "forbidden"),
        },
    ),
    ("GET", "/v1/txs/{hash}"): (OPEN, "GET", "/v1/txs/{tx}", 200),
    ("GET", "/v1/blocks"): (OPEN, "GET", "/v1/blocks", 200),
    ("GET", "/v1/blocks/latest"): (OPEN, "GET", "/v1/blocks/latest", 200),
    ("GET", "/v1/blocks/{height}"): (OPEN, "GET", "/v1/blocks/1?raw=1", 200),
    ("GET", "/v1/status"): (OPEN, "GET", "/v1/status", 200),
    ("GET", "/v1/anchors"): (OPEN, "GET", "/v1/anchors", 200),
    ("GET", "/v1/anchors/{digest}"): (OPEN, "GET", "/v1/anchors/{digest}", 200),
    ("GET", "/v1/contracts/{name}"): (OPEN, "GET", "/v1/contracts/governance", 200),
    ("GET", "/v1/anomalies"): (OPEN, "GET", "/v1/anomalies?since=1", 200),
    ("POST", "/v1/models"): (
        "signed",
        {
            "unsigned": (401, "unsigned"),
            "none": (401, "bad_signature"),
            "weak": (401, "weak_key"),
            "unknown": (403, "unauthorised"),
            "node": (403, "unauthorised"),
            "authorised": (201, None),
            "revoked": (403, "unauthorised"),
            "score_only": (403, "forbidden"),
            "admin": (201, None),
        },
    ),
    ("GET", "/v1/models"): (OPEN, "GET", "/v1/models", 200),
    ("GET", "/v1/models/{id}"): (OPEN, "GET", "/v1/models/{model_id}", 200),
    ("GET", "/v1/models/{name}/drift"): (OPEN, "GET", f"/v1/models/{MODEL}/drift", 200),
    ("GET", "/v1/state/{key}"): (OPEN, "GET", "/v1/state/{state_key}", 200),
    ("GET", "/v1/light/changes"): (OPEN, "GET", "/v1/light/changes?after=0", 200),
    ("POST", "/v1/contracts/{name}/query"): (OPEN, "POST", f"/v1/contracts/{CONTRACT}/query", 200),
    ("GET", "/openapi.json"): (OPEN, "GET", "/openapi.json", 200),
    ("GET", "/metrics"): (OPEN, "GET", "/metrics", 200),
}

BODIES = {
    f"/v1/contracts/{CONTRACT}/query": lambda: {"method": "note", "args": [{"$bytes": "00"}]},
}
"""Request bodies of the open POST routes: a query of a method that writes (``screen.note``),
to show that a query keeps nothing."""

UPLOADERS = {
    "unsigned": "client_all",
    "none": "client_all",
    "unknown": "stranger",
    "node": "node",
    "authorised": "client_all",
    "revoked": "client_submit",
    "score_only": "client_score",
    "admin": "admin",
}
"""Who uploads a model artifact (POST /v1/models): with no signature headers; an authorised
client's key with another key's signature; the small-order identity key with the signature
that verifies under it for every message; a key the chain never saw; a validator's node key;
an authorised `submit` client; a revoked client; a client with only `score`; a member's admin
key."""

SMALL_ORDER_KEY = bytes([1]) + bytes(31)
"""The identity point: every message has the signature (identity, 0) under it."""


def _new_model(seed: int):  # type: ignore[no-untyped-def]
    rows = np.random.default_rng(seed).normal(size=(64, len(FEATURES)))
    return train(rows, FEATURES, TrainParams(n_estimators=2)).model


def _upload(caller: str, model_id: bytes) -> dict[str, str]:
    """The signature headers ``caller`` sends with an artifact whose id is ``model_id``."""
    if caller == "unsigned":
        return {}
    if caller == "weak":
        return {"X-Vigil-Key": SMALL_ORDER_KEY.hex(), "X-Vigil-Signature": (SMALL_ORDER_KEY
                + bytes(32)).hex()}  # fmt: skip
    key = KEYS[UPLOADERS[caller]]
    signer = KEYS["stranger"] if caller == "none" else key
    signature = signer.sign(DOMAIN_MODEL_UPLOAD, GENESIS.hash(), model_id)
    return {"X-Vigil-Key": key.public.hex(), "X-Vigil-Signature": signature.hex()}


@dataclass
class Served:
    node: Node
    client: TestClient
    fill: dict[str, str]
    """Values for the placeholders of ROUTES' paths."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    path: Path = tmp_path_factory.mktemp("api-permissions")
    node = Node(Home(path), NodeConfig("127.0.0.1:1", "127.0.0.1:2"), GENESIS, NODE_KEYS["bank-a"])
    anchor = sign(KEYS["client_all"], _anchor_payload(b"an anchored file"))

    def prepare() -> None:
        open_proposal = setup(node.ledger)
        revoke_clients(node.ledger, open_proposal + 1, ["client_submit"])
        [receipt] = commit(node.ledger, [anchor])
        assert receipt.status == "ok"

    await node.worker.client(prepare)
    client = TestClient(TestServer(make_app(node)))
    await client.start_server()
    fill = {
        "tx": anchor.id.hex(),
        "digest": anchor.payload.digest.hex(),  # type: ignore[attr-defined]
        "model_id": sim_model().model_id.hex(),
        "state_key": storage_key("governance", "members").hex(),
    }
    try:
        yield Served(node, client, fill)
    finally:
        await client.close()
        await node.stop()


def _anchor_payload(data: bytes) -> AnchorPayload:
    return AnchorPayload(hashlib.sha256(data).digest(), len(data), "text/plain", (), ())


def _submission(caller: str) -> Tx:
    """An anchor (a kind every authorised client with `submit` may send) from ``caller``."""
    payload = _anchor_payload(f"submitted by {caller}".encode())
    signer = {
        "none": "client_all",
        "unknown": "stranger",
        "authorised": "client_all",
        "revoked": "client_submit",
        "admin_as_client": "admin",
    }[caller]
    tx = sign(KEYS[signer], payload)
    return dataclasses.replace(tx, signature=bytes(64)) if caller == "none" else tx


SIGNED_CASES = [
    (route, caller) for route, entry in ROUTES.items() if entry[0] != OPEN for caller in entry[1]
]
OPEN_CASES = [route for route, entry in ROUTES.items() if entry[0] == OPEN]


def test_the_table_names_every_route_of_the_api() -> None:
    """A new route fails here until it is classified open or signed."""
    api = Api(None)  # type: ignore[arg-type]
    routes = {(r.method, r.path) for r in api.routes()}  # type: ignore[attr-defined]
    assert routes == set(ROUTES)
    assert {route for route, _ in SIGNED_CASES} == {("POST", "/v1/txs"), ("POST", "/v1/models")}
    assert set(ROUTES["POST", "/v1/txs"][1]) == set(CALLERS)
    assert set(ROUTES["POST", "/v1/models"][1]) == set(UPLOADERS) | {"weak"}


@ON_THE_FIXTURE_LOOP
@pytest.mark.parametrize(
    ("route", "caller"), SIGNED_CASES, ids=[f"{m} {p} {c}" for (m, p), c in SIGNED_CASES]
)
async def test_a_signed_route_takes_only_what_its_caller_may_send(
    served: Served, route: tuple[str, str], caller: str
) -> None:
    status, code = ROUTES[route][1][caller]
    if route == ("POST", "/v1/models"):
        model = _new_model(100 + SIGNED_CASES.index((route, caller)))
        response = await served.client.post(
            route[1], data=model.data, headers=_upload(caller, model.model_id)
        )
        answer = await response.json()
        assert response.status == status, answer
        held = served.node.store.artifact(model.model_id)
        if code is None:
            assert answer["model_id"] == model.model_id.hex() and held == model.data
        else:
            assert answer["error"]["code"] == code and held is None
        return
    tx = _submission(caller)
    response = await served.client.post(route[1], json={"tx": tx.encode().hex()})
    answer = await response.json()
    assert response.status == status, answer
    if code is None:
        assert answer == {"hash": tx.id.hex()}
        assert tx.id in served.node.mempool
    else:
        assert answer["error"]["code"] == code
        assert tx.id not in served.node.mempool


@ON_THE_FIXTURE_LOOP
@pytest.mark.parametrize("route", OPEN_CASES, ids=[f"{m} {p}" for m, p in OPEN_CASES])
async def test_an_open_route_answers_anyone_and_keeps_nothing(
    served: Served, route: tuple[str, str]
) -> None:
    _, method, path, status = ROUTES[route]
    path = path.format(**served.fill)
    root, height = served.node.store.state_root(), served.node.ledger.height
    make = BODIES.get(path.split("?")[0])
    body = None if make is None else make()
    kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
    response = await served.client.request(method, path, **kwargs)
    assert response.status == status, await response.text()
    assert (served.node.store.state_root(), served.node.ledger.height) == (root, height)
    if route == ("POST", "/v1/contracts/{name}/query"):
        answer = await response.json()
        assert answer["result"] == 1  # the method ran, and wrote...
        assert served.node.store.get(storage_key(CONTRACT, "last_note")) is None  # ...nothing
