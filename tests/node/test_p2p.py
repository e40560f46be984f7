"""Peer links against hostile peers: real aiohttp sockets on 127.0.0.1, no node around them.

Links run over TLS as a node's do (node/tls.py); tests/node/test_links_tls.py has the TLS
checks themselves (certificate keys, channel binding, plain/TLS mismatches, fuzzing)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
from pathlib import Path

from aiohttp import web

from consensus import codec
from consensus.crypto import PrivateKey
from node import p2p
from node.p2p import PeerNetwork
from node.tls import PeerTLS, peer_client_context

ME = PrivateKey.from_seed(b"m" * 32)
THEM = PrivateKey.from_seed(b"t" * 32)
CHAIN = "vigil-p2p"
GENESIS = hashlib.sha256(b"vigil-p2p/genesis").digest()


def tls(key: PrivateKey, where: Path) -> PeerTLS:
    """The node's TLS side as a node makes it at start-up (its certificate from ``key``)."""
    where.mkdir(parents=True, exist_ok=True)
    return PeerTLS.create(key, where)


STRANGER_TLS: ssl.SSLContext = peer_client_context()
"""What an unauthenticated client dials with: TLS 1.3, no certificate of its own."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_the_dialer_survives_malformed_challenges_and_links_up(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Fault 7: one malformed handshake reply ended the dial task and nothing restarted it.

    The fake listener answers the first hellos with challenges whose fields have
    the wrong types (a TypeError or codec error in the dialer before the fix), then
    runs the real listener's side of the handshake.
    """
    monkeypatch.setattr(p2p, "RECONNECT_MIN_S", 0.01)
    monkeypatch.setattr(p2p, "RECONNECT_MAX_S", 0.05)
    bad_replies = [
        codec.encode(["challenge", 5, b"x", None]),
        codec.encode(["challenge", THEM.public, 7, b"s" * 64]),
        b"\xc1\xc1",  # not msgpack at all
        codec.encode(["challenge", THEM.public]),
    ]
    attempts = 0
    them_tls = tls(THEM, tmp_path / "them")
    real = PeerNetwork(THEM, CHAIN, GENESIS, {}, lambda key: key == ME.public, lambda *a: None,
                       tls=them_tls)  # fmt: skip

    async def hostile(request: web.Request) -> web.WebSocketResponse:
        nonlocal attempts
        attempts += 1
        if attempts <= len(bad_replies):
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            await ws.receive()
            await ws.send_bytes(bad_replies[attempts - 1])
            await ws.close()
            return ws
        return await real._accept(request)

    app = web.Application()
    app.router.add_get("/p2p", hostile)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=them_tls.server).start()
    dialer = PeerNetwork(ME, CHAIN, GENESIS, {THEM.public: f"127.0.0.1:{port}"}, lambda k: True,
                         lambda *a: None, tls=tls(ME, tmp_path / "me"))  # fmt: skip
    await dialer.start("127.0.0.1", free_port())
    try:
        for _ in range(400):
            if dialer._links[THEM.public].connected:
                break
            await asyncio.sleep(0.01)
        assert dialer._links[THEM.public].connected
        assert attempts == len(bad_replies) + 1
    finally:
        await dialer.stop()
        await real.stop()
        await runner.cleanup()


async def test_the_listener_refuses_any_hostile_hello_and_stays_up(tmp_path: Path) -> None:
    net = PeerNetwork(THEM, CHAIN, GENESIS, {}, lambda key: key == ME.public, lambda *a: None,
                      tls=tls(THEM, tmp_path))  # fmt: skip
    port = free_port()
    await net.start("127.0.0.1", port)
    import aiohttp

    hellos = [
        b"\xc1",
        codec.encode(["hello"]),
        codec.encode(["hello", p2p.HANDSHAKE_VERSION, CHAIN, 5, b"n" * 32]),
        codec.encode(["hello", p2p.HANDSHAKE_VERSION, [CHAIN], ME.public, b"n" * 32]),
        codec.encode(["hello", p2p.HANDSHAKE_VERSION, CHAIN, ME.public, "nonce"]),
        codec.encode(["hello", "vigil/handshake/v9", CHAIN, ME.public, b"n" * 32]),
        codec.encode(["hello", CHAIN, ME.public, b"n" * 32]),  # the v1 hello
    ]
    try:
        async with aiohttp.ClientSession() as session:
            for hello in hellos:
                url = f"https://127.0.0.1:{port}/p2p"
                async with session.ws_connect(url, ssl=STRANGER_TLS) as ws:
                    await ws.send_bytes(hello)
                    msg = await ws.receive()
                    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert net.refused == len(hellos)
    finally:
        await net.stop()


