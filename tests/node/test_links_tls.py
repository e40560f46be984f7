"""Encrypted, authenticated peer links (issue 16, item 1): TLS 1.3 whose certificate key is
the node key, a handshake bound to the certificate, refusals with a logged reason.

In-process parts run real PeerNetworks on real sockets on 127.0.0.1; the parts about a
node (membership, a removed member, fuzzing a running node) run real node processes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import msgpack
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_p2p import CHAIN, GENESIS, ME, STRANGER_TLS, THEM, free_port, tls

from consensus import codec
from consensus.crypto import PrivateKey
from node import p2p
from node.p2p import HANDSHAKE_VERSION, PeerNetwork, _sign_part
from node.tls import cert_hash, certificate_node_key, node_certificate

OTHER = PrivateKey.from_seed(b"o" * 32)
RELAY = PrivateKey.from_seed(b"r" * 32)


def nothing(*_: object) -> None:
    return None


class Records(logging.Handler):
    """Every log record while installed (any thread: the fuzz listener runs on its own)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self, level: int = logging.WARNING) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]

    def bad(self) -> list[str]:
        """Anything at ERROR or above, or a traceback at a level a node shows (aiohttp logs
        a stranger's unparsable request with its traceback at DEBUG, below any node's)."""
        return [
            f"{r.levelname} {r.name}: {r.getMessage()}"
            for r in self.records
            if r.levelno >= logging.ERROR or (r.exc_info and r.levelno >= logging.INFO)
        ]


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


async def until(check, rounds: int = 1000) -> bool:  # type: ignore[no-untyped-def]
    """Poll ``check`` on the loop until it holds (bounded by rounds, not by a clock)."""
    for _ in range(rounds):
        if check():
            return True
        await asyncio.sleep(0.01)
    return bool(check())


