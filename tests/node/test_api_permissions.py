"""Every route of the node's API (node/api.py ``Api.routes``) against who is asking.

The API has no sessions or tokens: its one credential is the signature a submitted
transaction carries, checked by admission (tests/node/test_permission_matrix.py holds those
rules for every kind). So a route is either *open* (anyone may ask, no credential is read,
and the chain's state does not change: only committed transactions change it) or *signed*
(what it takes is admitted only for a sender the chain authorises). The table below says
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
    # issue 16 item 2: uploads will need a signature
    ("POST", "/v1/models"): (OPEN, "POST", "/v1/models", 201),
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
    "/v1/models": lambda: _new_model().data,
    f"/v1/contracts/{CONTRACT}/query": lambda: {"method": "note", "args": [{"$bytes": "00"}]},
}
"""Request bodies of the open POST routes: a model artifact the node does not hold yet; a
query of a method that writes (``screen.note``), to show that a query keeps nothing."""


def _new_model():  # type: ignore[no-untyped-def]
    rows = np.random.default_rng(5).normal(size=(64, len(FEATURES)))
    return train(rows, FEATURES, TrainParams(n_estimators=2)).model


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
    (route, caller) for route, entry in ROUTES.items() if entry[0] != OPEN for caller in CALLERS
]
OPEN_CASES = [route for route, entry in ROUTES.items() if entry[0] == OPEN]


def test_the_table_names_every_route_of_the_api() -> None:
    """A new route fails here until it is classified open or signed."""
    api = Api(None)  # type: ignore[arg-type]
    routes = {(r.method, r.path) for r in api.routes()}  # type: ignore[attr-defined]
    assert routes == set(ROUTES)
    assert {route for route, _ in SIGNED_CASES} == {("POST", "/v1/txs")}


@ON_THE_FIXTURE_LOOP
@pytest.mark.parametrize(
    ("route", "caller"), SIGNED_CASES, ids=[f"{m} {p} {c}" for (m, p), c in SIGNED_CASES]
)
async def test_a_signed_route_takes_only_what_its_caller_may_send(
    served: Served, route: tuple[str, str], caller: str
) -> None:
    status, code = ROUTES[route][1][caller]
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
