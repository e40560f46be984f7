"""Fuzzing: random and mutated bytecode must only ever produce the VM's own errors.

Three sources of programs: (1) random stack-correct code built from every
opcode with random operands, so most of it passes the verifier and reaches the
interpreter with values of arbitrary types; (2) mutations of compiled corpus
contracts (opcode swaps, operand changes, inserted and deleted bytes); (3)
random bytes and byte flips of serialized modules for the decoder. Whatever
comes out, decoding/verifying raises only BytecodeError/VerifyError, and
``execute`` returns a Result whose error (if any) is a VMError, with the same
outcome and gas on a second run.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vm import opcodes as op
from vm.bytecode import Function, Module, decode_module, encode_instruction, encode_module
from vm.compiler import compile_source
from vm.errors import BytecodeError, VerifyError, VMError
from vm.host import InMemoryHost
from vm.interpreter import Program, execute, prepare

FUZZ_GAS = 30_000
CONTRACTS = Path(__file__).parent / "contracts"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, -2, 2, 255, 256, 2**254, -(2**254), 2**255 - 1, -(2**255) + 1]),
    st.text(max_size=6),
    st.binary(max_size=6),
    st.sampled_from(["\ud800", "a\udfff"]),  # not UTF-8: must be refused, never crash
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=3), st.integers(-3, 3)), inner, max_size=3),
    ),
    max_leaves=8,
)

METHOD_NAMES = sorted(op.METHODS)
STACK_CAP = 12


def _effects(o: int, a: int, b: int) -> tuple[int, int]:
    """(pops, pushes) for the straight-line generator."""
    if o in (op.LOAD_CONST, op.LOAD_LOCAL):
        return 0, 1
    if o in (op.STORE_LOCAL, op.POP):
        return 1, 0
    if o == op.DUP:
        return 1, 2
    if o == op.DUP2:
        return 2, 4
    if o == op.ROT2:
        return 2, 2
    if o == op.ROT3:
        return 3, 3
    if o in op.BINARY_OPS:
        return 2, 1
    if o in op.UNARY_OPS:
        return 1, 1
    if o in (op.BUILD_LIST, op.BUILD_TUPLE, op.BUILD_STRING):
        return a, 1
    if o == op.BUILD_DICT:
        return 2 * a, 1
    if o == op.UNPACK:
        return 1, a
    if o == op.LOAD_SUBSCR:
        return 2, 1
    if o == op.STORE_SUBSCR:
        return 3, 0
    if o == op.DELETE_SUBSCR:
        return 2, 0
    if o == op.LOAD_SLICE:
        return 4, 1
    if o in (op.CALL_BUILTIN, op.CALL_HOST, op.CALL):
        return b, 1
    if o == op.CALL_METHOD:
        return b + 1, 1
    raise AssertionError(o)


STRAIGHT_OPS = sorted(
    set(op.NAMES)
    - {op.JUMP, op.JUMP_IF_FALSE, op.JUMP_IF_TRUE, op.GET_ITER, op.RANGE_ITER, op.FOR_ITER}
    - {op.RETURN}
)


@st.composite
def random_program(draw: st.DrawFn) -> Module:
    constants: list[Any] = list(METHOD_NAMES) + draw(st.lists(scalars, max_size=8))
    n_params = draw(st.integers(0, 3))
    n_locals = n_params + draw(st.integers(0, 3))
    n_locals = max(n_locals, 1)
    items: list[bytes] = []
    height = 0
    for _ in range(draw(st.integers(1, 40))):
        if draw(st.integers(0, 9)) == 0 and height >= 1:
            # A loop over the top value: GET_ITER; top: FOR_ITER end; STORE_LOCAL 0; JUMP top.
            items.append(("loop", 0))  # type: ignore[arg-type]
            height -= 1
            continue
        o = draw(st.sampled_from(STRAIGHT_OPS))
        a = b = 0
        if o == op.LOAD_CONST:
            a = draw(st.integers(0, len(constants) - 1))
        elif o in (op.LOAD_LOCAL, op.STORE_LOCAL):
            a = draw(st.integers(0, n_locals - 1))
        elif o in (op.BUILD_LIST, op.BUILD_TUPLE, op.BUILD_STRING):
            a = draw(st.integers(0, min(height, 3)))
        elif o == op.BUILD_DICT:
            a = draw(st.integers(0, height // 2))
        elif o == op.UNPACK:
            a = draw(st.integers(1, 3))
        elif o == op.CALL_BUILTIN:
            name = draw(st.sampled_from(sorted(op.BUILTINS)))
            arity = op.BUILTINS[name]
            a = arity.id
            b = draw(st.integers(arity.min_args, min(arity.max_args, arity.min_args + 2)))
        elif o == op.CALL_HOST:
            name = draw(st.sampled_from(sorted(op.HOST_FUNCTIONS)))
            arity = op.HOST_FUNCTIONS[name]
            a = arity.id
            b = draw(st.integers(arity.min_args, arity.max_args))
        elif o == op.CALL_METHOD:
            a = draw(st.integers(0, len(METHOD_NAMES) - 1))
            lo, hi = op.METHODS[METHOD_NAMES[a]]
            b = draw(st.integers(lo, hi))
        elif o == op.CALL:
            b = n_params
        pops, pushes = _effects(o, a, b)
        if pops > height or height - pops + pushes > STACK_CAP:
            continue
        operands = [a, b][: op.OPERAND_COUNT[o]]
        items.append(encode_instruction(o, *operands))
        height += pushes - pops
    if height == 0:
        items.append(encode_instruction(op.LOAD_CONST, 0))
    items.append(encode_instruction(op.RETURN))
    code = bytearray()
    for item in items:
        if isinstance(item, tuple):
            top = len(code) + 1  # after the one-byte GET_ITER
            end = top + 9  # FOR_ITER, STORE_LOCAL and JUMP are three bytes each
            code += encode_instruction(op.GET_ITER)
            code += encode_instruction(op.FOR_ITER, end)
            code += encode_instruction(op.STORE_LOCAL, 0)
            code += encode_instruction(op.JUMP, top)
        else:
            code += item
    return Module(tuple(constants), (Function("main", n_params, n_locals, bytes(code)),))


def _run_twice(program: Program, method: str, args: list[Any]) -> None:
    outcomes = []
    for _ in range(2):
        host = InMemoryHost(models={"m": lambda f: sum(f)}, member_orgs=["a", "b"])
        result = execute(program, method, args, host, gas_limit=FUZZ_GAS)
        assert result.error is None or isinstance(result.error, VMError)
        assert 0 <= result.gas_used <= FUZZ_GAS
        outcomes.append(
            (repr(result.value), type(result.error), str(result.error), result.gas_used)
        )
    assert outcomes[0] == outcomes[1], "execution is not deterministic"


def _fuzz_settings(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.mark.slow
@_fuzz_settings(400)
@given(module=random_program(), args=st.lists(values, min_size=3, max_size=3))
def test_random_stack_correct_programs_raise_only_vm_errors(
    module: Module, args: list[Any]
) -> None:
    try:
        program = prepare(module)
    except (VerifyError, BytecodeError):
        return
    _run_twice(program, "main", args[: module.functions[0].n_params])


def _corpus_modules() -> list[bytes]:
    return [
        encode_module(compile_source(p.read_text(), str(p))) for p in sorted(CONTRACTS.glob("*.py"))
    ]


CORPUS = _corpus_modules()


@st.composite
def mutated_module(draw: st.DrawFn) -> Module:
    module = decode_module(draw(st.sampled_from(CORPUS)))
    functions = list(module.functions)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(functions) - 1))
        f = functions[i]
        code = bytearray(f.code)
        kind = draw(st.sampled_from(["opcode", "operand", "insert", "delete"]))
        pos = draw(st.integers(0, len(code) - 1))
        if kind == "opcode":
            code[pos] = draw(st.sampled_from([*sorted(op.NAMES), 0, 255]))
        elif kind == "operand":
            code[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            code[pos:pos] = draw(st.binary(min_size=1, max_size=3))
        elif len(code) > 1:
            del code[pos]
        functions[i] = Function(f.name, f.n_params, f.n_locals, bytes(code))
    return Module(module.constants, tuple(functions))


@pytest.mark.slow
@_fuzz_settings(300)
@given(module=mutated_module(), data=st.data())
def test_mutated_corpus_modules_raise_only_vm_errors(module: Module, data: st.DataObject) -> None:
    try:
        program = prepare(module)
    except (VerifyError, BytecodeError):
        return
    method = data.draw(st.sampled_from(program.public_methods()))
    n = program.functions[program.by_name[method]].n_params
    args = data.draw(st.lists(values, min_size=n, max_size=n))
    _run_twice(program, method, args)


@_fuzz_settings(300)
@given(data=st.one_of(st.binary(max_size=200), st.sampled_from(CORPUS)), flips=st.data())
def test_decoder_rejects_bad_bytes_with_bytecode_errors(data: bytes, flips: st.DataObject) -> None:
    raw = bytearray(data)
    if raw:
        for _ in range(flips.draw(st.integers(0, 3))):
            pos = flips.draw(st.integers(0, len(raw) - 1))
            raw[pos] = flips.draw(st.integers(0, 255))
    try:
        module = decode_module(bytes(raw))
    except BytecodeError:
        return
    assert encode_module(module) == bytes(raw)
    with contextlib.suppress(VerifyError):
        prepare(module)
