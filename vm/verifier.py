"""Static checks run on bytecode before it is stored or executed.

Rules, per function:

1. every opcode is known and every operand is complete;
2. every constant, local, function, builtin, host-function and method index
   refers to something that exists (method names must be string constants of
   known methods);
3. every jump target is the offset of an instruction of the same function;
4. calls pass the callee's exact parameter count, builtins/host functions/methods
   an argument count within their range, displays at most MAX_BUILD_ITEMS items;
5. the operand stack has the same height and the same kinds (value or loop
   iterator) on every path into an instruction, never underflows, never exceeds
   MAX_STACK_HEIGHT, and iterators are only consumed by FOR_ITER or POP;
6. no path runs off the end of the code (every path ends in RETURN).

Code that passes cannot make the interpreter index outside its stack, locals
or tables; what remains (types of values, sizes, gas) is checked at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

from vm import opcodes as op
from vm.bytecode import Function, Instruction, Module, check_shape, decode_code
from vm.errors import VerifyError
from vm.gas import MAX_BUILD_ITEMS, MAX_STACK_HEIGHT

VALUE = 0
ITER = 1


@dataclass(frozen=True, slots=True)
class VerifiedFunction:
    function: Function
    instructions: tuple[Instruction, ...]
    max_stack: int


def verify_module(module: Module) -> tuple[VerifiedFunction, ...]:
    """Check every function of ``module``; raise VerifyError naming the first broken rule.

    Structural limits are checked first (BytecodeError), since modules can also
    be built in memory rather than decoded.
    """
    check_shape(module)
    return tuple(_verify_function(module, f) for f in module.functions)


def _fail(f: Function, ins: Instruction | None, message: str) -> VerifyError:
    where = f"{f.name}" if ins is None else f"{f.name}@{ins.offset} {op.NAMES[ins.op]}"
    return VerifyError(f"{where}: {message}")


def _check_operands(module: Module, f: Function, ins: Instruction, offsets: dict[int, int]) -> None:
    o = ins.op
    a = ins.operands[0] if ins.operands else 0
    b = ins.operands[1] if len(ins.operands) > 1 else 0
    if o in op.JUMPS and a not in offsets:
        raise _fail(f, ins, f"jump target {a} is not an instruction boundary")
    if o == op.LOAD_CONST and a >= len(module.constants):
        raise _fail(f, ins, f"constant {a} does not exist")
    if o in (op.LOAD_LOCAL, op.STORE_LOCAL) and a >= f.n_locals:
        raise _fail(f, ins, f"local {a} does not exist")
    if o in (op.BUILD_LIST, op.BUILD_TUPLE, op.BUILD_DICT, op.BUILD_STRING) and a > MAX_BUILD_ITEMS:
        raise _fail(f, ins, f"builds {a} items, limit is {MAX_BUILD_ITEMS}")
    if o == op.UNPACK and not 1 <= a <= MAX_BUILD_ITEMS:
        raise _fail(f, ins, f"unpacks {a} items, must be 1..{MAX_BUILD_ITEMS}")
    if o == op.RANGE_ITER and not 1 <= a <= 3:
        raise _fail(f, ins, "range takes 1 to 3 arguments")
    if o == op.CALL:
        if a >= len(module.functions):
            raise _fail(f, ins, f"function {a} does not exist")
        want = module.functions[a].n_params
        if b != want:
            raise _fail(f, ins, f"{module.functions[a].name} takes {want} argument(s), {b} given")
    if o == op.CALL_BUILTIN:
        name = op.BUILTIN_BY_ID.get(a)
        if name is None:
            raise _fail(f, ins, f"builtin {a} does not exist")
        arity = op.BUILTINS[name]
        if not arity.min_args <= b <= arity.max_args:
            raise _fail(f, ins, f"{name} given {b} argument(s)")
    if o == op.CALL_HOST:
        name = op.HOST_BY_ID.get(a)
        if name is None:
            raise _fail(f, ins, f"host function {a} does not exist")
        arity = op.HOST_FUNCTIONS[name]
        if not arity.min_args <= b <= arity.max_args:
            raise _fail(f, ins, f"ledger.{name} given {b} argument(s)")
    if o == op.CALL_METHOD:
        if a >= len(module.constants) or type(module.constants[a]) is not str:
            raise _fail(f, ins, f"method name constant {a} is not a string")
        bounds = op.METHODS.get(module.constants[a])
        if bounds is None:
            raise _fail(f, ins, f"unknown method {module.constants[a]!r}")
        if not bounds[0] <= b <= bounds[1]:
            raise _fail(f, ins, f".{module.constants[a]} given {b} argument(s)")


def _effect(ins: Instruction) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(kinds popped, top of stack last; kinds pushed) for a non-branching instruction."""
    o = ins.op
    a = ins.operands[0] if ins.operands else 0
    b = ins.operands[1] if len(ins.operands) > 1 else 0
    v = (VALUE,)
    if o in (op.LOAD_CONST, op.LOAD_LOCAL):
        return (), v
    if o == op.STORE_LOCAL:
        return v, ()
    if o == op.DUP:
        return v, v * 2
    if o == op.DUP2:
        return v * 2, v * 4
    if o == op.ROT2:
        return v * 2, v * 2
    if o == op.ROT3:
        return v * 3, v * 3
    if o in op.BINARY_OPS:
        return v * 2, v
    if o in op.UNARY_OPS:
        return v, v
    if o == op.JUMP:
        return (), ()
    if o in (op.JUMP_IF_FALSE, op.JUMP_IF_TRUE):
        return v, ()
    if o == op.GET_ITER:
        return v, (ITER,)
    if o == op.RANGE_ITER:
        return v * a, (ITER,)
    if o in (op.BUILD_LIST, op.BUILD_TUPLE, op.BUILD_STRING):
        return v * a, v
    if o == op.BUILD_DICT:
        return v * (2 * a), v
    if o == op.UNPACK:
        return v, v * a
    if o == op.LOAD_SUBSCR:
        return v * 2, v
    if o == op.STORE_SUBSCR:
        return v * 3, ()
    if o == op.DELETE_SUBSCR:
        return v * 2, ()
    if o == op.LOAD_SLICE:
        return v * 4, v
    if o in (op.CALL, op.CALL_BUILTIN, op.CALL_HOST):
        return v * b, v
    if o == op.CALL_METHOD:
        return v * (b + 1), v
    if o == op.RETURN:
        return v, ()
    raise AssertionError(f"no stack effect for {op.NAMES[o]}")  # POP and FOR_ITER are special


