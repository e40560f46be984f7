"""A seeded chaos run against a real 4-node network under steady load of every transaction kind.

Faults are chosen and timed by ``random.Random(seed)`` (the seed is printed first and on every
failure, so ``--seed S`` replays the schedule): SIGKILL and restart of a node (sometimes the
current primary), SIGSTOP/SIGCONT pauses, a data directory wiped while its node is down,
network partitions (two against two) and an isolated node, slow and flaky links, clock skew
on one node, a full disk on one node, a flooding client, and one member's node replaced by a
Byzantine build for a while (node/byzantine.py: it equivocates as primary, proposes invalid
blocks, votes for two blocks, forges signatures and catch-up certificates, replays and floods
its peers). Peer links run through
fault-injecting TCP proxies in this process (one in front of each node's peer port; the
genesis names the proxies' addresses), so a link is cut, delayed or reset per ordered pair
of nodes. Meanwhile a steady load of anchor,
score and call transactions goes to random live nodes, and every acknowledged one (202 with a
hash) is recorded.

At the end everything is healed, the network settles, and the checks run (docs/chaos.md says
what each means): every acknowledged transaction committed exactly once on every node (or lost
with the only node that held it, which crashed), identical blocks and receipts on every node,
one state root at one height, and commits resumed within a bound after every fault. A table
of the faults and one line per check follow, then ``N passed, M failed``; the exit status is
non-zero on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import bench.localnet as bench
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from consensus.crypto import PrivateKey, key_hex
from node import localnet
from node.app.genesis import Genesis
from node.app.types import AnchorPayload, Tx
from node.byzantine import TEST_BYZANTINE_ENV
from node.service import TEST_CLOCK_SKEW_ENV

NODES = 4
TIMEOUTS = {
    "progress_timeout_ms": 1500,
    "request_timeout_ms": 3000,
    "view_change_timeout_ms": 1500,
}
"""Short consensus timeouts (as tests/node/test_network.py uses), so a view change after a
fault takes seconds, not tens of seconds."""
FAULT_KINDS = (
    "kill",
    "kill-primary",
    "pause",
    "wipe",
    "partition",
    "isolate",
    "slow",
    "flaky",
    "skew",
    "flood",
    "disk-full",
    "byzantine",
)
CRASHES = ("kill", "kill-primary", "wipe", "skew", "disk-full", "byzantine")
"""Faults that end (or may end) the target's process (its mempool is memory only)."""
DISK_IMAGE_BYTES = 512 * 1024 * 1024
"""Each node's data directory is a loop-mounted ext4 image of this size (sparse) when the
run may fill a disk; "disk-full" fills the free space of one while its node runs."""
RATE_TX_PER_S = 12.0
BATCH = 3
EXPIRY_WINDOW = 600
"""Blocks each load transaction stays valid for (the chain allows max_tx_window, 1,000)."""
RESUME_BOUND_S = 60.0
"""A fault whose next commit after healing took longer than this fails the run."""
SETTLE_TIMEOUT_S = 180.0
STATUS_TIMEOUT_S = 1.5
POLL_S = 0.5
LINK_TIMEOUT_S = 60.0
MAX_IN_FLIGHT = 16
"""Load requests outstanding at once (a paused node holds its requests until it resumes)."""
CHECK_CONCURRENCY = 12
BYZANTINE_CAUGHT = ("bad-signature", "conflicting-vote")
"""Fault kinds the honest nodes must count while a Byzantine member runs: it sends both with
every vote of every height (its other forgeries depend on its turn as primary and are
reported, not required)."""
STALLED_PEER_CONNECTIONS = 200
"""Silent connections a flood holds open to its target's peer port."""
PROXY_OFFSET = 50
"""A node's proxy listens on its peer port + 50 (peer ports are base+i, APIs base+100+i)."""
TTY = sys.stdout.isatty()


def say(text: str) -> None:
    print(("\r\033[K" if TTY else "") + text, flush=True)


# ------------------------------------------------------------------ the fault schedule


@dataclass
class Fault:
    at: float
    """Seconds after the fault phase began (a fault never starts before the previous one's
    recovery; the table shows when it really started)."""
    kind: str
    target: str
    hold: float
    detail: dict = field(default_factory=dict)
    started: float | None = None
    healed: float | None = None
    height_at_heal: int | None = None
    resumed: float | None = None
    caught_up: float | None = None
    note: str = ""
    caught: dict[str, float] = field(default_factory=dict)
    """For a Byzantine member: the faults the honest nodes counted while it ran, by kind."""

    def describe(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.detail.items() if k != "groups")
        if "groups" in self.detail:
            a, b = self.detail["groups"]
            extra = f"{'+'.join(a)} | {'+'.join(b)}"
        return f"{self.kind} {self.target}" + (f" ({extra})" if extra else "")


