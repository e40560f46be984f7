"""Every run-time limit at its edge: exactly at the limit passes, one past fails."""

from __future__ import annotations

from typing import Any

import pytest

from vm.compiler import compile_source
from vm.errors import CallError, ExecutionError, LimitExceeded, OutOfGas, Revert
from vm.gas import (
    INT_LIMIT,
    MAX_CALL_DEPTH,
    MAX_CONTAINER_ITEMS,
    MAX_CONTRACT_CALL_DEPTH,
    MAX_EVENT_DATA_BYTES,
    MAX_EVENT_NAME_BYTES,
    MAX_EVENTS,
    MAX_GAS_LIMIT,
    MAX_MEMORY_BYTES,
    MAX_MESSAGE_CHARS,
    MAX_NESTING_DEPTH,
    MAX_STORAGE_KEY_BYTES,
    MAX_STORAGE_VALUE_BYTES,
    MAX_STR_BYTES,
    MAX_VALUE_BYTES,
    MAX_VISIT_ITEMS,
    OBJECT_OVERHEAD_BYTES,
)
from vm.host import InMemoryHost
from vm.interpreter import IntegerOverflow, Program, Result, _Machine, execute, prepare
from vm.values import visit

BIG_GAS = 20_000_000


def program(source: str) -> Program:
    return prepare(compile_source(source, "limits.py"))


def call(source: str, method: str, *args: Any, gas: int = BIG_GAS, host: Any = None) -> Result:
    return execute(program(source), method, list(args), host or InMemoryHost(), gas_limit=gas)


def ok(result: Result) -> Any:
    assert result.error is None, result.error
    return result.value


def fails(result: Result, kind: type) -> None:
    assert isinstance(result.error, kind), result.error


ARITH = """
def add(a, b):
    return a + b
def mul(a, b):
    return a * b
def neg(a):
    return -a
def inv(a):
    return ~a
def pw(a, b):
    return a ** b
def shl(a, b):
    return a << b
"""


def test_integer_bound_edges() -> None:
    top = INT_LIMIT - 1
    assert ok(call(ARITH, "add", top - 1, 1)) == top
    fails(call(ARITH, "add", top, 1), IntegerOverflow)
    assert ok(call(ARITH, "add", -top + 1, -1)) == -top
    fails(call(ARITH, "add", -top, -1), IntegerOverflow)
    assert ok(call(ARITH, "neg", -top)) == top
    assert ok(call(ARITH, "inv", -top)) == top - 1
    fails(call(ARITH, "inv", top), IntegerOverflow)
    assert ok(call(ARITH, "pw", 2, 254)) == 2**254
    fails(call(ARITH, "pw", 2, 255), IntegerOverflow)
    fails(call(ARITH, "pw", 3, 10**30), IntegerOverflow)
    assert ok(call(ARITH, "pw", 1, 10**30)) == 1
    assert ok(call(ARITH, "shl", 1, 254)) == 2**254
    fails(call(ARITH, "shl", 1, 255), IntegerOverflow)
    fails(call(ARITH, "shl", 1, 10**30), IntegerOverflow)
    assert ok(call(ARITH, "shl", 0, 10**30)) == 0
    fails(call(ARITH, "mul", 2**128, 2**127), IntegerOverflow)
    # Bitwise operators on in-range operands can reach -2**255.
    bits = "def band(a, b):\n    return a & b\ndef bor(a, b):\n    return a | b\n"
    fails(call(bits, "band", -2, -top), IntegerOverflow)
    assert ok(call(bits, "band", -1, -top)) == -top
    assert ok(call(bits, "bor", -2, -top)) == -1
    assert issubclass(IntegerOverflow, LimitExceeded)


def test_out_of_range_arguments_are_refused() -> None:
    fails(call(ARITH, "neg", INT_LIMIT), CallError)
    assert ok(call(ARITH, "neg", INT_LIMIT - 1)) == -(INT_LIMIT - 1)


