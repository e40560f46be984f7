"""Schemathesis against a real node's /openapi.json, every check: no 5xx, every status and
content type documented, schema-violating input refused, schema-valid input accepted (save
the meaning-only refusals tests/node/schemathesis.toml names), 405s with Allow.

The seed is printed on failure; VIGIL_SCHEMATHESIS_SEED replays it and
VIGIL_SCHEMATHESIS_EXAMPLES runs more cases per operation.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from test_network import running_network

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("VIGIL_SCHEMATHESIS_EXAMPLES", "10"))
"""Cases per operation in the suite: bounded so the run takes about a minute on 2 cores."""


@pytest.mark.slow
def test_schemathesis_finds_nothing_against_a_real_node(tmp_path: Path) -> None:
    seed = int(os.environ.get("VIGIL_SCHEMATHESIS_SEED", random.randrange(2**31)))
    with running_network(tmp_path / "net", count=1) as net:
        net.submit("org1", net.anchors(3))  # some committed blocks and anchors to read
        net.wait("the anchors committed", lambda: (net.heights()["org1"] or 0) >= 1)
        url = net.node("org1").url
        st = Path(sys.executable).with_name("st")
        run = subprocess.run(
            [str(st), "--no-color", "--config-file", str(CONFIG), "run",
             f"{url}/openapi.json", "--checks", "all", "--max-examples", str(EXAMPLES),
             "--seed", str(seed), "--workers", "1", "--request-timeout", "30",
             "--phases", "examples,coverage,fuzzing"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )  # fmt: skip
        logs = (net.node("org1").home / "node.log").read_text()
    assert run.returncode == 0, (
        f"schemathesis failed with seed {seed} (replay: VIGIL_SCHEMATHESIS_SEED={seed}):\n"
        + run.stdout[-12_000:] + run.stderr[-3_000:]
    )  # fmt: skip
    assert "Traceback" not in logs, logs[-5_000:]