@pytest.fixture
def fast_redial(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(p2p, "RECONNECT_MIN_S", 0.01)
    monkeypatch.setattr(p2p, "RECONNECT_MAX_S", 0.05)


async def handshake_as(
    port: int, key: PrivateKey, listener: bytes, *, binding_of: bytes | None = None
) -> tuple[str, object]:
    """Dial like a node would, by hand: TLS, hello, then an auth signed over the binding of
    ``binding_of`` (a certificate's DER) or, if None, of the certificate this client saw."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"https://127.0.0.1:{port}/p2p", ssl=STRANGER_TLS) as ws,
    ):
        seen = ws.get_extra_info("ssl_object").getpeercert(binary_form=True)
        nonce = os.urandom(32)
        await ws.send_bytes(codec.encode(["hello", HANDSHAKE_VERSION, CHAIN, key.public, nonce]))
        msg = await ws.receive()
        assert msg.type == aiohttp.WSMsgType.BINARY, msg
        _, _, listener_nonce, _ = codec.decode(msg.data)
        binding = cert_hash(binding_of if binding_of is not None else seen)
        signature = _sign_part(
            key, GENESIS, "dialer", listener_nonce, key.public, listener, binding
        )
        await ws.send_bytes(codec.encode(["auth", signature]))
        msg = await ws.receive()
        if msg.type == aiohttp.WSMsgType.BINARY:
            return "welcome", codec.decode(msg.data)
        return "closed", (ws.close_code, msg.extra)


# ---------------------------------------------------------------------- in process


async def test_a_tls_link_carries_frames_both_ways(tmp_path: Path) -> None:
    got: list[tuple[bytes, str, object]] = []
    port_me, port_them = free_port(), free_port()
    me = PeerNetwork(ME, CHAIN, GENESIS, {THEM.public: f"127.0.0.1:{port_them}"},
                     lambda k: k == THEM.public, lambda *a: got.append(a),
                     tls=tls(ME, tmp_path / "me"))  # fmt: skip
    them = PeerNetwork(THEM, CHAIN, GENESIS, {ME.public: f"127.0.0.1:{port_me}"},
                       lambda k: k == ME.public, lambda *a: got.append(a),
                       tls=tls(THEM, tmp_path / "them"))  # fmt: skip
    await me.start("127.0.0.1", port_me)
    await them.start("127.0.0.1", port_them)
    try:
        assert await until(lambda: me.connected() == [THEM.public])
        assert await until(lambda: them.connected() == [ME.public])
        me.send(THEM.public, p2p.CONSENSUS, b"vote")
        them.send(ME.public, p2p.TX, [b"tx"])
        assert await until(lambda: len(got) == 2)
        expected = [(ME.public, p2p.CONSENSUS, b"vote"), (THEM.public, p2p.TX, [b"tx"])]
        assert sorted(got) == sorted(expected)
        # What the port presents: TLS 1.3 and a certificate whose key is the node key.
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"https://127.0.0.1:{port_them}/p2p", ssl=STRANGER_TLS) as ws,
        ):
            ssl_object = ws.get_extra_info("ssl_object")
            assert ssl_object.version() == "TLSv1.3"
            assert certificate_node_key(ssl_object.getpeercert(binary_form=True)) == THEM.public
    finally:
        await me.stop()
        await them.stop()
    pem = tmp_path / "me" / "peer-tls.pem"
    assert pem.stat().st_mode & 0o777 == 0o600


async def test_the_dialer_refuses_a_certificate_whose_key_is_not_the_expected_one(
    tmp_path: Path, records: Records, fast_redial: None
) -> None:
    """The listener signs the handshake as THEM but its TLS certificate is OTHER's key: the
    dialer refuses before it sends a hello (the listener hears none)."""
    port = free_port()
    impostor = PeerNetwork(THEM, CHAIN, GENESIS, {}, lambda k: True, nothing,
                           tls=tls(OTHER, tmp_path / "other"))  # fmt: skip
    await impostor.start("127.0.0.1", port)
    dialer = PeerNetwork(ME, CHAIN, GENESIS, {THEM.public: f"127.0.0.1:{port}"}, lambda k: True,
                         nothing, tls=tls(ME, tmp_path / "me"))  # fmt: skip
    await dialer.start("127.0.0.1", free_port())
    link = dialer._links[THEM.public]
    try:
        assert await until(lambda: link.repeats >= 2 and impostor.refused >= 2)
        assert not link.connected
        assert "TLS certificate carries key" in link.last_fault
        assert "expected the node key" in link.last_fault
    finally:
        await dialer.stop()
        await impostor.stop()
    heard = [t for t in records.text() if t.startswith("refused a peer")]
    assert heard and all(t.endswith("expected a binary hello") for t in heard), heard
    faults = [t for t in records.text() if "TLS certificate carries key" in t]
    assert len(faults) == 1, faults  # logged once; the repeats are counted, not logged


async def test_a_relay_that_terminates_tls_fails_the_channel_binding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, records: Records, fast_redial: None
) -> None:
    """A relay terminates the dialer's TLS with its own certificate and forwards the
    handshake to the real listener over a second TLS session. Even with the dialer's
    certificate-key check fooled (patched to pass), the two sides see different
    certificates, so the listener's signature does not verify at the dialer."""
    listener_port, relay_port = free_port(), free_port()
    real = PeerNetwork(THEM, CHAIN, GENESIS, {}, lambda k: k == ME.public, nothing,
                       tls=tls(THEM, tmp_path / "them"))  # fmt: skip
    await real.start("127.0.0.1", listener_port)
    relay_tls = tls(RELAY, tmp_path / "relay")
    forwarded: list[str] = []

    async def relay(request: web.Request) -> web.WebSocketResponse:
        inner = web.WebSocketResponse()
        await inner.prepare(request)
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"https://127.0.0.1:{listener_port}/p2p", ssl=STRANGER_TLS) as out,
        ):

            async def pipe(a, b, name):  # type: ignore[no-untyped-def]
                async for msg in a:
                    if msg.type != aiohttp.WSMsgType.BINARY:
                        break
                    forwarded.append(name)
                    await b.send_bytes(msg.data)
                await b.close()

            await asyncio.gather(pipe(inner, out, "up"), pipe(out, inner, "down"))
        return inner

    app = web.Application()
    app.router.add_get("/p2p", relay)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", relay_port, ssl_context=relay_tls.server).start()
    monkeypatch.setattr(p2p, "certificate_node_key", lambda der: THEM.public)
    dialer = PeerNetwork(ME, CHAIN, GENESIS, {THEM.public: f"127.0.0.1:{relay_port}"},
                         lambda k: True, nothing, tls=tls(ME, tmp_path / "me"))  # fmt: skip
    await dialer.start("127.0.0.1", free_port())
    link = dialer._links[THEM.public]
    try:
        assert await until(lambda: link.repeats >= 1)
        assert not link.connected
        assert "listener's signature does not verify" in link.last_fault
        # Each attempt: the hello went up, the challenge down, and no auth ever followed.
        assert forwarded and forwarded == ["up", "down"] * (len(forwarded) // 2)
    finally:
        await dialer.stop()
        await real.stop()
        await runner.cleanup()
    heard = [t for t in records.text() if t.startswith("refused a peer")]
    assert heard and all(t.endswith("expected a binary auth") for t in heard), heard


async def test_the_listener_refuses_an_auth_signed_over_another_certificate(
    tmp_path: Path,
) -> None:
    """A member's auth signed over a relay's certificate hash (what it signs when its TLS
    session ended at a relay) is refused; signed over the certificate it saw, it is welcome."""
    port = free_port()
    listener = PeerNetwork(THEM, CHAIN, GENESIS, {}, lambda k: k == ME.public, nothing,
                           tls=tls(THEM, tmp_path / "them"))  # fmt: skip
    await listener.start("127.0.0.1", port)
    relay_der = node_certificate(RELAY).public_bytes(serialization.Encoding.DER)
    try:
        outcome, detail = await handshake_as(port, ME, THEM.public, binding_of=relay_der)
        assert outcome == "closed" and detail[0] == 4001, detail  # type: ignore[index]
        assert "dialer's signature does not verify" in detail[1]  # type: ignore[index]
        assert await handshake_as(port, ME, THEM.public) == ("welcome", ["welcome"])
        assert listener.refused == 1
    finally:
        await listener.stop()


async def test_tls_and_plain_nodes_fail_the_link_with_a_logged_reason(
    tmp_path: Path, records: Records, fast_redial: None
) -> None:
    """Every node of a network must agree on peer_tls; each side's dialer says why not."""
    tls_port, plain_port = free_port(), free_port()
    secure = PeerNetwork(ME, CHAIN, GENESIS, {THEM.public: f"127.0.0.1:{plain_port}"},
                         lambda k: True, nothing, tls=tls(ME, tmp_path / "me"))  # fmt: skip
    plain = PeerNetwork(THEM, CHAIN, GENESIS, {ME.public: f"127.0.0.1:{tls_port}"},
                        lambda k: True, nothing, tls=None)  # fmt: skip
    await secure.start("127.0.0.1", tls_port)
    await plain.start("127.0.0.1", plain_port)
    to_plain, to_tls = secure._links[THEM.public], plain._links[ME.public]
    try:
        assert await until(lambda: to_plain.repeats >= 2 and to_tls.repeats >= 2)
        assert not secure.connected() and not plain.connected()
    finally:
        await secure.stop()
        await plain.stop()
    warned = records.text()
    tls_side = [t for t in warned if t.startswith(f"TLS with 127.0.0.1:{plain_port} failed")]
    plain_side = [t for t in warned if "closed the connection before the websocket upgrade" in t]
    assert len(tls_side) == 1 and "peer_tls false" in tls_side[0], warned
    assert len(plain_side) == 1 and "does that peer require TLS" in plain_side[0], warned
    assert not records.bad()


async def test_a_node_of_the_old_handshake_is_told_why(tmp_path: Path) -> None:
    port = free_port()
    net = PeerNetwork(THEM, CHAIN, GENESIS, {}, lambda k: True, nothing,
                      tls=tls(THEM, tmp_path))  # fmt: skip
    await net.start("127.0.0.1", port)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"https://127.0.0.1:{port}/p2p", ssl=STRANGER_TLS) as ws,
        ):
            await ws.send_bytes(codec.encode(["hello", CHAIN, ME.public, b"n" * 32]))
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4001
            assert msg.extra.startswith("peer speaks handshake v1")
            assert HANDSHAKE_VERSION in msg.extra
    finally:
        await net.stop()


