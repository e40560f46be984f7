"""The system contracts every chain starts with: governance, models, royalties.

Their sources ship with Vigil (``node/app/system_contracts/*.py``, written in the
contract language; docs/governance.md describes them). Genesis compiles them
(compilation is deterministic, so every node derives the same bytecode) and
stores them in the initial state, whose root therefore commits to their code:
nodes running different system contracts disagree on the very first block.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from node.app.state import CODE
from vm.compiler import compile_to_bytes

SYSTEM_CONTRACTS = ("governance", "models", "royalties")
MODELS_CONTRACT = "models"
"""The model registry: the node reads ``active:<name>`` and ``trained:<digest>`` from it."""
assert MODELS_CONTRACT in SYSTEM_CONTRACTS
SOURCE_DIR = Path(__file__).resolve().parent / "system_contracts"


class SystemContractError(Exception):
    """A system contract's source is missing or does not compile (a broken installation)."""


@lru_cache(maxsize=1)
def system_code() -> dict[str, bytes]:
    """Name -> bytecode of every system contract."""
    out = {}
    for name in SYSTEM_CONTRACTS:
        path = SOURCE_DIR / f"{name}.py"
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SystemContractError(f"{path}: cannot read the {name} contract: {exc}") from None
        try:
            out[name] = compile_to_bytes(source, str(path))
        except Exception as exc:
            raise SystemContractError(f"{path}: does not compile: {exc}") from None
    return out


def genesis_code() -> dict[bytes, bytes]:
    """State writes that install the system contracts."""
    return {CODE + name.encode(): code for name, code in system_code().items()}
