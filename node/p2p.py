"""Validator links: aiohttp websockets over TLS 1.3 on the peer port, a signed handshake
bound to the TLS certificate, bounded queues.

Each node dials every other validator and keeps that *outbound* link for
sending; what a peer sends arrives on the link that peer dialled (*inbound*).
So every pair has two one-way links, and reconnecting one never races the
other.

TLS (node/tls.py): the listener's certificate is self-signed and its key IS the
node's Ed25519 key. The dialer, before it sends a byte of the handshake, checks
that the certificate's public key is the node key it expected at that address
(TLS 1.3's CertificateVerify has proved the listener holds it); no CA, name or
date is checked. The dialer presents no certificate: Python's ``ssl`` can ask a
client for one only with a CA check of its chain, and self-signed node keys have
no CA, so the dialer is authenticated by its handshake signature below, which
covers the listener's certificate hash (channel binding). Each frame after the
handshake rides the TLS record layer, so nobody on the path can change or
inject one.

Handshake (binary frames, canonical msgpack, signatures under
``vigil/handshake/v2`` bound to the genesis hash; ``binding`` is the SHA-256 of
the listener's TLS certificate (DER) as each side sees it, empty on a plain link):

    dialer   -> listener   ["hello", "vigil/handshake/v2", chain_id, dialer_key, dialer_nonce]
    listener -> dialer     ["challenge", listener_key, listener_nonce,
                            sign(["listener", dialer_nonce, listener_key, dialer_key, binding])]
    dialer   -> listener   ["auth", sign(["dialer", listener_nonce, dialer_key, listener_key,
                                          binding])]
    listener -> dialer     ["welcome"]

The listener admits only acceptable (not weak) keys of the current validator
set, the dialer only the key it expected at that address. A peer of another
chain with the same chain id (a different genesis) fails the signature checks.
A relay that terminates TLS with any other certificate fails them too: the two
sides' bindings differ. A node of the v1 handshake (no TLS) is refused with a
reason naming the version, and a link whose two ends disagree on TLS (``peer_tls``
in config.json) fails with a logged reason at the dialer: a TLS dialer meets a
plain listener with a TLS protocol error, a plain dialer meets a TLS listener
that closes the connection before the upgrade. Link faults are logged once per
distinct reason and repeats counted.

Plain links (``peer_tls: false``) are for development: the same handshake with
an empty binding, and no integrity for the frames after it.

After that every frame is
``[kind, payload]`` with kind one of consensus, tx, fetch, blocks, model-fetch, model (a tx
frame's payload is a list of encoded transactions: a client's batch travels together).

Consensus frames never wait behind client traffic: each outbound link has a
consensus queue that is always drained first, and separate bounded queues for
blocks and transactions (DESIGN.md, lessons from the field).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import WSMsgType, web

from consensus import codec
from consensus.certificate import MAX_VALIDATORS
from consensus.crypto import (
    DOMAIN_HANDSHAKE,
    PrivateKey,
    is_acceptable_public_key,
    key_hex,
    verify,
)
from consensus.messages import MAX_MESSAGE_BYTES
from ml.limits import MAX_ARTIFACT_BYTES
from node.app.types import MAX_TX_BYTES
from node.http_guard import GuardedSite
from node.tls import PeerTLS, cert_hash, certificate_node_key

log = logging.getLogger("vigil.p2p")

MAX_FRAME_BYTES = 20 * 1024 * 1024
"""Largest websocket frame accepted from a peer: a consensus message, a catch-up answer
(at most MAX_SERVE_BYTES of blocks) or a model artifact of up to 16 MiB, each with its
framing."""
FRAME_OVERHEAD_BYTES = 64
"""``[kind, payload]`` around a payload: an array header, the kind, a bin header."""
assert MAX_MESSAGE_BYTES + FRAME_OVERHEAD_BYTES <= MAX_FRAME_BYTES
assert MAX_ARTIFACT_BYTES + FRAME_OVERHEAD_BYTES <= MAX_FRAME_BYTES
assert MAX_TX_BYTES + FRAME_OVERHEAD_BYTES <= MAX_FRAME_BYTES
MAX_CONSENSUS_QUEUE = 4_096
MAX_BLOCKS_QUEUE = 64
MAX_TX_QUEUE = 20_000
"""Frames queued per peer link, by queue (consensus; blocks and models; transactions)."""
MAX_CONSENSUS_QUEUE_BYTES = 64 * 1024 * 1024
MAX_BLOCKS_QUEUE_BYTES = 48 * 1024 * 1024
MAX_TX_QUEUE_BYTES = 32 * 1024 * 1024
"""Bytes queued per peer link, by queue: past either bound a frame is dropped and counted.
Each holds at least two of the largest frames it carries (consensus traffic keeps its own
budget, so a flood of answers never starves votes)."""
assert MAX_CONSENSUS_QUEUE_BYTES >= 2 * (MAX_MESSAGE_BYTES + FRAME_OVERHEAD_BYTES)
assert MAX_BLOCKS_QUEUE_BYTES >= 2 * MAX_FRAME_BYTES
HANDSHAKE_TIMEOUT_S = 5.0
MAX_PEER_CONNECTIONS = 2 * MAX_VALIDATORS + 64
"""Open connections on the peer port: an inbound link from every validator, twice over
(a link being replaced), and room for strangers' handshakes, each bounded by
HANDSHAKE_TIMEOUT_S (TLS included); the next connection is refused at once."""
RECONNECT_MIN_S = 0.1
RECONNECT_MAX_S = 5.0
NONCE_BYTES = 32
HANDSHAKE_VERSION = DOMAIN_HANDSHAKE
"""Named in the hello, so a node of another handshake version is refused with a clear reason."""
MAX_CLOSE_REASON = 120
"""Characters of a refusal's reason sent in the websocket close frame (its limit is 123 bytes)."""