REPEAT = """
def rep(s, n):
    return len(s * n)
def items(n):
    return len([0] * n)
"""


def test_string_size_edge_fails_before_allocating() -> None:
    assert ok(call(REPEAT, "rep", "x", MAX_STR_BYTES)) == MAX_STR_BYTES
    fails(call(REPEAT, "rep", "x", MAX_STR_BYTES + 1), LimitExceeded)
    # A billion bytes is refused by the size check, never allocated.
    fails(call(REPEAT, "rep", "x", 10**9), LimitExceeded)
    fails(call(REPEAT, "rep", b"ab", 10**18), LimitExceeded)


def test_container_size_edge() -> None:
    assert ok(call(REPEAT, "items", MAX_CONTAINER_ITEMS)) == MAX_CONTAINER_ITEMS
    fails(call(REPEAT, "items", MAX_CONTAINER_ITEMS + 1), LimitExceeded)


def test_allocation_is_paid_with_gas_before_it_happens() -> None:
    small = call(REPEAT, "rep", "x", 1_000)
    bigger = call(REPEAT, "rep", "x", 2_000)
    assert bigger.gas_used - small.gas_used == 1_000
    fails(call(REPEAT, "rep", "x", 100_000, gas=50_000), OutOfGas)


def test_memory_limit_edge() -> None:
    m = _Machine(program(REPEAT), InMemoryHost(), BIG_GAS * 5, 0)
    m.alloc(MAX_MEMORY_BYTES - OBJECT_OVERHEAD_BYTES)
    assert m.memory == MAX_MEMORY_BYTES
    with pytest.raises(LimitExceeded, match="allocated more than"):
        m.alloc(1 - OBJECT_OVERHEAD_BYTES)


def test_memory_limit_through_a_contract() -> None:
    source = """
def hoard(n):
    keep = []
    for i in range(n):
        keep.append("x" * 1000000 + str(i))
    return len(keep)
"""
    fails(call(source, "hoard", 40, gas=100_000_000), LimitExceeded)


NEST = """
def nest(n):
    x = []
    for i in range(n - 1):
        x = [x]
    return x
def cmp(n):
    a = nest(n)
    b = nest(n)
    return a == b
def cyclic():
    a = []
    a.append(a)
    return str(a)
"""


def test_nesting_depth_edge() -> None:
    ok(call(NEST, "nest", MAX_NESTING_DEPTH))
    fails(call(NEST, "nest", MAX_NESTING_DEPTH + 1), LimitExceeded)
    assert ok(call(NEST, "cmp", MAX_NESTING_DEPTH)) is True
    fails(call(NEST, "cmp", MAX_NESTING_DEPTH + 1), LimitExceeded)
    fails(call(NEST, "cyclic"), LimitExceeded)


def test_visit_limit_edge() -> None:
    assert visit([0] * (MAX_VISIT_ITEMS - 1)) == MAX_VISIT_ITEMS
    with pytest.raises(LimitExceeded):
        visit([0] * MAX_VISIT_ITEMS)


DEPTH = """
def depth(n):
    if n == 0:
        return 0
    return 1 + depth(n - 1)
"""


def test_call_depth_edge_without_python_recursion() -> None:
    # depth(n) needs n + 1 frames.
    assert ok(call(DEPTH, "depth", MAX_CALL_DEPTH - 1)) == MAX_CALL_DEPTH - 1
    fails(call(DEPTH, "depth", MAX_CALL_DEPTH), LimitExceeded)
    fails(call(DEPTH, "depth", 10**6), LimitExceeded)


STORE = """
def put(k, n):
    ledger.put(k, bytes(n))
def emit(name, n, count):
    for i in range(count):
        ledger.emit(name, bytes(n))
def ret(n):
    return bytes(n)
"""


