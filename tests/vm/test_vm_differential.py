"""Differential test: every corpus contract under CPython (the oracle) and in the VM.

Hypothesis generates sequences of calls with arguments and callers. After
every call the two runs must agree on the outcome (value, revert message or
the CPython exception kind), on the writes and events, and on the whole
storage; the only allowed disagreement is the VM stopping on gas or a limit,
in which case the VM must have changed nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vm_oracle import StubLedger, run_cpython, typed_equal

from vm.compiler import compile_source
from vm.errors import CallError, ExecutionError, LimitExceeded, OutOfGas, Revert, VMError, cut
from vm.host import InMemoryHost
from vm.interpreter import prepare
from vm.values import check_value, decode_value

CONTRACTS = Path(__file__).parent / "contracts"
GAS = 400_000
MEMBERS = ["acme", "globex", "initech"]
CALLERS = [
    (bytes([1]) * 32, "acme"),
    (bytes([2]) * 32, "globex"),
    (bytes([3]) * 32, "initech"),
    (bytes([4]) * 32, "mallory"),
]

small_int = st.integers(min_value=-5, max_value=40)
any_int = st.one_of(
    small_int,
    st.integers(min_value=-(2**256), max_value=2**256),
    st.sampled_from([2**255 - 1, -(2**255) + 1, 2**254, 2**255, -(2**255)]),
)
short_text = st.text(max_size=24)
words = st.lists(st.sampled_from(["a", "b", "vote", "Yes", "no", " ", "ÿ", "b"]), max_size=12).map(
    " ".join
)
hex_keys = st.sampled_from([k.hex() for k, _ in CALLERS] + ["ab" * 32, "AB" * 32, "x"])
scalar = st.one_of(st.none(), st.booleans(), small_int, short_text, st.binary(max_size=8))
key_scalar = st.one_of(st.booleans(), small_int, st.text(max_size=4))
value = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(key_scalar, inner, max_size=4),
    ),
    max_leaves=12,
)
small = st.integers(min_value=-1, max_value=4)


def _toy_model(features: list[int]) -> int:
    """A fixed integer scoring rule standing in for the ML module (the host's business)."""
    return sum(f * (i + 1) for i, f in enumerate(features)) % 1000


MODELS = {"iforest": _toy_model}
amount = st.one_of(st.integers(min_value=-5, max_value=1_500), any_int)
int_dict = st.dictionaries(st.text(max_size=3), small_int, max_size=5)

METHODS: dict[str, dict[str, st.SearchStrategy[tuple[Any, ...]]]] = {
    "voting": {
        "propose": st.tuples(
            st.integers(0, 2), st.one_of(st.sampled_from(["t", "admit D", ""]), short_text), small
        ),
        "vote": st.tuples(st.integers(0, 2), st.one_of(st.booleans(), small)),
        "tally": st.tuples(st.integers(0, 4)),
        "withdraw": st.tuples(st.integers(0, 3)),
    },
    "allowlist": {
        "init": st.tuples(),
        "add": st.tuples(st.one_of(hex_keys, small_int)),
        "remove": st.tuples(hex_keys),
        "is_allowed": st.tuples(st.one_of(hex_keys, value)),
        "me_allowed": st.tuples(),
        "listed": st.tuples(),
    },
    "token": {
        "init": st.tuples(amount),
        "balance_of": st.tuples(hex_keys),
        "transfer": st.tuples(hex_keys, amount),
        "mint": st.tuples(amount),
        "burn": st.tuples(amount),
        "total_supply": st.tuples(),
    },
    "orders": {
        "create": st.tuples(st.integers(0, 2), small_int),
        "advance": st.tuples(
            st.integers(0, 2),
            st.sampled_from(["paid", "cancelled", "shipped", "refunded", "delivered", "lost", "x"]),
        ),
        "history": st.tuples(st.integers(0, 4)),
        "states": st.tuples(),
    },
    "text": {
        "word_counts": st.tuples(st.one_of(words, short_text)),
        "top_words": st.tuples(words, st.integers(-2, 5)),
        "normalise": st.tuples(st.one_of(words, short_text)),
        "merge": st.tuples(int_dict, st.one_of(int_dict, value)),
        "invert": st.tuples(st.dictionaries(key_scalar, key_scalar, max_size=5)),
        "fingerprint": st.tuples(st.one_of(st.binary(max_size=40), short_text)),
        "describe": st.tuples(value),
        "cut": st.tuples(
            st.one_of(short_text, st.binary(max_size=10), st.lists(small_int, max_size=6)),
            st.one_of(st.none(), st.integers(-8, 8)),
            st.one_of(st.none(), st.integers(-8, 8)),
            st.one_of(st.none(), st.integers(-3, 3)),
        ),
        "replace_all": st.tuples(words, st.sampled_from(["", "a", "vote", " "]), short_text),
        "parse_int": st.tuples(
            st.one_of(st.integers(-(10**80), 10**80).map(str), short_text, value)
        ),
        "pick": st.tuples(st.lists(small_int, max_size=5), st.integers(-6, 6)),
        "swap_pairs": st.tuples(st.lists(value, max_size=7)),
        "flags": st.tuples(st.integers(-1, 40)),
        "encode_roundtrip": st.tuples(short_text),
        "tally_pairs": st.tuples(
            st.one_of(
                st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), small_int), max_size=6),
                st.lists(st.lists(st.one_of(small_int, short_text), max_size=3), max_size=3),
            )
        ),
        "alias": st.tuples(
            st.one_of(st.lists(small_int, max_size=3), short_text, small_int),
            st.one_of(st.lists(small_int, max_size=3), st.lists(small_int, max_size=2).map(tuple)),
        ),
        "repeat": st.tuples(
            st.one_of(short_text, st.lists(small_int, max_size=3)), st.integers(-2, 30_000)
        ),
    },
    "screening": {
        "screen": st.tuples(
            st.sampled_from(["acme-1", "globex-7"]),
            st.one_of(st.lists(st.integers(-50, 400), max_size=9), st.lists(scalar, max_size=3)),
        ),
        "summary": st.tuples(st.sampled_from(["acme-1", "globex-7", "nobody"])),
    },
    "loops": {
        "sum_squares": st.tuples(st.integers(-3, 60_000)),
        "collatz": st.tuples(st.integers(-1, 10**6)),
        "fib": st.tuples(st.integers(-1, 22)),
        "depth": st.tuples(st.integers(0, 2_000)),
        "grow": st.tuples(st.integers(0, 10**7)),
        "table": st.tuples(st.integers(0, 200), st.integers(0, 200)),
        "power": st.tuples(st.integers(-(10**6), 10**6), st.integers(0, 300)),  # no floats
        "arith": st.tuples(any_int, st.one_of(any_int, st.just(0))),
        "primes": st.tuples(st.integers(0, 600)),
        "store_many": st.tuples(st.integers(0, 120)),
    },
}


