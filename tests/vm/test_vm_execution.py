"""Execution semantics: gas accounting, revert, determinism, host functions, value encoding."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vm_oracle import typed_equal

from consensus import codec
from vm import opcodes as op
from vm.compiler import compile_source
from vm.errors import (
    CallError,
    ExecutionError,
    HostError,
    LimitExceeded,
    OutOfGas,
    Revert,
)
from vm.gas import (
    GAS_CONTRACT_CALL,
    GAS_EMIT,
    GAS_PER_EVENT_BYTE,
    GAS_PER_ITEM_VISITED,
    GAS_PER_STORAGE_BYTE_READ,
    GAS_PER_STORAGE_BYTE_WRITTEN,
    GAS_STORAGE_READ,
    GAS_STORAGE_WRITE,
    INSTRUCTION_GAS,
    MAX_NESTING_DEPTH,
    SCAN_BYTES_PER_GAS,
    SLOTS_MOVED_PER_GAS,
)
from vm.host import InMemoryHost
from vm.interpreter import Program, execute, prepare
from vm.values import DecodeError, _to_wire, decode_value, encode_value


def program(source: str) -> Program:
    return prepare(compile_source(source, "exec.py"))


def test_gas_is_the_sum_of_the_table() -> None:
    p = program("def f(x):\n    y = x + 1\n    return y\n")
    r = execute(p, "f", [1], InMemoryHost())
    g = INSTRUCTION_GAS
    assert r.gas_used == (
        g[op.LOAD_LOCAL]
        + g[op.LOAD_CONST]
        + g[op.ADD]
        + g[op.STORE_LOCAL]
        + g[op.LOAD_LOCAL]
        + g[op.RETURN]
    )


def test_storage_and_event_gas_follow_the_byte_prices() -> None:
    base = execute(program("def f():\n    return None\n"), "f", [], InMemoryHost()).gas_used
    put = program('def f():\n    ledger.put("key", "value")\n    return None\n')
    r = execute(put, "f", [], InMemoryHost())
    data = encode_value("value", 100)
    instr = (
        INSTRUCTION_GAS[op.LOAD_CONST] * 2 + INSTRUCTION_GAS[op.CALL_HOST] + INSTRUCTION_GAS[op.POP]
    )
    assert r.gas_used == base + instr + GAS_STORAGE_WRITE + GAS_PER_STORAGE_BYTE_WRITTEN * (
        3 + len(data)
    )
    emit = program('def f():\n    ledger.emit("ev", [1, 2])\n    return None\n')
    r = execute(emit, "f", [], InMemoryHost())
    data = encode_value([1, 2], 100)
    instr = (
        INSTRUCTION_GAS[op.LOAD_CONST] * 3
        + INSTRUCTION_GAS[op.BUILD_LIST]
        + INSTRUCTION_GAS[op.CALL_HOST]
        + INSTRUCTION_GAS[op.POP]
    )
    alloc = 16 + 2 * 8  # the list [1, 2]: overhead plus two slots
    visited = 3 * GAS_PER_ITEM_VISITED  # encoding walks the list and its two items
    assert r.gas_used == base + instr + alloc + visited + GAS_EMIT + GAS_PER_EVENT_BYTE * (
        2 + len(data)
    )
    host = InMemoryHost(state={"contract": {"k": encode_value("abc", 100)}})
    get = program('def f():\n    return ledger.get("k")\n')
    r = execute(get, "f", [], host)
    stored = len(encode_value("abc", 100))
    assert r.gas_used == (
        INSTRUCTION_GAS[op.LOAD_CONST]
        + INSTRUCTION_GAS[op.CALL_HOST]
        + INSTRUCTION_GAS[op.RETURN]
        + GAS_STORAGE_READ
        + GAS_PER_STORAGE_BYTE_READ * stored
        + 16
        + stored
    )


REVERTING = """
def f(fail_how):
    ledger.put("a", 1)
    ledger.emit("e", 1)
    if fail_how == "require":
        require(False, "nope")
    if fail_how == "gas":
        while True:
            pass
    if fail_how == "limit":
        x = "x" * 10 ** 9
    if fail_how == "error":
        x = {}["missing"]
    return "done"
