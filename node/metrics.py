"""The node's Prometheus metrics (prometheus-client), served at ``GET /metrics``.

Two kinds of sources. Events the node sees once (a commit, an API request, a
refused transaction, a view change, a timed piece of work) update counters and
histograms here as they happen; prometheus-client is thread-safe, so the
application worker records its own timings. State that already lives
somewhere (height, view, mempool, peer links, queue depths, the loop-lag
monitor, fault counts, peer traffic counted by ``node/p2p.py``, the CPU of each
thread in /proc) is read at scrape time by :class:`_NodeState`, so nothing is kept twice.

Each node owns its registry, so several nodes in one process (the tests) do
not share series.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from consensus.crypto import VERIFY_THREAD_NAME

if TYPE_CHECKING:
    from node.service import Node

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class GcTimer:
    """A ``gc.callbacks`` entry timing each collection. A collection holds the GIL from start
    to stop, so the two phases of one never interleave with another's."""

    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram
        self._started: float | None = None
        self.longest_s = 0.0
        """The longest collection seen (the benchmark reports it beside the loop stalls)."""

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        if self._started is None:
            return
        took = time.perf_counter() - self._started
        self._started = None
        self.longest_s = max(self.longest_s, took)
        self._histogram.labels(str(info.get("generation", "?"))).observe(took)


MAX_MODEL_LABELS = 64
"""Model families given their own series; scores of others are counted under "other", so a
chain with many model names cannot grow the metrics without bound."""
MAX_ROUTE_LABELS = 64
"""API routes with their own series (the API has fewer; unmatched paths are "unmatched")."""

SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Histogram buckets for timed work: half a millisecond to ten seconds."""


class NodeMetrics:
    """Counters and histograms the node updates; ``render`` is the scrape."""

    def __init__(self) -> None:
        disable_created_metrics()  # no *_created series: a scrape says what happened, not when
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.view_changes = Counter(
            "vigil_view_changes", "View changes this node started, by what set them off",
            ["reason"], registry=r,
        )  # fmt: skip
        self.committed_txs = Counter(
            "vigil_committed_txs", "Committed transactions by kind and receipt status",
            ["kind", "outcome"], registry=r,
        )  # fmt: skip
        self.scores = Counter(
            "vigil_scores", "Committed score transactions by model family and verdict",
            ["model", "verdict"], registry=r,
        )  # fmt: skip
        self.drift_psi = Gauge(
            "vigil_model_drift_psi", "PSI of the last closed drift window of a model family's "
            "active model, against its training scores (committed state)", ["model"], registry=r,
        )  # fmt: skip
        self.drift_level = Gauge(
            "vigil_model_drift_level", "Level of that window: 0 ok, 1 notice, 2 alarm",
            ["model"], registry=r,
        )  # fmt: skip
        self.api_requests = Counter(
            "vigil_api_requests", "API requests by route and HTTP status", ["route", "status"],
            registry=r,
        )  # fmt: skip
        self.rejected = Counter(
            "vigil_rejected_inputs", "Refused inputs by where they came from and why",
            ["source", "reason"], registry=r,
        )  # fmt: skip
        self.verify = Histogram(
            "vigil_verify_seconds", "Admission of one batch of transactions (signatures "
            "verified together, then the admission rules)", buckets=SECONDS, registry=r,
        )  # fmt: skip
        self.gc = Histogram(
            "vigil_gc_seconds", "Collections of CPython's cyclic garbage collector by "
            "generation: the whole process stops meanwhile (a cause of loop stalls)",
            ["generation"], buckets=SECONDS, registry=r,
        )  # fmt: skip
        self.gc_timer = GcTimer(self.gc)
        self.execute = Histogram(
            "vigil_execute_seconds", "Executing a block: building a proposal or validating one",
            ["phase"], buckets=SECONDS, registry=r,
        )  # fmt: skip
        self.commit = Histogram(
            "vigil_commit_seconds", "Applying a certified block (execution reused, one batch)",
            buckets=SECONDS, registry=r,
        )  # fmt: skip
        self.fsync = Histogram(
            "vigil_fsync_seconds", "Synced LevelDB writes: a block's batch or the safety state",
            ["what"], buckets=SECONDS, registry=r,
        )  # fmt: skip
        self.loop_lag = Histogram(
            "vigil_event_loop_lag_seconds", "How late the event loop woke for a timer",
            buckets=SECONDS, registry=r,
        )  # fmt: skip
        self._models: set[str] = set()
        self._routes: set[str] = set()

    def watch(self, node: Node) -> None:
        """Read the node's own state at every scrape."""
        self.registry.register(_NodeState(node))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    @contextmanager
    def timed(self, histogram: Histogram) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            histogram.observe(time.perf_counter() - started)

    def model_label(self, name: str) -> str:
        return _bounded(self._models, name, MAX_MODEL_LABELS, "other")

    def route_label(self, route: str) -> str:
        return _bounded(self._routes, route, MAX_ROUTE_LABELS, "other")


def _bounded(seen: set[str], value: str, limit: int, overflow: str) -> str:
    if value in seen:
        return value
    if len(seen) >= limit:
        return overflow
    seen.add(value)
    return value


