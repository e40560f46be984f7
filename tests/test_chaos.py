"""scripts/chaos: the seeded schedule, the proxy's naming of a dialer, and a short real round
(a kill of the primary, a partition and a pause on a real 4-node network) that must end
``0 failed``. What a chaos run checks is in docs/chaos.md."""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_chaos():  # type: ignore[no-untyped-def]
    """scripts/chaos.py as a module (it imports scripts/bench/localnet.py as bench.localnet)."""
    if str(ROOT / "scripts") not in sys.path:
        sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location("chaos_script", ROOT / "scripts" / "chaos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_the_schedule_is_the_seeds_alone() -> None:
    chaos = load_chaos()
    orgs = ["org1", "org2", "org3", "org4"]
    plan = lambda seed: [  # noqa: E731
        (f.at, f.kind, f.target, f.hold, repr(f.detail))
        for f in chaos.schedule(seed, 600, chaos.FAULT_KINDS, orgs)
    ]
    assert plan(42) == plan(42)
    assert plan(42) != plan(43)
    first = [kind for _, kind, _, _, _ in plan(42)[: len(chaos.FAULT_KINDS)]]
    assert sorted(first) == sorted(chaos.FAULT_KINDS)  # every kind once before any repeats
    faults = chaos.schedule(42, 600, chaos.FAULT_KINDS, orgs)
    for f in faults:
        if f.kind == "partition":
            a, b = f.detail["groups"]
            assert len(a) == len(b) == 2 and sorted(a + b) == orgs
        elif f.kind == "kill-primary":
            assert f.target == "primary"  # named from /v1/status when it comes
        else:
            assert f.target in orgs
    assert all(b.at > a.at + a.hold for a, b in itertools.pairwise(faults))


def test_the_proxy_names_the_process_that_dialled_it() -> None:
    """A link is cut per ordered pair, so the proxy must know which node process opened a
    connection: here a real child process dials a real listener."""
    chaos = load_chaos()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        dialer = subprocess.Popen(
            [sys.executable, "-c",
             "import socket, sys, time\n"
             f"s = socket.create_connection(('127.0.0.1', {port}))\n"
             "sys.stdin.read()"],
            stdin=subprocess.PIPE,
        )  # fmt: skip
        try:
            conn, (_, peer_port) = listener.accept()
            with conn:
                pids = {"other": os.getpid(), "dialer": dialer.pid}
                assert chaos.socket_owner(peer_port, port, pids) == "dialer"
                assert chaos.socket_owner(peer_port, port, {"other": os.getpid()}) is None
        finally:
            dialer.communicate(b"")


@pytest.mark.slow
def test_a_short_chaos_round_ends_with_no_failure(tmp_path: Path) -> None:
    """About 75 s: set-up (a model and a contract by governance), 45 s of load with a kill of
    the primary, a 2+2 partition and a pause (every kind of the three before any repeats),
    then the checks."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts/chaos.py"), "--seed", "20261204",
         "--minutes", "0.75", "--faults", "kill-primary,partition,pause",
         "--dir", str(tmp_path / "net")],
        capture_output=True, text=True, cwd=ROOT, timeout=400,
    )  # fmt: skip
    text = out.stdout + out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("chaos seed 20261204 "), text
    assert out.returncode == 0, text
    assert re.fullmatch(r"\d+ passed, 0 failed", lines[-1]), text
    table = "\n".join(lines)
    for kind in ("kill-primary", "partition", "pause"):
        assert re.search(rf"^\s+\d+\.\ds\s+{kind}\b", table, re.M), (kind, text)
    assert "was primary" in table
    assert "PASS  every acknowledged transaction committed exactly once everywhere" in table
    assert "FAIL" not in table
