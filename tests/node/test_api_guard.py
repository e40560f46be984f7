"""The API's guard at its edges: body and JSON limits before parsing, connection limit,
header and body timeouts, strict numbers in paths and queries, and no 500 from any of it."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from ledger_helpers import NODES, anchor_tx, commit, genesis

from node import api as api_module
from node import http_guard
from node.api import MAX_QUERY_GAS, start_api
from node.config import Home, NodeConfig
from node.http_guard import MAX_JSON_DEPTH, MAX_JSON_NUMBER_CHARS, MAX_QUERY_BODY_BYTES
from node.service import Node

QUERY = "/v1/contracts/governance/query"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, node: Node, port: int) -> None:
        self.node = node
        self.port = port
        self.url = f"http://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, **settings: int) -> AsyncIterator[Served]:
    """A node (no peers) with its real API on a free port, stopped after."""
    port = _free_port()
    config = NodeConfig("127.0.0.1:1", f"127.0.0.1:{port}", **settings)  # type: ignore[arg-type]
    node = Node(Home(tmp_path), config, genesis(), NODES[0])
    runner = await start_api(node, f"127.0.0.1:{port}")
    try:
        yield Served(node, port)
    finally:
        await runner.cleanup()
        await node.stop()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(tmp_path) as it:
        await it.node.worker.client(lambda: commit(it.node.ledger, [anchor_tx(b"guarded")]))
        yield it


async def _post(url: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.post(
        url, data=body, headers={"Content-Type": "application/json", **(headers or {})}
    ) as response:  # fmt: skip
        return response.status, await response.json(content_type=None)


async def _get(url: str) -> tuple[int, dict, dict]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json(content_type=None), dict(response.headers)


def _nested(depth: int) -> bytes:
    """A query whose body nests ``depth`` levels (the object itself is the first)."""
    return b'{"method": "param", "args": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


async def test_a_query_body_is_refused_past_its_size_before_it_is_parsed(served: Served) -> None:
    url = served.url + QUERY
    padding = MAX_QUERY_BODY_BYTES - len(b'{"method": "param", "args": ["max_tx_gas"]}')
    at_limit = b'{"method": "param", "args": ["max_tx_gas"]}' + b" " * padding
    assert len(at_limit) == MAX_QUERY_BODY_BYTES
    status, answer = await _post(url, at_limit)
    assert status == 200, answer
    status, answer = await _post(url, at_limit + b" ")
    assert (status, answer["error"]["code"]) == (413, "too_large")


async def test_compressed_bodies_are_refused_and_never_inflated(served: Served) -> None:
    bomb = gzip.compress(b"[" * 50_000_000)  # about 50 KB that would become 50 MB
    status, answer = await _post(served.url + QUERY, bomb, {"Content-Encoding": "gzip"})
    assert (status, answer["error"]["code"]) == (415, "unsupported_encoding")


async def test_json_depth_and_number_length_are_held_at_their_edges(served: Served) -> None:
    url = served.url + QUERY
    status, answer = await _post(url, _nested(MAX_JSON_DEPTH))
    assert status == 400 and answer["error"]["code"] != "bad_json", answer  # parsed; VM says no
    for body in (_nested(MAX_JSON_DEPTH + 1), _nested(100_000)):
        status, answer = await _post(url, body)
        assert (status, answer["error"]["code"]) == (400, "bad_json")
        assert "nested deeper" in answer["error"]["message"]
    brackets_in_strings = b'{"method": "x", "args": ["' + b"[" * 1_000 + b'"]}'
    status, answer = await _post(url, brackets_in_strings)
    assert answer["error"]["code"] != "bad_json"  # brackets inside a string do not nest
    longest = "1" * MAX_JSON_NUMBER_CHARS
    status, answer = await _post(url, f'{{"method": "x", "args": [{longest}]}}'.encode())
    assert answer["error"]["code"] != "bad_json"
    for number in ("1" * (MAX_JSON_NUMBER_CHARS + 1), "9" * 100_000, "1e999", "NaN", "-Infinity"):
        status, answer = await _post(url, f'{{"method": "x", "args": [{number}]}}'.encode())
        assert (status, answer["error"]["code"]) == (400, "bad_json"), number


async def test_bodies_in_odd_encodings_or_broken_are_400_not_500(served: Served) -> None:
    url = served.url + QUERY
    body = b'{"method": "param", "args": ["max_tx_gas"]}'
    status, _ = await _post(url, body, {"Content-Type": "application/json; charset=bogus"})
    assert status == 200  # JSON is UTF-8 whatever the label says
    for bad in (b"\xff\xfe{", b'{"method": "x"', b"", b'{"method": "x", "args": []} {}'):
        status, answer = await _post(url, bad)
        assert (status, answer["error"]["code"]) == (400, "bad_json"), bad
    status, answer = await _post(url, b'{"method": "param", "args": [], "extra": 1}')
    assert (status, answer["error"]["code"]) == (400, "bad_request")
    status, answer = await _post(served.url + "/v1/txs", b'{"txs": [{}]}')
    assert (status, answer["error"]["code"]) == (400, "bad_request")
    status, answer = await _post(served.url + "/v1/txs", b'{"tx": "00", "txs": ["00"]}')
    assert (status, answer["error"]["code"]) == (400, "bad_request")


@pytest.mark.parametrize("path", [
    "/v1/blocks/%C2%B3",  # a superscript three: isdigit() says yes, int() says no
    "/v1/blocks/%D9%A1",  # an Arabic-Indic one: int() would read block 1
    "/v1/blocks/-1",
    "/v1/blocks/" + "9" * 19,
    "/v1/anomalies?since=%C2%B2",
    "/v1/light/changes?after=%D9%A1",
    "/v1/blocks?limit=%D9%A1",
    "/v1/blocks/1?raw=yes",
    "/v1/txs/" + "00" * 32 + "?wait=1e3",
    "/v1/txs/" + "00" * 32 + "?wait=nan",
    "/v1/txs/" + " 0" * 32,
    "/v1/state/%2000",
    "/v1/contracts/Governance",
    "/v1/contracts/%ED%A0%80",
    "/v1/anchors?after=" + "0" * 63,
])  # fmt: skip
async def test_numbers_names_and_hex_are_read_strictly(served: Served, path: str) -> None:
    status, answer, _ = await _get(served.url + path)
    assert status == 400, (path, answer)
    assert answer["error"]["code"].startswith("bad_"), answer


async def test_the_largest_accepted_numbers_are_accepted(served: Served) -> None:
    status, _, _ = await _get(served.url + "/v1/blocks/" + "9" * api_module.MAX_HEIGHT_DIGITS)
    assert status == 404  # well formed, not there
    status, _, _ = await _get(f"{served.url}/v1/blocks?limit={api_module.MAX_BLOCK_LIST}")
    assert status == 200
    status, answer, _ = await _get(served.url + "/v1/txs/" + "Ab" * 32 + "?wait=0.125")
    assert status == 404, answer


async def test_a_405_says_which_methods_the_path_takes(served: Served) -> None:
    async with aiohttp.ClientSession() as session, session.delete(served.url + "/v1/txs") as r:
        assert r.status == 405 and "POST" in r.headers["Allow"]
        assert (await r.json())["error"]["code"] == "method_not_allowed"


async def test_a_query_needing_more_than_the_query_gas_is_refused_by_name(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = b'{"method": "param", "args": ["max_tx_gas"]}'
    status, answer = await _post(served.url + QUERY, body)
    assert status == 200 and 0 < answer["gas_used"] <= MAX_QUERY_GAS
    monkeypatch.setattr(api_module, "MAX_QUERY_GAS", answer["gas_used"])  # exactly enough
    assert (await _post(served.url + QUERY, body))[0] == 200
    monkeypatch.setattr(api_module, "MAX_QUERY_GAS", answer["gas_used"] - 1)
    status, answer = await _post(served.url + QUERY, body)
    assert (status, answer["error"]["code"]) == (400, "query_gas")
    status, answer = await _post(served.url + "/v1/contracts/nosuch/query", body)
    assert (status, answer["error"]["code"]) == (404, "not_found")


async def test_queries_in_flight_are_bounded(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the limit at 1 and one query held on the worker, the next is 503 busy."""
    monkeypatch.setattr(api_module, "MAX_QUERIES_IN_FLIGHT", 1)
    release = asyncio.Event()
    loop = asyncio.get_running_loop()
    hold = asyncio.ensure_future(served.node.worker.client(
        lambda: asyncio.run_coroutine_threadsafe(release.wait(), loop).result()
    ))  # fmt: skip
    body = b'{"method": "param", "args": ["max_tx_gas"]}'
    first = asyncio.ensure_future(_post(served.url + QUERY, body))
    await asyncio.sleep(0.2)  # the first query is queued behind the held worker
    status, answer = await _post(served.url + QUERY, body)
    assert (status, answer["error"]["code"]) == (503, "busy")
    release.set()
    await hold
    assert (await first)[0] == 200
    assert (await _post(served.url + QUERY, body))[0] == 200


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def test_connections_past_the_limit_are_answered_503_and_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = 8
    monkeypatch.setattr(api_module, "MAX_API_CONNECTIONS", limit)
    held = []
    async with serving(tmp_path) as it:
        try:
            for _ in range(limit):
                held.append(await _open(it.port))
            await asyncio.sleep(0.1)
            reader, writer = await _open(it.port)
            answer = await asyncio.wait_for(reader.read(), 10)
            assert answer.startswith(b"HTTP/1.1 503") and b'"busy"' in answer
            writer.close()
            _, last_writer = held.pop()
            last_writer.close()  # one slot frees
            await asyncio.sleep(0.1)
            status, _, _ = await _get(it.url + "/v1/status")
            assert status == 200
            refused = it.node.metrics.rejected.labels("api", "too_many_connections")
            assert refused._value.get() == 1
        finally:
            for _, writer in held:
                writer.close()