def schedule(seed: int, seconds: float, kinds: tuple[str, ...], orgs: list[str]) -> list[Fault]:
    """The faults of one run: every kind once in a seeded order, then again, until the time is
    used up. Only the seed decides kinds, targets, holds and gaps."""
    rng = random.Random(seed)
    out: list[Fault] = []
    bag: list[str] = []
    t = rng.uniform(2.0, 4.0)
    while t < seconds:
        if not bag:
            bag = list(kinds)
            rng.shuffle(bag)
        kind = bag.pop(0)
        hold = round(rng.uniform(3.0, 9.0), 1)
        target = rng.choice(orgs)
        detail: dict = {}
        if kind == "partition":
            first = sorted(rng.sample(orgs, 2))
            detail["groups"] = (first, [o for o in orgs if o not in first])
            target = "-"
        elif kind == "kill-primary":
            target = "primary"
        elif kind == "slow":
            detail["delay_ms"] = rng.choice((50, 100, 200, 400))
        elif kind == "flaky":
            detail["reset_per_chunk"] = rng.choice((0.01, 0.03, 0.1))
        elif kind == "skew":
            detail["skew_s"] = rng.choice((-1, 1)) * rng.randint(40, 90)
        elif kind == "byzantine":
            detail["seed"] = rng.randrange(2**31)
        out.append(Fault(round(t, 1), kind, target, hold, detail))
        t += hold + rng.uniform(4.0, 10.0)
    return out


# ------------------------------------------------------------------ the fault-injecting proxy


def socket_owner(peer_port: int, proxy_port: int, pids: dict[str, int]) -> str | None:
    """Which node process owns the loopback socket 127.0.0.1:peer_port that dialled the proxy
    at proxy_port (Linux /proc: the socket's inode, then the process holding it)."""
    local = f"0100007F:{peer_port:04X}"
    remote = f":{proxy_port:04X}"
    inode = None
    with contextlib.suppress(OSError), open("/proc/net/tcp") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) > 9 and parts[1] == local and parts[2].endswith(remote):
                inode = parts[9]
                break
    if inode is None:
        return None
    wanted = f"socket:[{inode}]"
    for org, pid in list(pids.items()):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == wanted:
                    return org
    return None