CONSENSUS, TX, FETCH, BLOCKS = "consensus", "tx", "fetch", "blocks"
MODEL_FETCH, MODEL = "model-fetch", "model"
FRAME_KINDS = frozenset({CONSENSUS, TX, FETCH, BLOCKS, MODEL_FETCH, MODEL})
MAX_GOSSIP_FRAME_TXS = 1_000
MAX_GOSSIP_FRAME_BYTES = 4 * 1024 * 1024
"""A TX frame carries a list of encoded transactions, at most this many and this many bytes
(a batch a client submitted together travels as one frame, not one frame each)."""
GOSSIP_ITEM_OVERHEAD = 5
"""msgpack's header of one bin item in a TX frame."""
assert MAX_TX_BYTES + GOSSIP_ITEM_OVERHEAD <= MAX_GOSSIP_FRAME_BYTES
assert MAX_GOSSIP_FRAME_BYTES + FRAME_OVERHEAD_BYTES <= MAX_FRAME_BYTES
assert MAX_TX_QUEUE_BYTES >= 2 * (MAX_GOSSIP_FRAME_BYTES + FRAME_OVERHEAD_BYTES)

QUEUE_OF = {CONSENSUS: "consensus", BLOCKS: "blocks", MODEL: "blocks"}
"""Which outbound queue a frame kind waits in (everything else: txs)."""
QUEUE_BOUNDS = {
    "consensus": (MAX_CONSENSUS_QUEUE, MAX_CONSENSUS_QUEUE_BYTES),
    "blocks": (MAX_BLOCKS_QUEUE, MAX_BLOCKS_QUEUE_BYTES),
    "txs": (MAX_TX_QUEUE, MAX_TX_QUEUE_BYTES),
}

OnFrame = Callable[[bytes, str, object], None]


class HandshakeError(Exception):
    pass


def _sign_part(
    key: PrivateKey, chain: bytes, role: str, nonce: bytes, me: bytes, them: bytes, binding: bytes
) -> bytes:
    return key.sign(DOMAIN_HANDSHAKE, chain, codec.encode([role, nonce, me, them, binding]))


def _check_part(
    chain: bytes,
    role: str,
    nonce: bytes,
    signer: bytes,
    other: bytes,
    binding: bytes,
    signature: bytes,
) -> bool:
    message = codec.encode([role, nonce, signer, other, binding])
    return verify(signer, DOMAIN_HANDSHAKE, chain, message, signature)


