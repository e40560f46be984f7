"""Run verified bytecode: an explicit frame stack, gas metering, limits, buffered effects.

The interpreter talks to the outside world only through the host object (see
:mod:`vm.host`). Storage writes and events are buffered during the call and
handed to the host only when the call succeeds; on any failure (out of gas, a
limit, ``require``, a run-time error) they are dropped and the result reports
the error and the gas used. Contract-level function calls use an explicit
frame list, never Python recursion, so call depth is bounded by
MAX_CALL_DEPTH alone. Only VMError subclasses ever leave :func:`execute`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from vm import opcodes as op
from vm.bytecode import Module, decode_module
from vm.errors import (
    CallError,
    ExecutionError,
    ExecutionFailure,
    HostError,
    HostUnavailable,
    IntegerOverflow,
    LimitExceeded,
    OutOfGas,
    Revert,
    VMError,
)
from vm.gas import (
    DEFAULT_GAS_LIMIT,
    GAS_ANCHOR_LOOKUP,
    GAS_CONTRACT_CALL,
    GAS_EMIT,
    GAS_HOST_QUERY,
    GAS_KEY_CHECK,
    GAS_MERGE,
    GAS_MODEL_LOOKUP,
    GAS_PER_BYTE_ALLOCATED,
    GAS_PER_BYTE_HASHED,
    GAS_PER_EVENT_BYTE,
    GAS_PER_ITEM_VISITED,
    GAS_PER_STORAGE_BYTE_READ,
    GAS_PER_STORAGE_BYTE_WRITTEN,
    GAS_SCORE,
    GAS_STORAGE_READ,
    GAS_STORAGE_WRITE,
    INSTRUCTION_GAS,
    INT_LIMIT,
    MAX_CALL_DEPTH,
    MAX_CONTAINER_ITEMS,
    MAX_EVENT_DATA_BYTES,
    MAX_EVENT_NAME_BYTES,
    MAX_EVENTS,
    MAX_GAS_LIMIT,
    MAX_MEMORY_BYTES,
    MAX_MERGE_MODELS,
    MAX_STORAGE_KEY_BYTES,
    MAX_STORAGE_VALUE_BYTES,
    MAX_STR_BYTES,
    MAX_VALUE_BYTES,
    OBJECT_OVERHEAD_BYTES,
    SCAN_BYTES_PER_GAS,
    SLOT_BYTES,
    SLOTS_MOVED_PER_GAS,
)
from vm.methods import METHODS
from vm.values import (
    SEQUENCE_TYPES,
    check_key,
    check_value,
    decode_value,
    encode_value,
    is_intlike,
    measure,
    type_name,
)
from vm.verifier import verify_module

_DONE = object()
"""Sentinel returned by next() when a loop iterator is exhausted."""


class _Unbound:
    """Marks a local slot not yet assigned (reading it is UnboundLocalError, as in CPython)."""

    __slots__ = ()


_UNBOUND = _Unbound()

_PY_ERRORS = (
    TypeError,
    ValueError,
    KeyError,
    IndexError,
    ZeroDivisionError,
    RuntimeError,
    OverflowError,
)
"""CPython exceptions a value operation can raise; each becomes an ExecutionError of that kind."""


@dataclass(frozen=True, slots=True)
class _Prepared:
    name: str
    n_params: int
    n_locals: int
    code: tuple[tuple[Any, int, int, int], ...]
    """(opcode, operand a, operand b, gas); jump operands are instruction indexes,
    LOAD_CONST operands the constant itself."""


@dataclass(frozen=True, slots=True)
class Program:
    """A verified module ready to run."""

    module: Module
    functions: tuple[_Prepared, ...]
    by_name: dict[str, int]

    def public_methods(self) -> list[str]:
        return [f.name for f in self.functions if not f.name.startswith("_")]


def prepare(module: Module) -> Program:
    """Verify ``module`` (VerifyError if it breaks a rule) and lay it out for the interpreter."""
    verified = verify_module(module)
    functions = []
    for vf in verified:
        index_of = {ins.offset: i for i, ins in enumerate(vf.instructions)}
        code = []
        for ins in vf.instructions:
            a = ins.operands[0] if ins.operands else 0
            b = ins.operands[1] if len(ins.operands) > 1 else 0
            if ins.op in op.JUMPS:
                a = index_of[a]
            elif ins.op == op.LOAD_CONST or ins.op == op.CALL_METHOD:
                a = module.constants[a]
            code.append((ins.op, a, b, INSTRUCTION_GAS[ins.op]))
        f = vf.function
        functions.append(_Prepared(f.name, f.n_params, f.n_locals, tuple(code)))
    by_name = {f.name: i for i, f in enumerate(functions)}
    return Program(module, tuple(functions), by_name)


def load(data: bytes) -> Program:
    """Decode and verify serialized bytecode (BytecodeError / VerifyError on bad input)."""
    return prepare(decode_module(data))


@dataclass
class Result:
    """Outcome of one call. ``error`` is None on success; effects are empty on failure."""

    value: Any = None
    events: list[tuple[str, Any]] = field(default_factory=list)
    writes: list[tuple[str, Any]] = field(default_factory=list)
    gas_used: int = 0
    error: VMError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _check_int(r: int) -> int:
    if -INT_LIMIT < r < INT_LIMIT:
        return r
    raise IntegerOverflow("integer overflow: |result| must be < 2**255")


class _Machine:
    def __init__(self, program: Program, host: Any, gas_limit: int, contract_depth: int) -> None:
        self.program = program
        self.host = host
        self.gas = gas_limit
        self.memory = 0
        self.contract_depth = contract_depth
        self.writes: dict[str, bytes | None] = {}
        self.events: list[tuple[str, bytes]] = []

    # -- metering -------------------------------------------------------------

    def charge(self, amount: int) -> None:
        self.gas -= amount
        if self.gas < 0:
            raise OutOfGas("out of gas")

    def alloc(self, nbytes: int) -> None:
        """Account ``nbytes`` about to be allocated: memory limit first, then gas."""
        nbytes += OBJECT_OVERHEAD_BYTES
        self.memory += nbytes
        if self.memory > MAX_MEMORY_BYTES:
            raise LimitExceeded(f"call allocated more than {MAX_MEMORY_BYTES} bytes")
        self.charge(nbytes * GAS_PER_BYTE_ALLOCATED)

    def alloc_str(self, length: int) -> None:
        if length > MAX_STR_BYTES:
            raise LimitExceeded(f"string of {length} exceeds {MAX_STR_BYTES}")
        self.alloc(max(length, 0))

    def alloc_items(self, count: int, slots: int = 1) -> None:
        if count > MAX_CONTAINER_ITEMS:
            raise LimitExceeded(f"container of {count} items exceeds {MAX_CONTAINER_ITEMS}")
        self.alloc(max(count, 0) * slots * SLOT_BYTES)

    def grow(self, new_len: int, new_slots: int) -> None:
        """Account a container growing in place to ``new_len`` items (``new_slots`` added)."""
        if new_len > MAX_CONTAINER_ITEMS:
            raise LimitExceeded(f"container of {new_len} items exceeds {MAX_CONTAINER_ITEMS}")
        self.alloc(new_slots * SLOT_BYTES)

    def visit(self, *values: Any) -> None:
        """Bound and charge for an operation that walks, compares, searches or hashes values.

        Containers cost GAS_PER_ITEM_VISITED per node; str and bytes data cost
        one unit per SCAN_BYTES_PER_GAS bytes, wherever they sit.
        """
        for v in values:
            t = type(v)
            if t is list or t is tuple or t is dict:
                nodes, nbytes = measure(v)
                self.charge(nodes * GAS_PER_ITEM_VISITED + nbytes // SCAN_BYTES_PER_GAS)
            elif t is str or t is bytes:
                self.charge(len(v) // SCAN_BYTES_PER_GAS)

    def lookup(self, k: Any) -> Any:
        """A key only looked up, never inserted: any value, bounded before CPython hashes it."""
        self.visit(k)
        return k

    def key(self, k: Any) -> Any:
        """A key about to be inserted in a dict: a scalar, its hashing paid for."""
        check_key(k)
        if type(k) is str or type(k) is bytes:
            self.charge(len(k) // SCAN_BYTES_PER_GAS)
        return k

    # -- the loop -------------------------------------------------------------

    def run(self, index: int, args: list[Any]) -> Any:
        fn = self.program.functions[index]
        functions = self.program.functions
        lcl: list[Any] = [*args, *([_UNBOUND] * (fn.n_locals - fn.n_params))]
        stack: list[Any] = []
        code = fn.code
        pc = 0
        frames: list[tuple[tuple[Any, ...], int, list[Any], list[Any]]] = []
        gas = self.gas
        push = stack.append
        pop = stack.pop
        # Opcode numbers as locals: the dispatch below compares against them
        # on every instruction, and local lookups are the cheapest.
        load_local, load_const, store_local = op.LOAD_LOCAL, op.LOAD_CONST, op.STORE_LOCAL
        jump, jump_if_false, jump_if_true = op.JUMP, op.JUMP_IF_FALSE, op.JUMP_IF_TRUE
        for_iter, add, sub, lt, iadd = op.FOR_ITER, op.ADD, op.SUB, op.LT, op.IADD
        pop_op, dup, call, ret, is_none = op.POP, op.DUP, op.CALL, op.RETURN, op.IS_NONE
        first_binary, last_compare = op.ADD, op.GE
        try:
            while True:
                opc, a, b, cost = code[pc]
                pc += 1
                gas -= cost
                if gas < 0:
                    raise OutOfGas("out of gas")
                if opc == load_local:
                    v = lcl[a]
                    if v is _UNBOUND:
                        raise ExecutionError(
                            "UnboundLocalError", f"local {a} used before assignment"
                        )
                    push(v)
                elif opc == load_const:
                    push(a)
                elif opc == store_local:
                    lcl[a] = pop()
                elif opc == jump:
                    pc = a
                elif opc == jump_if_false:
                    if not pop():
                        pc = a
                elif opc == jump_if_true:
                    if pop():
                        pc = a
                elif opc == for_iter:
                    v = next(stack[-1], _DONE)
                    if v is _DONE:
                        pop()
                        pc = a
                    else:
                        push(v)
                elif opc in (add, sub, lt, iadd):
                    y = pop()
                    x = pop()
                    if type(x) is int and type(y) is int:
                        if opc == lt:
                            push(x < y)
                        elif opc == sub:
                            r = x - y
                            if not -INT_LIMIT < r < INT_LIMIT:
                                raise IntegerOverflow("integer overflow: |result| must be < 2**255")
                            push(r)
                        else:
                            r = x + y
                            if not -INT_LIMIT < r < INT_LIMIT:
                                raise IntegerOverflow("integer overflow: |result| must be < 2**255")
                            push(r)
                    else:
                        self.gas = gas
                        push(self.binary(opc, x, y))
                        gas = self.gas
                elif opc == pop_op:
                    pop()
                elif opc == dup:
                    push(stack[-1])
                elif opc == call:
                    if len(frames) + 1 >= MAX_CALL_DEPTH:
                        raise LimitExceeded(f"call depth exceeds {MAX_CALL_DEPTH}")
                    callee = functions[a]
                    new_locals = stack[len(stack) - b :] if b else []
                    del stack[len(stack) - b :]
                    new_locals.extend([_UNBOUND] * (callee.n_locals - callee.n_params))
                    frames.append((code, pc, lcl, stack))
                    code = callee.code
                    pc = 0
                    lcl = new_locals
                    stack = []
                    push = stack.append
                    pop = stack.pop
                elif opc == ret:
                    v = pop()
                    if not frames:
                        self.gas = gas
                        return v
                    code, pc, lcl, stack = frames.pop()
                    push = stack.append
                    pop = stack.pop
                    push(v)
                elif opc == is_none:
                    push(pop() is None)
                elif first_binary <= opc <= last_compare:
                    y = pop()
                    x = pop()
                    self.gas = gas
                    push(self.binary(opc, x, y))
                    gas = self.gas
                else:
                    self.gas = gas
                    self.slow(opc, a, b, stack)
                    gas = self.gas
        except ExecutionFailure:
            self.gas = min(self.gas, gas)
            raise
        except _PY_ERRORS as exc:
            self.gas = min(self.gas, gas)
            raise ExecutionError(type(exc).__name__, str(exc)) from None

    # -- operators ------------------------------------------------------------

    def binary(self, opc: int, x: Any, y: Any) -> Any:
        if is_intlike(x) and is_intlike(y):
            return self.int_binary(opc, x, y)
        if opc == op.EQ or opc == op.NE:
            self.visit(x, y)
            return (x == y) if opc == op.EQ else (x != y)
        if op.LT <= opc <= op.GE:
            self.visit(x, y)
            if opc == op.LT:
                return x < y
            if opc == op.LE:
                return x <= y
            if opc == op.GT:
                return x > y
            return x >= y
        if opc == op.IN or opc == op.NOT_IN:
            return self.contains(x, y) if opc == op.IN else not self.contains(x, y)
        tx, ty = type(x), type(y)
        if opc in (op.ADD, op.IADD) and tx is ty and tx in (str, bytes, list, tuple):
            if tx is str or tx is bytes:
                self.alloc_str(len(x) + len(y))
                return x + y
            if opc == op.IADD and tx is list:
                self.grow(len(x) + len(y), len(y))
                x.extend(y)
                return x
            self.alloc_items(len(x) + len(y))
            return x + y
        if opc == op.IADD and tx is list and ty in SEQUENCE_TYPES:
            self.grow(len(x) + len(y), len(y))
            x.extend(y)
            return x
        if opc in (op.MUL, op.IMUL):
            seq, n = (x, y) if is_intlike(y) else (y, x)
            if is_intlike(n) and type(seq) in (str, bytes, list, tuple):
                count = len(seq) * max(int(n), 0)
                if type(seq) in (str, bytes):
                    self.alloc_str(count)
                else:
                    self.alloc_items(count)
                if opc == op.IMUL and type(x) is list:
                    x *= n
                    return x
                return x * y
        if opc == op.MOD and tx in (str, bytes):
            raise ExecutionError("TypeError", "%-formatting is not supported; use f-strings")
        symbol = _SYMBOLS.get(opc, "?")
        raise ExecutionError(
            "TypeError",
            f"unsupported operand types for {symbol}: '{type_name(x)}' and '{type_name(y)}'",
        )

    def int_binary(self, opc: int, x: int, y: int) -> Any:
        if opc in (op.ADD, op.IADD):
            return _check_int(x + y)
        if opc == op.SUB:
            return _check_int(x - y)
        if opc in (op.MUL, op.IMUL):
            return _check_int(x * y)
        if opc == op.FLOORDIV:
            return _check_int(x // y)
        if opc == op.MOD:
            return x % y
        if opc == op.POW:
            if y < 0:
                raise ExecutionError("ValueError", "negative exponents are not supported")
            base_bits = abs(int(x)).bit_length()
            if base_bits > 1 and (base_bits - 1) * y >= 256:
                raise IntegerOverflow("integer overflow in **")
            return _check_int(x**y)
        if opc == op.LSHIFT:
            if y < 0:
                raise ExecutionError("ValueError", "negative shift count")
            if x and y >= 256:
                raise IntegerOverflow("integer overflow in <<")
            return _check_int(x << y)
        if opc == op.RSHIFT:
            return x >> y
        # Bitwise results of in-range operands can leave the range (e.g.
        # -2 & -(2**255 - 1) == -2**255), so every one is checked.
        if opc == op.BITAND:
            return _check_int(x & y)
        if opc == op.BITOR:
            return _check_int(x | y)
        if opc == op.BITXOR:
            return _check_int(x ^ y)
        if opc == op.EQ:
            return x == y
        if opc == op.NE:
            return x != y
        if opc == op.LT:
            return x < y
        if opc == op.LE:
            return x <= y
        if opc == op.GT:
            return x > y
        if opc == op.GE:
            return x >= y
        if opc == op.IN or opc == op.NOT_IN:
            raise ExecutionError("TypeError", f"argument of type '{type_name(y)}' is not iterable")
        raise AssertionError(f"not a binary opcode: {opc}")  # pragma: no cover

    def contains(self, x: Any, y: Any) -> bool:
        ty = type(y)
        if ty is dict:
            return self.lookup(x) in y
        if ty is list or ty is tuple:
            self.visit(x, y)
            return x in y
        if ty is str or ty is bytes:
            self.visit(x, y)
            return x in y
        raise ExecutionError("TypeError", f"argument of type '{type_name(y)}' is not iterable")

    # -- everything else ------------------------------------------------------

    def slow(self, opc: int, a: Any, b: int, stack: list[Any]) -> None:
        push = stack.append
        pop = stack.pop
        if opc == op.DUP2:
            stack.extend(stack[-2:])
        elif opc == op.ROT2:
            stack[-1], stack[-2] = stack[-2], stack[-1]
        elif opc == op.ROT3:
            stack[-3], stack[-2], stack[-1] = stack[-1], stack[-3], stack[-2]
        elif opc == op.NEG or opc == op.POS or opc == op.INVERT:
            x = pop()
            if not is_intlike(x):
                raise ExecutionError(
                    "TypeError", f"bad operand type for unary op: '{type_name(x)}'"
                )
            push(_check_int(-x if opc == op.NEG else (+x if opc == op.POS else ~x)))
        elif opc == op.NOT:
            push(not pop())
        elif opc == op.IN or opc == op.NOT_IN:
            y = pop()
            x = pop()
            r = self.contains(x, y)
            push(r if opc == op.IN else not r)
        elif opc == op.GET_ITER:
            x = pop()
            t = type(x)
            if t is dict:
                self.alloc_items(0)
            elif t not in (list, tuple, str, bytes):
                raise ExecutionError("TypeError", f"'{type_name(x)}' object is not iterable")
            push(iter(x))
        elif opc == op.RANGE_ITER:
            args = stack[len(stack) - a :]
            del stack[len(stack) - a :]
            for v in args:
                if not is_intlike(v):
                    raise ExecutionError("TypeError", f"range() needs ints, not '{type_name(v)}'")
            push(iter(range(*args)))
        elif opc == op.BUILD_LIST or opc == op.BUILD_TUPLE:
            self.alloc_items(a)
            items = stack[len(stack) - a :] if a else []
            del stack[len(stack) - a :]
            push(items if opc == op.BUILD_LIST else tuple(items))
        elif opc == op.BUILD_DICT:
            self.alloc_items(a, 2)
            items = stack[len(stack) - 2 * a :] if a else []
            del stack[len(stack) - 2 * a :]
            d: dict[Any, Any] = {}
            for i in range(0, 2 * a, 2):
                d[self.key(items[i])] = items[i + 1]
            push(d)
        elif opc == op.BUILD_STRING:
            parts = stack[len(stack) - a :] if a else []
            del stack[len(stack) - a :]
            for p in parts:
                if type(p) is not str:
                    raise ExecutionError("TypeError", f"can only join str, not '{type_name(p)}'")
            self.alloc_str(sum(len(p) for p in parts))
            push("".join(parts))
        elif opc == op.UNPACK:
            x = pop()
            if type(x) not in SEQUENCE_TYPES:
                raise ExecutionError(
                    "TypeError", f"cannot unpack non-iterable {type_name(x)} object"
                )
            if len(x) != a:
                raise ExecutionError("ValueError", f"expected {a} values to unpack, got {len(x)}")
            items = list(x)
            items.reverse()
            stack.extend(items)
        elif opc == op.LOAD_SUBSCR:
            k = pop()
            c = pop()
            # Lookups are CPython's own; only a key's size is bounded first.
            push(c[self.lookup(k)])
        elif opc == op.STORE_SUBSCR:
            k = pop()
            c = pop()
            v = pop()
            if type(c) is dict:
                if self.key(k) not in c:
                    self.grow(len(c) + 1, 2)
                c[k] = v
            else:
                # Lists assign in place; every other type makes CPython raise its own error.
                c[self.lookup(k)] = v
        elif opc == op.DELETE_SUBSCR:
            k = pop()
            c = pop()
            if type(c) is list:
                self.charge(len(c) // SLOTS_MOVED_PER_GAS)
            del c[self.lookup(k)]
        elif opc == op.LOAD_SLICE:
            step = pop()
            stop = pop()
            start = pop()
            c = pop()
            if type(c) not in (list, tuple, str, bytes):
                raise ExecutionError("TypeError", f"'{type_name(c)}' object cannot be sliced")
            for part in (start, stop, step):
                if part is not None and not is_intlike(part):
                    raise ExecutionError("TypeError", "slice indices must be integers or None")
            s = slice(start, stop, step)
            n = len(range(len(c))[s])
            if type(c) in (str, bytes):
                self.alloc_str(n)
            else:
                self.alloc_items(n)
            push(c[s])
        elif opc == op.CALL_BUILTIN:
            args = stack[len(stack) - b :] if b else []
            del stack[len(stack) - b :]
            push(self.builtin(a, args))
        elif opc == op.CALL_METHOD:
            args = stack[len(stack) - b :] if b else []
            del stack[len(stack) - b :]
            recv = pop()
            impl = METHODS.get((type(recv), a))
            if impl is None:
                raise ExecutionError(
                    "AttributeError", f"'{type_name(recv)}' object has no method {a!r}"
                )
            push(impl(self, recv, *args))
        elif opc == op.CALL_HOST:
            args = stack[len(stack) - b :] if b else []
            del stack[len(stack) - b :]
            push(self.host_call(a, args))
        else:
            raise AssertionError(f"unhandled opcode {opc}")  # pragma: no cover - verifier

    # -- builtins -------------------------------------------------------------

    def builtin(self, ident: int, args: list[Any]) -> Any:
        name = op.BUILTIN_BY_ID[ident]
        if name == "len":
            x = args[0]
            if type(x) not in SEQUENCE_TYPES:
                raise ExecutionError("TypeError", f"object of type '{type_name(x)}' has no len()")
            return len(x)
        if name in ("min", "max"):
            if len(args) == 1:
                if type(args[0]) not in SEQUENCE_TYPES:
                    raise ExecutionError(
                        "TypeError", f"'{type_name(args[0])}' object is not iterable"
                    )
                if type(args[0]) in (str, bytes):
                    self.charge(len(args[0]) * GAS_PER_ITEM_VISITED)
            self.visit(*args)
            return min(*args) if name == "min" else max(*args)
        if name == "abs":
            if not is_intlike(args[0]):
                raise ExecutionError(
                    "TypeError", f"bad operand type for abs(): '{type_name(args[0])}'"
                )
            return abs(args[0])
        if name == "sorted":
            x = args[0]
            if type(x) not in SEQUENCE_TYPES:
                raise ExecutionError("TypeError", f"'{type_name(x)}' object is not iterable")
            self.visit(x)
            self.alloc_items(len(x))
            return sorted(x)
        if name == "sum":
            x = args[0]
            if type(x) not in SEQUENCE_TYPES:
                raise ExecutionError("TypeError", f"'{type_name(x)}' object is not iterable")
            self.charge(len(x) * GAS_PER_ITEM_VISITED)
            total: Any = 0
            for item in x:
                if not is_intlike(item):
                    raise ExecutionError(
                        "TypeError", f"sum() can only add ints, not '{type_name(item)}'"
                    )
                total = _check_int(total + item)
            return total
        if name == "str":
            return self.to_str(args[0]) if args else ""
        if name == "int":
            return self.to_int(args)
        if name == "bytes":
            return self.to_bytes(args[0]) if args else b""
        if name == "bool":
            return bool(args[0]) if args else False
        if name in ("list", "tuple"):
            if not args:
                self.alloc_items(0)
                return [] if name == "list" else ()
            x = args[0]
            if type(x) not in SEQUENCE_TYPES:
                raise ExecutionError("TypeError", f"'{type_name(x)}' object is not iterable")
            self.alloc_items(len(x))
            return list(x) if name == "list" else tuple(x)
        if name == "dict":
            return self.to_dict(args)
        if name == "sha256":
            data = args[0]
            if type(data) is not bytes:
                raise ExecutionError("TypeError", f"sha256() needs bytes, not '{type_name(data)}'")
            self.charge(len(data) * GAS_PER_BYTE_HASHED)
            self.alloc_str(32)
            return hashlib.sha256(data).digest()
        if name == "require":
            message = args[1] if len(args) > 1 else "requirement failed"
            if type(message) is not str:
                raise ExecutionError("TypeError", "require() message must be a str")
            if not args[0]:
                raise Revert(message)
            return None
        raise AssertionError(f"builtin {name} not implemented")  # pragma: no cover

    def to_str(self, x: Any) -> str:
        t = type(x)
        if t is str:
            return x
        if t is int or t is bool or x is None:
            s = str(x)
        else:
            # Bound the text before CPython builds it: every element is visited
            # (depth and count limits) and strings may expand 10x when escaped.
            self.visit(x)
            estimate = _repr_bound(x)
            if estimate > 10 * MAX_STR_BYTES:
                raise LimitExceeded(f"str() of this value would exceed {MAX_STR_BYTES}")
            s = str(x)
        self.alloc_str(len(s))
        return s

    def to_int(self, args: list[Any]) -> int:
        # CPython's int() on VM values allocates nothing but its result and
        # refuses strings over 4300 digits, so its errors are used as they are.
        self.visit(*args)
        return _check_int(int(*args))

    def to_bytes(self, x: Any) -> bytes:
        if is_intlike(x):
            if x < -(2**63):
                # CPython cannot even fit the count in a C ssize_t.
                message = "cannot fit 'int' into an index-sized integer"
                raise ExecutionError("OverflowError", message)
            if x < 0:
                raise ExecutionError("ValueError", "negative count")
            self.alloc_str(int(x))
            return bytes(int(x))
        if type(x) in SEQUENCE_TYPES:
            self.alloc_str(len(x))
        return bytes(x)  # CPython's own errors for str, None and bad items

    def to_dict(self, args: list[Any]) -> dict[Any, Any]:
        if not args:
            self.alloc_items(0)
            return {}
        x = args[0]
        if type(x) in SEQUENCE_TYPES:
            self.visit(x)
            self.alloc_items(len(x), 2)
        out = dict(x)
        for k in out:
            check_key(k)
        return out

    # -- the host -------------------------------------------------------------

    def storage_key(self, key: Any) -> str:
        if type(key) is not str:
            raise ExecutionError("TypeError", f"storage keys must be str, not '{type_name(key)}'")
        if len(key.encode("utf-8")) > MAX_STORAGE_KEY_BYTES:
            raise LimitExceeded(f"storage key longer than {MAX_STORAGE_KEY_BYTES} bytes")
        return key

    def host_call(self, ident: int, args: list[Any]) -> Any:
        name = op.HOST_BY_ID[ident]
        if name == "get":
            key = self.storage_key(args[0])
            self.charge(GAS_STORAGE_READ)
            if key in self.writes:
                data = self.writes[key]
            else:
                data = self.ask_host("get", key)
                if data is not None and type(data) is not bytes:
                    raise HostError("host returned a non-bytes storage value")
            if data is None:
                return args[1] if len(args) > 1 else None
            self.charge(len(data) * GAS_PER_STORAGE_BYTE_READ)
            self.alloc(len(data))
            try:
                return decode_value(data, MAX_STORAGE_VALUE_BYTES)
            except VMError as exc:
                raise HostError(f"stored value under {key!r} is corrupt: {exc}") from None
        if name == "put":
            key = self.storage_key(args[0])
            data = self.encode(args[1], MAX_STORAGE_VALUE_BYTES)
            self.charge(
                GAS_STORAGE_WRITE
                + GAS_PER_STORAGE_BYTE_WRITTEN * (len(key.encode("utf-8")) + len(data))
            )
            self.writes[key] = data
            return None
        if name == "delete":
            key = self.storage_key(args[0])
            self.charge(GAS_STORAGE_WRITE)
            self.writes[key] = None
            return None
        if name == "emit":
            ev_name = args[0]
            if type(ev_name) is not str:
                raise ExecutionError("TypeError", "event name must be a str")
            name_bytes = len(ev_name.encode("utf-8"))
            if name_bytes > MAX_EVENT_NAME_BYTES:
                raise LimitExceeded(f"event name longer than {MAX_EVENT_NAME_BYTES} bytes")
            if len(self.events) >= MAX_EVENTS:
                raise LimitExceeded(f"more than {MAX_EVENTS} events")
            data = self.encode(args[1], MAX_EVENT_DATA_BYTES)
            self.charge(GAS_EMIT + GAS_PER_EVENT_BYTE * (name_bytes + len(data)))
            self.events.append((ev_name, data))
            return None
        if name in ("caller", "caller_org", "height", "time", "members"):
            self.charge(GAS_HOST_QUERY)
            value = self.ask_host(name)
            self.accept(value)
            return value
        if name == "call":
            contract, method, call_args = args
            if type(contract) is not str or type(method) is not str:
                raise ExecutionError("TypeError", "ledger.call needs contract and method names")
            if type(call_args) not in (list, tuple):
                raise ExecutionError("TypeError", "ledger.call arguments must be a list")
            self.encode(list(call_args), MAX_VALUE_BYTES)
            self.charge(GAS_CONTRACT_CALL)
            try:
                outcome = self.ask_host(
                    "call", contract, method, list(call_args), self.gas, self.contract_depth
                )
            except ExecutionFailure as exc:
                # The callee's gas is spent even though its failure fails this call.
                self.gas -= min(max(exc.gas_used, 0), max(self.gas, 0))
                raise
            if type(outcome) is not tuple or len(outcome) != 2 or type(outcome[1]) is not int:
                raise HostError("host call must return (value, gas_used)")
            value, used = outcome
            self.charge(max(used, 0))
            self.accept(value)
            return value
        if name == "score":
            model, features = args
            if type(model) is not str or type(features) not in (list, tuple):
                raise ExecutionError("TypeError", "ledger.score needs a model name and a list")
            for f in features:
                if not is_intlike(f):
                    raise ExecutionError("TypeError", "features must be ints")
            self.charge(GAS_SCORE + len(features) * GAS_PER_ITEM_VISITED)
            value = self.ask_host("score", model, [int(f) for f in features])
            if type(value) is not int:
                raise HostError("host score must be an int")
            return _check_int(value)
        if name == "key_ok":
            key = args[0]
            if type(key) is not bytes:
                raise ExecutionError("TypeError", "ledger.key_ok needs bytes")
            self.charge(GAS_KEY_CHECK)
            value = self.ask_host("key_ok", key)
            if type(value) is not bool:
                raise HostError("host key_ok must return a bool")
            return value
        if name in ("anchor", "model"):
            digest = args[0]
            if type(digest) is not bytes or len(digest) != 32:
                raise ExecutionError("TypeError", f"ledger.{name} needs a 32-byte digest")
            self.charge(GAS_ANCHOR_LOOKUP if name == "anchor" else GAS_MODEL_LOOKUP)
            value = self.ask_host(name, digest)
            self.accept(value)
            return value
        if name == "merge_id":
            ids = args[0]
            if type(ids) not in (list, tuple) or not 2 <= len(ids) <= MAX_MERGE_MODELS:
                raise ExecutionError(
                    "TypeError", f"ledger.merge_id needs a list of 2..{MAX_MERGE_MODELS} model ids"
                )
            if any(type(i) is not bytes or len(i) != 32 for i in ids):
                raise ExecutionError("TypeError", "ledger.merge_id needs 32-byte model ids")
            self.charge(GAS_MERGE * len(ids))
            value = self.ask_host("merge_id", list(ids))
            if type(value) is not bytes or len(value) != 32:
                raise HostError("host merge_id must return a 32-byte id")
            return value
        raise AssertionError(f"host function {name} not implemented")  # pragma: no cover

    def ask_host(self, name: str, *args: Any) -> Any:
        """Call the host; its failures become HostError (VM errors pass through unchanged).

        A HostError names only the failing request and the exception's class:
        its text may differ between nodes and Python versions, and whatever a
        call fails with can end up in a receipt that every node must agree on.
        HostUnavailable passes through untouched (the embedder retries later).
        """
        try:
            return getattr(self.host, name)(*args)
        except (ExecutionFailure, HostUnavailable):
            raise
        except Exception as exc:  # the host is foreign code: name its failure, never leak it
            raise HostError(f"host {name} failed: {type(exc).__name__}") from None

    def accept(self, value: Any) -> None:
        """Check a value from the host and charge for it as an allocation."""
        try:
            check_value(value)
            data = encode_value(value, MAX_VALUE_BYTES)
        except VMError as exc:
            raise HostError(f"host returned a bad value: {exc}") from None
        self.alloc(len(data))

    def encode(self, value: Any, limit: int) -> bytes:
        self.visit(value)
        return encode_value(value, limit)


_SYMBOLS = {
    op.ADD: "+",
    op.IADD: "+=",
    op.SUB: "-",
    op.MUL: "*",
    op.IMUL: "*=",
    op.FLOORDIV: "//",
    op.MOD: "%",
    op.POW: "**",
    op.LSHIFT: "<<",
    op.RSHIFT: ">>",
    op.BITAND: "&",
    op.BITOR: "|",
    op.BITXOR: "^",
}


def _repr_bound(value: Any) -> int:
    """Upper bound of len(str(value)) for a value already bounded by ``visit``."""
    total = 0
    pending = [value]
    while pending:
        x = pending.pop()
        t = type(x)
        if t is str or t is bytes:
            total += 10 * len(x) + 3
        elif t is list or t is tuple:
            total += 2 + 2 * len(x) + 1
            pending.extend(x)
        elif t is dict:
            total += 2 + 4 * len(x)
            pending.extend(x.keys())
            pending.extend(x.values())
        else:
            total += 80
    return total


# -- entry point ----------------------------------------------------------------


def execute(
    program: Program,
    method: str,
    args: list[Any] | tuple[Any, ...],
    host: Any,
    *,
    gas_limit: int = DEFAULT_GAS_LIMIT,
    contract_depth: int = 0,
) -> Result:
    """Run public ``method`` with positional ``args`` against ``host``.

    Never raises: every failure is reported in ``Result.error`` (a VMError)
    with the gas used. On success the buffered writes and events are handed
    to the host (``put``/``delete``/``emit``) in the order they first happened.
    """
    if type(gas_limit) is not int or not 0 <= gas_limit <= MAX_GAS_LIMIT:
        return Result(error=CallError(f"gas limit must be 0..{MAX_GAS_LIMIT}"))
    if type(method) is not str:
        return Result(error=CallError("method name must be a str"))
    index = program.by_name.get(method)
    if index is None or method.startswith("_"):
        return Result(error=CallError(f"no public method {method!r}"))
    fn = program.functions[index]
    if type(args) not in (list, tuple) or len(args) != fn.n_params:
        n = len(args) if type(args) in (list, tuple) else "?"
        return Result(error=CallError(f"{method}() takes {fn.n_params} argument(s), {n} given"))
    machine = _Machine(program, host, gas_limit, contract_depth)
    try:
        try:
            check_value(list(args))
            own_args = decode_value(encode_value(list(args), MAX_VALUE_BYTES), MAX_VALUE_BYTES)
        except (ExecutionFailure, VMError) as exc:
            return Result(error=CallError(f"bad arguments: {exc}"))
        value = machine.run(index, own_args)
        data = machine.encode(value, MAX_VALUE_BYTES)
        result_value = decode_value(data, MAX_VALUE_BYTES)
        writes = [
            (k, None if d is None else decode_value(d, MAX_STORAGE_VALUE_BYTES))
            for k, d in machine.writes.items()
        ]
        events = [(n, decode_value(d, MAX_EVENT_DATA_BYTES)) for n, d in machine.events]
        for k, d in machine.writes.items():
            if d is None:
                machine.ask_host("delete", k)
            else:
                machine.ask_host("put", k, d)
        for n, d in machine.events:
            machine.ask_host("emit", n, d)
    except ExecutionFailure as exc:
        used = gas_limit if isinstance(exc, OutOfGas) else gas_limit - max(machine.gas, 0)
        exc.gas_used = used
        return Result(gas_used=used, error=exc)
    return Result(
        value=result_value,
        events=events,
        writes=writes,
        gas_used=gas_limit - machine.gas,
    )
