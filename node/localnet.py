"""A local multi-node network on 127.0.0.1: keys, genesis, homes, and node processes.

Used by ``scripts/localnet``, the multi-process tests and ``scripts/bench/localnet``.
Layout of the network directory::

    <dir>/genesis.json
    <dir>/client.key           an authorised client (roles submit, score, audit)
    <dir>/admin-<org>.key      each organisation's admin key
    <dir>/<org>/               each node's home (vigil node init)
    <dir>/<org>/node.log       the node's log when started from here

Peer links use TLS 1.3 (the config default, node/p2p.py); the APIs stay plain HTTP on
127.0.0.1 so the explorer, the scripts and the tests reach them without a certificate
(HTTPS on the API is tested on its own: tests/node/test_links_tls.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from consensus.crypto import PrivateKey, key_hex
from node.app.genesis import Genesis
from node.config import Home, init_home

CHAIN_ID = "vigil-local"
DEFAULT_BASE_PORT = 26600
MAX_NODES = 64


@dataclass(frozen=True)
class LocalNode:
    org: str
    home: Path
    peer: str
    api: str
    scheme: str = "http"
    """The API's: "https" for a home whose config names an API certificate."""

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.api}"


@dataclass(frozen=True)
class LocalNet:
    directory: Path
    nodes: tuple[LocalNode, ...]

    @property
    def genesis_path(self) -> Path:
        return self.directory / "genesis.json"

    @property
    def client_key(self) -> Path:
        return self.directory / "client.key"

    def genesis(self) -> Genesis:
        return Genesis.load(self.genesis_path)


def org_name(i: int) -> str:
    return f"org{i + 1}"


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


EPHEMERAL_PORTS_FROM = 32_768
"""Linux's default lowest ephemeral port: a port above it that is free now can be taken by
any outgoing connection before a node binds it (CI saw exactly that), so none is chosen."""


def free_base_port(count: int, start: int = DEFAULT_BASE_PORT) -> int:
    """A base port b with b+0..count-1 and b+100..b+100+count-1 all free, below the
    ephemeral range."""
    assert start + 100 + count <= EPHEMERAL_PORTS_FROM
    for base in range(start, EPHEMERAL_PORTS_FROM - 100 - count, 200):
        if all(port_is_free(base + i) and port_is_free(base + 100 + i) for i in range(count)):
            return base
    raise RuntimeError("no free ports for a local network")


def create(directory: Path, count: int = 4, base_port: int | None = None) -> LocalNet:
    """Generate keys and genesis for ``count`` organisations and initialise their homes."""
    if not 1 <= count <= MAX_NODES:
        raise ValueError(f"a local network has 1..{MAX_NODES} nodes")
    directory.mkdir(parents=True, exist_ok=True)
    base = free_base_port(count) if base_port is None else base_port
    node_keys = []
    members = []
    for i in range(count):
        org = org_name(i)
        node_key = PrivateKey.generate()
        admin = PrivateKey.generate()
        node_key.save(directory / f"node-{org}.key", overwrite=True)
        admin.save(directory / f"admin-{org}.key", overwrite=True)
        node_keys.append(node_key)
        members.append(
            {
                "org": org,
                "node_key": key_hex(node_key.public),
                "peer": f"127.0.0.1:{base + i}",
                "api": f"127.0.0.1:{base + 100 + i}",
                "admins": [key_hex(admin.public)],
            }
        )
    client = PrivateKey.generate()
    client.save(directory / "client.key", overwrite=True)
    genesis = Genesis.from_json_obj(
        {
            "chain_id": CHAIN_ID,
            "genesis_time_ms": int(time.time() * 1000),
            "members": members,
            "clients": [
                {
                    "key": key_hex(client.public),
                    "org": org_name(0),
                    "roles": ["admin", "audit", "score", "submit"],
                }
            ],
            "params": {},
        }
    )
    genesis.save(directory / "genesis.json", overwrite=True)
    nodes = []
    for i in range(count):
        org = org_name(i)
        init_home(
            directory / org, directory / "genesis.json", directory / f"node-{org}.key", force=True
        )
        (directory / f"node-{org}.key").unlink()
        nodes.append(LocalNode(org, directory / org, members[i]["peer"], members[i]["api"]))
    return LocalNet(directory, tuple(nodes))


def load(directory: Path) -> LocalNet:
    """An existing local network (a second run resumes it)."""
    genesis = Genesis.load(directory / "genesis.json")
    nodes = []
    for member in genesis.members:
        home = Home(directory / member.org)
        config = home.load_config()
        nodes.append(
            LocalNode(
                member.org, home.path, config.peer_listen, config.api_listen, config.api_scheme
            )
        )
    return LocalNet(directory, tuple(nodes))


def start(
    node: LocalNode, *extra: str, python: str = sys.executable, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start one node process (``extra``: more `vigil node run` flags; ``env``: variables added
    to this process's environment); logs to <home>/node.log."""
    with (node.home / "node.log").open("ab") as log:
        return subprocess.Popen(
            [python, "-m", "cli.main", "node", "run", "--home", str(node.home), *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=None if env is None else {**os.environ, **env},
        )


def stop(proc: subprocess.Popen, *, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def _http(method: str, url: str, body: Any, timeout: float) -> tuple[int, Any] | None:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.request(method, url, json=body) as resp,
        ):
            return resp.status, await resp.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
        return None


def http(method: str, url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any] | None:
    """(status, JSON) of one request, or None if the node does not answer (yet)."""
    return asyncio.run(_http(method, url, body, timeout))


def get_json(url: str, timeout: float = 5.0) -> Any:
    """The JSON of a successful GET, or None."""
    answer = http("GET", url, timeout=timeout)
    return answer[1] if answer is not None and answer[0] == 200 else None
