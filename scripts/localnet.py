"""Start N real Vigil nodes on 127.0.0.1, show them committing, and keep them running.

The directory (default ./localnet) holds the genesis, an authorised client key
and one home per organisation; running the script again on the same directory
resumes that network. Every node this script started is stopped however it ends:
Ctrl-C, SIGTERM, SIGHUP, or its output closing (a `| tee` stopped with Ctrl-C).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from consensus.crypto import PrivateKey
from node import localnet
from node.app.types import AnchorPayload, Tx

STARTUP_TIMEOUT_S = 60.0
STATUS_EVERY_S = 2.0
ROOT = Path(__file__).resolve().parents[1]
CALLER = Path(os.environ.get("VIGIL_CALLER_CWD", os.getcwd()))
"""Where the user ran the wrapper from: --dir and printed paths are relative to it."""
TTY = sys.stdout.isatty()


def shown(path: Path) -> str:
    return os.path.relpath(path, CALLER)


def progress(label: str, done: int, total: int) -> None:
    width = 24
    filled = int(width * done / max(total, 1))
    end = "\n" if done >= total else ""
    print(
        f"\r  {label:<28} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
        end=end,
        flush=True,
    )


def wait_for(label: str, total: int, count, timeout: float = STARTUP_TIMEOUT_S) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline:
        done = count()
        progress(label, done, total)
        if done >= total:
            return
        time.sleep(0.3)
    print()
    raise SystemExit(f"error: timed out: {label} ({done}/{total}); see the node.log files")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=4, help="organisations (new networks only)")
    parser.add_argument("--dir", type=Path, default=None, help="network directory (./localnet)")
    parser.add_argument(
        "--demo", action="store_true",
        help="play the consortium story (federated model, scores, proofs, drift, royalties)",
    )  # fmt: skip
    parser.add_argument(
        "--duration", type=float, default=None,
        help="stop after this many seconds of live status (default: until Ctrl-C)",
    )  # fmt: skip
    args = parser.parse_args()
    directory = (CALLER / args.dir).resolve() if args.dir else ROOT / "localnet"

    if (directory / "genesis.json").exists():
        net = localnet.load(directory)
        print(f"resuming the network in {directory} ({len(net.nodes)} nodes)")
    else:
        if not 1 <= args.nodes <= localnet.MAX_NODES:
            parser.error(f"--nodes must be 1..{localnet.MAX_NODES}")
        print(f"creating a {args.nodes}-node network in {directory}")
        net = localnet.create(directory, args.nodes)

    procs: list[subprocess.Popen] = []
    stopping = False

    def stop_all() -> None:
        """Stop every node this script started, whatever ended it; say so if anyone listens."""
        nonlocal stopping
        if stopping:
            return
        stopping = True
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        say(f"\nstopping {len(procs)} node(s)...")
        for proc in procs:
            localnet.stop(proc)
        say("stopped.")

    def on_signal(signum: int, _frame: object) -> None:
        if not stopping:  # unwind to the finally below; a second signal changes nothing
            raise Stop(signal.Signals(signum).name)

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    try:
        for node in net.nodes:
            procs.append(localnet.start(node))
        n = len(net.nodes)

        def up() -> int:
            for proc, node in zip(procs, net.nodes, strict=True):
                if proc.poll() is not None:
                    raise SystemExit(f"error: {node.org} exited; see {node.home / 'node.log'}")
            return sum(localnet.get_json(x.url + "/v1/status", 1) is not None for x in net.nodes)

        def linked() -> int:
            statuses = [localnet.get_json(x.url + "/v1/status", 1) for x in net.nodes]
            return sum(s is not None and len(s["peers"]) == n - 1 for s in statuses)

        wait_for("nodes answering", n, up)
        wait_for("nodes linked to each other", n, linked)
        demo = directory / "hello.txt"
        if not demo.exists():
            demo.write_text(f"hello from a Vigil localnet created at {time.ctime()}\n")
        tx_hash = anchor_demo(net, demo)
        first = net.nodes[0].url

        def committed_everywhere() -> int:
            return sum(
                (info := localnet.get_json(f"{x.url}/v1/txs/{tx_hash}", 1)) is not None
                and info.get("status") == "committed"
                for x in net.nodes
            )

        if tx_hash:
            wait_for("first anchor committed", n, committed_everywhere)
        print_table(net, directory, demo, first)
        if args.demo:
            from demo_story import Story

            Story(net, directory, shown).play()
        follow(net, args.duration)
    except (KeyboardInterrupt, Stop):
        pass
    except BrokenPipeError:
        pass  # whoever read our output (a pipe, `tee`) went away: stop the nodes quietly
    finally:
        stop_all()
    return 0


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""Besides Ctrl-C (SIGINT: KeyboardInterrupt): each stops every node this script started."""