def test_outbound_queues_are_bounded_in_bytes_not_only_frames() -> None:
    """Fault 3: queues were bounded by frame count: 64 queued 16 MiB frames per peer."""
    peers = {THEM.public: "127.0.0.1:1"}
    net = PeerNetwork(ME, CHAIN, GENESIS, peers, lambda k: True, lambda *a: None, tls=None)
    big = bytes(p2p.MAX_FRAME_BYTES - p2p.FRAME_OVERHEAD_BYTES)
    fits = p2p.MAX_BLOCKS_QUEUE_BYTES // len(p2p.encode_frame(p2p.MODEL, big))
    assert fits >= 2
    sent = [net.send(THEM.public, p2p.MODEL, big) for _ in range(fits + 1)]
    assert sent == [True] * fits + [False]
    link = net._links[THEM.public]
    assert link.queued_bytes["blocks"] <= p2p.MAX_BLOCKS_QUEUE_BYTES and link.dropped == 1
    # Consensus traffic has its own budget: still accepted while the blocks queue is full.
    assert net.send(THEM.public, p2p.CONSENSUS, b"vote")
    assert not net.send(THEM.public, p2p.MODEL, bytes(p2p.MAX_FRAME_BYTES))  # over one frame


def test_token_buckets_bound_requests_per_peer() -> None:
    from node.budget import PeerBudgets

    now = [0.0]
    budgets = PeerBudgets(clock=lambda: now[0])
    a, b = b"a" * 32, b"b" * 32
    assert [budgets.allow(a, "fetch", 4.0, 8) for _ in range(10)] == [True] * 8 + [False] * 2
    assert budgets.allow(b, "fetch", 4.0, 8)  # another peer's bucket is its own
    now[0] += 0.25  # one token back
    assert budgets.allow(a, "fetch", 4.0, 8) and not budgets.allow(a, "fetch", 4.0, 8)
    assert budgets.first_send(a, b"model", 10.0) and not budgets.first_send(a, b"model", 10.0)
    now[0] += 10.0
    assert budgets.first_send(a, b"model", 10.0)
    assert budgets.refused == {"fetch": 3, "repeat": 1}


async def test_the_listener_refuses_a_small_order_key_even_if_listed(tmp_path: Path) -> None:
    """Fault 6, handshake: a small-order key is refused even where the member check passes."""
    import aiohttp

    identity = bytes([1]) + bytes(31)
    net = PeerNetwork(THEM, CHAIN, GENESIS, {}, lambda key: True, lambda *a: None,
                      tls=tls(THEM, tmp_path))  # fmt: skip
    port = free_port()
    await net.start("127.0.0.1", port)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"https://127.0.0.1:{port}/p2p", ssl=STRANGER_TLS) as ws,
        ):
            hello = ["hello", p2p.HANDSHAKE_VERSION, CHAIN, identity, b"n" * 32]
            await ws.send_bytes(codec.encode(hello))
            msg = await ws.receive()
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert b"small order" in (msg.extra or "").encode()
        assert net.refused == 1
    finally:
        await net.stop()


async def test_the_peer_port_refuses_connections_past_its_limit_and_stalled_tls(
    monkeypatch,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    """Strangers' sockets are bounded in number (MAX_PEER_CONNECTIONS) and in time: one that
    never starts its TLS handshake is dropped after HANDSHAKE_TIMEOUT_S, not asyncio's 60 s."""
    monkeypatch.setattr(p2p, "MAX_PEER_CONNECTIONS", 4)
    monkeypatch.setattr(p2p, "HANDSHAKE_TIMEOUT_S", 0.5)
    net = PeerNetwork(ME, CHAIN, GENESIS, {}, lambda key: False, lambda *a: None,
                      tls=tls(ME, tmp_path / "me"))  # fmt: skip
    port = free_port()
    await net.start("127.0.0.1", port)
    held = []
    try:
        for _ in range(4):
            held.append(await asyncio.open_connection("127.0.0.1", port))
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed, no handshake begun
        writer.close()
        assert net.refused == 1  # counted as refused (the held ones are not, yet)
        for reader, _ in held:  # silent sockets: the TLS handshake times out, they are closed
            assert await asyncio.wait_for(reader.read(), 30) == b""
    finally:
        for _, writer in held:
            writer.close()
        await net.stop()
