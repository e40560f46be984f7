"""How the CLI shows values to a person: bytes as hex, no ``{"$bytes": ...}`` wrappers.

``--json`` output keeps the VM's lossless JSON convention (``vm/jsonvalues.py``)
for contract values, so a script can tell bytes from a string; what a person
reads is :func:`plain` values laid out by :func:`lines`.
"""

from __future__ import annotations

import json
from typing import Any

MAX_SHOWN_DEPTH = 16
"""Nesting shown before a value is cut to ``...`` (a contract value nests at most this deep)."""


def plain(value: Any) -> Any:
    """A JSON-able copy of a VM value: bytes become hex strings, tuples lists."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    return value


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        bare = value and value.strip() == value and "\n" not in value
        return value if bare else json.dumps(value)
    return str(value)


def lines(value: Any, indent: int = 0, depth: int = 0) -> list[str]:
    """``value`` (already :func:`plain`) as indented ``key: value`` and ``- item`` lines."""
    pad = "  " * indent
    if depth > MAX_SHOWN_DEPTH:
        return [pad + "..."]
    if isinstance(value, dict):
        if not value:
            return [pad + "{}"]
        out: list[str] = []
        for k, v in value.items():
            if isinstance(v, dict | list) and v:
                out.append(f"{pad}{k}:")
                out += lines(v, indent + 1, depth + 1)
            else:
                out.append(f"{pad}{k}: {_scalar(v) if not isinstance(v, dict | list) else '-'}")
        return out
    if isinstance(value, list):
        if not value:
            return [pad + "(none)"]
        out = []
        for v in value:
            if isinstance(v, dict | list) and v:
                out.append(f"{pad}-")
                out += lines(v, indent + 1, depth + 1)
            else:
                out.append(f"{pad}- {_scalar(v) if not isinstance(v, dict | list) else '-'}")
        return out
    return [pad + _scalar(value)]


def show(value: Any) -> str:
    """A VM value as a person reads it."""
    return "\n".join(lines(plain(value)))