SETUP: dict[str, list[tuple[str, tuple[Any, ...], int]]] = {
    "voting": [("propose", (0, "setup", 2), 0)],
    "allowlist": [("init", (), 0)],
    "token": [("init", (1_000,), 0)],
    "orders": [("create", (0, 10), 0)],
}
"""Calls run before the generated ones so that most generated calls reach past the guards."""


def _load(name: str) -> tuple[str, str]:
    path = CONTRACTS / f"{name}.py"
    return path.read_text(), str(path)


def _calls(name: str) -> st.SearchStrategy[list[tuple[str, tuple[Any, ...], int]]]:
    methods = METHODS[name]
    one = st.sampled_from(sorted(methods)).flatmap(
        lambda m: st.tuples(st.just(m), methods[m], st.sampled_from([0, 0, 0, 1, 2, 3]))
    )
    return st.lists(one, min_size=1, max_size=10).map(lambda calls: SETUP.get(name, []) + calls)


def _vm_state(host: InMemoryHost) -> dict[str, Any]:
    raw = host.state.get(host.contract, {})
    return {k: decode_value(v, 1 << 20) for k, v in raw.items()}


def _valid_args(args: tuple[Any, ...]) -> bool:
    try:
        check_value(list(args))
    except VMError:
        return False
    return True