"""


@pytest.mark.parametrize(
    ("how", "kind"),
    [("require", Revert), ("gas", OutOfGas), ("limit", LimitExceeded), ("error", ExecutionError)],
)
def test_any_failure_discards_writes_and_events(how: str, kind: type) -> None:
    host = InMemoryHost(state={"contract": {"a": encode_value(0, 10)}})
    r = host.run(program(REVERTING), "f", [how], gas_limit=100_000)
    assert isinstance(r.error, kind)
    assert r.writes == [] and r.events == [] and r.value is None
    assert host.state == {"contract": {"a": encode_value(0, 10)}} and host.events == []
    assert 0 < r.gas_used <= 100_000
    assert r.error.gas_used == r.gas_used
    if kind is OutOfGas:
        assert r.gas_used == 100_000
    if kind is Revert:
        assert r.error.message == "nope"
    if kind is ExecutionError:
        assert r.error.python_kind == "KeyError"
    ok = host.run(program(REVERTING), "f", ["no"])
    assert ok.value == "done" and ok.writes == [("a", 1)] and ok.events == [("e", 1)]
    assert host.state["contract"]["a"] == encode_value(1, 10)


def test_storage_reads_see_own_writes_and_order_is_first_write() -> None:
    source = """
def f():
    ledger.put("b", 1)
    ledger.put("a", [1])
    ledger.delete("b")
    x = ledger.get("b", "gone")
    ledger.put("a", ledger.get("a") + [2])
    return x
"""
    host = InMemoryHost(state={"contract": {"b": encode_value(9, 10)}})
    r = host.run(program(source), "f", [])
    assert r.value == "gone"
    assert r.writes == [("b", None), ("a", [1, 2])]
    assert host.state == {"contract": {"a": encode_value([1, 2], 100)}}


def test_stored_values_are_copies() -> None:
    source = """
def f():
    x = [1]
    ledger.put("k", x)
    x.append(2)
    y = ledger.get("k")
    y.append(3)
    return ledger.get("k"), x
"""
    assert execute(program(source), "f", [], InMemoryHost()).value == ([1], [1, 2])


def test_execution_is_deterministic() -> None:
    source = """
def f(n):
    d = {}
    for i in range(n):
        d[str(i * 7 % 13)] = i
    out = []
    for k, v in d.items():
        out.append(k + ":" + str(v))
    ledger.put("d", d)
    ledger.emit("n", n)
    return sorted(out), sha256(str(out).encode()).hex()
"""
    p = program(source)
    runs = [execute(p, "f", [50], InMemoryHost()) for _ in range(3)]
    assert all(
        (r.value, r.gas_used, r.writes, r.events)
        == (runs[0].value, runs[0].gas_used, runs[0].writes, runs[0].events)
        for r in runs
    )


HOSTFN = """
def info():
    return ledger.caller(), ledger.caller_org(), ledger.height(), ledger.time(), ledger.members()
def risk(xs):
    return ledger.score("iforest", xs)
def relay(x):
    ledger.put("mine", x)
    return ledger.call("other", "store", [x])
def _secret():
    return 1
def public():
    return _secret()
"""
OTHER = """
def store(x):
    ledger.put("theirs", x)
    require(x != "bad", "refused")
    return x + "!"
