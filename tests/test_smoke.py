"""The installed package imports and its console script answers."""

import subprocess
import sys
from pathlib import Path


def test_vigil_help_runs_as_console_script() -> None:
    vigil = Path(sys.executable).parent / "vigil"
    out = subprocess.run([str(vigil), "--help"], capture_output=True, text=True, check=True)
    assert "consortium ledger" in out.stdout
    assert "keygen" in out.stdout and "genesis" in out.stdout