def _verify_function(module: Module, f: Function) -> VerifiedFunction:
    instructions = decode_code(f.code)
    offsets = {ins.offset: i for i, ins in enumerate(instructions)}
    for ins in instructions:
        _check_operands(module, f, ins, offsets)
    states: list[tuple[int, ...] | None] = [None] * len(instructions)
    states[0] = ()
    work = [0]
    max_stack = 0

    def flow(target: int, state: tuple[int, ...], ins: Instruction) -> None:
        if target >= len(instructions):
            raise _fail(f, ins, "execution can run past the end of the code")
        if len(state) > MAX_STACK_HEIGHT:
            raise _fail(f, ins, f"stack height {len(state)} exceeds {MAX_STACK_HEIGHT}")
        seen = states[target]
        if seen is None:
            states[target] = state
            work.append(target)
        elif seen != state:
            raise _fail(
                f,
                instructions[target],
                f"stack differs between paths ({len(seen)} vs {len(state)})",
            )

    # Each instruction is queued only when its state is first set, so the loop
    # runs at most len(instructions) times.
    while work:
        i = work.pop()
        ins = instructions[i]
        state = states[i]
        assert state is not None
        max_stack = max(max_stack, len(state))
        o = ins.op
        if o == op.POP:
            if not state:
                raise _fail(f, ins, "stack underflow")
            flow(i + 1, state[:-1], ins)
            continue
        if o == op.FOR_ITER:
            if not state or state[-1] != ITER:
                raise _fail(f, ins, "FOR_ITER needs a loop iterator on top of the stack")
            flow(i + 1, (*state, VALUE), ins)
            flow(offsets[ins.operands[0]], state[:-1], ins)
            continue
        pops, pushes = _effect(ins)
        n = len(pops)
        if len(state) < n:
            raise _fail(f, ins, "stack underflow")
        if n and state[len(state) - n :] != pops:
            raise _fail(f, ins, "a loop iterator is used as a value")
        after = state[: len(state) - n] + pushes
        if o == op.RETURN:
            continue
        if o == op.JUMP:
            flow(offsets[ins.operands[0]], after, ins)
            continue
        if o in (op.JUMP_IF_FALSE, op.JUMP_IF_TRUE):
            flow(offsets[ins.operands[0]], after, ins)
        flow(i + 1, after, ins)
    return VerifiedFunction(f, tuple(instructions), max_stack)
