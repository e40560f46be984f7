"""The CPython oracle: run contract source as plain Python with a stub ``ledger``.

The stub behaves as the VM's host contract promises: reads return copies,
writes and events are buffered and kept only if the call returns normally.
It enforces no limits and no gas: where the VM stops on a limit the
differential test accepts whatever CPython did.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from consensus.crypto import is_acceptable_public_key

_DELETED = object()


class RequireFailed(Exception):
    """``require`` failed under CPython (the VM's Revert)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def require(cond: Any, message: Any = "requirement failed") -> None:
    if type(message) is not str:
        raise TypeError("require() message must be a str")
    if not cond:
        raise RequireFailed(message)


def sha256(data: bytes) -> bytes:
    if type(data) is not bytes:
        raise TypeError("sha256() needs bytes")
    return hashlib.sha256(data).digest()


@dataclass
class StubLedger:
    state: dict[str, Any] = field(default_factory=dict)
    caller_key: bytes = bytes(32)
    org: str = "org"
    block_height: int = 0
    block_time: int = 0
    member_orgs: list[str] = field(default_factory=list)
    models: dict[str, Callable[[list[int]], int]] = field(default_factory=dict)
    writes: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, Any]] = field(default_factory=list)

    @staticmethod
    def _key(key: Any) -> str:
        if type(key) is not str:
            raise TypeError("storage keys must be str")
        return key

    def get(self, key: Any, default: Any = None) -> Any:
        key = self._key(key)
        if key in self.writes:
            value = self.writes[key]
            return default if value is _DELETED else copy.deepcopy(value)
        if key in self.state:
            return copy.deepcopy(self.state[key])
        return default

    def put(self, key: Any, value: Any) -> None:
        self.writes[self._key(key)] = copy.deepcopy(value)

    def delete(self, key: Any) -> None:
        self.writes[self._key(key)] = _DELETED

    def caller(self) -> bytes:
        return self.caller_key

    def caller_org(self) -> str:
        return self.org

    def height(self) -> int:
        return self.block_height

    def time(self) -> int:
        return self.block_time

    def members(self) -> list[str]:
        return list(self.member_orgs)

    def key_ok(self, key: Any) -> bool:
        if type(key) is not bytes:
            raise TypeError("ledger.key_ok needs bytes")
        return is_acceptable_public_key(key)

    def score(self, model: Any, features: Any) -> int:
        fn = self.models.get(model)
        if fn is None:
            raise LookupError(f"no model {model!r}")
        if type(features) not in (list, tuple) or any(type(f) not in (int, bool) for f in features):
            raise TypeError("features must be a list of ints")
        return fn([int(f) for f in features])

    def emit(self, name: Any, data: Any) -> None:
        if type(name) is not str:
            raise TypeError("event name must be a str")
        self.events.append((name, copy.deepcopy(data)))


@dataclass
class Outcome:
    kind: str  # "ok", "revert" or "error"
    value: Any = None
    detail: str = ""
    writes: list[tuple[str, Any]] = field(default_factory=list)
    events: list[tuple[str, Any]] = field(default_factory=list)


def run_cpython(
    source: str, path: str, method: str, args: list[Any], ledger: StubLedger
) -> Outcome:
    """Run ``method(*args)`` of the contract under CPython; commit effects only on success."""
    namespace: dict[str, Any] = {"ledger": ledger, "require": require, "sha256": sha256}
    exec(compile(source, path, "exec"), namespace)
    ledger.writes = {}
    ledger.events = []
    try:
        value = namespace[method](*copy.deepcopy(args))
    except RequireFailed as exc:
        return Outcome("revert", detail=exc.message)
    except Exception as exc:
        return Outcome("error", detail=type(exc).__name__)
    writes = [(k, None if v is _DELETED else v) for k, v in ledger.writes.items()]
    for k, v in ledger.writes.items():
        if v is _DELETED:
            ledger.state.pop(k, None)
        else:
            ledger.state[k] = v
    return Outcome("ok", value=value, writes=writes, events=list(ledger.events))


def typed_equal(a: Any, b: Any) -> bool:
    """Equality that also requires equal types and dict order (True != 1, (1,) != [1])."""
    if type(a) is not type(b):
        return False
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(typed_equal(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        if list(a) != list(b) or any(type(x) is not type(y) for x, y in zip(a, b, strict=True)):
            return False
        return all(typed_equal(a[k], b[k]) for k in a)
    return a == b