def check_sequence(name: str, calls: list[tuple[str, tuple[Any, ...], int]]) -> None:
    source, path = _load(name)
    program = prepare(compile_source(source, path))
    env = {"member_orgs": list(MEMBERS), "block_height": 7, "block_time": 1_700_000_000_000}
    host = InMemoryHost(models=dict(MODELS), **env)
    stub = StubLedger(models=dict(MODELS), **env)
    for method, args, who in calls:
        host.caller_key, host.org = CALLERS[who]
        stub.caller_key, stub.org = CALLERS[who]
        before = _vm_state(host)
        vm = host.run(program, method, list(args), gas_limit=GAS)
        if not _valid_args(args):
            assert isinstance(vm.error, CallError) and vm.gas_used == 0
            continue
        if isinstance(vm.error, OutOfGas | LimitExceeded):
            assert _vm_state(host) == before, "a failed call changed storage"
            assert not vm.writes and not vm.events
            assert vm.gas_used <= GAS
            # Keep both ledgers in step: the oracle's run is discarded.
            continue
        py = run_cpython(source, path, method, list(args), stub)
        label = f"{name}.{method}{args!r}"
        if py.kind == "ok":
            assert vm.error is None, f"{label}: CPython returned {py.value!r}, VM {vm.error!r}"
            assert typed_equal(vm.value, py.value), f"{label}: {vm.value!r} != {py.value!r}"
            assert typed_equal(vm.writes, py.writes), f"{label}: writes differ"
            assert typed_equal(vm.events, py.events), f"{label}: events differ"
        elif py.kind == "revert":
            assert isinstance(vm.error, Revert), f"{label}: CPython reverted, VM {vm.error!r}"
            assert vm.error.message == cut(py.detail)
        else:
            assert isinstance(vm.error, ExecutionError), f"{label}: CPython {py.detail}, VM {vm!r}"
            assert vm.error.python_kind == py.detail, f"{label}: {vm.error} vs {py.detail}"
        assert typed_equal(_vm_state(host), stub.state), f"{label}: storage differs"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(METHODS))
def test_vm_agrees_with_cpython(name: str) -> None:
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(calls=_calls(name))
    def run(calls: list[tuple[str, tuple[Any, ...], int]]) -> None:
        check_sequence(name, calls)

    run()


def test_corpus_methods_are_all_exercised() -> None:
    """Every public method of every corpus contract has an argument strategy."""
    for name, methods in METHODS.items():
        source, path = _load(name)
        program = prepare(compile_source(source, path))
        assert sorted(program.public_methods()) == sorted(methods), name


def test_governance_scenario_matches() -> None:
    """A fixed vote sequence: proposal approved by quorum, late vote refused."""
    calls = [
        ("propose", (1, "admit bank D", 2), 0),
        ("vote", (1, True), 0),
        ("vote", (1, True), 0),
        ("vote", (1, False), 3),
        ("vote", (1, True), 1),
        ("vote", (1, True), 2),
        ("tally", (1,), 2),
    ]
    check_sequence("voting", calls)


def test_loops_hit_gas_in_the_vm_only() -> None:
    """Near the gas limit: the smaller run agrees, the larger one stops on gas."""
    check_sequence("loops", [("sum_squares", (1_000,), 0), ("sum_squares", (60_000,), 0)])
    source, path = _load("loops")
    program = prepare(compile_source(source, path))
    result = InMemoryHost().run(program, "sum_squares", [60_000], gas_limit=GAS)
    assert isinstance(result.error, OutOfGas) and result.gas_used == GAS