# ---------------------------------------------------------------------- fuzzing


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A TLS listener on its own loop thread, for hypothesis to throw handshakes at."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, loop).result(60)

    handler = Records()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    port = free_port()
    where = tmp_path_factory.mktemp("fuzz")

    async def make() -> PeerNetwork:
        return PeerNetwork(THEM, CHAIN, GENESIS, {}, lambda k: k == ME.public, nothing,
                           tls=tls(THEM, where))  # fmt: skip

    net = run(make())
    run(net.start("127.0.0.1", port))
    state = SimpleNamespace(net=net, port=port, run=run, records=handler, attempts=0, where=where)
    try:
        yield state
    finally:
        run(net.stop())
        root.removeHandler(handler)
        root.setLevel(old_level)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()


async def _throw(port: int, hello: bytes, auth: bytes | None) -> tuple[int | None, list[str]]:
    """Send ``hello`` (and ``auth`` if a challenge comes back, else a junk auth so a valid
    hello does not wait for the handshake timeout); the close code and what came back."""
    seen: list[str] = []
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"https://127.0.0.1:{port}/p2p", ssl=STRANGER_TLS) as ws,
    ):
        await ws.send_bytes(hello)
        while True:
            msg = await ws.receive()
            seen.append(msg.type.name)
            if msg.type != aiohttp.WSMsgType.BINARY:
                return ws.close_code, seen
            await ws.send_bytes(auth if auth is not None else b"\xc1")
            auth = b"\xc1"


