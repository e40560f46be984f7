"""Committed transactions per second and submit-to-commit latency on real local networks.

The reference throughput benchmark. A closed-loop load generator: each client
submits a batch of pre-signed transactions of one kind (``--kind anchor |
score | call | mix``) to one node (clients spread over all nodes), waits until
the whole batch is committed, and submits the next. A watcher follows new
blocks and stamps each transaction's commit time.

Every node must verify every client signature once, so the machine's
signature-verification rate bounds what any network of ``nodes`` nodes on it
can commit: ``ceiling_per_s = pool_verify_per_s / nodes``, i.e. cores /
(nodes / per-core rate), with the pool rate measured in this run on this
machine (all cores, the node's own thread pool). ``ratio_to_ceiling`` is the
committed rate against it. The network is also compared with a 1-node network
measured in the same run (the cost of agreement). JSON goes to stdout,
progress to stderr; ``--plot out.png`` adds a sweep over offered load
(throughput and latency against it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np

from consensus.crypto import DOMAIN_TX, PrivateKey, SignedItem, verify_batch
from ml.forest import Model
from node import localnet
from node.app.types import AnchorPayload, CallPayload, ScorePayload, Tx
from node.mempool import MAX_MEMPOOL_TXS, MEMPOOL_SHARES
from node.metrics import proc_cpu_seconds
from vm.gas import MAX_VALUE_BYTES
from vm.values import encode_value

KINDS = ("anchor", "score", "call", "mix")
MODEL_NAME = "bench"
MODEL_FEATURES = 8
MODEL_TREES = 100
CONTRACT_NAME = "benchkv"
CONTRACT_SOURCE = '''
"""Benchmark contract: one storage write per call."""


def put(key, value):
    ledger.put("k:" + key, value)
    return value
'''
TX_EXPIRY_BLOCKS = 900
VERIFY_SECONDS = 2.0
"""Time spent measuring the signature-verification rate."""
MAX_PRESIGNED = 400_000
"""Pre-signed transactions at most, whatever the ceiling (memory and set-up time)."""
LINK_TIMEOUT_S = 60.0
WATCH_POLL_S = 0.01
STOP_CHECK_S = 0.25
"""How often a client waiting for its batch checks whether the run is over."""


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ the machine's ceiling


def verify_rates(seconds: float) -> dict:
    """Signature verifications per second on one thread and on the node's pool."""
    key = PrivateKey.generate()
    txs = [anchor_tx(key, "bench", bytes(32), i) for i in range(256)]
    items = [SignedItem(t.sender, DOMAIN_TX, bytes(32), t.body_bytes(), t.signature) for t in txs]
    batch = items * 8

    def rate(threads: int | None) -> float:
        verify_batch(batch, threads=threads)
        done, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 2:
            verify_batch(batch, threads=threads)
            done += len(batch)
        return done / elapsed

    one, pool = rate(1), rate(None)
    log(f"  signature verification: {one:,.0f}/s on one thread, {pool:,.0f}/s on the pool")
    return {"verify_per_s_1_thread": round(one), "verify_per_s_pool": round(pool)}


# ------------------------------------------------------------------ transactions


def anchor_tx(key: PrivateKey, chain_id: str, genesis_hash: bytes, i: int,
              until: int = TX_EXPIRY_BLOCKS) -> Tx:  # fmt: skip
    """``until``: the valid-until height (scripts/chaos.py signs as it goes, near the tip)."""
    data = f"bench {i} {os.urandom(8).hex()}".encode()
    payload = AnchorPayload(hashlib.sha256(data).digest(), len(data), "text/plain", (), ())
    return Tx.create(key, chain_id, genesis_hash, payload, until)


def score_tx(key: PrivateKey, chain_id: str, genesis_hash: bytes, i: int, rng,  # type: ignore[no-untyped-def]
             until: int = TX_EXPIRY_BLOCKS) -> Tx:  # fmt: skip
    features = tuple(float(round(x, 4)) for x in rng.normal(0, 1, MODEL_FEATURES))
    payload = ScorePayload(MODEL_NAME, features, f"bench-{i}")
    return Tx.create(key, chain_id, genesis_hash, payload, until)