"""


def test_host_queries_and_score() -> None:
    host = InMemoryHost(
        caller_key=b"\x07" * 32,
        org="acme",
        block_height=3,
        block_time=99,
        member_orgs=["acme", "globex"],
        models={"iforest": lambda f: sum(f) * 10},
    )
    p = program(HOSTFN)
    assert execute(p, "info", [], host).value == (b"\x07" * 32, "acme", 3, 99, ["acme", "globex"])
    assert execute(p, "risk", [[1, 2, 3]], host).value == 60
    assert isinstance(execute(p, "risk", [["x"]], host).error, ExecutionError)
    r = execute(program(HOSTFN.replace('"iforest"', '"unknown"')), "risk", [[1]], host)
    assert isinstance(r.error, HostError)


def test_contract_calls_commit_together_and_roll_back_together() -> None:
    host = InMemoryHost(contract="main", contracts={"other": program(OTHER)})
    p = program(HOSTFN)
    r = host.run(p, "relay", ["hi"])
    assert r.value == "hi!"
    assert host.state == {
        "main": {"mine": encode_value("hi", 100)},
        "other": {"theirs": encode_value("hi", 100)},
    }
    r = host.run(p, "relay", ["bad"])
    assert isinstance(r.error, Revert) and r.error.message == "refused"
    # The caller is charged the callee's gas (its storage write) even though both fail.
    assert r.gas_used > GAS_CONTRACT_CALL + GAS_STORAGE_WRITE * 2
    assert host.state["other"]["theirs"] == encode_value("hi", 100)
    assert host.state["main"]["mine"] == encode_value("hi", 100)


def test_reentrant_call_is_refused() -> None:
    loop = program('def f():\n    return ledger.call("self", "f", [])\n')
    host = InMemoryHost(contract="self", contracts={"self": loop})
    assert isinstance(host.run(loop, "f", []).error, HostError)


def test_private_and_unknown_methods_and_bad_arity_are_call_errors() -> None:
    p = program(HOSTFN)
    for method, args in (("_secret", []), ("nope", []), ("risk", []), ("risk", [1, 2])):
        r = execute(p, method, args, InMemoryHost())
        assert isinstance(r.error, CallError) and r.gas_used == 0
    assert execute(p, "public", [], InMemoryHost()).value == 1


def test_host_exceptions_become_host_errors() -> None:
    class Broken(InMemoryHost):
        def height(self) -> int:
            raise RuntimeError("disk on fire")

    r = execute(program(HOSTFN), "info", [], Broken())
    assert isinstance(r.error, HostError) and "RuntimeError" in str(r.error)
    # The exception's text is not recorded: it can differ between nodes and Pythons.
    assert "disk on fire" not in str(r.error)


def test_host_unavailable_leaves_execute_untouched() -> None:
    """A host that cannot answer yet aborts the run; it is never a failed call or a receipt."""
    from vm.errors import HostUnavailable

    class Later(InMemoryHost):
        def height(self) -> int:
            raise HostUnavailable("ask again once the artifact is here")

    with pytest.raises(HostUnavailable):
        execute(program(HOSTFN), "info", [], Later())


@pytest.mark.parametrize(
    ("expr", "kind"),
    [
        ("1 // 0", "ZeroDivisionError"),
        ("[1][5]", "IndexError"),
        ('{"a": 1}["b"]', "KeyError"),
        ('"a" + 1', "TypeError"),
        ('int("x")', "ValueError"),
        ("{[1]: 2}", "TypeError"),
        ('"%s" % 1', "TypeError"),
        ("(1).hex()", "AttributeError"),
        ("2 ** -1", "ValueError"),
        ('b"\\xff".decode()', "UnicodeDecodeError"),
        ("require(True, 5)", "TypeError"),
    ],
)
def test_failing_operations_report_the_cpython_kind(expr: str, kind: str) -> None:
    r = execute(program(f"def f():\n    return {expr}\n"), "f", [], InMemoryHost())
    assert isinstance(r.error, ExecutionError) and r.error.python_kind == kind


def test_unbound_local_and_dict_mutation_during_iteration() -> None:
    r = execute(
        program("def f(c):\n    if c:\n        x = 1\n    return x\n"), "f", [False], InMemoryHost()
    )
    assert r.error.python_kind == "UnboundLocalError"
    source = "def f():\n    d = {1: 1}\n    for k in d:\n        d[k + 1] = 0\n    return d\n"
    r = execute(program(source), "f", [], InMemoryHost())
    assert r.error.python_kind == "RuntimeError"


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**255) + 1, 2**255 - 1),
    st.text(max_size=8),
    st.binary(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(
            st.one_of(
                st.text(max_size=3),
                st.integers(-5, 5),
                st.binary(max_size=2),
                st.none(),
                st.booleans(),
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=20,
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(value=values)
def test_value_encoding_round_trips_exactly(value: Any) -> None:
    data = encode_value(value, 1 << 20)
    assert data == codec.encode(_to_wire(value))  # packed without the walk, same bytes
    back = decode_value(data, 1 << 20)
    assert typed_equal(back, value)
    assert encode_value(back, 1 << 20) == data


def test_the_deepest_value_the_vm_allows_encodes_within_the_codecs_depth() -> None:
    value: Any = 1
    for _ in range(MAX_NESTING_DEPTH):
        value = [value]
    data = encode_value(value, 1 << 20)
    assert data == codec.encode(_to_wire(value))
    assert decode_value(data, 1 << 20) == value
    with pytest.raises(LimitExceeded):
        encode_value([value], 1 << 20)


@pytest.mark.parametrize(
    "wire",
    [
        [1, b"\x00\x05"],  # non-minimal big integer
        [1, b"\x05"],  # small integer in big form
        [1, (2**255).to_bytes(33, "big", signed=True)],  # out of range
        [4, "a", 1, "a", 2],  # duplicate dict key
        [4, [2], 1],  # container as key
        [4, "a"],  # odd dict
        [7, 1],  # unknown tag
        [],  # untagged array
    ],
)
def test_value_decoding_rejects_non_canonical_forms(wire: Any) -> None:
    with pytest.raises(DecodeError):
        decode_value(codec.encode(wire), 1 << 20)


def test_comparing_and_searching_long_strings_costs_gas_per_byte() -> None:
    source = """