class Proxies:
    """One TCP relay in front of each node's peer port, on its own thread and event loop (the
    set-up steps in the main thread block while the links must keep working).

    A node dials each peer and sends on that link only (node/p2p.py), so the connection a
    dialer opens to ``dst``'s proxy carries the ordered pair (dialer, dst); the dialer is
    found from the connecting socket. Rules per ordered pair: cut (close the connection and
    refuse new ones), delay (each relayed chunk waits), reset (each chunk may end the
    connection). TLS rides through untouched: the proxy only moves bytes."""

    def __init__(self, routes: dict[str, tuple[int, int]], pids: dict[str, int], seed: int):
        self.routes = routes
        """org -> (proxy port, the node's real peer port)."""
        self.pids = pids
        self.rng = random.Random(f"{seed}-proxy")
        self.cut: set[tuple[str, str]] = set()
        self.delay: dict[tuple[str, str], float] = {}
        self.reset: dict[tuple[str, str], float] = {}
        self.conns: set[_Conn] = set()
        self.unidentified = 0
        self.relayed = 0
        self.loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-proxies", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise SystemExit("the proxies did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def serve() -> None:
            for org, (port, _) in self.routes.items():
                server = await asyncio.start_server(
                    lambda r, w, dst=org: self._accept(dst, r, w), "127.0.0.1", port
                )
                self._servers.append(server)
            self._ready.set()

        self.loop.run_until_complete(serve())
        self.loop.run_forever()

    def stop(self) -> None:
        if not self._ready.is_set():
            return

        async def close() -> None:
            for server in self._servers:
                server.close()
            for conn in list(self.conns):
                conn.close()

        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
            self.loop.call_soon_threadsafe(self.loop.stop)

    def configure(
        self,
        cut: set[tuple[str, str]] | None = None,
        delay: dict[tuple[str, str], float] | None = None,
        reset: dict[tuple[str, str], float] | None = None,
    ) -> None:
        """Replace the rules (None: no rule of that kind); links now cut close at once."""

        def apply() -> None:
            self.cut = set(cut or ())
            self.delay = dict(delay or {})
            self.reset = dict(reset or {})
            for conn in list(self.conns):
                if (conn.src, conn.dst) in self.cut:
                    conn.close()

        self.loop.call_soon_threadsafe(apply)

    async def _accept(
        self, dst: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        proxy_port, real_port = self.routes[dst]
        peer = writer.get_extra_info("peername")
        src = socket_owner(peer[1], proxy_port, self.pids) if peer else None
        if src is None:
            self.unidentified += 1  # not one of our nodes (or it died meanwhile): refuse
        if src is None or (src, dst) in self.cut:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", real_port)
        except OSError:
            writer.close()
            return
        conn = _Conn(src, dst, (writer, up_writer))
        self.conns.add(conn)
        try:
            await asyncio.gather(
                self._pipe(conn, reader, up_writer), self._pipe(conn, up_reader, writer)
            )
        finally:
            conn.close()
            self.conns.discard(conn)

    async def _pipe(
        self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        pair = (conn.src, conn.dst)
        try:
            while not conn.closed and (data := await reader.read(65536)):
                if pair in self.cut:
                    break
                if (delay := self.delay.get(pair, 0.0)) > 0:
                    await asyncio.sleep(delay)
                if (p := self.reset.get(pair, 0.0)) > 0 and self.rng.random() < p:
                    break
                writer.write(data)
                self.relayed += len(data)
                await writer.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            conn.close()


@dataclass(eq=False)
class _Conn:
    src: str
    dst: str
    writers: tuple[asyncio.StreamWriter, asyncio.StreamWriter]
    closed: bool = False

    def close(self) -> None:
        self.closed = True
        for w in self.writers:
            with contextlib.suppress(Exception):
                w.transport.abort()


# ------------------------------------------------------------------ the network


def create(directory: Path) -> tuple[localnet.LocalNet, dict[str, tuple[int, int]]]:
    """A 4-node local network whose genesis sends every peer link through a proxy: each
    member's peer address is its proxy's, while the node listens on its own port (its
    config). Nothing has been signed yet, so rewriting the genesis is still free."""
    net = localnet.create(directory, NODES)
    routes = {}
    for node in net.nodes:
        real = int(node.peer.rsplit(":", 1)[1])
        if not localnet.port_is_free(real + PROXY_OFFSET):
            raise SystemExit(f"port {real + PROXY_OFFSET} (a proxy's) is taken; try again")
        routes[node.org] = (real + PROXY_OFFSET, real)
        path = node.home / "config.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | TIMEOUTS))
    obj = net.genesis().to_json_obj()
    for member in obj["members"]:
        member["peer"] = f"127.0.0.1:{routes[member['org']][0]}"
    genesis = Genesis.from_json_obj(obj)
    for path in [net.genesis_path] + [n.home / "genesis.json" for n in net.nodes]:
        genesis.save(path, overwrite=True)
    return net, routes


class Cluster:
    """The node processes and what this run did to them."""

    def __init__(self, net: localnet.LocalNet, seed: int) -> None:
        self.net = net
        self.seed = seed
        self.orgs = [n.org for n in net.nodes]
        self.procs: dict[str, subprocess.Popen] = {}
        self.pids: dict[str, int] = {}
        self.state: dict[str, str] = {}
        """org -> "up", "paused" or "down" (as this run left it)."""
        self.org_of = {key_hex(m.node_key): m.org for m in net.genesis().members}
        self.exits: list[str] = []
        """Nodes that exited without being killed: a failure."""
        self.crashes: dict[str, list[float]] = {o: [] for o in self.orgs}
        """When each node's process was ended by a fault (monotonic)."""
        self.mounts: dict[str, Path] = {}
        """org -> the disk image mounted on its data directory."""
        self.may_exit: set[str] = set()
        """Nodes whose exit is an expected outcome of the fault on them now (a full disk)."""

    def node(self, org: str) -> localnet.LocalNode:
        return next(n for n in self.net.nodes if n.org == org)

    def start(self, org: str, env: dict[str, str] | None = None) -> None:
        proc = localnet.start(self.node(org), env=env)
        self.procs[org] = proc
        self.pids[org] = proc.pid
        self.state[org] = "up"

    def kill(self, org: str) -> None:
        proc = self.procs[org]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self.state[org] = "down"
        self.crashes[org].append(time.monotonic())

    def pause(self, org: str) -> None:
        os.killpg(self.procs[org].pid, signal.SIGSTOP)
        self.state[org] = "paused"

    def resume(self, org: str) -> None:
        os.killpg(self.procs[org].pid, signal.SIGCONT)
        self.state[org] = "up"

    def live(self) -> list[str]:
        return [o for o in self.orgs if self.state.get(o) == "up"]

    def check_exits(self) -> None:
        """A node that ended by itself is recorded and started again (the run goes on)."""
        for org in self.orgs:
            proc = self.procs.get(org)
            if (
                self.state.get(org) == "up"
                and org not in self.may_exit
                and proc is not None
                and proc.poll() is not None
            ):
                tail = (self.node(org).home / "node.log").read_text(errors="replace")[-600:]
                self.exits.append(f"{org} exited with status {proc.returncode}: ...{tail}")
                say(
                    f"  !! {org} exited by itself (status {proc.returncode}); restarting it "
                    f"(seed {self.seed})"
                )
                self.crashes[org].append(time.monotonic())
                self.start(org)

    def stop_all(self) -> None:
        for org, proc in self.procs.items():
            if self.state.get(org) == "paused":
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGCONT)
            localnet.stop(proc)
        for org in list(self.mounts):
            unmount(self.node(org).home / "data")
            del self.mounts[org]


# ------------------------------------------------------------------ disks


def loop_mounts_work() -> bool:
    return os.geteuid() == 0 and all(shutil.which(t) for t in ("mount", "umount", "mkfs.ext4"))


def mount_small_disk(home: Path, image: Path) -> None:
    """Put a node's (not yet running) data directory on a loop-mounted ext4 image."""
    data = home / "data"
    with image.open("wb") as fh:
        fh.truncate(DISK_IMAGE_BYTES)
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True, capture_output=True
    )
    aside = home / "data.before-mount"
    if data.exists():
        data.rename(aside)
    data.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(data)], check=True, capture_output=True)
    if aside.exists():
        for child in aside.iterdir():
            shutil.move(str(child), str(data / child.name))
        aside.rmdir()


def unmount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True)


