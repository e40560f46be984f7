"""What stands between a socket and an API handler: connection limits, timeouts, and a body
reader that refuses before it parses.

A client is possibly hostile. Everything here bounds what one can make the node hold or do
before a handler runs: how many connections it keeps open, how long it may take to send a
request head or a body, how many bytes a body may have (counted as they arrive, never after),
and what JSON the node agrees to parse (depth and number length checked on the bytes first,
so a 100,000-level array or a 100,000-digit integer is a 400, not a RecursionError or a
ValueError on the event loop). Compressed bodies are refused outright: the node never inflates
a client's bytes, so a 61 KB gzip body cannot become 60 MiB in its memory.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from consensus.bounded import BoundedMap

API_IDLE_TIMEOUT_S = 15.0
"""A connection that has not sent a complete request head for this long is closed: the
header-read timeout (a slow-header client) and the idle timeout (a kept-alive connection) at
once. A handler that is running (a long poll, ``wait``) is not idle."""
API_BODY_TIMEOUT_S = 30.0
"""Longest a request body may take to arrive once its head is in (then 408)."""
MAX_API_CONNECTIONS = 1_024
"""Open API connections; one more is answered 503 and closed at once."""
MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects in a JSON body (a contract query's arguments need a
few levels)."""
MAX_JSON_NUMBER_CHARS = 40
"""Longest number in a JSON body, in characters: every integer the VM holds (64-bit) and every
float fits; longer is a 400 before Python converts it."""
MAX_QUERY_BODY_BYTES = 1024 * 1024
"""Largest body of POST /v1/contracts/{name}/query (a method name and its arguments)."""
API_RATE_PER_ADDRESS = 200.0
"""Requests per second one client address may make, on average (a token bucket)."""
API_BURST_PER_ADDRESS = 400
"""Requests one address may make at once after a quiet spell (the bucket's size): a page of
the explorer or a benchmark's batches fit; a flood gets 429 with Retry-After."""
MAX_RATE_ADDRESSES = 4_096
"""Client addresses whose buckets are remembered; past it the least recently seen is
forgotten (its next request starts with a full bucket), so the table cannot grow."""
MAX_WAITS_PER_ADDRESS = 64
"""Long polls (GET /v1/txs/{hash}?wait=) one address may hold open at once: outsiders
cannot take every waiting slot of the node (node.service.MAX_WAITERS)."""
assert len(str(-(2**63))) <= MAX_JSON_NUMBER_CHARS
assert API_BURST_PER_ADDRESS >= API_RATE_PER_ADDRESS >= 1

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