def eq(n):
    a = "x" * n
    b = "x" * n
    return a == b
def search(n):
    hay = "x" * n
    return "y" in hay
def lookup(n):
    d = {}
    return d.get("k" * n)
def nested(n):
    a = ["x" * n]
    b = ["x" * n]
    return a == b
"""
    p = program(source)

    def gas(method: str, n: int) -> int:
        r = execute(p, method, [n], InMemoryHost())
        assert r.error is None, r.error
        return r.gas_used

    # eq: two allocations of n bytes, and both operands scanned.
    assert gas("eq", 32_000) - gas("eq", 16_000) == 2 * 16_000 + 2 * 16_000 // SCAN_BYTES_PER_GAS
    # search: one allocation plus the scan of haystack and needle.
    assert gas("search", 32_000) - gas("search", 16_000) == 16_000 + 16_000 // SCAN_BYTES_PER_GAS
    assert gas("lookup", 32_000) - gas("lookup", 16_000) == 16_000 + 16_000 // SCAN_BYTES_PER_GAS
    # Strings inside containers are scanned too.
    assert (
        gas("nested", 32_000) - gas("nested", 16_000)
        == 2 * 16_000 + 2 * 16_000 // SCAN_BYTES_PER_GAS
    )


def test_shifting_long_lists_costs_gas_per_slot() -> None:
    source = """
def shift(n, k):
    xs = [0] * n
    for i in range(k):
        xs.insert(0, i)
        xs.pop(0)
    return len(xs)
