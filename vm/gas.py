"""Gas prices and every limit of the VM, each named once.

Gas is an integer budget given to each call. Every instruction costs its
entry in :data:`INSTRUCTION_GAS`; every byte the VM allocates costs
:data:`GAS_PER_BYTE_ALLOCATED` (charged *before* the allocation, so
``"x" * 10**9`` fails on gas or a size limit without allocating anything);
host calls cost a base price plus a price per byte read, written or emitted.
Changing any number here changes consensus results: it is part of the
protocol version.
"""

from __future__ import annotations

from vm import opcodes as op

# --- Gas -------------------------------------------------------------------

DEFAULT_GAS_LIMIT = 10_000_000
"""Gas given to a call when the caller does not say."""

MAX_GAS_LIMIT = 100_000_000
"""Largest gas budget a single call may be given."""

INSTRUCTION_GAS: dict[int, int] = {
    op.LOAD_CONST: 1,
    op.LOAD_LOCAL: 1,
    op.STORE_LOCAL: 1,
    op.POP: 1,
    op.DUP: 1,
    op.DUP2: 1,
    op.ROT2: 1,
    op.ROT3: 1,
    op.ADD: 3,
    op.SUB: 3,
    op.MUL: 5,
    op.FLOORDIV: 5,
    op.MOD: 5,
    op.POW: 10,
    op.LSHIFT: 3,
    op.RSHIFT: 3,
    op.BITAND: 3,
    op.BITOR: 3,
    op.BITXOR: 3,
    op.IADD: 3,
    op.IMUL: 5,
    op.EQ: 3,
    op.NE: 3,
    op.LT: 3,
    op.LE: 3,
    op.GT: 3,
    op.GE: 3,
    op.IN: 5,
    op.NOT_IN: 5,
    op.IS_NONE: 2,
    op.NEG: 2,
    op.POS: 2,
    op.NOT: 2,
    op.INVERT: 2,
    op.JUMP: 1,
    op.JUMP_IF_FALSE: 2,
    op.JUMP_IF_TRUE: 2,
    op.GET_ITER: 3,
    op.RANGE_ITER: 3,
    op.FOR_ITER: 2,
    op.BUILD_LIST: 3,
    op.BUILD_TUPLE: 3,
    op.BUILD_DICT: 5,
    op.BUILD_STRING: 3,
    op.UNPACK: 3,
    op.LOAD_SUBSCR: 3,
    op.STORE_SUBSCR: 5,
    op.DELETE_SUBSCR: 5,
    op.LOAD_SLICE: 5,
    op.CALL: 20,
    op.CALL_BUILTIN: 5,
    op.CALL_METHOD: 5,
    op.CALL_HOST: 10,
    op.RETURN: 2,
}
"""THE gas table: price of each opcode, charged when the instruction starts."""

assert set(INSTRUCTION_GAS) == set(op.NAMES), "every opcode needs a price"

GAS_PER_BYTE_ALLOCATED = 1
"""Price of each byte of a new string, byte string or container (see ``values.alloc_size``)."""

GAS_PER_ITEM_VISITED = 1
"""Price of each element visited when comparing, hashing, sorting or printing containers."""

SCAN_BYTES_PER_GAS = 16
"""Bytes of str/bytes data compared, searched or hashed for one unit of gas."""

SLOTS_MOVED_PER_GAS = 64
"""List slots shifted by insert/pop/remove/del in the middle of a list, per unit of gas."""

GAS_PER_BYTE_HASHED = 1
"""Price of each byte fed to ``sha256`` (on top of the call's instruction price)."""

GAS_STORAGE_READ = 100
"""Base price of ``ledger.get``."""

GAS_PER_STORAGE_BYTE_READ = 1
"""Price per byte of the stored value ``ledger.get`` returns."""

GAS_STORAGE_WRITE = 500
"""Base price of ``ledger.put`` and ``ledger.delete``."""

GAS_PER_STORAGE_BYTE_WRITTEN = 20
"""Price per byte of key plus encoded value written by ``ledger.put``."""

GAS_EMIT = 200
"""Base price of ``ledger.emit``."""

GAS_PER_EVENT_BYTE = 5
"""Price per byte of an event's name plus encoded data."""

