"""Benchmarks keep working: each prints one JSON object with its figures (no timing asserted)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_primitives_bench_prints_json() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts/bench/primitives.py"), "--seconds", "0.02"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result = json.loads(out.stdout)
    assert result["benchmark"] == "primitives"
    assert result["ed25519"]["verify_per_s_pool"] > 0
    assert result["tx_codec"]["decode_per_s"] > 0
    assert result["merkle"]["leaves"] == 1000


def run_simulate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts/simulate.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_simulate_ends_with_the_passed_failed_line() -> None:
    out = run_simulate("--seeds", "12", "--jobs", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1] == "12 passed, 0 failed"


def test_simulate_replay_prints_a_trace() -> None:
    out = run_simulate("--replay", "3", "--nodes", "4", "--byzantine", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "1 passed, 0 failed"
    assert any("COMMIT" in line for line in lines)
    assert any("<- prepare" in line for line in lines)


def test_simulate_refuses_too_many_byzantine() -> None:
    out = run_simulate("--seeds", "1", "--nodes", "4", "--byzantine", "2")
    assert out.returncode != 0 and "exceeds f" in out.stderr


def test_localnet_bench_prints_json() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts/bench/localnet.py"), "--seconds", "1",
         "--clients", "2", "--batch", "10"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["network"]["nodes"] == 4 and result["baseline_1_node"]["nodes"] == 1
    assert result["network"]["committed"] > 0
    for key in ("committed_per_s", "latency_ms_p50", "latency_ms_p95", "latency_ms_p99",
                "ceiling_per_s", "ratio_to_ceiling", "nodes", "kind"):  # fmt: skip
        assert key in result, key
    assert result["kind"] == "anchor" and result["ceiling_per_s"] > 0
    by_thread = result["network"]["node_cpu_us_per_tx_by_thread"]
    assert set(by_thread) == {"loop", "app", "verify", "other"}
    assert by_thread["loop"] > 0 and by_thread["app"] > 0


@pytest.mark.slow
def test_localnet_bench_sets_up_every_kind_and_plots(tmp_path: Path) -> None:
    """The mix needs an active model (scores) and a deployed contract (calls): the set-up
    runs on a real 4-node network and every kind commits."""
    plot = tmp_path / "load.png"
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts/bench/localnet.py"), "--seconds", "3",
         "--clients", "1", "--batch", "30", "--kind", "mix", "--no-baseline", "--plot", str(plot),
         "--prefill", "300"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["kind"] == "mix" and "baseline_1_node" not in result
    assert result["network"]["committed"] > 0 and result["network"]["refused"] == 0
    assert len(result["sweep"]) >= 3 and plot.read_bytes().startswith(b"\x89PNG")
    filled = result["after_prefill"]["after_prefill"]
    assert filled["prefilled_anchors"] == 300 and all(m["rss"] > 0 for m in filled["node_rss_mb"])
    assert result["network"]["node_cpu_us_per_tx"] > 0
