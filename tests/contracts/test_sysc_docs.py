"""docs/governance.md documents every public method and every action kind: keep it true."""

from __future__ import annotations

import pytest
from sysc_helpers import NAMES, ROOT, program
from test_sysc_governance import PARAM_EDGES, REFUSALS

DOC = ROOT / "docs" / "governance.md"


@pytest.mark.parametrize("name", NAMES)
def test_every_public_method_is_documented(name: str) -> None:
    text = DOC.read_text()
    for method in program(name).public_methods():
        if method not in ("propose", "vote", "register", "activate", "rollback", "charge"):
            assert f"`{method}(" in text, f"{name}.{method}"


def test_every_action_kind_and_param_is_documented() -> None:
    text = DOC.read_text()
    for kind in {kind for kind, _, _ in REFUSALS}:
        assert f"| `{kind}` |" in text, kind
    for name, lo, hi in PARAM_EDGES:
        if not name.startswith("approval:"):
            shown = "10^18" if hi == 10**18 else str(hi)
            assert f"`{name}` {lo}..{shown}" in text or f"`{name}`\n{lo}..{shown}" in text, name
