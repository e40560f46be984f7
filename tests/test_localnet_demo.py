"""`./scripts/localnet --demo` as a new user runs it: the whole consortium story plays to the
end on a fresh network, each step narrated with the command it ran."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from test_localnet_script import ROOT, node_processes

pytestmark = pytest.mark.slow


def test_the_demo_plays_the_whole_story_on_a_fresh_network(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    run = subprocess.run(
        [str(ROOT / "scripts/localnet"), "--dir", str(directory), "--demo", "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=420,
        cwd=tmp_path,
        env={**os.environ},
    )
    out = run.stdout
    assert run.returncode == 0, out[-4000:] + run.stderr[-2000:]
    for chapter in range(1, 11):
        assert f"\n== {chapter}. " in out, chapter
    assert "$ vigil anchor " in out and "$ vigil fl submit " in out  # commands shown as typed
    assert "royalty weights ['org1=400', 'org2=300', 'org3=200']" in out
    assert "round 1 for model fraud: closed" in out
    assert '"held"' in out or "result held" in out  # the contract held the flagged payment
    assert "re-derived bit for bit" in out and "no node was asked" in out
    assert "drift ALARM" in out
    assert "explorer:" in out and "The story took" in out
    assert node_processes(directory) == []