def test_storage_key_and_value_edges() -> None:
    ok(call(STORE, "put", "k" * MAX_STORAGE_KEY_BYTES, 1))
    fails(call(STORE, "put", "k" * (MAX_STORAGE_KEY_BYTES + 1), 1), LimitExceeded)
    # bytes of length n < 65536 encode with a 3-byte header.
    ok(call(STORE, "put", "k", MAX_STORAGE_VALUE_BYTES - 3))
    fails(call(STORE, "put", "k", MAX_STORAGE_VALUE_BYTES - 2), LimitExceeded)


def test_event_edges() -> None:
    ok(call(STORE, "emit", "e", 1, MAX_EVENTS))
    fails(call(STORE, "emit", "e", 1, MAX_EVENTS + 1), LimitExceeded)
    ok(call(STORE, "emit", "e" * MAX_EVENT_NAME_BYTES, 1, 1))
    fails(call(STORE, "emit", "e" * (MAX_EVENT_NAME_BYTES + 1), 1, 1), LimitExceeded)
    # bytes of length 256..65535 encode with a 3-byte header.
    ok(call(STORE, "emit", "e", MAX_EVENT_DATA_BYTES - 3, 1))
    fails(call(STORE, "emit", "e", MAX_EVENT_DATA_BYTES - 2, 1), LimitExceeded)


def test_return_value_and_argument_edges() -> None:
    ok(call(STORE, "ret", MAX_VALUE_BYTES - 3))
    fails(call(STORE, "ret", MAX_VALUE_BYTES - 2), LimitExceeded)
    # The argument list is one value: [2, bytes] adds an array header and the list tag.
    echo = "def echo(v):\n    return len(v)\n"
    assert ok(call(echo, "echo", bytes(MAX_VALUE_BYTES - 5))) == MAX_VALUE_BYTES - 5
    fails(call(echo, "echo", bytes(MAX_VALUE_BYTES - 4)), CallError)


def test_gas_limit_bounds() -> None:
    assert call(ARITH, "add", 1, 2, gas=MAX_GAS_LIMIT).error is None
    fails(call(ARITH, "add", 1, 2, gas=MAX_GAS_LIMIT + 1), CallError)
    fails(call(ARITH, "add", 1, 2, gas=-1), CallError)


def test_exact_gas_edge() -> None:
    used = call(DEPTH, "depth", 10).gas_used
    assert call(DEPTH, "depth", 10, gas=used).error is None
    short = call(DEPTH, "depth", 10, gas=used - 1)
    fails(short, OutOfGas)
    assert short.gas_used == used - 1


CHAIN = """
def hop(n):
    if n == 0:
        return ledger.height()
    return ledger.call("c" + str(n - 1), "hop", [n - 1])
"""


def test_contract_call_depth_edge() -> None:
    chain = program(CHAIN)
    contracts = {f"c{i}": chain for i in range(MAX_CONTRACT_CALL_DEPTH + 2)}
    host = InMemoryHost(contract="top", contracts=contracts, block_height=5)
    # hop(n) from the top makes n nested contract calls.
    assert host.run(chain, "hop", [MAX_CONTRACT_CALL_DEPTH]).value == 5
    fails(host.run(chain, "hop", [MAX_CONTRACT_CALL_DEPTH + 1]), LimitExceeded)


def test_revert_message_length_edge() -> None:
    source = "def f(n):\n    require(False, 'm' * n)\n"
    r = call(source, "f", MAX_MESSAGE_CHARS)
    assert isinstance(r.error, Revert) and r.error.message == "m" * MAX_MESSAGE_CHARS
    r = call(source, "f", MAX_MESSAGE_CHARS + 1)
    assert len(r.error.message) == MAX_MESSAGE_CHARS and r.error.message.endswith("...")
    r = call("def f(n):\n    return {}['k' * n]\n", "f", 10_000)
    assert isinstance(r.error, ExecutionError) and len(str(r.error)) == MAX_MESSAGE_CHARS
