"""`scripts/localnet` as a new user runs it: starts, shows a commit, stops on Ctrl-C, resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def node_processes(directory: Path) -> list[str]:
    out = subprocess.run(
        ["ps", "-eww", "-o", "pid=,args="], capture_output=True, text=True, check=True
    ).stdout
    lines = out.splitlines()
    return [line.strip() for line in lines if "node run" in line and str(directory) in line]


def test_localnet_starts_commits_stops_on_ctrl_c_and_resumes(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    proc = subprocess.Popen(
        [str(ROOT / "scripts/localnet"), "--dir", str(directory), "--nodes", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        _started_then_stopped(proc, directory)
    finally:
        if proc.poll() is None:  # a failed assertion must not leave the network running
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        for line in node_processes(directory):
            os.kill(int(line.split()[0]), signal.SIGKILL)
    again = subprocess.run(
        [str(ROOT / "scripts/localnet"), "--dir", str(directory), "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ},
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming the network" in again.stdout
    assert "h=1" in again.stdout or "h=2" in again.stdout
    assert node_processes(directory) == []


def _started_then_stopped(proc: subprocess.Popen, directory: Path) -> None:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "live status" in line:
            break
    text = "".join(lines)
    assert "first anchor committed" in text and "4/4" in text, text
    for org in ("org1", "org2", "org3", "org4"):
        assert org in text
    assert "verify-file" in text and "client.key" in text
    assert len(node_processes(directory)) == 4
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "stopped." in rest
    assert node_processes(directory) == []
    assert (directory / "genesis.json").exists() and (directory / "client.key").exists()
    assert oct((directory / "client.key").stat().st_mode & 0o777) == oct(0o600)
