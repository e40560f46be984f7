"""Benchmarks keep working: each prints one JSON object with its figures (no timing asserted)."""

import json
import subprocess
import sys
from pathlib import Path

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