def call_tx(key: PrivateKey, chain_id: str, genesis_hash: bytes, i: int,
            until: int = TX_EXPIRY_BLOCKS) -> Tx:  # fmt: skip
    args = encode_value([f"{i}-{os.urandom(4).hex()}", i], MAX_VALUE_BYTES)
    payload = CallPayload(CONTRACT_NAME, "put", args)
    return Tx.create(key, chain_id, genesis_hash, payload, until)


def presign(kind: str, key: PrivateKey, chain_id: str, genesis_hash: bytes, count: int,
            offset: int) -> list[Tx]:  # fmt: skip
    rng = np.random.default_rng(offset)
    out = []
    for j in range(count):
        i = offset + j
        pick = KINDS[i % 3] if kind == "mix" else kind
        if pick == "anchor":
            out.append(anchor_tx(key, chain_id, genesis_hash, i))
        elif pick == "score":
            out.append(score_tx(key, chain_id, genesis_hash, i, rng))
        else:
            out.append(call_tx(key, chain_id, genesis_hash, i))
    return out


# ------------------------------------------------------------------ network set-up


def vigil(*args: str) -> str:
    """Run the CLI in this process (set-up only, never during measurement)."""
    from click.testing import CliRunner

    from cli.main import main

    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if result.exit_code != 0:
        raise SystemExit(f"set-up step `vigil {' '.join(args)}` failed:\n{result.output}")
    return result.output


