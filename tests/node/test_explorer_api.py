"""The explorer's files and the list routes it reads: content types, refusals, bounds, paging."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from ledger_helpers import NODES, anchor_tx, commit, genesis

from consensus.certificate import quorum
from node import api as api_module
from node import explorer
from node.api import OPENAPI, make_app
from node.config import Home, NodeConfig
from node.service import Node


def _node(path: Path) -> Node:
    return Node(Home(path), NodeConfig("127.0.0.1:1", "127.0.0.1:2"), genesis(), NODES[0])


async def _client(node: Node) -> TestClient:
    client = TestClient(TestServer(make_app(node)))
    await client.start_server()
    return client


async def test_the_explorer_files_are_served_with_their_types_and_nothing_else(
    tmp_path: Path,
) -> None:
    node = _node(tmp_path)
    client = await _client(node)
    try:
        page = await client.get("/")
        assert page.status == 200 and page.content_type == "text/html"
        text = await page.text()
        assert '<script src="/explorer/app.js"' in text and "/explorer/style.css" in text
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
            answer = await client.get(f"/explorer/{name}")
            assert answer.status == 200 and answer.content_type == kind
            assert answer.charset == "utf-8"
        for bad in (
            "/explorer/nosuch.js",
            "/explorer/..%2f__init__.py",
            "/explorer/%2e%2e%2f%2e%2e%2fapi.py",
            "/explorer/index.html%00.js",
            "/explorer/",
        ):
            answer = await client.get(bad)
            assert answer.status == 404, bad
            assert (await answer.json())["error"]["code"] == "not_found"
        assert (await client.post("/")).status == 405
    finally:
        await client.close()
        await node.stop()


def test_the_explorer_refuses_an_oversize_file(tmp_path: Path) -> None:
    (tmp_path / "app.js").write_bytes(b"x" * (explorer.MAX_ASSET_BYTES + 1))
    (tmp_path / "style.css").write_bytes(b"x" * explorer.MAX_ASSET_BYTES)
    assets = explorer.Assets(tmp_path)
    assert assets.get("style.css") is not None  # at the bound: served
    with pytest.raises(RuntimeError, match="exceeds"):
        assets.get("app.js")
    assert assets.get("../app.js") is None


def test_the_shipped_explorer_files_are_within_the_bound() -> None:
    for name in explorer.ASSETS:
        size = (explorer.STATIC / name).stat().st_size
        assert 0 < size <= explorer.MAX_ASSET_BYTES, name


async def test_block_and_anchor_lists_page_through_what_is_committed(tmp_path: Path) -> None:
    node = _node(tmp_path)
    client = await _client(node)
    try:
        empty = await (await client.get("/v1/blocks")).json()
        assert empty == {"blocks": [], "next": None}
        assert (await (await client.get("/v1/anchors")).json()) == {"anchors": [], "next": None}
        assert (await (await client.get("/v1/models")).json()) == {"models": [], "complete": True}
        root = anchor_tx(b"root data")
        digests = [root.payload.digest]  # type: ignore[attr-defined]
        await node.worker.client(lambda: commit(node.ledger, [root]))
        for i in range(4):
            child = anchor_tx(f"child {i}".encode(), parents=(digests[0],))
            digests.append(child.payload.digest)  # type: ignore[attr-defined]
            await node.worker.client(lambda tx=child: commit(node.ledger, [tx]))
        blocks = await (await client.get("/v1/blocks?limit=2")).json()
        assert [b["height"] for b in blocks["blocks"]] == [5, 4] and blocks["next"] == 3
        rest = await (await client.get("/v1/blocks?before=3&limit=100")).json()
        assert [b["height"] for b in rest["blocks"]] == [2, 1] and rest["next"] is None
        top = blocks["blocks"][0]
        header = node.ledger.header(5)
        assert top["hash"] == header.hash().hex() and top["tx_count"] == 1  # type: ignore[union-attr]
        assert top["signers"] == 3 and top["proposer"] == header.proposer.hex()  # type: ignore[union-attr]
        many = await client.get(f"/v1/blocks?limit={api_module.MAX_BLOCK_LIST + 1}")
        assert many.status == 400  # over the bound is refused (as the OpenAPI document says)
        most = await (await client.get(f"/v1/blocks?limit={api_module.MAX_BLOCK_LIST}")).json()
        assert len(most["blocks"]) == 5
        for bad in ("limit=-1", "limit=x", "before=1.5", "limit=" + "9" * 19):
            answer = await client.get(f"/v1/blocks?{bad}")
            assert answer.status == 400, bad
            assert (await answer.json())["error"]["code"] == "bad_request"

        block = await (await client.get("/v1/blocks/2")).json()
        [receipt] = block["receipts"]
        assert receipt["kind"] == "anchor" and receipt["status"] == "ok"
        assert receipt["events"] == ["anchored"] and receipt["gas_used"] == 0
        assert block["validators"] == [k.public.hex() for k in NODES]
        assert block["quorum"] == quorum(len(NODES))

        first = await (await client.get("/v1/anchors?limit=3")).json()
        assert len(first["anchors"]) == 3 and first["next"] == first["anchors"][-1]["digest"]
        second = await (await client.get(f"/v1/anchors?limit=3&after={first['next']}")).json()
        assert len(second["anchors"]) == 2 and second["next"] is None
        listed = [a["digest"] for a in first["anchors"] + second["anchors"]]
        assert listed == sorted(d.hex() for d in digests)  # every anchor once, digest order
        by_digest = {a["digest"]: a for a in first["anchors"] + second["anchors"]}
        assert by_digest[digests[1].hex()]["parents"] == [digests[0].hex()]
        for bad in ("after=zz", "after=" + "00" * 31, "limit=-3"):
            assert (await client.get(f"/v1/anchors?{bad}")).status == 400, bad
        past_the_end = await (await client.get(f"/v1/anchors?after={'ff' * 32}")).json()
        assert past_the_end == {"anchors": [], "next": None}
    finally:
        await client.close()
        await node.stop()


async def test_every_api_route_is_described_in_the_openapi_document(tmp_path: Path) -> None:
    node = _node(tmp_path)
    try:
        app = make_app(node)
        described = {
            (path, method.upper())
            for path, operations in OPENAPI["paths"].items()
            for method in operations
        }
        for route in app.router.routes():
            path = route.resource.canonical  # type: ignore[union-attr]
            if route.method == "HEAD" or not path.startswith("/v1/"):
                continue
            assert (path, route.method) in described, (path, route.method)
    finally:
        await node.stop()


async def test_list_limits_hold_at_their_edges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    from test_scoring import decide

    from ml.train import TrainParams, train

    node = _node(tmp_path)
    client = await _client(node)
    try:
        for i in range(4):
            await node.worker.client(
                lambda i=i: commit(node.ledger, [anchor_tx(f"edge {i}".encode())])
            )
        ids = {}
        for seed, name in enumerate(("alpha", "beta", "gamma")):
            rows = np.random.default_rng(seed).normal(size=(64, 2))
            model = train(rows, ("a", "b"), TrainParams(n_estimators=3), [bytes(32)]).model
            node.store.put_artifact(model.model_id, model.data)  # uploaded before proposing
            ids[name] = model.model_id
            approve = {
                "name": name,
                "model_id": model.model_id,
                "size": len(model.data),
                "contributors": {"org0": 1},
                "anchors": [bytes(32)],
            }
            await node.worker.client(lambda a=approve: decide(node.ledger, "approve_model", a))
        await node.worker.client(
            lambda: decide(node.ledger, "activate_model", {"name": "beta", "version": 1})
        )
        models = await (await client.get("/v1/models")).json()
        assert models["complete"] and [m["name"] for m in models["models"]] == [
            "alpha",
            "beta",
            "gamma",
        ]
        beta = models["models"][1]
        assert beta["active"] == 1 and beta["versions"] == 1
        assert beta["model_id"] == ids["beta"].hex()
        assert models["models"][0]["active"] is None and models["models"][0]["model_id"] is None

        monkeypatch.setattr(api_module, "MAX_MODEL_LIST", 3)  # exactly at the bound
        at_bound = await (await client.get("/v1/models")).json()
        assert len(at_bound["models"]) == 3 and not at_bound["complete"]
        monkeypatch.setattr(api_module, "MAX_MODEL_LIST", 2)
        over = await (await client.get("/v1/models")).json()
        assert len(over["models"]) == 2 and not over["complete"]

        monkeypatch.setattr(api_module, "MAX_BLOCK_LIST", 3)
        for limit, shown in ((2, 2), (3, 3)):
            answer = await (await client.get(f"/v1/blocks?limit={limit}")).json()
            assert len(answer["blocks"]) == shown, limit
        for refused in (0, 4):  # 1 to MAX_BLOCK_LIST
            assert (await client.get(f"/v1/blocks?limit={refused}")).status == 400, refused

        monkeypatch.setattr(api_module, "MAX_ANCHOR_LIST", 2)
        page = await (await client.get("/v1/anchors")).json()
        assert len(page["anchors"]) == 2 and page["next"] == page["anchors"][1]["digest"]
        assert (await client.get("/v1/anchors?limit=3")).status == 400
    finally:
        await client.close()
        await node.stop()
