"""Each verifier rule and each structural check of the module format, on hand-built bytecode."""

from __future__ import annotations

import pytest

from consensus import codec
from vm import opcodes as op
from vm.bytecode import (
    FORMAT_VERSION,
    MAGIC,
    Function,
    Module,
    decode_module,
    encode_instruction,
    encode_module,
)
from vm.errors import BytecodeError, VerifyError
from vm.gas import MAX_BUILD_ITEMS, MAX_CONSTANTS, MAX_FUNCTIONS, MAX_MODULE_BYTES, MAX_STACK_HEIGHT
from vm.interpreter import prepare
from vm.verifier import verify_module


def ins(opcode: int, *operands: int) -> bytes:
    return encode_instruction(opcode, *operands)


def module(
    *code: bytes,
    consts: tuple = (None, 1, "append"),
    n_params: int = 0,
    n_locals: int = 2,
    extra: tuple[Function, ...] = (),
) -> Module:
    return Module(consts, (Function("main", n_params, n_locals, b"".join(code)), *extra))


RET_NONE = ins(op.LOAD_CONST, 0) + ins(op.RETURN)


def test_minimal_module_verifies() -> None:
    (vf,) = verify_module(module(RET_NONE))
    assert vf.max_stack == 1


BROKEN = [
    ("unknown opcode", module(b"\xee" + RET_NONE), "unknown opcode 0xee"),
    ("cut-off operand", module(RET_NONE + bytes([op.LOAD_CONST, 0])), "cut off"),
    ("jump into an instruction", module(ins(op.JUMP, 1), RET_NONE), "not an instruction boundary"),
    ("jump past the end", module(ins(op.JUMP, 100), RET_NONE), "not an instruction boundary"),
    ("constant index", module(ins(op.LOAD_CONST, 3), ins(op.RETURN)), "constant 3 does not exist"),
    ("local index", module(ins(op.LOAD_LOCAL, 2), ins(op.RETURN)), "local 2 does not exist"),
    (
        "store local index",
        module(ins(op.LOAD_CONST, 0), ins(op.STORE_LOCAL, 9), RET_NONE),
        "local 9 does not exist",
    ),
    ("function index", module(ins(op.CALL, 5, 0), ins(op.RETURN)), "function 5 does not exist"),
    (
        "call arity",
        module(ins(op.LOAD_CONST, 0), ins(op.CALL, 0, 1), ins(op.RETURN)),
        "takes 0 argument(s), 1 given",
    ),
    (
        "builtin id",
        module(ins(op.CALL_BUILTIN, 99, 0), ins(op.RETURN)),
        "builtin 99 does not exist",
    ),
    (
        "builtin arity",
        module(ins(op.CALL_BUILTIN, op.BUILTINS["len"].id, 0), ins(op.RETURN)),
        "len given 0",
    ),
    ("host id", module(ins(op.CALL_HOST, 99, 0), ins(op.RETURN)), "host function 99"),
    (
        "host arity",
        module(ins(op.CALL_HOST, op.HOST_FUNCTIONS["caller"].id, 1), ins(op.RETURN)),
        "ledger.caller given 1",
    ),
    (
        "method name not a string",
        module(ins(op.LOAD_CONST, 0), ins(op.CALL_METHOD, 1, 0), ins(op.RETURN)),
        "is not a string",
    ),
    (
        "unknown method",
        module(
            ins(op.LOAD_CONST, 0),
            ins(op.CALL_METHOD, 2, 0),
            ins(op.RETURN),
            consts=(None, 1, "explode"),
        ),
        "unknown method 'explode'",
    ),
    (
        "method arity",
        module(ins(op.LOAD_CONST, 0), ins(op.CALL_METHOD, 2, 0), ins(op.RETURN)),
        ".append given 0",
    ),
    ("stack underflow", module(ins(op.ADD), RET_NONE), "stack underflow"),
    ("pop on empty stack", module(ins(op.POP), RET_NONE), "stack underflow"),
    ("return on empty stack", module(ins(op.RETURN)), "stack underflow"),
    (
        "paths disagree on height",
        module(ins(op.LOAD_CONST, 1), ins(op.JUMP_IF_FALSE, 9), ins(op.LOAD_CONST, 0), RET_NONE),
        "stack differs between paths",
    ),
    ("falls off the end", module(ins(op.LOAD_CONST, 0), ins(op.POP)), "run past the end"),
    (
        "iterator used as a value",
        module(ins(op.LOAD_CONST, 0), ins(op.GET_ITER), ins(op.RETURN)),
        "iterator is used as a value",
    ),
    (
        "FOR_ITER without iterator",
        module(ins(op.LOAD_CONST, 0), ins(op.FOR_ITER, 0), RET_NONE),
        "FOR_ITER needs a loop iterator",
    ),
    (
        "display too large",
        module(ins(op.BUILD_LIST, MAX_BUILD_ITEMS + 1), ins(op.RETURN)),
        f"limit is {MAX_BUILD_ITEMS}",
    ),
    ("unpack nothing", module(ins(op.LOAD_CONST, 0), ins(op.UNPACK, 0), RET_NONE), "unpacks 0"),
    ("range arity", module(ins(op.RANGE_ITER, 4), RET_NONE), "range takes 1 to 3"),
]