def _is_ssl_failure(exc: BaseException) -> bool:
    """Whether a connection failure was TLS's own (a protocol error, not a refused socket)."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        if isinstance(seen, (ssl.SSLError, aiohttp.ClientSSLError)):
            return True
        seen = getattr(seen, "os_error", None) or seen.__cause__ or seen.__context__
    return False


def gossip_frames(raws: list[bytes]) -> list[list[bytes]]:
    """Split encoded transactions into TX frame payloads within the frame's count and byte
    bounds (each transaction fits one: MAX_TX_BYTES is below the byte bound, asserted)."""
    frames: list[list[bytes]] = []
    size = 0
    for raw in raws:
        item = len(raw) + GOSSIP_ITEM_OVERHEAD
        full = bool(frames) and len(frames[-1]) >= MAX_GOSSIP_FRAME_TXS
        if not frames or full or size + item > MAX_GOSSIP_FRAME_BYTES:
            frames.append([])
            size = 0
        frames[-1].append(raw)
        size += item
    return frames


def encode_frame(kind: str, payload: object) -> bytes:
    return codec.encode([kind, payload])


def decode_frame(data: bytes) -> tuple[str, object]:
    value = codec.decode(data, max_size=MAX_FRAME_BYTES)
    if (
        type(value) is not list
        or len(value) != 2
        or type(value[0]) is not str  # an array there is unhashable: a TypeError, not a refusal
        or value[0] not in FRAME_KINDS
    ):
        raise codec.MalformedError("frame must be [kind, payload] with a known kind")
    return value[0], value[1]


@dataclass
class _Outbound:
    """Queues and state of the link we dial to one peer."""

    address: str
    consensus: deque[bytes] = field(default_factory=deque)
    blocks: deque[bytes] = field(default_factory=deque)
    txs: deque[bytes] = field(default_factory=deque)
    queued_bytes: dict[str, int] = field(
        default_factory=lambda: {"consensus": 0, "blocks": 0, "txs": 0}
    )
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    connected: bool = False
    dropped: int = 0
    task: asyncio.Task | None = None
    last_fault: str = ""
    repeats: int = 0


class PeerNetwork:
    def __init__(
        self,
        key: PrivateKey,
        chain_id: str,
        chain: bytes,
        peers: dict[bytes, str],
        is_member: Callable[[bytes], bool],
        on_frame: OnFrame,
        *,
        tls: PeerTLS | None,
    ) -> None:
        """``tls`` None: plain links (development only; every node of the network must agree)."""
        self.key = key
        self.tls = tls
        self.chain_id = chain_id
        self.chain = chain
        self.is_member = is_member
        self.on_frame = on_frame
        self._links: dict[bytes, _Outbound] = {}
        self._inbound: dict[bytes, web.WebSocketResponse] = {}
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._closing = False
        self._closers: set[asyncio.Future] = set()
        self.refused = 0
        self.traffic: dict[tuple[str, str], list[int]] = {}
        """(frame kind, "in" or "out") -> [frames, bytes]; read by the node's metrics. Kinds are
        the protocol's own (an unknown kind from a peer counts as "unknown"), so it stays small."""
        for peer, address in peers.items():
            if peer != key.public:
                self._links[peer] = _Outbound(address)

    # ------------------------------------------------------------ lifecycle

    async def start(self, host: str, port: int) -> None:
        app = web.Application(client_max_size=MAX_FRAME_BYTES)
        app.router.add_get("/p2p", self._accept)
        self._runner = web.AppRunner(app, access_log=None, keepalive_timeout=HANDSHAKE_TIMEOUT_S)
        await self._runner.setup()
        ssl_context = self.tls.server if self.tls is not None else None
        site = GuardedSite(
            self._runner, host, port, limit=MAX_PEER_CONNECTIONS, ssl_context=ssl_context,
            tls_handshake_s=HANDSHAKE_TIMEOUT_S,
            on_refuse=self._refuse_connection,
        )  # fmt: skip
        await site.start()
        self._session = aiohttp.ClientSession()
        for peer in self._links:
            self._start_dialer(peer)

    def _start_dialer(self, peer: bytes) -> None:
        link = self._links[peer]
        link.task = asyncio.create_task(
            self._dial_forever(peer, link), name=f"dial-{key_hex(peer)[:8]}"
        )

    async def stop(self) -> None:
        self._closing = True
        for link in self._links.values():
            if link.task is not None:
                link.task.cancel()
        for link in self._links.values():
            if link.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await link.task
        for ws in list(self._inbound.values()):
            await ws.close()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def update_peers(self, peers: dict[bytes, str]) -> None:
        """Follow a validator-set change: dial new members, drop removed ones."""
        for peer in list(self._links):
            if peer not in peers:
                link = self._links.pop(peer)
                if link.task is not None:
                    link.task.cancel()
                ws = self._inbound.pop(peer, None)
                if ws is not None:
                    self._closers.add(asyncio.ensure_future(ws.close()))
        for peer, address in peers.items():
            if peer != self.key.public and peer not in self._links:
                self._links[peer] = _Outbound(address)
                if self._session is not None:
                    self._start_dialer(peer)

    # ------------------------------------------------------------ sending

    def send(self, peer: bytes, kind: str, payload: object) -> bool:
        link = self._links.get(peer)
        if link is None:
            return False
        frame = encode_frame(kind, payload)
        name = QUEUE_OF.get(kind, "txs")
        queue: deque[bytes] = getattr(link, name)
        count_bound, byte_bound = QUEUE_BOUNDS[name]
        if len(frame) > MAX_FRAME_BYTES:
            log.warning("not sending a %d-byte %s frame: over MAX_FRAME_BYTES", len(frame), kind)
            link.dropped += 1
            return False
        if len(queue) >= count_bound or link.queued_bytes[name] + len(frame) > byte_bound:
            link.dropped += 1
            return False
        queue.append(frame)
        link.queued_bytes[name] += len(frame)
        self._count(kind, "out", len(frame))
        link.ready.set()
        return True

    def _refuse_connection(self) -> None:
        """A connection past MAX_PEER_CONNECTIONS: counted with the handshakes refused."""
        self.refused += 1

    def _count(self, kind: str, direction: str, size: int) -> None:
        entry = self.traffic.setdefault((kind, direction), [0, 0])
        entry[0] += 1
        entry[1] += size

    def broadcast(self, kind: str, payload: object) -> None:
        for peer in self._links:
            self.send(peer, kind, payload)

    def peers(self) -> list[bytes]:
        """Every peer this node links to (connected or not)."""
        return list(self._links)

    def connected(self) -> list[bytes]:
        """Peers we can send to and that have dialled us."""
        return [p for p, link in self._links.items() if link.connected and p in self._inbound]

    def queue_depths(self) -> dict[str, int]:
        return {
            "consensus": sum(len(x.consensus) for x in self._links.values()),
            "blocks": sum(len(x.blocks) for x in self._links.values()),
            "txs": sum(len(x.txs) for x in self._links.values()),
            "bytes": sum(sum(x.queued_bytes.values()) for x in self._links.values()),
            "dropped": sum(x.dropped for x in self._links.values()),
        }

    async def _dial_forever(self, peer: bytes, link: _Outbound) -> None:
        delay = RECONNECT_MIN_S
        scheme = "http" if self.tls is None else "https"
        ssl_option: ssl.SSLContext | bool = False if self.tls is None else self.tls.client
        while not self._closing:
            try:
                assert self._session is not None
                async with self._session.ws_connect(
                    f"{scheme}://{link.address}/p2p",
                    max_msg_size=MAX_FRAME_BYTES,
                    heartbeat=10.0,
                    timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
                    ssl=ssl_option,
                ) as ws:
                    await asyncio.wait_for(self._dialer_handshake(ws, peer), HANDSHAKE_TIMEOUT_S)
                    link.connected = True
                    delay = RECONNECT_MIN_S
                    log.info("linked to %s at %s", key_hex(peer)[:12], link.address)
                    await self._pump(ws, link)
            except asyncio.CancelledError:
                raise
            except HandshakeError as exc:
                self._log_link_fault(link, f"handshake with {link.address} failed: {exc}")
            except (TimeoutError, aiohttp.ClientError, OSError, ConnectionError) as exc:
                self._link_down(link, exc)
            except Exception as exc:  # a hostile or broken peer: never end the dialer
                self._log_link_fault(
                    link, f"link to {link.address} failed: {type(exc).__name__}: {exc}"
                )
            finally:
                link.connected = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    def _link_down(self, link: _Outbound, exc: BaseException) -> None:
        """A link that did not come up or went down: quiet (debug) unless the two ends
        disagree on TLS, which no retry will mend."""
        if self.tls is not None and _is_ssl_failure(exc):
            self._log_link_fault(
                link,
                f"TLS with {link.address} failed: {exc} (does that peer run without TLS, "
                "peer_tls false, or a Vigil older than TLS links?)",
            )
        elif self.tls is None and isinstance(exc, aiohttp.ServerDisconnectedError):
            self._log_link_fault(
                link,
                f"{link.address} closed the connection before the websocket upgrade (does "
                "that peer require TLS? this node has peer_tls false)",
            )
        else:
            log.debug("link to %s down: %s", link.address, exc)

    @staticmethod
    def _log_link_fault(link: _Outbound, text: str) -> None:
        """Log a link's failure once per distinct reason, then count repeats quietly."""
        if text == link.last_fault:
            link.repeats += 1
            return
        if link.repeats:
            log.warning("(the previous failure repeated %d more times)", link.repeats)
        link.last_fault, link.repeats = text, 0
        log.warning("%s", text[:300])

    async def _pump(self, ws: aiohttp.ClientWebSocketResponse, link: _Outbound) -> None:
        """Write queued frames, consensus first; return when the socket closes."""
        closed = asyncio.ensure_future(ws.receive())
        waiter: asyncio.Future | None = None
        try:
            while not ws.closed:
                frame = None
                for name in ("consensus", "blocks", "txs"):
                    queue = getattr(link, name)
                    if queue:
                        frame = queue.popleft()
                        link.queued_bytes[name] -= len(frame)
                        break
                if frame is None:
                    link.ready.clear()
                    waiter = asyncio.ensure_future(link.ready.wait())
                    done, _ = await asyncio.wait(
                        {waiter, closed}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if closed in done:
                        return
                    continue
                await ws.send_bytes(frame)
        finally:
            closed.cancel()
            if waiter is not None:
                waiter.cancel()  # a link stopped while idle leaves no task pending

    def _listener_binding(self, ws: aiohttp.ClientWebSocketResponse, peer: bytes) -> bytes:
        """The TLS certificate's hash, once its key is checked to be ``peer``'s (b"" if plain)."""
        if self.tls is None:
            return b""
        ssl_object = ws.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            raise HandshakeError("no TLS certificate from the listener")
        found = certificate_node_key(der)
        if found != peer:
            what = "a non-Ed25519 key" if found is None else f"key {key_hex(found)[:12]}"
            raise HandshakeError(
                f"TLS certificate carries {what}, expected the node key {key_hex(peer)[:12]}"
            )
        return cert_hash(der)

    async def _dialer_handshake(self, ws: aiohttp.ClientWebSocketResponse, peer: bytes) -> None:
        binding = self._listener_binding(ws, peer)
        nonce = os.urandom(NONCE_BYTES)
        hello = ["hello", HANDSHAKE_VERSION, self.chain_id, self.key.public, nonce]
        await ws.send_bytes(codec.encode(hello))
        msg = await ws.receive()
        if msg.type != WSMsgType.BINARY:
            reason = msg.extra or msg.type
            if reason == "malformed hello":
                reason = f"{reason} (a Vigil older than {HANDSHAKE_VERSION}, without TLS links?)"
            raise HandshakeError(f"listener closed the handshake: {reason}")
        value = codec.decode(msg.data, max_size=1024)
        if not (type(value) is list and len(value) == 4 and value[0] == "challenge"):
            raise HandshakeError("malformed challenge")
        _, listener_key, listener_nonce, signature = value
        if not all(type(x) is bytes for x in (listener_key, listener_nonce, signature)):
            raise HandshakeError("challenge fields must be bytes")
        if len(listener_nonce) != NONCE_BYTES:
            raise HandshakeError("bad nonce in the challenge")
        if not is_acceptable_public_key(listener_key):
            raise HandshakeError("listener's key is malformed, non-canonical or of small order")
        if listener_key != peer:
            raise HandshakeError(
                f"expected {key_hex(peer)[:12]}, found {key_hex(listener_key)[:12]}"
            )
        if not _check_part(
            self.chain, "listener", nonce, listener_key, self.key.public, binding, signature
        ):
            over = " (over the TLS certificate this node saw)" if self.tls is not None else ""
            raise HandshakeError(f"listener's signature does not verify{over}")
        mine = _sign_part(
            self.key, self.chain, "dialer", listener_nonce, self.key.public, peer, binding
        )
        await ws.send_bytes(codec.encode(["auth", mine]))
        msg = await ws.receive()
        if msg.type != WSMsgType.BINARY or codec.decode(msg.data, max_size=64) != ["welcome"]:
            raise HandshakeError(f"refused by the listener: {msg.extra or msg.type}")

    # ------------------------------------------------------------ receiving

    async def _accept(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, heartbeat=10.0)
        await ws.prepare(request)
        try:
            peer = await asyncio.wait_for(self._listener_handshake(ws), HANDSHAKE_TIMEOUT_S)
        except Exception as exc:  # whatever a stranger sends, refuse it and carry on
            self.refused += 1
            reason = str(exc) if isinstance(exc, HandshakeError) else type(exc).__name__
            log.warning("refused a peer from %s: %s", request.remote, reason[:300])
            with contextlib.suppress(Exception):
                await ws.close(code=4001, message=reason[:MAX_CLOSE_REASON].encode())
            return ws
        old = self._inbound.get(peer)
        if old is not None:
            await old.close()
        self._inbound[peer] = ws
        try:
            async for msg in ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                try:
                    kind, payload = decode_frame(msg.data)
                except codec.CodecError as exc:
                    log.warning("bad frame from %s: %s", key_hex(peer)[:12], exc)
                    self._count("malformed", "in", len(msg.data))  # vigil_peer_frames_total
                    continue
                self._count(kind if kind in FRAME_KINDS else "unknown", "in", len(msg.data))
                self.on_frame(peer, kind, payload)
        finally:
            if self._inbound.get(peer) is ws:
                del self._inbound[peer]
        return ws

    async def _listener_handshake(self, ws: web.WebSocketResponse) -> bytes:
        msg = await ws.receive()
        if msg.type != WSMsgType.BINARY:
            raise HandshakeError("expected a binary hello")
        value = _decoded(msg.data, "hello")
        if type(value) is list and len(value) == 4 and value[0] == "hello":
            raise HandshakeError(
                f"peer speaks handshake v1 (a Vigil without TLS links); this node speaks "
                f"{HANDSHAKE_VERSION}"
            )
        if not (type(value) is list and len(value) == 5 and value[0] == "hello"):
            raise HandshakeError("malformed hello")
        _, version, chain_id, dialer, dialer_nonce = value
        if version != HANDSHAKE_VERSION:
            raise HandshakeError(
                f"peer speaks {str(version)[:40]!r}, this node {HANDSHAKE_VERSION}"
            )
        if chain_id != self.chain_id:
            raise HandshakeError(f"peer is on chain {chain_id!r}")
        if type(dialer) is not bytes or not self.is_member(dialer):
            raise HandshakeError("key is not in the current validator set")
        if not is_acceptable_public_key(dialer):
            raise HandshakeError("key is malformed, non-canonical or of small order")
        if type(dialer_nonce) is not bytes or len(dialer_nonce) != NONCE_BYTES:
            raise HandshakeError("bad nonce")
        nonce = os.urandom(NONCE_BYTES)
        binding = self.tls.cert_hash if self.tls is not None else b""
        signature = _sign_part(
            self.key, self.chain, "listener", dialer_nonce, self.key.public, dialer, binding
        )
        await ws.send_bytes(codec.encode(["challenge", self.key.public, nonce, signature]))
        msg = await ws.receive()
        if msg.type != WSMsgType.BINARY:
            raise HandshakeError("expected a binary auth")
        value = _decoded(msg.data, "auth")
        if not (type(value) is list and len(value) == 2 and value[0] == "auth"):
            raise HandshakeError("malformed auth")
        if type(value[1]) is not bytes or not _check_part(
            self.chain, "dialer", nonce, dialer, self.key.public, binding, value[1]
        ):
            over = " (over this node's TLS certificate)" if self.tls is not None else ""
            raise HandshakeError(f"dialer's signature does not verify{over}")
        await ws.send_bytes(codec.encode(["welcome"]))
        return dialer


def _decoded(data: bytes, what: str) -> object:
    """A handshake frame's value; anything not canonical msgpack within 1 KiB is refused."""
    try:
        return codec.decode(data, max_size=1024)
    except codec.CodecError as exc:
        raise HandshakeError(f"malformed {what}: {str(exc)[:80]}") from None