def fill_disk(data: Path) -> Path:
    """Take all the free space of the filesystem holding ``data``; the file to remove after."""
    filler = data / "chaos-filler"
    fd = os.open(filler, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        stat = os.statvfs(data)
        free = stat.f_bavail * stat.f_frsize
        while free > 0:
            try:
                os.posix_fallocate(fd, 0, free)
                break
            except OSError:
                free -= 64 * 1024
        with contextlib.suppress(OSError):  # and the last blocks, a page at a time
            os.lseek(fd, 0, os.SEEK_END)
            while True:
                os.write(fd, bytes(4096))
    finally:
        os.close(fd)
    return filler


def wipe(data: Path) -> None:
    """Remove everything in a data directory (which may be a mount point, kept)."""
    for child in data.iterdir():
        if child.is_dir() and not child.is_symlink():
            if child.name != "lost+found":
                shutil.rmtree(child)
        else:
            child.unlink()


def last_error(node: localnet.LocalNode) -> str:
    """The reason a node gave last for stopping, short enough for the table."""
    lines = (node.home / "node.log").read_text(errors="replace").splitlines()
    for line in reversed(lines):
        if line.startswith("Error: "):
            text = line.removeprefix("Error: ").split(" (run again with", 1)[0]
            return text.replace(str(node.home), "<home>")[:160]
    return lines[-1][-160:] if lines else ""


def wait_linked(cluster: Cluster) -> None:
    deadline = time.monotonic() + LINK_TIMEOUT_S
    while time.monotonic() < deadline:
        cluster.check_exits()
        statuses = [localnet.get_json(n.url + "/v1/status", 1) for n in cluster.net.nodes]
        if all(s is not None and len(s["peers"]) == NODES - 1 for s in statuses):
            return
        time.sleep(0.3)
    raise SystemExit("the network did not link up through the proxies; see the node.log files")


# ------------------------------------------------------------------ load and watching


@dataclass
class Ack:
    org: str
    at: float
    until: int


@dataclass
class Run:
    cluster: Cluster
    proxies: Proxies
    key: PrivateKey
    chain_id: str
    genesis_hash: bytes
    started: float = 0.0
    acked: dict[str, Ack] = field(default_factory=dict)
    refused: Counter = field(default_factory=Counter)
    heights: dict[str, int | None] = field(default_factory=dict)
    history: list[tuple[float, int, dict[str, int | None]]] = field(default_factory=list)
    current: str = "-"
    flood_sent: int = 0
    flood_acked: list[str] = field(default_factory=list)
    stalled_peer_connections: int = 0
    seq: int = 0
    stop_load: bool = False

    @property
    def tip(self) -> int:
        return max((h for h in self.heights.values() if h is not None), default=0)

    def make_txs(self, count: int) -> list[Tx]:
        out = []
        until = self.tip + EXPIRY_WINDOW
        rng = np.random.default_rng(self.seq)
        for _ in range(count):
            self.seq += 1
            i, kind = self.seq, bench.KINDS[self.seq % 3]
            if kind == "anchor":
                tx = bench.anchor_tx(self.key, self.chain_id, self.genesis_hash, i, until)
            elif kind == "score":
                tx = bench.score_tx(self.key, self.chain_id, self.genesis_hash, i, rng, until)
            else:
                tx = bench.call_tx(self.key, self.chain_id, self.genesis_hash, i, until)
            out.append(tx)
        return out


async def submit(run: Run, session: aiohttp.ClientSession, org: str, txs: list[Tx]) -> None:
    url = run.cluster.node(org).url + "/v1/txs"
    body = {"txs": [t.encode().hex() for t in txs]}
    try:
        async with session.post(url, json=body, timeout=aiohttp.ClientTimeout(total=10)) as resp:
            answer = await resp.json(content_type=None)
            status = resp.status
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
        run.refused["no answer"] += len(txs)
        return
    if status != 202:
        run.refused[f"http {status}"] += len(txs)
        return
    now = time.monotonic()
    for tx, result in zip(txs, answer.get("results", []), strict=False):
        if "hash" in result:
            assert result["hash"] == tx.id.hex(), (result, tx.id.hex())
            run.acked[result["hash"]] = Ack(org, now, tx.valid_until_height)
        else:
            run.refused[result.get("error", {}).get("code", "refused")] += 1


async def load(run: Run, session: aiohttp.ClientSession, rng: random.Random) -> None:
    """A steady RATE_TX_PER_S of every kind, BATCH at a time, each batch to a random live node."""
    in_flight: set[asyncio.Task] = set()
    period = BATCH / RATE_TX_PER_S
    next_at = time.monotonic()
    while not run.stop_load:
        live = run.cluster.live()
        if live and len(in_flight) < MAX_IN_FLIGHT:
            task = asyncio.create_task(submit(run, session, rng.choice(live), run.make_txs(BATCH)))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        next_at += period
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    if in_flight:
        await asyncio.gather(*in_flight, return_exceptions=True)


async def status(session: aiohttp.ClientSession, url: str) -> dict | None:
    try:
        async with session.get(
            url + "/v1/status", timeout=aiohttp.ClientTimeout(total=STATUS_TIMEOUT_S)
        ) as resp:
            return await resp.json() if resp.status == 200 else None
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
        return None


async def watch(run: Run, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
    """Every node's height, a history of them, node exits, and the progress line."""
    last_line = 0.0
    while not stop.is_set():
        run.cluster.check_exits()
        orgs = run.cluster.orgs
        live = set(run.cluster.live())
        answers = await asyncio.gather(
            *(
                status(session, run.cluster.node(o).url) if o in live else asyncio.sleep(0)
                for o in orgs
            )
        )
        for org, s in zip(orgs, answers, strict=True):
            run.heights[org] = s["height"] if isinstance(s, dict) else None
        now = time.monotonic()
        run.history.append((now, run.tip, dict(run.heights)))
        if now - last_line >= (1.0 if TTY else 10.0):
            last_line = now
            parts = " ".join(
                f"{o}={'--' if run.heights[o] is None else run.heights[o]}"
                + ("" if run.cluster.state[o] == "up" else f"({run.cluster.state[o]})")
                for o in orgs
            )
            refused = sum(run.refused.values())
            line = (
                f"  t={now - run.started:6.1f}s  fault: {run.current:<34} {parts}  "
                f"acked {len(run.acked)} refused {refused}"
            )
            print(("\r\033[K" + line) if TTY else line, end="" if TTY else "\n", flush=True)
        await asyncio.sleep(POLL_S)


async def primary(run: Run, session: aiohttp.ClientSession) -> str | None:
    for org in run.cluster.live():
        s = await status(session, run.cluster.node(org).url)
        if s is not None:
            return run.cluster.org_of.get(s["primary"])
    return None


# ------------------------------------------------------------------ faults


async def flood(run: Run, session: aiohttp.ClientSession, org: str, seconds: float) -> None:
    """A Byzantine client: as fast as it can for ``seconds``, transactions signed by a key the
    chain never authorised, copies with a broken signature, undecodable bytes and non-JSON
    bodies, all at one node, while STALLED_PEER_CONNECTIONS connections to its peer port
    stay silent. None may be acknowledged."""
    stranger = PrivateKey.generate()
    url = run.cluster.node(org).url + "/v1/txs"
    end = time.monotonic() + seconds
    honest = run.make_txs(1)[0]  # never sent as it is: only its bytes are bent below

    async def one(n: int) -> None:
        data = f"flood {n} {time.time_ns()}".encode()
        payload = AnchorPayload(hashlib.sha256(data).digest(), len(data), "text/plain", (), ())
        if n % 4 == 0:
            tx = Tx.create(stranger, run.chain_id, run.genesis_hash, payload, run.tip + 50)
            body: object = {"txs": [tx.encode().hex()]}
        elif n % 4 == 1:
            raw = bytearray(honest.encode())
            raw[-1] ^= 1 + n % 255  # the signature's last byte
            body = {"txs": [raw.hex()]}
        elif n % 4 == 2:
            body = {"txs": [os.urandom(64 + n % 200).hex()]}
        else:
            body = None
        try:
            if body is None:
                req = session.post(url, data=b"{" * (n % 64 + 1), timeout=aiohttp.ClientTimeout(2))
            else:
                req = session.post(url, json=body, timeout=aiohttp.ClientTimeout(2))
            async with req as resp:
                answer = await resp.json(content_type=None)
                if resp.status == 202:
                    run.flood_acked += [r["hash"] for r in answer.get("results", []) if "hash" in r]
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
            pass

    # Meanwhile, connections to the node's own peer port (not through its proxy) that never
    # finish a TLS handshake: a stranger holding listener slots.
    real_port = run.proxies.routes[org][1]
    stalled: list[asyncio.StreamWriter] = []
    for _ in range(STALLED_PEER_CONNECTIONS):
        with contextlib.suppress(OSError):
            stalled.append((await asyncio.open_connection("127.0.0.1", real_port))[1])
    n = 0
    try:
        while time.monotonic() < end:
            await asyncio.gather(*(one(n + k) for k in range(8)))
            n += 8
    finally:
        for writer in stalled:
            writer.transport.abort()
    run.flood_sent += n
    run.stalled_peer_connections += len(stalled)


async def fault_counts(session: aiohttp.ClientSession, run: Run, orgs: list[str]) -> Counter[str]:
    """The faults ``orgs`` have counted (vigil_faults_total), summed by kind."""
    total: Counter[str] = Counter()
    for org in orgs:
        try:
            async with session.get(
                run.cluster.node(org).url + "/metrics", timeout=aiohttp.ClientTimeout(total=5)
            ) as resp:
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError):
            continue  # reported as not caught if every node is unreachable
        for family in text_string_to_metric_families(text):
            if family.name == "vigil_faults":
                for sample in family.samples:
                    if sample.name == "vigil_faults_total":
                        total[sample.labels["kind"]] += sample.value
    return total


async def inject(run: Run, session: aiohttp.ClientSession, fault: Fault) -> None:
    """Apply one fault, hold it, heal it."""
    cluster, proxies = run.cluster, run.proxies
    orgs = cluster.orgs
    if fault.kind == "kill-primary":
        fault.target = await primary(run, session) or orgs[0]
        fault.note = "was primary"
    target = fault.target
    fault.started = time.monotonic()
    run.current = fault.describe()
    say(f"  [{fault.started - run.started:6.1f}s] fault: {fault.describe()} for {fault.hold} s")
    kind = fault.kind
    if kind in ("kill", "kill-primary", "wipe"):
        cluster.kill(target)
        if kind == "wipe":
            wipe(cluster.node(target).home / "data")
        await asyncio.sleep(fault.hold)
        cluster.start(target)
    elif kind == "skew":
        cluster.kill(target)
        cluster.start(target, env={TEST_CLOCK_SKEW_ENV: str(fault.detail["skew_s"] * 1000)})
        await asyncio.sleep(fault.hold)
        cluster.kill(target)
        cluster.start(target)
    elif kind == "byzantine":
        honest = [o for o in orgs if o != target]
        before = await fault_counts(session, run, honest)
        cluster.kill(target)
        cluster.start(target, env={TEST_BYZANTINE_ENV: str(fault.detail["seed"])})
        await asyncio.sleep(fault.hold)
        cluster.kill(target)
        cluster.start(target)
        after = await fault_counts(session, run, honest)
        fault.caught = {k: after[k] - before[k] for k in sorted(after) if after[k] > before[k]}
        fault.note = "caught " + ", ".join(f"{k} {v:.0f}" for k, v in fault.caught.items())
    elif kind == "pause":
        cluster.pause(target)
        await asyncio.sleep(fault.hold)
        cluster.resume(target)
    elif kind in ("partition", "isolate", "slow", "flaky"):
        if kind == "partition":
            a, b = fault.detail["groups"]
            pairs = {(x, y) for x in a for y in b} | {(y, x) for x in a for y in b}
        else:
            pairs = {(target, o) for o in orgs if o != target}
            pairs |= {(o, target) for o in orgs if o != target}
        if kind in ("partition", "isolate"):
            proxies.configure(cut=pairs)
        elif kind == "slow":
            proxies.configure(delay={p: fault.detail["delay_ms"] / 1000 for p in pairs})
        else:
            proxies.configure(reset={p: fault.detail["reset_per_chunk"] for p in pairs})
        await asyncio.sleep(fault.hold)
        proxies.configure()
    elif kind == "flood":
        await flood(run, session, target, fault.hold)
    elif kind == "disk-full":
        data = cluster.node(target).home / "data"
        if target not in cluster.mounts:
            fault.note = "skipped: no loop-mounted data directory (needs root and mount -o loop)"
            await asyncio.sleep(fault.hold)
        else:
            filler = fill_disk(data)
            cluster.may_exit.add(target)
            await asyncio.sleep(fault.hold)
            filler.unlink()
            cluster.may_exit.discard(target)
            proc = cluster.procs[target]
            if proc.poll() is None:
                fault.note = "kept running"
            else:
                fault.note = f"exited {proc.returncode}: {last_error(cluster.node(target))}"
                cluster.crashes[target].append(time.monotonic())
                cluster.start(target)
    else:
        raise AssertionError(kind)
    fault.healed = time.monotonic()
    fault.height_at_heal = run.tip
    run.current = f"(healed {fault.kind} {fault.target})"


async def recovered(run: Run, fault: Fault, bound: float) -> None:
    """Wait until the network commits past its height at the heal and every node has caught
    up with that height, or the bound passes (so faults come one at a time: f = 1)."""
    assert fault.healed is not None and fault.height_at_heal is not None
    deadline = fault.healed + bound
    seen = 0
    while time.monotonic() < deadline:
        for at, tip, heights in run.history[seen:]:
            seen += 1
            if at < fault.healed:
                continue
            if fault.resumed is None and tip > fault.height_at_heal:
                fault.resumed = at
            values = list(heights.values())
            if fault.caught_up is None and all(
                h is not None and h >= fault.height_at_heal for h in values
            ):
                fault.caught_up = at
        if fault.resumed is not None and fault.caught_up is not None:
            return
        await asyncio.sleep(POLL_S)


async def chaos(run: Run, faults: list[Fault], seconds: float, seed: int) -> None:
    stop = asyncio.Event()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        watcher = asyncio.create_task(watch(run, session, stop))
        loader = asyncio.create_task(load(run, session, random.Random(f"{seed}-load")))
        run.started = time.monotonic()
        try:
            for fault in faults:
                wait = run.started + fault.at - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await inject(run, session, fault)
                await recovered(run, fault, RESUME_BOUND_S)
                if fault.resumed is None:
                    say(
                        f"  !! no commit within {RESUME_BOUND_S:.0f} s after healing "
                        f"{fault.describe()} (seed {seed})"
                    )
            rest = run.started + seconds - time.monotonic()
            if rest > 0:
                run.current = "(none)"
                await asyncio.sleep(rest)
        finally:
            run.stop_load = True
            await loader
            await settle(run, session)
            stop.set()
            await watcher
            if TTY:
                print()


async def settle(run: Run, session: aiohttp.ClientSession) -> None:
    """Heal everything, then wait for one height everywhere and empty mempools. A node that
    lost its data learns it is behind only from traffic above its height, so a marker anchor
    goes in every few seconds while it waits (acknowledged, so checked like the rest)."""
    run.proxies.configure()
    for org in run.cluster.orgs:
        if run.cluster.state[org] == "paused":
            run.cluster.resume(org)
        elif run.cluster.state[org] == "down":
            run.cluster.start(org)
    run.current = "(settling)"
    say(f"  [{time.monotonic() - run.started:6.1f}s] load stopped; settling")
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    last_marker = 0.0
    while time.monotonic() < deadline:
        statuses = await asyncio.gather(*(status(session, n.url) for n in run.cluster.net.nodes))
        if all(s is not None for s in statuses):
            heights = {s["height"] for s in statuses}  # type: ignore[index]
            pending = sum(s["mempool"]["txs"] for s in statuses)  # type: ignore[index]
            if len(heights) == 1 and pending == 0 and time.monotonic() - last_marker > 2.0:
                return
        if time.monotonic() - last_marker > 3.0:
            last_marker = time.monotonic()
            await submit(run, session, run.cluster.orgs[run.seq % NODES], run.make_txs(1))
        await asyncio.sleep(POLL_S)


# ------------------------------------------------------------------ checks


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


async def get(session: aiohttp.ClientSession, gate: asyncio.Semaphore, url: str) -> dict | None:
    async with gate:
        for _ in range(3):
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=20)) as resp:
                    if resp.status == 404:
                        return None
                    if resp.status == 200:
                        return await resp.json()
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
                pass
            await asyncio.sleep(0.5)
        raise RuntimeError(f"{url} did not answer")


