"""Differential test of contract-to-contract calls (``ledger.call``) against CPython.

The oracle world runs each contract's source under CPython; a nested call
runs the callee with its own stub ledger whose effects are committed when the
callee returns, and a failed top-level call restores every contract's
storage and the event log, as the in-memory host does. Re-entrant calls and
calls to unknown contracts are refused by both.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vm_oracle import RequireFailed, require, sha256, typed_equal

from vm.compiler import compile_source
from vm.errors import ExecutionError, HostError, LimitExceeded, OutOfGas, Revert
from vm.gas import MAX_CONTRACT_CALL_DEPTH
from vm.host import InMemoryHost
from vm.interpreter import prepare
from vm.values import decode_value

CONTRACTS = Path(__file__).parent / "contracts"
NAMES = ("voting", "proxy")
MEMBERS = ["acme", "globex", "initech"]
ORGS = ["acme", "globex", "initech", "mallory"]
GAS = 400_000


class HostRefused(Exception):
    """The oracle's counterpart of the VM's HostError."""


class DepthExceeded(Exception):
    """The oracle's counterpart of the VM's contract-call depth limit."""


class WorldLedger:
    def __init__(self, world: OracleWorld, contract: str, depth: int, active: list[str]) -> None:
        self.world, self.contract, self.depth, self.active = world, contract, depth, active
        self.writes: dict[str, Any] = {}
        self.events: list[tuple[str, Any]] = []

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.writes:
            v = self.writes[key]
            return default if v is _DELETED else copy.deepcopy(v)
        state = self.world.state.setdefault(self.contract, {})
        return copy.deepcopy(state[key]) if key in state else default

    def put(self, key: str, value: Any) -> None:
        self.writes[key] = copy.deepcopy(value)

    def delete(self, key: str) -> None:
        self.writes[key] = _DELETED

    def emit(self, name: str, data: Any) -> None:
        self.events.append((name, copy.deepcopy(data)))

    def caller_org(self) -> str:
        return self.world.org

    def members(self) -> list[str]:
        return list(MEMBERS)

    def height(self) -> int:
        return 3

    def call(self, contract: str, method: str, args: list[Any]) -> Any:
        if self.depth + 1 > MAX_CONTRACT_CALL_DEPTH:
            raise DepthExceeded(contract)
        if contract not in self.world.sources or contract in (self.contract, *self.active):
            raise HostRefused(contract)
        value = self.world.run(
            contract, method, list(args), self.depth + 1, [*self.active, self.contract]
        )
        return copy.deepcopy(value)


_DELETED = object()


class OracleWorld:
    def __init__(self) -> None:
        self.sources = {n: (CONTRACTS / f"{n}.py").read_text() for n in NAMES}
        self.state: dict[str, dict[str, Any]] = {}
        self.events: list[tuple[str, str, Any]] = []
        self.org = ""

    def run(
        self, contract: str, method: str, args: list[Any], depth: int, active: list[str]
    ) -> Any:
        ledger = WorldLedger(self, contract, depth, active)
        ns: dict[str, Any] = {"ledger": ledger, "require": require, "sha256": sha256}
        exec(compile(self.sources[contract], f"{contract}.py", "exec"), ns)
        value = ns[method](*copy.deepcopy(args))
        state = self.state.setdefault(contract, {})
        for k, v in ledger.writes.items():
            if v is _DELETED:
                state.pop(k, None)
            else:
                state[k] = v
        self.events.extend((contract, n, d) for n, d in ledger.events)
        return value

    def top(self, contract: str, method: str, args: list[Any]) -> tuple[str, Any]:
        saved = copy.deepcopy(self.state), len(self.events)
        try:
            return "ok", self.run(contract, method, args, 0, [])
        except Exception as exc:
            self.state = saved[0]
            del self.events[saved[1] :]
            if isinstance(exc, RequireFailed):
                return "revert", exc.message
            if isinstance(exc, HostRefused):
                return "host", None
            return "error", type(exc).__name__


def _vm_world() -> tuple[InMemoryHost, dict[str, Any]]:
    programs = {
        n: prepare(compile_source((CONTRACTS / f"{n}.py").read_text(), f"{n}.py")) for n in NAMES
    }
    host = InMemoryHost(contracts=programs, member_orgs=list(MEMBERS), block_height=3)
    return host, programs


def _decoded(host: InMemoryHost) -> tuple[dict[str, Any], list[tuple[str, str, Any]]]:
    state = {
        c: {k: decode_value(v, 1 << 20) for k, v in kv.items()} for c, kv in host.state.items()
    }
    events = [(c, n, decode_value(d, 1 << 20)) for c, n, d in host.events]
    return {c: kv for c, kv in state.items() if kv}, events


CALLS = st.one_of(
    st.tuples(
        st.just("voting"),
        st.just("propose"),
        st.tuples(st.integers(0, 1), st.just("t"), st.integers(1, 3)),
    ),
    st.tuples(st.just("voting"), st.just("vote"), st.tuples(st.integers(0, 1), st.booleans())),
    st.tuples(st.just("proxy"), st.just("vote_via"), st.tuples(st.integers(0, 1), st.booleans())),
    st.tuples(st.just("proxy"), st.just("tally"), st.tuples(st.integers(0, 1))),
    st.tuples(st.just("proxy"), st.sampled_from(["loop_back", "missing", "log"]), st.just(())),
)


def check_world(calls: list[tuple[str, str, tuple[Any, ...], int]]) -> None:
    host, programs = _vm_world()
    world = OracleWorld()
    for contract, method, args, who in calls:
        host.contract, host.org = contract, ORGS[who]
        world.org = ORGS[who]
        before = _decoded(host)
        vm = host.run(programs[contract], method, list(args), gas_limit=GAS)
        if isinstance(vm.error, OutOfGas | LimitExceeded):
            assert _decoded(host) == before
            continue
        kind, detail = world.top(contract, method, list(args))
        label = f"{contract}.{method}{args!r}"
        if kind == "ok":
            assert vm.error is None, f"{label}: {vm.error!r}"
            assert typed_equal(vm.value, detail)
        elif kind == "revert":
            assert isinstance(vm.error, Revert) and vm.error.message == detail, label
        elif kind == "host":
            assert isinstance(vm.error, HostError), label
        else:
            assert isinstance(vm.error, ExecutionError) and vm.error.python_kind == detail, label
        state, events = _decoded(host)
        assert typed_equal(state, {c: kv for c, kv in world.state.items() if kv}), label
        assert typed_equal(events, world.events), label


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    calls=st.lists(
        st.tuples(CALLS, st.integers(0, 3)).map(lambda c: (*c[0], c[1])), min_size=1, max_size=12
    )
)
def test_cross_contract_calls_agree_with_cpython(calls: list[tuple[str, str, tuple, int]]) -> None:
    check_world([("voting", "propose", (0, "setup", 3), 0), *calls])


def test_nested_success_is_undone_when_the_caller_fails() -> None:
    calls = [("voting", "propose", (i, "t", 3), 0) for i in range(6)]
    calls += [("proxy", "vote_via", (i, True), 0) for i in range(6)]  # the sixth overflows the log
    calls += [("proxy", "loop_back", (), 0), ("proxy", "missing", (), 0), ("proxy", "log", (), 0)]
    check_world(calls)
    host, programs = _vm_world()
    for contract, method, args, _ in calls:
        host.contract, host.org = contract, ORGS[0]
        result = host.run(programs[contract], method, list(args))
    assert len(result.value) == 5
    host.contract = "voting"
    # The sixth relayed vote was counted by voting, then undone with the proxy's failure.
    assert host.run(programs["voting"], "tally", [5]).value == (0, 0, "open")
    assert host.run(programs["voting"], "tally", [4]).value == (1, 0, "open")