def enact(
    net: localnet.LocalNet, *proposal: str, command: tuple[str, ...] = ("gov", "propose")
) -> None:
    """Propose with org1's admin and vote yes with just enough members (more than 2/3)."""
    url = net.nodes[0].url
    admin = lambda org: str(net.directory / f"admin-{org}.key")  # noqa: E731
    out = vigil(*command, *proposal, "--key", admin("org1"), "--node", url, "--wait")
    pid = next(line for line in out.splitlines() if line.startswith("result")).split()[-1]
    for node in net.nodes[: 2 * len(net.nodes) // 3 + 1]:
        vigil("gov", "vote", pid, "yes", "--key", admin(node.org), "--node", url, "--wait")


def submit_and_wait(net: localnet.LocalNet, txs: list[Tx]) -> None:
    url = net.nodes[0].url
    answer = localnet.http("POST", f"{url}/v1/txs", {"txs": [t.encode().hex() for t in txs]})
    if answer is None or answer[0] != 202:
        raise SystemExit(f"set-up submission refused: {answer}")
    for t in txs:
        localnet.http("GET", f"{url}/v1/txs/{t.id.hex()}?wait=30", timeout=35)


def model_training_data() -> tuple[np.ndarray, AnchorPayload]:
    """The benchmark model's training rows, and the anchor of their bytes (anchored before
    the model is proposed: governance requires anchored training data)."""
    data = np.random.default_rng(7).normal(0, 1, (2_000, MODEL_FEATURES))
    raw = data.tobytes()
    anchor = AnchorPayload(hashlib.sha256(raw).digest(), len(raw), "application/octet-stream",
                           (), ())  # fmt: skip
    return data, anchor


def train_model(data: np.ndarray, anchor: AnchorPayload) -> Model:
    """The benchmark model (MODEL_TREES trees over MODEL_FEATURES features), naming the
    anchored dataset it was trained on."""
    from ml.train import TrainParams, train

    names = tuple(f"f{i}" for i in range(MODEL_FEATURES))
    return train(data, names, TrainParams(n_estimators=MODEL_TREES),
                 datasets=[(anchor.digest, len(data))]).model  # fmt: skip


def prepare(net: localnet.LocalNet, kind: str, directory: Path) -> None:
    """What the kind needs on chain: an active model (score), a deployed contract (call)."""
    key = PrivateKey.load(net.client_key)
    chain_id, genesis_hash = net.genesis().chain_id, net.genesis().hash()
    if kind in ("score", "mix"):
        data, anchor = model_training_data()
        submit_and_wait(net, [Tx.create(key, chain_id, genesis_hash, anchor, TX_EXPIRY_BLOCKS)])
        model = train_model(data, anchor)
        artifact = directory / "bench.vmodel"
        artifact.write_bytes(model.data)
        enact(net, str(artifact), "--name", MODEL_NAME, command=("model", "propose"))
        enact(net, "activate-model", MODEL_NAME, "1")
        log(f"  model {MODEL_NAME} ({MODEL_TREES} trees, {MODEL_FEATURES} features) active")
    if kind in ("call", "mix"):
        source = directory / f"{CONTRACT_NAME}.py"
        source.write_text(CONTRACT_SOURCE)
        enact(net, "allow-deploy", CONTRACT_NAME, str(source))
        vigil("contract", "deploy", str(source), "--name", CONTRACT_NAME, "--key",
              str(net.client_key), "--node", net.nodes[0].url, "--wait")  # fmt: skip
        log(f"  contract {CONTRACT_NAME} deployed")


@contextlib.contextmanager
def network(
    count: int, directory: Path
) -> Iterator[tuple[localnet.LocalNet, list[subprocess.Popen]]]:
    net = localnet.create(directory, count)
    procs = [localnet.start(n) for n in net.nodes]
    try:
        deadline = time.monotonic() + LINK_TIMEOUT_S
        while time.monotonic() < deadline:
            statuses = [localnet.get_json(n.url + "/v1/status", 1) for n in net.nodes]
            if all(s is not None and len(s["peers"]) == count - 1 for s in statuses):
                break
            time.sleep(0.3)
        else:
            raise SystemExit(f"{count}-node network did not link up")
        log(f"{count}-node network up")
        yield net, procs
    finally:
        for p in procs:
            localnet.stop(p)


# ------------------------------------------------------------------ load


@dataclass
class Load:
    submitted: dict[str, float]
    committed: dict[str, float]
    refused: int = 0
    ran_out: int = 0
    blocks: int = 0
    waiting: dict[str, Batch] = field(default_factory=dict)
    """By transaction hash, the batch whose client waits for it to commit."""

    def stamp(self, tx_hash: str, now: float) -> None:
        """The watcher saw ``tx_hash`` committed: record when, and wake a client whose
        batch is now all in (clients used to poll every hash of their batch every 5 ms:
        the load generator's largest use of the cores the nodes share)."""
        self.committed[tx_hash] = now
        batch = self.waiting.pop(tx_hash, None)
        if batch is not None:
            batch.pending.discard(tx_hash)
            if not batch.pending:
                batch.done.set()


@dataclass
class Batch:
    pending: set[str]
    done: asyncio.Event = field(default_factory=asyncio.Event)


async def watch(session: aiohttp.ClientSession, url: str, load: Load, stop: asyncio.Event,
                height: int = 0) -> None:  # fmt: skip
    """Stamp the commit time of every transaction in the blocks above ``height``."""
    while not stop.is_set():
        async with session.get(f"{url}/v1/blocks/{height + 1}") as resp:
            if resp.status == 200:
                block = await resp.json()
                now = time.monotonic()
                for h in block["txs"]:
                    load.stamp(h, now)
                load.blocks += 1 if block["txs"] else 0
                height += 1
                continue
        await asyncio.sleep(WATCH_POLL_S)


async def client(session: aiohttp.ClientSession, url: str, txs: list[Tx], batch: int,
                 load: Load, stop: asyncio.Event) -> None:  # fmt: skip
    for start in range(0, len(txs), batch):
        if stop.is_set():
            return
        chunk = txs[start : start + batch]
        body = {"txs": [t.encode().hex() for t in chunk]}
        now = time.monotonic()
        async with session.post(f"{url}/v1/txs", json=body) as resp:
            answer = await resp.json()
        results = answer.get("results", [])
        hashes = [r["hash"] for r in results if "hash" in r]
        load.refused += len(chunk) - len(hashes)
        for h in hashes:
            load.submitted[h] = now
        sent = Batch({h for h in hashes if h not in load.committed})
        for h in sent.pending:
            load.waiting[h] = sent
        while sent.pending and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sent.done.wait(), STOP_CHECK_S)
    load.ran_out += 1


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc; 0 where unreadable)."""
    try:
        return proc_cpu_seconds(f"/proc/{pid}/stat")
    except (OSError, IndexError, ValueError):
        return 0.0


async def thread_cpu(session: aiohttp.ClientSession, urls: list[str]) -> dict[str, float]:
    """CPU seconds so far of every node's threads by role (``vigil_thread_cpu_seconds`` in
    each node's /metrics, summed over the nodes); {} where a node does not serve it."""
    from prometheus_client.parser import text_string_to_metric_families

    total: dict[str, float] = {}
    for url in urls:
        async with session.get(f"{url}/metrics") as resp:
            text = await resp.text()
        for family in text_string_to_metric_families(text):
            if family.name == "vigil_thread_cpu_seconds":
                for sample in family.samples:
                    role = sample.labels["thread"]
                    total[role] = total.get(role, 0.0) + sample.value
    return total