async def checks(run: Run, faults: list[Fault]) -> list[Check]:
    out: list[Check] = []
    cluster = run.cluster
    orgs = cluster.orgs
    gate = asyncio.Semaphore(CHECK_CONCURRENCY)
    async with aiohttp.ClientSession() as session:
        out.append(
            Check(
                "no node exited by itself",
                not cluster.exits,
                "; ".join(cluster.exits)[:2000] or f"{len(orgs)} nodes ran throughout",
            )
        )
        statuses = {o: await status(session, cluster.node(o).url) for o in orgs}
        heights = {o: (s or {}).get("height") for o, s in statuses.items()}
        pending = {o: (s or {}).get("mempool", {}).get("txs") for o, s in statuses.items()}
        settled = len(set(heights.values())) == 1 and set(pending.values()) == {0}
        out.append(
            Check(
                "the network settled: one height, empty mempools",
                settled,
                f"heights {heights}, mempools {pending}",
            )
        )
        top = min((h for h in heights.values() if h is not None), default=0)

        # Every node's blocks 1..top: header hash, transactions and the stored receipts' bytes.
        chains: dict[str, list[tuple[str, tuple[str, ...], str, str]]] = {}
        for org in orgs:
            url = cluster.node(org).url
            blocks = await asyncio.gather(
                *(get(session, gate, f"{url}/v1/blocks/{h}?raw=1") for h in range(1, top + 1))
            )
            chains[org] = [
                (
                    b["header"]["hash"],
                    tuple(b["txs"]),
                    hashlib.sha256("".join(b["verify"]["receipts"]).encode()).hexdigest(),
                    b["header"]["state_root"],
                )
                if b is not None
                else ("missing", (), "", "")
                for b in blocks
            ]
        reference = chains[orgs[0]]
        differ = [
            f"{org} at height {h + 1}"
            for org in orgs[1:]
            for h, (mine, theirs) in enumerate(zip(chains[org], reference, strict=True))
            if mine != theirs
        ]
        out.append(
            Check(
                "identical blocks and receipts on every node",
                not differ and top > 0,
                f"heights 1..{top} on {len(orgs)} nodes"
                if not differ
                else f"{len(differ)} differ, first: {', '.join(differ[:5])}",
            )
        )
        roots = {o: (s or {}).get("state_root") for o, s in statuses.items()}
        header_root = reference[-1][3] if reference else None
        same_root = len(set(roots.values())) == 1 and header_root in roots.values()
        out.append(
            Check(
                "one state root at one height",
                same_root,
                f"height {top}: {header_root}" if same_root else f"{roots}",
            )
        )

        where: dict[str, list[tuple[int, int]]] = {}
        for h, (_, txs, _, _) in enumerate(reference, start=1):
            for i, tx in enumerate(txs):
                where.setdefault(tx, []).append((h, i))
        twice = {tx: at for tx, at in where.items() if len(at) > 1}
        out.append(
            Check(
                "no transaction committed twice",
                not twice,
                f"{len(where)} transactions in blocks"
                if not twice
                else f"{len(twice)} twice, e.g. {list(twice.items())[:3]}",
            )
        )

        # Every acknowledged transaction, asked of every node by its hash.
        acked = sorted(run.acked.items())
        answers = {
            org: await asyncio.gather(
                *(get(session, gate, f"{cluster.node(org).url}/v1/txs/{h}") for h, _ in acked)
            )
            for org in orgs
        }
        wrong, lost, unexcused = [], [], []
        for n, (tx, ack) in enumerate(acked):
            found = [answers[o][n] for o in orgs]
            places = {(a["height"], a["index"]) if a else None for a in found}
            statuses_seen = {a["status"] if a else "absent" for a in found}
            if (
                statuses_seen == {"committed"}
                and len(places) == 1
                and places == set(where.get(tx, [])[:1])
            ):
                continue
            if statuses_seen == {"absent"} and tx not in where:
                crashed = [t for t in cluster.crashes[ack.org] if t >= ack.at]
                if crashed:
                    lost.append((tx, ack, crashed[0] - ack.at))
                else:
                    unexcused.append(
                        f"{tx[:16]} acked by {ack.org} at "
                        f"{ack.at - run.started:.1f}s, never committed, node never crashed"
                    )
                continue
            wrong.append(
                f"{tx[:16]} acked by {ack.org} at {ack.at - run.started:.1f}s: "
                + ", ".join(
                    f"{o} {a and (a['status'], a.get('height'))}"
                    for o, a in zip(orgs, found, strict=True)
                )
            )
        committed = len(acked) - len(lost) - len(unexcused) - len(wrong)
        detail = f"{committed} of {len(acked)} committed at one place on every node"
        if lost:
            longest = max(d for _, _, d in lost)
            detail += (
                f"; {len(lost)} lost with the node that acknowledged them (it crashed "
                f"{longest:.1f} s or less after the 202)"
            )
        problems = unexcused + wrong
        if problems:
            detail += f"; {len(problems)} NOT: " + " | ".join(problems[:5])
        out.append(
            Check(
                "every acknowledged transaction committed exactly once everywhere",
                not problems,
                detail,
            )
        )
        for fault in faults:  # which crash took them
            if fault.kind in CRASHES and fault.started is not None and fault.healed is not None:
                count = sum(
                    1
                    for _, a, d in lost
                    if a.org == fault.target and fault.started <= a.at + d <= fault.healed
                )
                fault.note = f"{fault.note} lost {count}".strip()

    behind = [f for f in faults if f.started is not None and f.caught_up is None]
    out.append(
        Check(
            f"every node caught up within {RESUME_BOUND_S:.0f} s after every fault",
            not behind,
            "all did" if not behind else "not after: " + ", ".join(f.describe() for f in behind),
        )
    )
    late = [f for f in faults if f.started is not None and f.resumed is None]
    out.append(
        Check(
            f"commits resumed within {RESUME_BOUND_S:.0f} s after every fault",
            not late and any(f.started for f in faults),
            f"{sum(1 for f in faults if f.started)} faults"
            if not late
            else "not after: " + ", ".join(f.describe() for f in late),
        )
    )
    byzantine = [f for f in faults if f.kind == "byzantine" and f.healed is not None]
    if byzantine:
        missed = [
            f"{f.describe()} at {f.started - run.started:.0f}s: no {k}"  # type: ignore[operator]
            for f in byzantine
            for k in BYZANTINE_CAUGHT
            if not f.caught.get(k)
        ]
        out.append(
            Check(
                "the honest nodes caught every Byzantine member's forgeries",
                not missed,
                f"{len(byzantine)} Byzantine spells; each counted {', '.join(BYZANTINE_CAUGHT)}"
                if not missed
                else "; ".join(missed),
            )
        )
    if run.flood_sent:
        out.append(
            Check(
                "the flooding client's requests were all refused",
                not run.flood_acked,
                f"{run.flood_sent} sent, {len(run.flood_acked)} acknowledged; "
                f"{run.stalled_peer_connections} silent peer connections held",
            )
        )
    return out


