"""Run one node process: open the store, start the replica driver, the peer links and the API.

Kept apart from ``node.service`` (the driver) and ``node.api`` (the HTTP
surface) so that neither imports the other: this module wires them together.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import resource
import signal
import sys
import time
from pathlib import Path

from consensus.certificate import MAX_VALIDATORS
from consensus.crypto import PrivateKey
from node.api import start_api
from node.app.genesis import Genesis
from node.config import ConfigError, Home, NodeConfig
from node.http_guard import MAX_API_CONNECTIONS
from node.p2p import MAX_PEER_CONNECTIONS
from node.service import Node
from node.store import STORE_MAX_OPEN_FILES, StoreError
from node.tls import TLSConfigError, api_server_context

log = logging.getLogger("vigil.node")


GIL_SWITCH_INTERVAL_S = 0.001
"""How long the application worker may hold the GIL while the event loop waits for it
(CPython's default is 5 ms). The loop gives the GIL up at every socket call and must win it
back each time, so with the default a loop turn with many sends waits behind execution
several times over; 1 ms keeps its stalls short at no measurable cost in throughput
(docs/node.md has the figures)."""


GC_THRESHOLDS = (20_000, 20, 10)
"""The cyclic collector's thresholds once a node is up (CPython's are 700, 10, 10). Under
load a node's transactions live about a second (mempool, known transactions, a block), so
at the default the youngest generation was collected 36 times a second and every
transaction was walked again by the collections of the older ones, including full ones of
every live object: 7% of a node's CPU (0.43 s in 10 s). Almost all of a node's garbage dies
by reference counting, so the collector has little to find; at these thresholds it ran
once in 10 s for 22 ms (docs/performance.md). Cycles are still collected (a test makes
them in a loop and sees them go), and the longest collection stays under
node.looplag.TARGET_LOOP_STALL_MS (the benchmark reports it, ``max_gc_pause_ms``)."""
assert GC_THRESHOLDS[0] >= 700 and GC_THRESHOLDS[1:] >= (10, 10), "never more often than CPython"


def freeze_start_up_heap() -> int:
    """Move every object alive after start-up (the imported libraries: numpy, scikit-learn,
    aiohttp, the node's own modules; the opened ledger) out of the collector's reach, and
    return how many. A full collection walks every tracked object, and these never die, yet
    a started node holds about 90,000 of them: each full collection walked them all again,
    under the GIL, stalling the event loop. Objects made later are collected, at the
    thresholds ``GC_THRESHOLDS``."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return gc.get_freeze_count()


FILES_MARGIN = 256
"""File descriptors beyond the named bounds: logs, the worker's files, libraries, pipes."""
FILES_NEEDED = (
    MAX_API_CONNECTIONS + MAX_PEER_CONNECTIONS + MAX_VALIDATORS + STORE_MAX_OPEN_FILES
    + FILES_MARGIN
)  # fmt: skip
"""Open files a node may need at once: every API and peer-port connection its limits allow,
one outbound link per validator, LevelDB's tables and the margin. The soft limit is raised to
this at start-up (1,024 is a common default: 1,100 idle connections once stopped the API)."""


def raise_open_file_limit(needed: int = FILES_NEEDED) -> int:
    """Raise the soft open-file limit to ``needed`` (within the hard limit); the new limit.

    Below ``needed`` the connection limits could meet EMFILE before they refuse anyone:
    the node says so at start-up, once, instead of logging accept errors under load."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        log.warning(
            "open-file limit %d (hard limit %d) is below the %d the node's connection "
            "limits need; raise it (systemd LimitNOFILE=, ulimit -n)", target, hard, needed,
        )  # fmt: skip
    return target


class NodeHalted(Exception):
    """The node stopped itself: its state cannot follow the certified chain (see the log)."""


def set_aside_damaged_store(home: Home) -> Path:
    """Move a damaged data directory out of the way so the node can re-sync from peers."""
    target = home.path / f"{home.data_path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
    home.data_path.rename(target)
    return target


def api_tls_context(home: Home, config: NodeConfig):  # type: ignore[no-untyped-def]
    """The API's TLS context from config.json, or None for plain HTTP; ConfigError naming the
    setting and file when a certificate or key is missing, unreadable, too open or wrong."""
    try:
        return api_server_context(home.path, config.api_tls_cert, config.api_tls_key)
    except TLSConfigError as exc:
        raise ConfigError(f"{home.config_path}: {exc}") from None


async def run_node(
    home: Home, config: NodeConfig, genesis: Genesis, key: PrivateKey, *, resync: bool = False
) -> None:
    """Run until SIGINT or SIGTERM, then shut down cleanly.

    With ``resync``, a store that fails its start-up checks is set aside and
    the node starts from genesis, re-syncing certified blocks from its peers.
    """
    api_tls = api_tls_context(home, config)
    try:
        node = Node(home, config, genesis, key)
    except StoreError as exc:
        if not resync:
            raise StoreError(
                f"{exc}\n(to set the damaged store aside and re-sync from peers, "
                "run again with --resync)"
            ) from None
        moved = set_aside_damaged_store(home)
        log.warning("store damaged (%s); moved it to %s and re-syncing from peers", exc, moved)
        node = Node(home, config, genesis, key)
    raise_open_file_limit()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, node.request_stop)
    await node.start()
    api = await start_api(node, config.api_listen, api_tls)
    log.info("start-up heap frozen: %d objects the collector no longer walks",
             freeze_start_up_heap())  # fmt: skip
    try:
        await node.wait_stopped()
    finally:
        log.info("shutting down")
        await api.cleanup()
        await node.stop()
    if node.halted is not None:
        raise NodeHalted(node.halted)