"""
    p = program(source)
    small = execute(p, "shift", [640, 10], InMemoryHost())
    big = execute(p, "shift", [1280, 10], InMemoryHost())
    assert small.value == 640 and big.value == 1280
    # 640 more slots: 640 * 8 bytes allocated once, and 10 inserts and 10 pops
    # each shifting 640 more slots (10 more gas units per shift).
    assert big.gas_used - small.gas_used == 640 * 8 + 20 * 640 // SLOTS_MOVED_PER_GAS


def test_encoding_refuses_integers_the_decoder_would_refuse() -> None:
    with pytest.raises(LimitExceeded):
        encode_value([-(2**255)], 1 << 10)
    assert decode_value(encode_value(-(2**255) + 1, 1 << 10), 1 << 10) == -(2**255) + 1


def test_strings_that_are_not_utf8_are_refused() -> None:
    """Lone surrogates cannot be stored or hashed canonically: refused at the boundary."""
    p = program("def put(k):\n    ledger.put(k, 1)\ndef emit(n):\n    ledger.emit(n, 1)\n")
    for method in ("put", "emit"):
        r = execute(p, method, ["ok\ud800"], InMemoryHost())
        assert isinstance(r.error, CallError) and r.gas_used == 0
        assert execute(p, method, ["ok"], InMemoryHost()).error is None
    with pytest.raises(ExecutionError, match="UnicodeEncodeError"):
        encode_value(["\udc80"], 100)


def test_key_ok_asks_the_host_and_charges_for_the_check() -> None:
    from vm.gas import GAS_KEY_CHECK

    src = "def check(k):\n    return ledger.key_ok(k)\n"
    host = InMemoryHost(key_check=lambda key: key == b"\x01" * 32)
    good = execute(program(src), "check", [b"\x01" * 32], host)
    assert good.error is None and good.value is True and good.gas_used >= GAS_KEY_CHECK
    assert execute(program(src), "check", [b"\x02" * 32], host).value is False
    wrong = execute(program(src), "check", ["not bytes"], host)
    assert isinstance(wrong.error, ExecutionError) and "needs bytes" in str(wrong.error)


def test_anchor_and_model_ask_the_host_and_charge_for_the_lookup() -> None:
    from vm.gas import GAS_ANCHOR_LOOKUP, GAS_MODEL_LOOKUP

    src = "def a(d):\n    return ledger.anchor(d)\ndef m(i):\n    return ledger.model(i)\n"
    digest = b"\x07" * 32
    facts = {"size": 10, "trees": 2, "features": ["x"], "datasets": [[digest, 5]]}
    host = InMemoryHost(
        anchors={digest: {"height": 3, "org": "org1", "parents": []}},
        models_by_id={digest: facts},
    )
    found = execute(program(src), "a", [digest], host)
    assert found.error is None and found.value == {"height": 3, "org": "org1", "parents": []}
    assert found.gas_used >= GAS_ANCHOR_LOOKUP
    assert execute(program(src), "a", [b"\x08" * 32], host).value is None
    model = execute(program(src), "m", [digest], host)
    assert model.error is None and model.value == facts and model.gas_used >= GAS_MODEL_LOOKUP
    unknown = execute(program(src), "m", [b"\x08" * 32], host)
    assert isinstance(unknown.error, HostError)
    for method in ("a", "m"):
        for bad in (b"\x07" * 31, "text", 7):
            wrong = execute(program(src), method, [bad], host)
            assert isinstance(wrong.error, ExecutionError) and "32-byte digest" in str(wrong.error)
    starved = execute(program(src), "m", [digest], host, gas_limit=GAS_MODEL_LOOKUP // 2)
    assert isinstance(starved.error, OutOfGas)


def test_merge_id_asks_the_host_and_charges_per_model() -> None:
    from vm.gas import GAS_MERGE, MAX_MERGE_MODELS

    src = "def m(ids):\n    return ledger.merge_id(ids)\n"
    a, b, merged = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
    host = InMemoryHost(merges={(a, b): merged})
    done = execute(program(src), "m", [[b, a]], host)
    assert done.error is None and done.value == merged and done.gas_used >= 2 * GAS_MERGE
    unknown = execute(program(src), "m", [[a, b"\x04" * 32]], host)
    assert isinstance(unknown.error, HostError)
    too_many = [bytes([i]) * 32 for i in range(MAX_MERGE_MODELS + 1)]
    for bad in ([a], too_many, [a, b"short"], "not a list"):
        wrong = execute(program(src), "m", [bad], host)
        assert isinstance(wrong.error, ExecutionError), bad
    at_bound = [bytes([i]) * 32 for i in range(MAX_MERGE_MODELS)]
    edge = execute(program(src), "m", [at_bound], host, gas_limit=10**8)
    assert isinstance(edge.error, HostError)  # accepted by the VM, then the host answers
