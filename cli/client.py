"""HTTP client for the CLI: every command talks to a node over its JSON API (aiohttp)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import click

DEFAULT_NODE = "http://127.0.0.1:26700"
"""The first node `./scripts/localnet` starts on a free machine (node/localnet.py: the API
ports are DEFAULT_BASE_PORT + 100 + i; tests/cli asserts the two agree)."""
TIMEOUT_S = 30.0


EXIT_UNREACHABLE = 4
"""Exit codes of every command: 0 ok, 1 refused or failed, 2 usage, 3 verification failed
(cli/verify.py), 4 the node could not be reached."""


class NodeError(click.ClickException):
    """The node answered with an error (exit 1); ``code`` is its stable error code."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class NodeUnreachable(NodeError):
    """The node could not be reached or did not answer in time (exit 4)."""

    exit_code = EXIT_UNREACHABLE


async def _request(
    method: str, url: str, body: Any = None, timeout: float = TIMEOUT_S, data: bytes | None = None
) -> Any:
    try:
        timeouts = aiohttp.ClientTimeout(total=timeout)
        async with (
            aiohttp.ClientSession(timeout=timeouts) as session,
            session.request(method, url, json=body, data=data) as resp,
        ):
            try:
                data = await resp.json(content_type=None)
            except (ValueError, aiohttp.ContentTypeError):
                raise NodeError(f"{url}: HTTP {resp.status}, not JSON") from None
            if resp.status >= 400:
                err = data.get("error", {}) if isinstance(data, dict) else {}
                code = err.get("code") if isinstance(err, dict) else None
                message = err.get("message", "request failed") if isinstance(err, dict) else ""
                raise NodeError(f"{code or resp.status}: {message}", code)
            return data
    except aiohttp.ClientConnectionError as exc:
        raise NodeUnreachable(f"cannot reach the node at {url}: {exc}") from None
    except TimeoutError:
        raise NodeUnreachable(f"the node at {url} did not answer within {timeout:.0f} s") from None


def call(
    method: str,
    node: str,
    path: str,
    body: Any = None,
    timeout: float = TIMEOUT_S,
    data: bytes | None = None,
) -> Any:
    """One request to a node's API: ``body`` is sent as JSON, or ``data`` as raw bytes."""
    return asyncio.run(_request(method, node.rstrip("/") + path, body, timeout, data))


def find(node: str, path: str) -> Any | None:
    """A GET that answers None when the node says ``not_found`` (any other error raises)."""
    try:
        return call("GET", node, path)
    except NodeError as exc:
        if exc.code == "not_found":
            return None
        raise


def node_option(f):  # type: ignore[no-untyped-def]
    return click.option(
        "--node",
        default=DEFAULT_NODE,
        show_default=True,
        envvar="VIGIL_NODE",
        help="URL of a node's API (or set VIGIL_NODE).",
    )(f)
