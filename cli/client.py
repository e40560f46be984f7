"""HTTP client for the CLI: every command talks to a node over its JSON API (aiohttp).

Node URLs may be ``https://``: the node's certificate is checked against this machine's
trusted CAs, or against ``--cacert FILE`` / ``VIGIL_CACERT`` (a node's self-signed
``api-tls.crt`` from ``vigil node init --api-tls``); host names are checked either way.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
import click

DEFAULT_NODE = "http://127.0.0.1:26700"
"""The first node `./scripts/localnet` starts on a free machine (node/localnet.py: the API
ports are DEFAULT_BASE_PORT + 100 + i; tests/cli asserts the two agree)."""
TIMEOUT_S = 30.0
MAX_NODES = 64
"""Nodes one command may be given (a consortium has far fewer)."""


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


CACERT_ENV = "VIGIL_CACERT"
_CACERT_META = "vigil.cacert"


def _cacert() -> str | None:
    """The --cacert file of the command running (or VIGIL_CACERT outside a command)."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and _CACERT_META in ctx.meta:
        return ctx.meta[_CACERT_META]
    return os.environ.get(CACERT_ENV) or None


def _ssl_for(url: str) -> ssl.SSLContext | bool:
    """What aiohttp checks an https:// node against: the CAs in --cacert, else the system's."""
    cafile = _cacert()
    if not url.startswith("https://") or not cafile:
        return True
    return ssl.create_default_context(cafile=cafile)


def _untrusted(url: str, exc: aiohttp.ClientConnectorCertificateError) -> NodeUnreachable:
    hint = (
        f"is {_cacert()} that node's certificate (api-tls.crt in its home)?"
        if _cacert()
        else f"pass --cacert FILE (or {CACERT_ENV}=FILE) naming the node's certificate "
        "(api-tls.crt in its home)"
    )
    return NodeUnreachable(
        f"the node at {url} presented a TLS certificate this machine does not trust "
        f"({exc.certificate_error}); {hint}"
    )


async def _request(
    method: str,
    url: str,
    body: Any = None,
    timeout: float = TIMEOUT_S,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    try:
        timeouts = aiohttp.ClientTimeout(total=timeout)
        async with (
            aiohttp.ClientSession(timeout=timeouts) as session,
            session.request(
                method, url, json=body, data=data, headers=headers, ssl=_ssl_for(url)
            ) as resp,
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
    except aiohttp.ClientConnectorCertificateError as exc:
        raise _untrusted(url, exc) from None
    except aiohttp.ClientConnectionError as exc:
        raise NodeUnreachable(f"cannot reach the node at {url}: {exc}") from None
    except TimeoutError:
        raise NodeUnreachable(f"the node at {url} did not answer within {timeout:.0f} s") from None


def nodes_of(node: str) -> list[str]:
    """The node URLs in a --node value (several --node options or VIGIL_NODE join with commas)."""
    urls = [u.strip().rstrip("/") for u in node.split(",") if u.strip()]
    if not urls:
        raise click.UsageError("--node needs a URL")
    if len(urls) > MAX_NODES:
        raise click.UsageError(f"at most {MAX_NODES} nodes")
    return urls


def call(
    method: str,
    node: str,
    path: str,
    body: Any = None,
    timeout: float = TIMEOUT_S,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """One request to a node's API: ``body`` is sent as JSON, or ``data`` as raw bytes (with
    ``headers``, e.g. an upload's signature).

    With several nodes, the first that answers does (a node that cannot be reached or is
    busy is skipped); an error the node answered with is final.
    """
    return _first(node, lambda url: _request(method, url + path, body, timeout, data, headers))


def _first(node: str, request: Callable[[str], Coroutine[Any, Any, Any]]) -> Any:
    failures: list[str] = []
    for url in nodes_of(node):
        try:
            return asyncio.run(request(url))
        except NodeUnreachable as exc:
            failures.append(str(exc))
        except NodeError as exc:
            if exc.code != "busy":
                raise
            failures.append(f"{url}: busy")
    if len(failures) == 1:
        raise NodeUnreachable(failures[0])
    raise NodeUnreachable("no node answered: " + "; ".join(failures))


async def _request_bytes(method: str, url: str, timeout: float) -> bytes:
    try:
        timeouts = aiohttp.ClientTimeout(total=timeout)
        async with (
            aiohttp.ClientSession(timeout=timeouts) as session,
            session.request(method, url, ssl=_ssl_for(url)) as resp,
        ):
            body = await resp.read()
            if resp.status >= 400:
                try:
                    err = json.loads(body).get("error", {})
                except (ValueError, AttributeError):
                    err = {}
                code = err.get("code") if isinstance(err, dict) else None
                message = err.get("message", "request failed") if isinstance(err, dict) else ""
                raise NodeError(f"{code or resp.status}: {message}", code)
            return body
    except aiohttp.ClientConnectorCertificateError as exc:
        raise _untrusted(url, exc) from None
    except aiohttp.ClientConnectionError as exc:
        raise NodeUnreachable(f"cannot reach the node at {url}: {exc}") from None
    except TimeoutError:
        raise NodeUnreachable(f"the node at {url} did not answer within {timeout:.0f} s") from None


def call_bytes(method: str, node: str, path: str, timeout: float = TIMEOUT_S) -> bytes:
    """A request whose answer is raw bytes (a model artifact); errors as :func:`call`."""
    return _first(node, lambda url: _request_bytes(method, url + path, timeout))


def find(node: str, path: str) -> Any | None:
    """A GET that answers None when the node says ``not_found`` (any other error raises)."""
    try:
        return call("GET", node, path)
    except NodeError as exc:
        if exc.code == "not_found":
            return None
        raise


def _joined(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> str:
    joined = ",".join(v for v in value if v) or DEFAULT_NODE
    nodes_of(joined)
    return joined


def _set_cacert(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if not value:
        return
    try:
        ssl.create_default_context(cafile=value)
    except FileNotFoundError:
        raise click.BadParameter(f"{value}: no such file", param=param) from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise click.BadParameter(
            f"{value}: not a PEM certificate this machine can load ({exc})", param=param
        ) from None
    ctx.meta[_CACERT_META] = value


def node_option(f):  # type: ignore[no-untyped-def]
    """``--node URL`` (repeatable, or VIGIL_NODE with commas): nodes tried in order; and
    ``--cacert FILE`` (or VIGIL_CACERT): the CA or self-signed certificate https:// nodes are
    checked against."""
    f = click.option(
        "--cacert",
        envvar=CACERT_ENV,
        expose_value=False,
        callback=_set_cacert,
        metavar="FILE",
        help=f"Trust this PEM certificate for https:// nodes (a node's api-tls.crt) "
        f"[env {CACERT_ENV}].",
    )(f)
    return click.option(
        "--node",
        multiple=True,
        envvar="VIGIL_NODE",
        callback=_joined,
        metavar="URL",
        help=f"A node's API URL; repeat (or VIGIL_NODE=URL,URL) to fail over. "
        f"[default: {DEFAULT_NODE}]",
    )(f)
