"""./scripts/localnet stops every node it started however it ends: Ctrl-C, SIGTERM, SIGHUP, or
its output pipe closing (a `| tee` stopped with Ctrl-C, a reader gone away)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READY = "try, in another terminal"
STARTUP_S = 120
STOP_S = 60


def node_processes(directory: Path) -> list[int]:
    """Pids of processes whose command line names ``directory`` (the network's nodes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if str(directory).encode() in cmdline and b"node" in cmdline and b"run" in cmdline:
            found.append(int(entry.name))
    return found


def start(directory: Path) -> subprocess.Popen:
    """The script in its own process group (as a terminal runs it), its output on a pipe."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts/localnet.py"), "--nodes", "2", "--dir",
         str(directory)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + STARTUP_S
    while READY.encode() not in seen:
        assert time.monotonic() < deadline, seen.decode(errors="replace")[-2000:]
        ready, _, _ = select.select([proc.stdout], [], [], 1)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, f"the script ended early:\n{seen.decode(errors='replace')[-2000:]}"
            seen += chunk
    assert len(node_processes(directory)) == 2
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["ctrl-c", "sigterm", "sighup", "tee-and-ctrl-c",
                                    "reader-gone"])  # fmt: skip
def test_every_node_stops_however_the_script_ends(tmp_path: Path, ending: str) -> None:
    directory = tmp_path / "net"
    proc = start(directory)
    try:
        if ending == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        elif ending == "sigterm":
            proc.send_signal(signal.SIGTERM)
        elif ending == "sighup":
            proc.send_signal(signal.SIGHUP)
        elif ending == "tee-and-ctrl-c":  # Ctrl-C reaches `tee` and the script together
            proc.stdout.close()  # type: ignore[union-attr]
            os.killpg(proc.pid, signal.SIGINT)
        else:  # the reader closes the pipe; the next status line finds it closed
            proc.stdout.close()  # type: ignore[union-attr]
        assert proc.wait(STOP_S) == 0
        deadline = time.monotonic() + 15
        while node_processes(directory) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert node_processes(directory) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in node_processes(directory):
            os.kill(pid, signal.SIGKILL)


def test_a_stop_signal_inside_an_event_loop_callback_still_stops_the_script() -> None:
    """The status requests run asyncio; a signal handler's exception raised inside one of its
    callbacks must reach the script's ``except`` (asyncio swallows plain exceptions there)."""
    import asyncio
    import importlib.util

    spec = importlib.util.spec_from_file_location("localnet_script", ROOT / "scripts/localnet.py")
    script = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(script)  # type: ignore[union-attr]

    def handler() -> None:
        raise script.Stop("SIGTERM")

    async def status_request() -> None:
        asyncio.get_running_loop().call_soon(handler)
        await asyncio.sleep(0.05)

    with pytest.raises(script.Stop):
        asyncio.run(status_request())