@pytest.mark.parametrize(("what", "mod", "fragment"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_rule_rejects(what: str, mod: Module, fragment: str) -> None:
    with pytest.raises(VerifyError) as info:
        prepare(mod)
    assert fragment in str(info.value), str(info.value)


def test_loop_shape_verifies() -> None:
    """for x in []: pass -- the iterator stays below the loop body and FOR_ITER pops it."""

    def loop(exit_offset: int) -> Module:
        body = (
            ins(op.BUILD_LIST, 0)  # offset 0
            + ins(op.GET_ITER)  # 3
            + ins(op.FOR_ITER, exit_offset)  # 4
            + ins(op.POP)  # 7
            + ins(op.JUMP, 4)  # 8
            + RET_NONE  # 11
        )
        return Module((None,), (Function("main", 0, 0, body),))

    prepare(loop(11))
    with pytest.raises(VerifyError, match="not an instruction boundary"):
        prepare(loop(12))


def test_stack_height_limit_edge() -> None:
    at_limit = ins(op.LOAD_CONST, 0) * MAX_STACK_HEIGHT + ins(op.RETURN)
    (vf,) = verify_module(module(at_limit))
    assert vf.max_stack == MAX_STACK_HEIGHT
    over = ins(op.LOAD_CONST, 0) * (MAX_STACK_HEIGHT + 1) + ins(op.RETURN)
    with pytest.raises(VerifyError, match=f"exceeds {MAX_STACK_HEIGHT}"):
        verify_module(module(over))


def test_build_items_limit_edge() -> None:
    at_limit = ins(op.LOAD_CONST, 0) * MAX_BUILD_ITEMS + ins(op.BUILD_LIST, MAX_BUILD_ITEMS)
    prepare(module(at_limit + ins(op.RETURN)))


# -- module format ------------------------------------------------------------


def test_module_round_trip_and_canonical_bytes() -> None:
    m = module(RET_NONE, consts=(None, True, -(2**200), "s", b"b"))
    data = encode_module(m)
    assert decode_module(data) == m


def _wire(consts: list, funcs: list, magic: str = MAGIC, version: int = FORMAT_VERSION) -> bytes:
    return codec.encode([magic, version, consts, funcs])


GOOD_FN = ["main", 0, 0, RET_NONE]

BAD_MODULES = [
    ("not msgpack", b"\xc1", "not a canonical module"),
    ("trailing bytes", _wire([None], [GOOD_FN]) + b"\x00", "not a canonical module"),
    ("wrong shape", codec.encode([MAGIC, FORMAT_VERSION]), "4-item array"),
    ("bad magic", _wire([None], [GOOD_FN], magic="evm"), "bad magic"),
    ("bad version", _wire([None], [GOOD_FN], version=2), "unsupported format version"),
    ("no functions", _wire([None], []), "1..256 functions"),
    ("container constant", _wire([[2, 1]], [GOOD_FN]), "constants must be scalars"),
    ("unknown constant tag", _wire([[9, 1]], [GOOD_FN]), "unknown value tag"),
    ("non-minimal bigint", _wire([[1, b"\x00\x01"]], [GOOD_FN]), "not canonical"),
    ("duplicate function", _wire([None], [GOOD_FN, GOOD_FN]), "defined twice"),
    ("bad function entry", _wire([None], [["main", 0, 0]]), "4-item array"),
    ("non-identifier name", _wire([None], [["no way", 0, 0, RET_NONE]]), "not an identifier"),
    ("locals below params", _wire([None], [["main", 2, 1, RET_NONE]]), "local count"),
    ("empty code", _wire([None], [["main", 0, 0, b""]]), "code must be"),
    ("string code", _wire([None], [["main", 0, 0, "code"]]), "code must be"),
]


@pytest.mark.parametrize(("what", "data", "fragment"), BAD_MODULES, ids=[b[0] for b in BAD_MODULES])
def test_decoder_rejects(what: str, data: bytes, fragment: str) -> None:
    with pytest.raises(BytecodeError) as info:
        decode_module(data)
    assert fragment in str(info.value), str(info.value)


def test_function_and_constant_count_limit_edges() -> None:
    fns = [[f"f{i}", 0, 0, RET_NONE] for i in range(MAX_FUNCTIONS)]
    decode_module(_wire([None], fns))
    with pytest.raises(BytecodeError, match="functions"):
        decode_module(_wire([None], [*fns, ["extra", 0, 0, RET_NONE]]))
    consts = list(range(MAX_CONSTANTS))
    decode_module(_wire(consts, [["main", 0, 0, ins(op.LOAD_CONST, 0) + ins(op.RETURN)]]))
    with pytest.raises(BytecodeError, match="constants"):
        decode_module(_wire([*consts, -1], [["main", 0, 0, RET_NONE]]))


def test_oversize_module_is_rejected_before_decoding() -> None:
    with pytest.raises(BytecodeError, match="not a canonical module"):
        decode_module(codec.encode(b"x" * MAX_MODULE_BYTES))


def test_in_memory_modules_get_the_same_structural_checks() -> None:
    for consts in (("\ud800",), (2**255,), ([1],)):
        with pytest.raises(BytecodeError):
            prepare(Module(consts, (Function("main", 0, 0, RET_NONE),)))
    with pytest.raises(BytecodeError, match="local count"):
        prepare(Module((None,), (Function("main", 2, 1, RET_NONE),)))