async def measure(net: localnet.LocalNet, loads: list[list[Tx]], seconds: float,
                  batch: int, pids: list[int], height: int) -> dict:  # fmt: skip
    """One closed-loop run of ``loads`` for ``seconds``, watching blocks above ``height``."""
    load = Load({}, {})
    cpu_before = [cpu_seconds(pid) for pid in pids]
    own_before = cpu_seconds(os.getpid())
    stop = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        urls = [n.url for n in net.nodes]
        threads_before = await thread_cpu(session, urls)
        watcher = asyncio.create_task(watch(session, net.nodes[0].url, load, stop, height))
        started = time.monotonic()
        tasks = [
            asyncio.create_task(client(session, net.nodes[i % len(net.nodes)].url, txs, batch,
                                       load, stop))
            for i, txs in enumerate(loads)
        ]  # fmt: skip
        while time.monotonic() - started < seconds:
            await asyncio.sleep(1)
            log(f"  {time.monotonic() - started:5.1f} s  {len(load.committed)} committed")
        stop.set()
        elapsed = time.monotonic() - started
        node_cpu = [cpu_seconds(pid) - b for pid, b in zip(pids, cpu_before, strict=True)]
        own_cpu = cpu_seconds(os.getpid()) - own_before
        threads_after = await thread_cpu(session, urls)
        await asyncio.gather(*tasks, watcher, return_exceptions=True)
    latencies = [load.committed[h] - t for h, t in load.submitted.items() if h in load.committed]
    done = len(latencies)
    per_tx = max(done, 1) * len(pids)  # node-transactions: CPU per transaction per node
    figure = lambda p: round(1000 * percentile(latencies, p), 1) if latencies else None  # noqa: E731
    return {
        "nodes": len(net.nodes),
        "clients": len(loads),
        "batch": batch,
        "seconds": round(elapsed, 1),
        "offered_per_s": round(len(load.submitted) / elapsed, 1),
        "committed": done,
        "committed_per_s": round(done / elapsed, 1),
        "latency_ms_p50": figure(50),
        "latency_ms_p95": figure(95),
        "latency_ms_p99": figure(99),
        "blocks_with_txs_per_s": round(load.blocks / elapsed, 2),
        "node_cpu_s": [round(c, 2) for c in node_cpu],
        "load_generator_cpu_s": round(own_cpu, 2),
        "node_cpu_us_per_tx": round(1e6 * sum(node_cpu) / max(done, 1) / len(pids), 1),
        "node_cpu_us_per_tx_by_thread": {
            role: round(1e6 * (seconds - threads_before.get(role, 0.0)) / per_tx, 1)
            for role, seconds in threads_after.items()
        },
        "refused": load.refused,
        "clients_out_of_txs": load.ran_out,
    }


PREFILL_CHUNK = 50_000
"""Anchors signed and committed at a time while prefilling (bounds the generator's memory)."""
PREFILL_BATCH = 500
"""Anchors per request while prefilling (at most the API's MAX_SUBMIT_BATCH)."""
PREFILL_CLIENTS = 8
assert PREFILL_CLIENTS * PREFILL_BATCH <= MAX_MEMPOOL_TXS // MEMPOOL_SHARES, (
    "every anchor in flight (all from one client key) fits that key's share of a mempool"
)