class BadRequest(Exception):
    """A request refused before its handler: the status, a stable code and the reason."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class ClientGone(Exception):
    """The client closed its connection before its body arrived: nobody to answer."""


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request's body, refused with 413 as soon as it passes ``limit`` bytes (the declared
    length is checked before a byte is read), 415 if it is compressed, 408 if it is slow."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise BadRequest(415, "unsupported_encoding", "send the body uncompressed")
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BadRequest(413, "too_large", f"request body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(API_BODY_TIMEOUT_S):
            while chunk := await request.content.readany():
                size += len(chunk)
                if size > limit:
                    raise BadRequest(413, "too_large", f"request body exceeds {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BadRequest(408, "timeout", f"the body took over {API_BODY_TIMEOUT_S:g} s") from None
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        raise ClientGone(str(exc)) from None
    return b"".join(chunks)


def too_deep(data: bytes) -> bool:
    """Whether arrays and objects in ``data`` nest deeper than MAX_JSON_DEPTH (brackets inside
    strings do not count). Few opening brackets cannot nest deep: no scan for those."""
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    for bracket in _BRACKETS.findall(_STRING.sub(b'""', data)):
        depth += 1 if bracket in (b"[", b"{") else -1
        if depth > MAX_JSON_DEPTH:
            return True
    return False


def _number(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if len(text) > MAX_JSON_NUMBER_CHARS:
            raise BadRequest(
                400, "bad_json", f"a number longer than {MAX_JSON_NUMBER_CHARS} characters"
            )
        value = convert(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise BadRequest(400, "bad_json", f"{text} is out of range")
        return value

    return parse


def _constant(name: str) -> Any:
    raise BadRequest(400, "bad_json", f"{name} is not JSON")


def parse_json(data: bytes) -> Any:
    """Strict JSON from UTF-8 bytes (whatever charset a client declares), within the depth and
    number limits, or BadRequest 400 ``bad_json`` saying what is wrong."""
    if too_deep(data):
        raise BadRequest(400, "bad_json", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        text = data.decode("utf-8")
        return json.loads(
            text,
            parse_int=_number(int),
            parse_float=_number(float),
            parse_constant=_constant,
        )
    except UnicodeDecodeError:
        raise BadRequest(400, "bad_json", "request body must be UTF-8 JSON") from None
    except (json.JSONDecodeError, RecursionError):
        raise BadRequest(400, "bad_json", "request body must be JSON") from None


async def read_json(request: web.Request, limit: int) -> Any:
    """The body as JSON, with every refusal of read_body and parse_json."""
    return parse_json(await read_body(request, limit))


def ascii_digits(text: str, max_digits: int) -> int | None:
    """``text`` as a non-negative integer if it is 1 to ``max_digits`` ASCII digits, else None.

    ``str.isdigit`` alone accepts '³' (which ``int`` then refuses) and Arabic-Indic digits
    (which it accepts): neither is a height a client meant."""
    if 0 < len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None


class _Refuse(asyncio.Protocol):
    """Answers one connection over the limit with a 503 and closes it (no handler, no task)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        body = b'{"error":{"code":"busy","message":"too many connections"}}'
        transport.write(  # type: ignore[attr-defined]
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        transport.close()


class GuardedSite(web.TCPSite):
    """A TCP site that serves at most ``limit`` connections at once; the next is refused."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, *, limit: int,
                 on_refuse: Callable[[], None] = lambda: None,
                 tls_handshake_s: float = API_IDLE_TIMEOUT_S, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(runner, host, port, **kwargs)
        self._limit = limit
        self._on_refuse = on_refuse
        self._tls_handshake_s = tls_handshake_s
        """A TLS handshake not done by then is dropped (asyncio's default is 60 s)."""

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        limit, on_refuse, window = self._limit, self._on_refuse, self._tls_handshake_s
        handshaking: dict[int, tuple[float, Any]] = {}
        """Handlers whose TLS handshake is under way (aiohttp counts a connection only once
        it is done), by id, with when they began; each leaves when it joins the server's
        connections or its handshake times out."""

        def factory() -> asyncio.Protocol:
            now = time.monotonic()
            if handshaking:
                live = {id(handler) for handler in server.connections}
                for key, (began, _) in list(handshaking.items()):
                    if key in live or now - began > window:
                        del handshaking[key]
            if len(server.connections) + len(handshaking) >= limit:
                on_refuse()
                return _Refuse()
            handler = server()
            if self._ssl_context is not None:
                handshaking[id(handler)] = (now, handler)
            return handler

        self._server = await asyncio.get_running_loop().create_server(
            factory, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port,
            ssl_handshake_timeout=self._tls_handshake_s if self._ssl_context else None,
        )  # fmt: skip
        self._bound_port = self._server.sockets[0].getsockname()[1]


class Buckets:
    """Token buckets by client address, at most MAX_RATE_ADDRESSES of them."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: BoundedMap[str, tuple[float, float]] = BoundedMap(MAX_RATE_ADDRESSES)
        """address -> (tokens, when last filled), least recently seen first"""

    def take(self, address: str) -> float:
        """Take a token for ``address``: 0 if it had one, else the seconds until it will."""
        now = self.clock()
        tokens, then = self._buckets.get(address, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
        self._buckets.remember(address, (tokens - 1 if wait == 0 else tokens, now))
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


def rate_limited(
    buckets: Buckets, refused: Callable[[], None] = lambda: None
) -> Callable[..., Any]:
    """A middleware answering 429 (with Retry-After) to an address past its request rate."""

    @web.middleware
    async def limit(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        wait = buckets.take(request.remote or "")
        if wait > 0:
            refused()
            return web.json_response(
                {"error": {"code": "rate_limited", "message": "too many requests from your "
                           f"address; at most {buckets.rate:g} a second"}},
                status=429, headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )  # fmt: skip
        return await handler(request)

    return limit