def _valid_hello() -> list[object]:
    return ["hello", HANDSHAKE_VERSION, CHAIN, ME.public, hashlib.sha256(b"n").digest()]


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for at, xor in edits:
        out[at % len(out)] ^= xor
    return bytes(out)


edits = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(1, 255)), min_size=1, max_size=4)
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=80)
    | st.text(max_size=40) | st.sampled_from(["hello", "auth", HANDSHAKE_VERSION, CHAIN]),
    lambda inner: st.lists(inner, max_size=6),
    max_leaves=12,
)  # fmt: skip
frames = st.one_of(
    st.binary(max_size=2000),
    values.map(lambda v: msgpack.packb(v, use_bin_type=True)),
    st.lists(values, min_size=0, max_size=6).map(
        lambda rest: msgpack.packb(["hello", *rest], use_bin_type=True)
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames)
def test_fuzz_generated_hellos_are_refused(fuzzed: SimpleNamespace, frame: bytes) -> None:
    fuzzed.attempts += 1
    code, seen = fuzzed.run(_throw(fuzzed.port, frame, None))
    assert code == 4001 and seen[-1] == "CLOSE", (code, seen)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutation=edits, where=st.sampled_from(["hello", "auth"]))
def test_fuzz_mutated_hello_and_auth_frames_are_refused(
    fuzzed: SimpleNamespace, mutation: list[tuple[int, int]], where: str
) -> None:
    """Byte-mutated copies of a member's valid hello, or of a well-formed auth frame after a
    valid hello (the client holds ME's key but not a signature over the listener's nonce)."""
    hello = codec.encode(_valid_hello())
    auth = codec.encode(["auth", bytes(64)])
    if where == "hello":
        hello = _mutate(hello, mutation)
    else:
        auth = _mutate(auth, mutation)
    fuzzed.attempts += 1
    code, seen = fuzzed.run(_throw(fuzzed.port, hello, auth))
    assert code == 4001 and seen[-1] == "CLOSE", (code, seen)


def test_bytes_that_are_not_tls_are_closed_at_the_tls_layer(fuzzed: SimpleNamespace) -> None:
    """An HTTP request, a handshake record of junk, random bytes: the server closes the
    socket (the reads below end) and nothing reaches the handshake."""
    refused = fuzzed.net.refused
    raws = (b"GET /p2p HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\x05junk!", os.urandom(64))
    for raw in raws:
        with socket.create_connection(("127.0.0.1", fuzzed.port), timeout=30) as s:
            s.sendall(raw)
            while s.recv(4096):
                pass
    assert fuzzed.net.refused == refused


def test_after_the_fuzzing_the_listener_links_a_member_and_logged_no_error(
    fuzzed: SimpleNamespace,
) -> None:
    async def member_links() -> bool:
        dialer = PeerNetwork(ME, CHAIN, GENESIS, {THEM.public: f"127.0.0.1:{fuzzed.port}"},
                             lambda k: True, nothing, tls=tls(ME, fuzzed.where / "me"))  # fmt: skip
        await dialer.start("127.0.0.1", free_port())
        try:
            return await until(lambda: dialer._links[THEM.public].connected)
        finally:
            await dialer.stop()

    assert fuzzed.attempts >= 100
    assert fuzzed.run(member_links())
    assert fuzzed.net.refused == fuzzed.attempts  # every fuzzed handshake was refused
    assert not fuzzed.records.bad(), fuzzed.records.bad()


# ---------------------------------------------------------------------- real nodes


async def _hello_as(address: str, key: PrivateKey, chain_id: str) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"https://{address}/p2p", ssl=STRANGER_TLS) as ws,
    ):
        await ws.send_bytes(
            codec.encode(["hello", HANDSHAKE_VERSION, chain_id, key.public, os.urandom(32)])
        )
        msg = await ws.receive()
        if msg.type == aiohttp.WSMsgType.BINARY:
            return "challenge"
        return f"closed {ws.close_code}: {msg.extra}"


async def _certificate_key(address: str) -> tuple[str, bytes | None]:
    host, port = address.rsplit(":", 1)
    _, writer = await asyncio.open_connection(host, int(port), ssl=STRANGER_TLS)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        return ssl_object.version(), certificate_node_key(ssl_object.getpeercert(True))
    finally:
        writer.close()


async def _plain_http(address: str) -> str:
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"http://{address}/p2p") as ws,
        ):
            return f"a plain websocket came up: {ws}"
    except aiohttp.ClientError as exc:
        return type(exc).__name__