def table(run: Run, faults: list[Fault]) -> None:
    print()
    print(
        f"  {'time':>7}  {'fault':<42} {'hold':>5} {'next commit':>11} {'all caught up':>13}  note"
    )
    for f in faults:
        if f.started is None:
            continue
        at = f.started - run.started
        resumed = "NONE" if f.resumed is None else f"{f.resumed - f.healed:.1f} s"  # type: ignore[operator]
        caught = "-" if f.caught_up is None else f"{f.caught_up - f.healed:.1f} s"  # type: ignore[operator]
        print(
            f"  {at:6.1f}s  {f.describe():<42} {f.hold:4.1f}s {resumed:>11} {caught:>13}  {f.note}"
        )
    print()


# ------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=None, help="replay this schedule")
    parser.add_argument("--minutes", type=float, default=10.0, help="of faults and load")
    parser.add_argument(
        "--faults",
        default=",".join(FAULT_KINDS),
        help=f"kinds to draw from (default all: {','.join(FAULT_KINDS)})",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="network directory (default a temporary one, removed after)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the network directory")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    kinds = tuple(k.strip() for k in args.faults.split(",") if k.strip())
    if unknown := [k for k in kinds if k not in FAULT_KINDS]:
        parser.error(f"unknown fault kind {unknown[0]!r}; known: {', '.join(FAULT_KINDS)}")
    print(
        f"chaos seed {seed} (replay: scripts/chaos --seed {seed} --minutes {args.minutes:g}"
        + ("" if args.faults == ",".join(FAULT_KINDS) else f" --faults {args.faults}")
        + ")",
        flush=True,
    )
    seconds = args.minutes * 60
    temporary = args.dir is None
    caller = Path(os.environ.get("VIGIL_CALLER_CWD", os.getcwd()))  # where the wrapper ran
    directory = Path(tempfile.mkdtemp(prefix="vigil-chaos-")) if temporary else caller / args.dir
    if not temporary and (directory / "genesis.json").exists():
        parser.error(f"{directory} already holds a network; a chaos run starts a fresh one")
    net, routes = create(directory)
    orgs = [n.org for n in net.nodes]
    faults = schedule(seed, seconds, kinds, orgs)
    print(
        f"  {len(faults)} faults planned over {seconds:.0f} s: "
        + ", ".join(f.kind for f in faults),
        flush=True,
    )
    cluster = Cluster(net, seed)
    proxies = Proxies(routes, cluster.pids, seed)
    results: list[Check] = []
    run: Run | None = None
    try:
        if "disk-full" in kinds:
            if loop_mounts_work():
                for node in net.nodes:
                    cluster.mounts[node.org] = directory / f"{node.org}-disk.img"
                    mount_small_disk(node.home, cluster.mounts[node.org])
            else:
                print("  note: disk-full faults will be skipped (needs root and mount -o loop)")
        proxies.start()
        for org in orgs:
            cluster.start(org)
        wait_linked(cluster)
        print(
            f"  4 nodes linked through the proxies ({directory}); setting up a model and "
            "a contract by governance",
            flush=True,
        )
        bench.prepare(net, "mix", directory)
        genesis = net.genesis()
        run = Run(
            cluster, proxies, PrivateKey.load(net.client_key), genesis.chain_id, genesis.hash()
        )
        asyncio.run(chaos(run, faults, seconds, seed))
        results = asyncio.run(checks(run, faults))
    except KeyboardInterrupt:
        print(f"\ninterrupted (seed {seed})")
        return 130
    finally:
        cluster.stop_all()
        proxies.stop()
        if run is not None:
            table(run, faults)
            refused = ", ".join(f"{k} {v}" for k, v in run.refused.most_common())
            print(
                f"  load: {len(run.acked)} acknowledged, refused or unanswered: "
                f"{refused or 'none'}; proxy connections unidentified: {proxies.unidentified}"
            )
        passed = bool(results) and all(c.ok for c in results)
        if temporary and not args.keep and passed:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            print(f"  the network and its node.log files are in {directory}")
    failed = [c for c in results if not c.ok]
    for c in results:
        print(f"  {'PASS' if c.ok else 'FAIL'}  {c.name}: {c.detail}")
    if failed:
        print(
            f"  seed {seed} failed; replay: scripts/chaos --seed {seed} --minutes {args.minutes:g}"
        )
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
