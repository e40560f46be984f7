"""Opcode numbers, operand counts and the builtin / host / method tables the compiler targets.

An instruction is one opcode byte followed by its operands, each an unsigned
16-bit big-endian integer. Jump operands are byte offsets inside the same
function. The tables here are the contract between compiler, verifier and
interpreter: the verifier accepts exactly these opcodes and ids.
"""

from __future__ import annotations

from typing import NamedTuple

OPERAND_BYTES = 2
"""Width of every operand (unsigned, big-endian)."""

MAX_OPERAND = 2 ** (8 * OPERAND_BYTES) - 1

# Stack and locals.
LOAD_CONST = 0x01
LOAD_LOCAL = 0x02
STORE_LOCAL = 0x03
POP = 0x04
DUP = 0x05
DUP2 = 0x06
ROT2 = 0x07
ROT3 = 0x08
# Binary operators: pop right, pop left, push result.
ADD = 0x10
SUB = 0x11
MUL = 0x12
FLOORDIV = 0x13
MOD = 0x14
POW = 0x15
LSHIFT = 0x16
RSHIFT = 0x17
BITAND = 0x18
BITOR = 0x19
BITXOR = 0x1A
IADD = 0x1B
IMUL = 0x1C
# Comparisons.
EQ = 0x20
NE = 0x21
LT = 0x22
LE = 0x23
GT = 0x24
GE = 0x25
IN = 0x26
NOT_IN = 0x27
IS_NONE = 0x28
# Unary operators.
NEG = 0x30
POS = 0x31
NOT = 0x32
INVERT = 0x33
# Control flow.
JUMP = 0x40
JUMP_IF_FALSE = 0x41
JUMP_IF_TRUE = 0x42
GET_ITER = 0x48
RANGE_ITER = 0x49
FOR_ITER = 0x4A
# Containers.
BUILD_LIST = 0x50
BUILD_TUPLE = 0x51
BUILD_DICT = 0x52
BUILD_STRING = 0x53
UNPACK = 0x54
LOAD_SUBSCR = 0x58
STORE_SUBSCR = 0x59
DELETE_SUBSCR = 0x5A
LOAD_SLICE = 0x5B
# Calls.
CALL = 0x60
CALL_BUILTIN = 0x61
CALL_METHOD = 0x62
CALL_HOST = 0x63
RETURN = 0x64

NAMES: dict[int, str] = {
    value: name
    for name, value in sorted(globals().items())
    if name.isupper() and type(value) is int and name not in ("OPERAND_BYTES", "MAX_OPERAND")
}
"""Opcode number -> name, for every known opcode."""

OPERAND_COUNT: dict[int, int] = {op: 0 for op in NAMES}
for _op in (LOAD_CONST, LOAD_LOCAL, STORE_LOCAL, JUMP, JUMP_IF_FALSE, JUMP_IF_TRUE):
    OPERAND_COUNT[_op] = 1
for _op in (RANGE_ITER, FOR_ITER, BUILD_LIST, BUILD_TUPLE, BUILD_DICT, BUILD_STRING, UNPACK):
    OPERAND_COUNT[_op] = 1
for _op in (CALL, CALL_BUILTIN, CALL_METHOD, CALL_HOST):
    OPERAND_COUNT[_op] = 2

JUMPS = frozenset((JUMP, JUMP_IF_FALSE, JUMP_IF_TRUE, FOR_ITER))
"""Opcodes whose first operand is a jump target (a byte offset in the function)."""

BINARY_OPS = frozenset(
    (
        ADD,
        SUB,
        MUL,
        FLOORDIV,
        MOD,
        POW,
        LSHIFT,
        RSHIFT,
        BITAND,
        BITOR,
        BITXOR,
        IADD,
        IMUL,
        EQ,
        NE,
        LT,
        LE,
        GT,
        GE,
        IN,
        NOT_IN,
    )
)
UNARY_OPS = frozenset((NEG, POS, NOT, INVERT, IS_NONE))


class Arity(NamedTuple):
    """How many arguments a builtin, host function or method takes (inclusive range)."""

    id: int
    min_args: int
    max_args: int


MAX_VARIADIC_ARGS = 16
"""Most arguments a variadic builtin (``min``/``max``) accepts in one call."""

BUILTINS: dict[str, Arity] = {
    "len": Arity(0, 1, 1),
    "min": Arity(1, 1, MAX_VARIADIC_ARGS),
    "max": Arity(2, 1, MAX_VARIADIC_ARGS),
    "abs": Arity(3, 1, 1),
    "sorted": Arity(4, 1, 1),
    "sum": Arity(5, 1, 1),
    "str": Arity(6, 0, 1),
    "int": Arity(7, 0, 2),
    "bytes": Arity(8, 0, 1),
    "bool": Arity(9, 0, 1),
    "list": Arity(10, 0, 1),
    "tuple": Arity(11, 0, 1),
    "dict": Arity(12, 0, 1),
    "sha256": Arity(13, 1, 1),
    "require": Arity(14, 1, 2),
}
"""Builtin functions callable by name (``range`` is special: only in ``for`` headers)."""

BUILTIN_BY_ID: dict[int, str] = {a.id: name for name, a in BUILTINS.items()}

HOST_FUNCTIONS: dict[str, Arity] = {
    "get": Arity(0, 1, 2),
    "put": Arity(1, 2, 2),
    "delete": Arity(2, 1, 1),
    "caller": Arity(3, 0, 0),
    "caller_org": Arity(4, 0, 0),
    "height": Arity(5, 0, 0),
    "time": Arity(6, 0, 0),
    "emit": Arity(7, 2, 2),
    "members": Arity(8, 0, 0),
    "call": Arity(9, 3, 3),
    "score": Arity(10, 2, 2),
    "key_ok": Arity(11, 1, 1),
    "anchor": Arity(12, 1, 1),
    "model": Arity(13, 1, 1),
    "merge_id": Arity(14, 1, 1),
}
"""Functions of the ``ledger`` object; each becomes one CALL_HOST instruction."""

HOST_BY_ID: dict[int, str] = {a.id: name for name, a in HOST_FUNCTIONS.items()}

METHODS: dict[str, tuple[int, int]] = {
    # list
    "append": (1, 1),
    "extend": (1, 1),
    "insert": (2, 2),
    "pop": (0, 2),
    "remove": (1, 1),
    "index": (1, 1),
    "count": (1, 1),
    "reverse": (0, 0),
    "sort": (0, 0),
    "copy": (0, 0),
    "clear": (0, 0),
    # dict
    "get": (1, 2),
    "keys": (0, 0),
    "values": (0, 0),
    "items": (0, 0),
    "setdefault": (1, 2),
    "update": (1, 1),
    # str / bytes
    "startswith": (1, 1),
    "endswith": (1, 1),
    "split": (0, 1),
    "join": (1, 1),
    "upper": (0, 0),
    "lower": (0, 0),
    "strip": (0, 0),
    "replace": (2, 2),
    "find": (1, 1),
    "isdigit": (0, 0),
    "encode": (0, 0),
    "decode": (0, 0),
    "hex": (0, 0),
}
"""Method names a contract may call on a value, with the union of their argument ranges.

Which receiver types support which method is decided at run time (as in
CPython); an unsupported pair fails with ``AttributeError``.
"""