async def test_a_slow_request_head_and_an_idle_connection_are_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_module, "API_IDLE_TIMEOUT_S", 0.5)
    async with serving(tmp_path) as it:
        slow_reader, slow = await _open(it.port)
        slow.write(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")  # never finishes its head
        idle_reader, _ = await _open(it.port)  # never sends anything
        for reader in (slow_reader, idle_reader):
            assert await asyncio.wait_for(reader.read(), 30) == b""  # closed by the node


async def test_a_slow_body_gets_408_and_a_vanished_client_no_traceback(
    served: Served, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(http_guard, "API_BODY_TIMEOUT_S", 0.5)
    reader, writer = await _open(served.port)
    writer.write(
        b"POST " + QUERY.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"method"'
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    assert head.startswith(b"HTTP/1.1 408")
    writer.close()
    with caplog.at_level(logging.DEBUG):
        _, gone = await _open(served.port)
        gone.write(
            b"POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"txs": ['
        )
        await gone.drain()
        gone.close()
        await asyncio.sleep(0.3)
        status, _, _ = await _get(served.url + "/v1/status")
        assert status == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], [
        r.getMessage() for r in caplog.records
    ]


def test_the_openapi_document_names_every_limit_it_states() -> None:
    text = json.dumps(api_module.OPENAPI)
    assert f'"maximum": {api_module.MAX_BLOCK_LIST}' in text
    assert f'"maxItems": {api_module.MAX_SUBMIT_BATCH}' in text
    [_, wait] = api_module.OPENAPI["paths"]["/v1/txs/{hash}"]["get"]["parameters"]
    assert wait["schema"]["pattern"] == f"^{api_module.WAIT_PATTERN}$"


def test_a_bucket_gives_its_burst_then_its_rate_and_forgets_the_oldest_address() -> None:
    now = [0.0]
    buckets = http_guard.Buckets(rate=10.0, burst=5, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(5)] == [0.0] * 5  # the burst, exactly
    assert buckets.take("a") == pytest.approx(0.1)  # the next token in 1/rate
    assert buckets.take("b") == 0.0  # another address has its own bucket
    now[0] += 0.1
    assert buckets.take("a") == 0.0 and buckets.take("a") > 0
    now[0] += 100
    assert [buckets.take("a") for _ in range(5)] == [0.0] * 5  # refilled to the burst, no more
    assert buckets.take("a") > 0
    for i in range(http_guard.MAX_RATE_ADDRESSES + 10):
        buckets.take(f"10.0.{i // 256}.{i % 256}")
    assert len(buckets) == http_guard.MAX_RATE_ADDRESSES


async def test_an_address_past_its_rate_gets_429_with_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_module, "API_BURST_PER_ADDRESS", 3)
    monkeypatch.setattr(api_module, "API_RATE_PER_ADDRESS", 1.0)
    async with serving(tmp_path) as it:
        for _ in range(3):
            assert (await _get(it.url + "/v1/status"))[0] == 200
        status, answer, headers = await _get(it.url + "/v1/status")
        assert (status, answer["error"]["code"]) == (429, "rate_limited")
        assert headers["Retry-After"] == "1"
        assert it.node.metrics.rejected.labels("api", "rate_limited")._value.get() == 1


async def test_one_address_holds_at_most_its_share_of_long_polls(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_module, "MAX_WAITS_PER_ADDRESS", 1)
    url = served.url + "/v1/txs/" + "00" * 32
    first = asyncio.ensure_future(_get(url + "?wait=2"))
    await asyncio.sleep(0.3)
    status, answer, _ = await _get(url + "?wait=2")
    assert (status, answer["error"]["code"]) == (429, "too_many_waits")
    assert (await first)[0] == 404  # waited, then not found
    assert (await _get(url + "?wait=0.1"))[0] == 404  # the slot is free again


async def test_a_client_past_its_mempool_share_gets_429_and_another_client_does_not(
    tmp_path: Path,
) -> None:
    from ledger_helpers import AUDITOR, CLIENT

    from node.mempool import MEMPOOL_SHARES

    async with serving(tmp_path, mempool_max_txs=MEMPOOL_SHARES) as it:
        assert it.node.mempool.share == 1
        url = it.url + "/v1/txs"
        first = anchor_tx(b"mine 1", key=CLIENT).encode().hex()
        second = anchor_tx(b"mine 2", key=CLIENT).encode().hex()
        assert (await _post(url, json.dumps({"tx": first}).encode()))[0] == 202
        status, answer = await _post(url, json.dumps({"tx": second}).encode())
        assert (status, answer["error"]["code"]) == (429, "share_full")
        other = anchor_tx(b"theirs", key=AUDITOR).encode().hex()
        status, answer = await _post(url, json.dumps({"tx": other}).encode())
        assert status != 429, answer  # (the auditor may not anchor: 400, but not for room)
