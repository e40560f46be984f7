"""Committed anchors per second and submit-to-commit latency on real local networks.

A closed-loop load generator: each client submits a batch of pre-signed
anchors to one node (clients spread over the nodes), waits until the whole
batch is committed, and submits the next. A watcher follows new blocks and
stamps each transaction's commit time. The 4-node figure is compared with a
1-node network measured in the same run (the cost of agreement). JSON goes to
stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from consensus.crypto import PrivateKey
from node import localnet
from node.app.types import AnchorPayload, Tx


def presign(key: PrivateKey, chain_id: str, genesis_hash: bytes, count: int) -> list[Tx]:
    txs = []
    for i in range(count):
        data = f"bench {i} {os.urandom(8).hex()}".encode()
        payload = AnchorPayload(hashlib.sha256(data).digest(), len(data), "text/plain", (), ())
        txs.append(Tx.create(key, chain_id, genesis_hash, payload, 900))
    return txs


async def watch(
    session: aiohttp.ClientSession, url: str, committed: dict[str, float], stop: asyncio.Event
) -> None:
    height = 0
    while not stop.is_set():
        async with session.get(f"{url}/v1/blocks/{height + 1}") as resp:
            if resp.status == 200:
                block = await resp.json()
                now = time.monotonic()
                for h in block["txs"]:
                    committed[h] = now
                height += 1
                continue
        await asyncio.sleep(0.01)


async def client(
    session: aiohttp.ClientSession, url: str, txs: list[Tx], batch: int,
    submitted: dict[str, float], committed: dict[str, float], stop: asyncio.Event,
) -> None:  # fmt: skip
    for start in range(0, len(txs), batch):
        if stop.is_set():
            return
        chunk = txs[start : start + batch]
        body = {"txs": [t.encode().hex() for t in chunk]}
        now = time.monotonic()
        async with session.post(f"{url}/v1/txs", json=body) as resp:
            answer = await resp.json()
        hashes = [r["hash"] for r in answer.get("results", []) if "hash" in r]
        for h in hashes:
            submitted[h] = now
        while not stop.is_set() and not all(h in committed for h in hashes):
            await asyncio.sleep(0.005)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def measure(net: localnet.LocalNet, seconds: float, clients: int, batch: int) -> dict:
    key = PrivateKey.load(net.client_key)
    chain_id, genesis_hash = net.genesis().chain_id, net.genesis().hash()
    per_client = int(batch * max(8, seconds * 20))
    print(f"  pre-signing {clients * per_client} anchors", file=sys.stderr)
    loads = [presign(key, chain_id, genesis_hash, per_client) for _ in range(clients)]
    submitted: dict[str, float] = {}
    committed: dict[str, float] = {}
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        watcher = asyncio.create_task(watch(session, net.nodes[0].url, committed, stop))
        started = time.monotonic()
        tasks = [
            asyncio.create_task(client(session, net.nodes[i % len(net.nodes)].url, loads[i], batch,
                                       submitted, committed, stop))
            for i in range(clients)
        ]  # fmt: skip
        while time.monotonic() - started < seconds:
            await asyncio.sleep(1)
            print(
                f"  {time.monotonic() - started:5.1f} s  {len(committed)} committed",
                file=sys.stderr,
            )
        stop.set()
        elapsed = time.monotonic() - started
        await asyncio.gather(*tasks, watcher, return_exceptions=True)
    latencies = [committed[h] - t for h, t in submitted.items() if h in committed]
    done = len(latencies)
    return {
        "nodes": len(net.nodes),
        "clients": clients,
        "batch": batch,
        "seconds": round(elapsed, 1),
        "committed": done,
        "committed_per_s": round(done / elapsed, 1),
        "latency_ms_p50": round(1000 * percentile(latencies, 50), 1) if latencies else None,
        "latency_ms_p99": round(1000 * percentile(latencies, 99), 1) if latencies else None,
    }


def loop_figures(net: localnet.LocalNet) -> dict:
    """The longest event-loop stall any node saw, and the most CPU its loop thread spent in
    one monitor tick (work holding the loop, against waiting for a core or the GIL)."""
    statuses = [localnet.get_json(n.url + "/v1/status", 5) for n in net.nodes]
    out = {}
    for name in ("max_loop_stall_ms", "max_loop_busy_ms"):
        values = [s[name] for s in statuses if s and name in s]
        out[name] = max(values, default=None)
    return out


def run_network(count: int, seconds: float, clients: int, batch: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        net = localnet.create(Path(tmp), count)
        procs = [localnet.start(n) for n in net.nodes]
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                statuses = [localnet.get_json(n.url + "/v1/status", 1) for n in net.nodes]
                if all(s is not None and len(s["peers"]) == count - 1 for s in statuses):
                    break
                time.sleep(0.3)
            else:
                raise SystemExit(f"{count}-node network did not link up")
            print(f"{count}-node network up", file=sys.stderr)
            result = asyncio.run(measure(net, seconds, clients, batch))
            result.update(loop_figures(net))
            return result
        finally:
            for p in procs:
                localnet.stop(p)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    baseline = run_network(1, args.seconds, args.clients, args.batch)
    result = run_network(args.nodes, args.seconds, args.clients, args.batch)
    ratio = result["committed_per_s"] / max(baseline["committed_per_s"], 1e-9)
    report = {
        "benchmark": "localnet",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "network": result,
        "baseline_1_node": baseline,
        "throughput_vs_1_node": round(ratio, 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