async def prefill_chunk(net: localnet.LocalNet, txs: list[Tx], height: int) -> int:
    """Submit ``txs`` (spread over the nodes) and wait until every admitted one committed;
    return how many committed."""
    load = Load({}, {})
    stop = asyncio.Event()
    share = -(-len(txs) // PREFILL_CLIENTS)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        watcher = asyncio.create_task(watch(session, net.nodes[0].url, load, stop, height))
        await asyncio.gather(*(
            client(session, net.nodes[i % len(net.nodes)].url, txs[i * share:(i + 1) * share],
                   PREFILL_BATCH, load, stop)
            for i in range(PREFILL_CLIENTS)
        ))  # fmt: skip
        stop.set()
        await asyncio.gather(watcher, return_exceptions=True)
    return sum(1 for h in load.submitted if h in load.committed)


def prefill(net: localnet.LocalNet, count: int, procs: list[subprocess.Popen]) -> dict:
    """Commit ``count`` anchors (each writes at least one state key) before measuring again."""
    key = PrivateKey.load(net.client_key)
    chain_id, genesis_hash = net.genesis().chain_id, net.genesis().hash()
    started = time.monotonic()
    done = 0
    for offset in range(0, count, PREFILL_CHUNK):
        size = min(PREFILL_CHUNK, count - offset)
        txs = [anchor_tx(key, chain_id, genesis_hash, 10_000_000 + offset + i) for i in range(size)]
        status = localnet.get_json(net.nodes[0].url + "/v1/status", 5) or {"height": 0}
        done += asyncio.run(prefill_chunk(net, txs, status["height"]))
        rate = done / (time.monotonic() - started)
        log(f"  prefill: {done:,} of {count:,} anchors committed ({rate:,.0f}/s)")
    return {"prefilled_anchors": done, "prefill_s": round(time.monotonic() - started, 1),
            "node_rss_mb": node_rss_mb(procs)}  # fmt: skip


def node_rss_mb(procs: list[subprocess.Popen]) -> list[dict]:
    """Each node process's resident memory in MiB (Linux /proc): all of it, the process's own
    (anonymous: the Python heap) and file-backed pages (LevelDB's mapped tables, libraries)."""
    out = []
    for proc in procs:
        try:
            text = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:
            text = ""
        kb = {line.split(":")[0]: int(line.split()[1]) for line in text.splitlines()
              if line.startswith(("VmRSS", "RssAnon", "RssFile"))}  # fmt: skip
        names = (("rss", "VmRSS"), ("anon", "RssAnon"), ("file", "RssFile"))
        out.append({name: round(kb.get(key, 0) / 1024, 1) for name, key in names})
    return out


def loop_figures(net: localnet.LocalNet) -> dict:
    """The longest event-loop stall any node saw, and the most CPU its loop thread spent in
    one monitor tick (work holding the loop, against waiting for a core or the GIL)."""
    statuses = [localnet.get_json(n.url + "/v1/status", 5) for n in net.nodes]
    out = {}
    for name in ("max_loop_stall_ms", "max_loop_busy_ms", "max_gc_pause_ms"):
        values = [s[name] for s in statuses if s and name in s]
        out[name] = max(values, default=None)
    return out


def run(count: int, kind: str, seconds: float, clients: list[int], batch: int,
        rate_cap: float, prefill_anchors: int = 0) -> list[dict]:  # fmt: skip
    """Measure a fresh ``count``-node network once per client count (one network for all);
    with ``prefill_anchors``, commit that many anchors after the first measurement and
    measure the first client count again (the last result, with the prefill's figures)."""
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="vigil-bench-") as name,
        network(count, Path(name)) as (net, procs),
    ):
        tmp = Path(name)
        prepare(net, kind, tmp)
        key = PrivateKey.load(net.client_key)
        chain_id, genesis_hash = net.genesis().chain_id, net.genesis().hash()
        offset = 0
        rounds = list(clients) + ([clients[0]] if prefill_anchors else [])
        for round_no, n_clients in enumerate(rounds):
            filled = None
            if prefill_anchors and round_no == len(clients):
                filled = prefill(net, prefill_anchors, procs)
            total = min(MAX_PRESIGNED, int(rate_cap * seconds * 1.5) + n_clients * batch * 4)
            per_client = -(-total // n_clients)
            log(f"  pre-signing {n_clients * per_client} {kind} transactions for {n_clients} "
                f"client(s)")  # fmt: skip
            loads = []
            for _ in range(n_clients):
                loads.append(presign(kind, key, chain_id, genesis_hash, per_client, offset))
                offset += per_client
            status = localnet.get_json(net.nodes[0].url + "/v1/status", 5) or {"height": 0}
            pids = [p.pid for p in procs]
            result = asyncio.run(measure(net, loads, seconds, batch, pids, status["height"]))
            result.update(loop_figures(net))
            result["kind"] = kind
            if filled is not None:
                result["after_prefill"] = filled
            results.append(result)
            log(f"  {count} node(s), {n_clients} client(s): {result['committed_per_s']}/s, "
                f"p99 {result['latency_ms_p99']} ms")  # fmt: skip
    return results


def plot(sweep: list[dict], path: Path, ceiling: float) -> None:
    """Throughput and latency against the load offered: a closed loop offers more by adding
    clients (each keeps one batch in flight), so the x axis is the clients, doubling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = sorted(sweep, key=lambda r: r["clients"])
    clients = [r["clients"] for r in sweep]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    top.plot(clients, [r["committed_per_s"] for r in sweep], "o-", label="committed/s")
    top.plot(clients, [r["offered_per_s"] for r in sweep], "s--", label="offered/s")
    top.axhline(ceiling, color="grey", linestyle=":", label="signature ceiling")
    top.set_ylabel("tx/s")
    top.set_ylim(bottom=0)
    top.legend()
    for p in (50, 95, 99):
        bottom.plot(clients, [r[f"latency_ms_p{p}"] for r in sweep], "o-", label=f"p{p}")
    bottom.set_xscale("log", base=2)
    bottom.set_xticks(clients, [str(c) for c in clients])
    batch = sweep[0]["batch"]
    bottom.set_xlabel(f"clients (closed loop, each with one batch of {batch} in flight)")
    bottom.set_ylabel("submit-to-commit latency (ms)")
    bottom.set_ylim(bottom=0)
    bottom.legend()
    kind, nodes = sweep[0]["kind"], sweep[0]["nodes"]
    fig.suptitle(f"Vigil localnet: {nodes} nodes, {kind} transactions")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    log(f"  plot written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--kind", choices=KINDS, default="anchor")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the 1-node network measured for comparison")  # fmt: skip
    parser.add_argument("--plot", type=Path, help="also sweep offered load and plot it (PNG)")
    parser.add_argument("--prefill", type=int, default=0, metavar="N",
                        help="then commit N anchors (N more state keys) and measure again, "
                             "with each node's memory")  # fmt: skip
    args = parser.parse_args()
    most = (4 if args.plot else 1) * args.clients * args.batch
    if most > MAX_MEMPOOL_TXS // MEMPOOL_SHARES:
        parser.error(f"{most} transactions in flight from one client key exceed its share of a "
                     f"node's mempool ({MAX_MEMPOOL_TXS // MEMPOOL_SHARES}); fewer --clients "
                     "or a smaller --batch")  # fmt: skip
    cores = os.cpu_count() or 1
    rates = verify_rates(VERIFY_SECONDS)
    ceiling = rates["verify_per_s_pool"] / args.nodes
    report: dict = {
        "benchmark": "localnet",
        "machine": {"python": platform.python_version(), "cpus": cores, **rates},
    }
    if not args.no_baseline:
        [baseline] = run(1, args.kind, args.seconds, [args.clients], args.batch,
                         rates["verify_per_s_pool"])  # fmt: skip
        report["baseline_1_node"] = baseline
    result, *after = run(args.nodes, args.kind, args.seconds, [args.clients], args.batch, ceiling,
                         args.prefill)  # fmt: skip
    if after:
        filled = after[0]
        report["after_prefill"] = filled
        report["throughput_after_prefill_vs_before"] = round(
            filled["committed_per_s"] / max(result["committed_per_s"], 1e-9), 3)  # fmt: skip
    result["ceiling_per_s"] = round(ceiling, 1)
    result["ratio_to_ceiling"] = round(result["committed_per_s"] / ceiling, 3)
    report["network"] = result
    report.update({key: result[key] for key in (
        "committed_per_s", "latency_ms_p50", "latency_ms_p95", "latency_ms_p99", "ceiling_per_s",
        "ratio_to_ceiling", "nodes", "kind")})  # fmt: skip
    if not args.no_baseline:
        ratio = result["committed_per_s"] / max(report["baseline_1_node"]["committed_per_s"], 1e-9)
        report["throughput_vs_1_node"] = round(ratio, 3)
    if args.plot:
        counts = sorted({1, 2, 4, args.clients, 2 * args.clients, 4 * args.clients})
        sweep = run(args.nodes, args.kind, max(5.0, args.seconds / 2), counts, args.batch,
                    ceiling)  # fmt: skip
        report["sweep"] = sweep
        plot(sweep, args.plot, ceiling)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
