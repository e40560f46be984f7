"""docs/vm.md states the gas table and limits contract authors rely on: keep it true."""

from __future__ import annotations

import re
from pathlib import Path

from vm import gas
from vm import opcodes as op

DOC = Path(__file__).parents[2] / "docs" / "vm.md"


def test_gas_table_in_docs_matches_the_code() -> None:
    rows = re.findall(
        r"^\| `([A-Z_0-9]+)` \| 0x([0-9a-f]{2}) \| (\d) \| (\d+) \|$", DOC.read_text(), re.M
    )
    documented = {name: (int(code, 16), int(n), int(g)) for name, code, n, g in rows}
    actual = {
        name: (code, op.OPERAND_COUNT[code], gas.INSTRUCTION_GAS[code])
        for code, name in op.NAMES.items()
    }
    assert documented == actual


def test_every_limit_is_documented() -> None:
    text = DOC.read_text()
    for name in dir(gas):
        if name.startswith("MAX_") or name == "INT_LIMIT":
            assert f"`{name}`" in text or name in text, name