class _NodeState(Collector):
    """Gauges and counters read from the node when Prometheus scrapes."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        node = self.node
        yield _gauge("vigil_height", "Committed height", node.ledger.height)
        yield _gauge("vigil_view", "Current PBFT view", node.replica.view)
        yield _gauge("vigil_in_view_change", "1 while a view change is under way",
                     int(node.replica.in_view_change))  # fmt: skip
        yield _gauge("vigil_validators", "Validators of the next height",
                     len(node.replica.validators))  # fmt: skip
        yield _gauge("vigil_mempool_txs", "Pending transactions", len(node.mempool))
        yield _gauge("vigil_mempool_bytes", "Bytes of pending transactions", node.mempool.bytes)
        yield from self._peers()
        queues = GaugeMetricFamily("vigil_queue_depth", "Items waiting, by queue", labels=["queue"])
        for name, depth in node.worker.pending().items():
            queues.add_metric([f"worker_{name}"], depth)
        p2p = node.network.queue_depths()
        for name in ("consensus", "blocks", "txs"):
            queues.add_metric([f"peer_{name}"], p2p[name])
        queues.add_metric(["gossip"], len(node.gossip_queue))
        yield queues
        yield _gauge("vigil_peer_queue_bytes", "Bytes queued for peers", p2p["bytes"])
        yield _counter("vigil_peer_frames_dropped", "Frames not queued (a peer's queue was full)",
                       p2p["dropped"])  # fmt: skip
        lag = node.loop_lag
        yield _gauge("vigil_max_loop_stall_ms", "Longest event-loop stall since start",
                     lag.max_stall_ms)  # fmt: skip
        yield _gauge("vigil_recent_max_loop_stall_ms", "Longest recent event-loop stall",
                     lag.recent_max_ms)  # fmt: skip
        threads = thread_cpu_seconds(node.loop_thread_id, node.worker.thread_id)
        if threads is not None:
            cpu = CounterMetricFamily(
                "vigil_thread_cpu_seconds", "CPU (user and system) of this process's threads "
                "by role: the event loop, the application worker, the signature-verification "
                "pool, and the rest (LevelDB's compaction, the loop-lag monitor, ...)",
                labels=["thread"],
            )  # fmt: skip
            for role, seconds in threads.items():
                cpu.add_metric([role], seconds)
            yield cpu
        faults = CounterMetricFamily("vigil_faults", "Faults seen, by kind", labels=["kind"])
        for kind, count in sorted(node.faults.items()):
            faults.add_metric([kind], count)
        yield faults

    def _peers(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        network = self.node.network
        names = self.node.peer_names()
        connected = set(network.connected())
        up = GaugeMetricFamily("vigil_peer_up", "1 while the link to a peer is up both ways",
                               labels=["peer"])  # fmt: skip
        for key, name in sorted(names.items(), key=lambda kv: kv[1]):
            up.add_metric([name], int(key in connected))
        yield up
        yield _gauge("vigil_peers", "Peers connected both ways", len(connected))
        frames = CounterMetricFamily("vigil_peer_frames", "Peer frames by kind and direction",
                                     labels=["kind", "direction"])  # fmt: skip
        volume = CounterMetricFamily("vigil_peer_bytes", "Peer frame bytes by kind and direction",
                                     labels=["kind", "direction"])  # fmt: skip
        for (kind, direction), (count, size) in sorted(network.traffic.items()):
            frames.add_metric([kind, direction], count)
            volume.add_metric([kind, direction], size)
        yield frames
        yield volume
        yield _counter("vigil_peer_handshakes_refused", "Peers refused at the handshake",
                       network.refused)  # fmt: skip


THREAD_ROLES = ("loop", "app", "verify", "other")
"""The roles ``vigil_thread_cpu_seconds`` splits a node process's CPU into."""


def thread_cpu_seconds(loop_thread: int, app_thread: int | None) -> dict[str, float] | None:
    """CPU each role's threads used so far (``THREAD_ROLES``), from Linux's /proc; None where
    that cannot be read. Where a node's CPU goes under load, by thread, is what says which
    part to make cheaper (docs/performance.md); "other" is the process's total less the rest,
    so the roles add up to it. Several nodes in one process (tests) share the pool and the
    rest."""
    try:
        total = proc_cpu_seconds("/proc/self/stat")
    except (OSError, IndexError, ValueError):
        return None
    tids = {"loop": [loop_thread], "app": [] if app_thread is None else [app_thread]}
    tids["verify"] = [
        t.native_id
        for t in threading.enumerate()
        if t.name.startswith(VERIFY_THREAD_NAME) and t.native_id is not None
    ]
    out: dict[str, float] = {}
    for role, ids in tids.items():
        seconds = 0.0
        for tid in ids:
            # a thread that ended is skipped: its CPU stays in the total, so in "other"
            with contextlib.suppress(OSError, IndexError, ValueError):
                seconds += proc_cpu_seconds(f"/proc/self/task/{tid}/stat")
        out[role] = seconds
    out["other"] = max(0.0, total - sum(out.values()))
    return out


def proc_cpu_seconds(path: str) -> float:
    """utime + stime of a /proc stat file (a process's or a thread's), in seconds: fields 14
    and 15; the command name before them may hold spaces and parentheses, so split after its
    last ")". Raises OSError, IndexError or ValueError where it cannot be read."""
    with open(path, "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)


def _counter(name: str, text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, text, value=value)