@pytest.mark.slow
def test_real_nodes_link_over_tls_refuse_strangers_and_drop_a_removed_member(
    tmp_path: Path,
) -> None:
    from test_network import govern, running_network

    from consensus.crypto import key_hex
    from node import localnet

    with running_network(tmp_path / "net") as n:
        genesis = n.net.genesis()
        org2 = n.node("org2")
        # Linked (the fixture waited for every node's peers) over TLS 1.3, each port
        # presenting a certificate whose key is that member's node key.
        for member in genesis.members:
            version, key = asyncio.run(_certificate_key(member.peer))
            assert version == "TLSv1.3" and key == member.node_key
        assert "(TLS 1.3)" in (org2.home / "node.log").read_text()
        assert asyncio.run(_plain_http(org2.peer)) in {
            "ServerDisconnectedError", "ClientOSError", "ClientConnectionResetError"
        }  # fmt: skip
        # A stranger's key is refused at the handshake, inside TLS.
        outcome = asyncio.run(_hello_as(org2.peer, PrivateKey.generate(), n.chain_id))
        assert outcome == "closed 4001: key is not in the current validator set"
        # Fuzzed handshakes against a running node: refused, nothing at ERROR, no traceback.
        hello = codec.encode(["hello", HANDSHAKE_VERSION, n.chain_id, ME.public, os.urandom(32)])
        junk = [
            b"\xc1", codec.encode(["hello"]), codec.encode(["auth", b"x" * 64]),
            *(_mutate(hello, [(i * 7, 0x41)]) for i in range(12)),
        ]  # fmt: skip
        port = int(org2.peer.rsplit(":", 1)[1])
        for frame in junk:
            code, _ = asyncio.run(_throw(port, frame, None))
            assert code == 4001
        log2 = (org2.home / "node.log").read_text()
        assert "Traceback" not in log2 and " ERROR " not in log2

        # org4 is removed by governance: the others drop its links and refuse it.
        key4 = PrivateKey.load(n.node("org4").home / "node.key")
        log1 = n.node("org1").home / "node.log"
        before = len(log1.read_text().splitlines())
        govern(n, "remove-member", "org4")

        def dropped() -> bool:
            statuses = [n.status(o) for o in ("org1", "org2", "org3")]
            return all(s is not None and len(s["peers"]) == 2 for s in statuses) and all(
                key_hex(key4.public) not in s["peers"]  # type: ignore[index]
                for s in statuses
            )

        n.wait("org1..3 dropped org4's links", dropped)
        outcome = asyncio.run(_hello_as(n.node("org1").peer, key4, n.chain_id))
        assert outcome == "closed 4001: key is not in the current validator set"

        def org4_dialer_refused() -> bool:
            new = log1.read_text().splitlines()[before:]
            return any("refused a peer" in line and "not in the current validator" in line
                       for line in new)  # fmt: skip

        n.wait("org1 refused org4's own dialer", org4_dialer_refused)
        # The remaining three still commit.
        [tx] = n.submit("org1", n.anchors(1))
        n.wait("an anchor commits without org4", lambda: n.committed("org3", tx))
        for org in ("org1", "org2", "org3"):
            text = (n.node(org).home / "node.log").read_text()
            assert "Traceback" not in text and " ERROR " not in text, org
        assert localnet.get_json(n.node("org2").url + "/v1/status") is not None


@pytest.mark.slow
def test_plain_links_are_logged_and_loud_off_loopback(tmp_path: Path) -> None:
    """peer_tls false: an info line on a loopback peer address, a WARNING on any other."""
    import json
    import time

    from node import localnet

    for listen_host, level, text in (
        ("127.0.0.1", "INFO", "peer links are plain (peer_tls false): development on loopback"),
        ("0.0.0.0", "WARNING", "PEER LINKS ARE NOT ENCRYPTED: peer_tls is false"),
    ):
        net = localnet.create(tmp_path / listen_host, 1)
        [node] = net.nodes
        path = node.home / "config.json"
        port = node.peer.rsplit(":", 1)[1]
        path.write_text(json.dumps(json.loads(path.read_text()) | {
            "peer_tls": False, "peer_listen": f"{listen_host}:{port}"}))  # fmt: skip
        proc = localnet.start(node)
        try:
            for _ in range(300):
                if localnet.get_json(node.url + "/v1/status", 2) is not None:
                    break
                time.sleep(0.2)
            log = (node.home / "node.log").read_text()
            line = next((x for x in log.splitlines() if text in x), None)
            assert line is not None and f" {level} " in line, log
            assert "(plain)" in log and not (node.home / "peer-tls.pem").exists()
        finally:
            localnet.stop(proc)
