"""scripts/bench/app: one JSON object whose phases add up and whose bound follows from them
(no timing asserted), and a clear refusal of a block size no block may have."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from node.app.genesis import DEFAULT_PARAMS

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts/bench/app.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)  # fmt: skip


def test_the_phases_add_up_and_the_bound_follows_from_them() -> None:
    out = run("--block", "70", "--rounds", "2")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["benchmark"] == "app" and result["kind"] == "score"
    assert (result["block_txs"], result["rounds"]) == (70, 1)
    phases = result["us_per_tx"]
    assert set(phases) == {"decode", "admit", "digest", "validate", "commit"}
    assert all(v > 0 for v in phases.values()), phases
    app, verify = result["app_us_per_tx"], result["verify_us_per_tx"]
    assert abs(app - sum(phases.values())) <= 0.06
    assert verify > 0
    assert abs(result["ratio_bound"] - verify / (verify + app)) <= 0.001
    assert abs(result["app_to_verify"] - app / verify) <= 0.001
    assert "committed" in out.stderr  # progress goes to stderr, JSON alone to stdout


def test_a_block_size_no_block_may_have_is_refused() -> None:
    most = DEFAULT_PARAMS["max_block_txs"]
    for bad in (0, most + 1):
        out = run("--block", str(bad))
        assert out.returncode == 2 and f"--block must be 1..{most}" in out.stderr, out.stderr
    out = run("--rounds", "1")
    assert out.returncode == 2 and "--rounds must be at least 2" in out.stderr