GAS_HOST_QUERY = 20
"""Price of the host queries (caller, caller_org, height, time, members)."""

GAS_SCORE = 5_000
"""Base price of ``ledger.score`` (the host runs a model)."""
GAS_KEY_CHECK = 2_000
"""Price of ``ledger.key_ok``: the host decodes a curve point and multiplies it by 8."""
GAS_ANCHOR_LOOKUP = 300
"""Price of ``ledger.anchor``: one state read and a client lookup."""
GAS_MODEL_LOOKUP = 5_000
"""Price of ``ledger.model``: the host loads (or finds loaded) a model artifact."""
GAS_MERGE = 50_000
"""Price of ``ledger.merge_id`` per model merged: the host merges and encodes the forests."""
MAX_MERGE_MODELS = 32
"""Models one ``ledger.merge_id`` merges (a federated round has at most one per member)."""

GAS_CONTRACT_CALL = 1_000
"""Base price of ``ledger.call``; the callee's own gas use is added to it."""

# --- Limits ----------------------------------------------------------------

INT_LIMIT = 2**255
"""Integers must satisfy ``-INT_LIMIT < x < INT_LIMIT``; any result outside is an overflow."""

MAX_STR_BYTES = 1 << 20
"""Longest string (in characters) or byte string (in bytes) a contract can build."""

MAX_CONTAINER_ITEMS = 1 << 16
"""Most elements in one list or tuple, or entries in one dict."""

MAX_NESTING_DEPTH = 16
"""Deepest nesting of containers that may be compared, printed, stored, emitted or returned."""

MAX_VISIT_ITEMS = 1 << 17
"""Most elements one comparison, conversion or encoding may visit (shared parts count each time)."""

MAX_MEMORY_BYTES = 32 << 20
"""Most bytes one call may allocate in total (allocations are counted, never released)."""

MAX_STACK_HEIGHT = 256
"""Highest operand stack one function may need; checked by the verifier."""

MAX_CALL_DEPTH = 64
"""Most nested function frames inside one contract call."""

MAX_CONTRACT_CALL_DEPTH = 8
"""Most nested ``ledger.call`` levels (the outermost call is level 0)."""

MAX_STORAGE_KEY_BYTES = 256
"""Longest storage key, in UTF-8 bytes."""

MAX_STORAGE_VALUE_BYTES = 64 << 10
"""Longest encoded storage value."""

MAX_EVENTS = 64
"""Most events one call may emit."""

MAX_EVENT_NAME_BYTES = 64
"""Longest event name, in UTF-8 bytes."""

MAX_EVENT_DATA_BYTES = 4 << 10
"""Longest encoded event payload."""

MAX_VALUE_BYTES = 64 << 10
"""Longest encoded argument list or return value of a call."""

MAX_MESSAGE_CHARS = 256
"""Revert messages and run-time error details are cut to this many characters."""

# --- Module and compiler limits ---------------------------------------------

MAX_SOURCE_BYTES = 256 << 10
"""Longest contract source file."""

MAX_MODULE_BYTES = 256 << 10
"""Longest serialized bytecode module."""

MAX_FUNCTIONS = 256
"""Most functions in one module."""

MAX_CONSTANTS = 4096
"""Most entries in a module's constants pool."""

MAX_CODE_BYTES = op.MAX_OPERAND
"""Longest code of one function (jump offsets are 16-bit)."""

MAX_LOCALS = 256
"""Most local variable slots (parameters included) of one function."""

MAX_PARAMS = 16
"""Most parameters of one function."""

MAX_NAME_BYTES = 64
"""Longest function name."""

MAX_BUILD_ITEMS = 256
"""Most items one display (``[...]``, ``(...)``, ``{...}``, f-string) may list literally."""

MAX_EXPR_DEPTH = 48
"""Deepest nesting of expressions and statements in source."""

# --- Allocation accounting ---------------------------------------------------

OBJECT_OVERHEAD_BYTES = 16
"""Bytes counted for every new string, byte string or container on top of its contents."""

SLOT_BYTES = 8
"""Bytes counted per element of a new list or tuple (two per dict entry)."""