class Stop(KeyboardInterrupt):
    """A stop signal arrived.

    A KeyboardInterrupt so that it unwinds like Ctrl-C from anywhere: asyncio (the status
    requests run an event loop) logs and swallows any other exception raised in a callback,
    so a SIGTERM landing there left the script following the network for ever."""


def say(text: str) -> None:
    """Print if the output is still open; once it is closed, send the rest nowhere."""
    try:
        print(text, flush=True)
    except (BrokenPipeError, ValueError):
        # The reader went away (or stdout is closed): keep stopping, and keep the interpreter
        # from failing again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def anchor_demo(net: localnet.LocalNet, demo: Path) -> str:
    """Anchor the demo file once (a resumed network has it already)."""
    data = demo.read_bytes()
    digest = hashlib.sha256(data).digest()
    url = net.nodes[0].url
    if localnet.get_json(f"{url}/v1/anchors/{digest.hex()}", 2) is not None:
        return ""
    status = localnet.get_json(url + "/v1/status")
    assert status is not None
    key = PrivateKey.load(net.client_key)
    payload = AnchorPayload(digest, len(data), "text/plain", (), (("source", "localnet"),))
    genesis_hash = bytes.fromhex(status["genesis_hash"])
    tx = Tx.create(key, status["chain_id"], genesis_hash, payload, status["height"] + 100)
    answer = localnet.http("POST", url + "/v1/txs", {"tx": tx.encode().hex()})
    if answer is None or answer[0] != 202:
        raise SystemExit(f"error: the first anchor was refused: {answer}")
    return answer[1]["hash"]


def print_table(net: localnet.LocalNet, directory: Path, demo: Path, first: str) -> None:
    vigil = shown(ROOT / ".venv" / "bin" / "vigil")
    key = shown(net.client_key)
    readme = shown(ROOT / "README.md")
    genesis = shown(net.genesis_path)
    print()
    print(f"  {'org':<8} {'api':<28} {'peer':<22} home")
    for x in net.nodes:
        print(f"  {x.org:<8} {x.url:<28} {x.peer:<22} {shown(x.home)}")
    print()
    api = "HTTPS" if first.startswith("https://") else "plain HTTP"
    print(
        f"  peer links: TLS 1.3 (each certificate's key is the node key); api: {api} on 127.0.0.1"
    )
    print(f"  explorer: open {first}/ in a browser (every node serves one)")
    print()
    print("  try, in another terminal:")
    print(f"    {vigil} status --node {first} --genesis {genesis}")
    print(f"    {vigil} verify-file {shown(demo)} --node {net.nodes[-1].url} --genesis {genesis}")
    print(f"    {vigil} anchor {readme} --key {key} --node {first} --wait")
    print(f"    {vigil} verify-file {readme} --node {net.nodes[-1].url} --genesis {genesis}")
    print()
    print("  live status (Ctrl-C stops the network):", flush=True)


def follow(net: localnet.LocalNet, duration: float | None) -> None:
    end = None if duration is None else time.monotonic() + duration
    while end is None or time.monotonic() < end:
        parts = []
        for x in net.nodes:
            s = localnet.get_json(x.url + "/v1/status", 1)
            parts.append(f"{x.org} down" if s is None else f"{x.org} h={s['height']} v={s['view']}")
        line = "  " + " | ".join(parts) + f"   {time.strftime('%H:%M:%S')}"
        print(("\r" + line) if TTY else line, end="" if TTY else "\n", flush=True)
        time.sleep(STATUS_EVERY_S)


if __name__ == "__main__":
    sys.exit(main())
