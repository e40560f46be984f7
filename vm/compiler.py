"""Compile a contract (a strict subset of Python) from its ``ast`` to a bytecode Module.

The accepted language: module-level ``def`` statements (no decorators,
defaults, ``*args`` or keyword-only parameters), module-level constants
(``NAME = <literal>``) and docstrings. Inside functions: assignment (plain,
augmented, subscript, tuple unpacking), ``if``/``elif``/``else``, ``while``,
``for`` over ``range(...)`` or a value, ``break``, ``continue``, ``return``,
``del x[k]``, ``pass``, expression statements; expressions over literals,
locals, operators, ``and``/``or``/``not``, conditional expressions,
single comparisons, ``is None``, subscripts and slices, list/tuple/dict
displays, f-strings without format specs, and calls of contract functions,
builtins, ``ledger.<function>(...)`` and allowed methods. Everything else is
rejected with a :class:`CompileError` naming file, line and column (1-based).

Output is deterministic: constants are numbered in order of first use and
locals in order of first appearance, so the same source gives the same bytes.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from vm import opcodes as op
from vm.bytecode import Function, Module, encode_instruction, encode_module
from vm.errors import BytecodeError, CompileError
from vm.gas import (
    INT_LIMIT,
    MAX_BUILD_ITEMS,
    MAX_CODE_BYTES,
    MAX_CONSTANTS,
    MAX_EXPR_DEPTH,
    MAX_FUNCTIONS,
    MAX_LOCALS,
    MAX_NAME_BYTES,
    MAX_PARAMS,
    MAX_SOURCE_BYTES,
)
from vm.verifier import verify_module

HOST_NAME = "ledger"
"""The name under which contract source reaches the host."""

RESERVED_NAMES = frozenset(op.BUILTINS) | {HOST_NAME, "range", "True", "False", "None"}

_BINOPS: dict[type[ast.operator], int] = {
    ast.Add: op.ADD,
    ast.Sub: op.SUB,
    ast.Mult: op.MUL,
    ast.FloorDiv: op.FLOORDIV,
    ast.Mod: op.MOD,
    ast.Pow: op.POW,
    ast.LShift: op.LSHIFT,
    ast.RShift: op.RSHIFT,
    ast.BitAnd: op.BITAND,
    ast.BitOr: op.BITOR,
    ast.BitXor: op.BITXOR,
}
_INPLACE = {op.ADD: op.IADD, op.MUL: op.IMUL}
_CMPOPS: dict[type[ast.cmpop], int] = {
    ast.Eq: op.EQ,
    ast.NotEq: op.NE,
    ast.Lt: op.LT,
    ast.LtE: op.LE,
    ast.Gt: op.GT,
    ast.GtE: op.GE,
    ast.In: op.IN,
    ast.NotIn: op.NOT_IN,
}
_UNARY: dict[type[ast.unaryop], int] = {
    ast.USub: op.NEG,
    ast.UAdd: op.POS,
    ast.Not: op.NOT,
    ast.Invert: op.INVERT,
}
_UNSUPPORTED: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda expressions are not supported",
    ast.ClassDef: "classes are not supported",
    ast.Import: "imports are not supported",
    ast.ImportFrom: "imports are not supported",
    ast.Try: "try statements are not supported (use require)",
    ast.Raise: "raise is not supported (use require)",
    ast.With: "with statements are not supported",
    ast.Global: "global is not supported",
    ast.Nonlocal: "nonlocal is not supported",
    ast.ListComp: "list comprehensions are not supported (use a for loop)",
    ast.SetComp: "set comprehensions are not supported",
    ast.DictComp: "dict comprehensions are not supported (use a for loop)",
    ast.GeneratorExp: "generators are not supported",
    ast.Yield: "generators are not supported",
    ast.YieldFrom: "generators are not supported",
    ast.Await: "async code is not supported",
    ast.AsyncFunctionDef: "async functions are not supported",
    ast.AsyncFor: "async code is not supported",
    ast.AsyncWith: "async code is not supported",
    ast.Set: "sets are not supported",
    ast.Starred: "starred expressions are not supported",
    ast.NamedExpr: "the := operator is not supported",
    ast.Assert: 'assert is not supported (use require(cond, "message"))',
    ast.FunctionDef: "nested functions are not supported",
    ast.Match: "match statements are not supported",
    ast.Attribute: "attribute access is only allowed in calls (ledger.f(...), x.method(...))",
}


@dataclass
class _Loop:
    start: int
    end: int
    has_iterator: bool


@dataclass
class _FunctionInfo:
    index: int
    n_params: int


@dataclass
class _Code:
    """Instructions of one function with symbolic labels, assembled at the end."""

    items: list[tuple[int, list[int], int | None]] = field(default_factory=list)
    labels: list[int | None] = field(default_factory=list)

    def new_label(self) -> int:
        self.labels.append(None)
        return len(self.labels) - 1

    def place(self, label: int) -> None:
        self.labels[label] = len(self.items)

    def emit(self, opcode: int, *operands: int, jump: int | None = None) -> None:
        self.items.append((opcode, list(operands), jump))

    def assemble(self) -> bytes:
        offsets = []
        pc = 0
        for opcode, _operands, _jump in self.items:
            offsets.append(pc)
            pc += 1 + op.OPERAND_BYTES * op.OPERAND_COUNT[opcode]
        offsets.append(pc)
        out = bytearray()
        for opcode, operands, jump in self.items:
            if jump is not None:
                target = self.labels[jump]
                assert target is not None, "label never placed"
                operands = [offsets[target], *operands]
            out += encode_instruction(opcode, *operands)
        return bytes(out)


class _Compiler:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.constants: list[Any] = []
        self.const_index: dict[tuple[str, Any], int] = {}
        self.module_constants: dict[str, ast.expr] = {}
        self.functions: dict[str, _FunctionInfo] = {}

    # -- errors and constants -------------------------------------------------

    def error(self, node: ast.AST | None, message: str) -> CompileError:
        line = getattr(node, "lineno", 1) or 1
        col = (getattr(node, "col_offset", 0) or 0) + 1
        return CompileError(self.filename, line, col, message)

    def const(self, value: Any, node: ast.AST) -> int:
        key = (type(value).__name__, value)
        index = self.const_index.get(key)
        if index is None:
            if type(value) is str and not _is_utf8(value):
                raise self.error(node, "string literal cannot be encoded as UTF-8")
            if len(self.constants) >= MAX_CONSTANTS:
                raise self.error(node, f"more than {MAX_CONSTANTS} constants")
            index = len(self.constants)
            self.constants.append(value)
            self.const_index[key] = index
        return index

    def literal(self, node: ast.expr) -> Any:
        """The value of a literal constant expression (module constants, int literals)."""
        if isinstance(node, ast.Constant):
            v = node.value
            if v is None or type(v) in (bool, str, bytes):
                return v
            if type(v) is int:
                if not -INT_LIMIT < v < INT_LIMIT:
                    raise self.error(node, "integer literal out of range (|x| must be < 2**255)")
                return v
            if type(v) is float:
                raise self.error(node, "floats are not supported")
            raise self.error(node, f"{type(v).__name__} literals are not supported")
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
            and type(node.operand.value) is int
        ):
            return -self.literal(node.operand)
        raise self.error(node, "module-level constants must be literals")

    # -- module ---------------------------------------------------------------

    def compile_module(self, tree: ast.Module) -> Module:
        defs: list[ast.FunctionDef] = []
        for i, stmt in enumerate(tree.body):
            if isinstance(stmt, ast.FunctionDef):
                self.check_def(stmt)
                if stmt.name in self.functions:
                    raise self.error(stmt, f"function {stmt.name!r} is defined twice")
                if len(self.functions) >= MAX_FUNCTIONS:
                    raise self.error(stmt, f"more than {MAX_FUNCTIONS} functions")
                self.functions[stmt.name] = _FunctionInfo(len(defs), len(stmt.args.args))
                defs.append(stmt)
            elif isinstance(stmt, ast.Assign):
                if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
                    raise self.error(stmt, "module-level assignment must be NAME = literal")
                self.define_constant(stmt.targets[0], stmt.value)
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                if not isinstance(stmt.target, ast.Name):
                    raise self.error(stmt, "module-level assignment must be NAME = literal")
                self.define_constant(stmt.target, stmt.value)
            elif (
                i == 0
                and isinstance(stmt, ast.Expr)
                and isinstance(stmt.value, ast.Constant)
                and type(stmt.value.value) is str
            ):
                continue
            else:
                raise self.error(stmt, self.unsupported(stmt, "at module level"))
        if not defs:
            raise self.error(tree, "a contract needs at least one function")
        for name in self.module_constants:
            if name in self.functions:
                raise self.error(
                    self.module_constants[name], f"{name!r} is both constant and function"
                )
        # Each function is compiled even after another failed, so an author
        # sees the first error of every function at once.
        functions = []
        errors: list[CompileError] = []
        for d in defs:
            try:
                functions.append(self.compile_function(d))
            except CompileError as exc:
                errors.append(exc)
        if errors:
            first = errors[0]
            first.errors = errors
            raise first
        return Module(tuple(self.constants), tuple(functions))

    def define_constant(self, target: ast.Name, value: ast.expr) -> None:
        name = target.id
        if name in RESERVED_NAMES:
            raise self.error(target, f"cannot assign to reserved name {name!r}")
        if name in self.module_constants:
            raise self.error(target, f"constant {name!r} is defined twice")
        self.literal(value)
        self.module_constants[name] = value

    def check_def(self, node: ast.FunctionDef) -> None:
        a = node.args
        if node.decorator_list:
            raise self.error(node.decorator_list[0], "decorators are not supported")
        if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs:
            raise self.error(node, "only plain positional parameters are supported")
        if a.defaults:
            raise self.error(a.defaults[0], "default parameter values are not supported")
        if len(a.args) > MAX_PARAMS:
            raise self.error(node, f"more than {MAX_PARAMS} parameters")
        if node.name in RESERVED_NAMES:
            raise self.error(node, f"cannot define reserved name {node.name!r}")
        if len(node.name.encode()) > MAX_NAME_BYTES:
            raise self.error(node, f"function name longer than {MAX_NAME_BYTES} bytes")
        seen = set()
        for arg in a.args:
            if arg.arg in seen:
                raise self.error(arg, f"duplicate parameter {arg.arg!r}")
            seen.add(arg.arg)

    def unsupported(self, node: ast.AST, where: str = "") -> str:
        msg = _UNSUPPORTED.get(type(node))
        if msg is None:
            msg = f"{type(node).__name__} is not supported"
            if where:
                msg += f" {where}"
        return msg

    # -- functions ------------------------------------------------------------

    def compile_function(self, node: ast.FunctionDef) -> Function:
        fc = _FunctionCompiler(self, node)
        return fc.compile()


class _FunctionCompiler:
    def __init__(self, module: _Compiler, node: ast.FunctionDef) -> None:
        self.m = module
        self.node = node
        self.code = _Code()
        self.locals: dict[str, int] = {}
        self.loops: list[_Loop] = []
        self.depth = 0
        for arg in node.args.args:
            self.declare(arg.arg, arg)
        self.collect_locals(node.body)

    def error(self, node: ast.AST, message: str) -> CompileError:
        return self.m.error(node, message)

    def declare(self, name: str, node: ast.AST) -> None:
        if name in RESERVED_NAMES:
            raise self.error(node, f"cannot assign to reserved name {name!r}")
        if name in self.m.functions:
            raise self.error(node, f"cannot assign to function name {name!r}")
        if name in self.m.module_constants:
            raise self.error(node, f"cannot assign to module constant {name!r}")
        if name not in self.locals:
            if len(self.locals) >= MAX_LOCALS:
                raise self.error(node, f"more than {MAX_LOCALS} local variables")
            self.locals[name] = len(self.locals)

    def collect_locals(self, body: list[ast.stmt]) -> None:
        """Every name bound anywhere in the function is local (as in CPython)."""
        for stmt in body:
            for node in _walk_in_order(stmt):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    self.declare(node.id, node)

    def compile(self) -> Function:
        for stmt in self.node.body:
            self.stmt(stmt)
        self.code.emit(op.LOAD_CONST, self.m.const(None, self.node))
        self.code.emit(op.RETURN)
        code = self.code.assemble()
        if len(code) > MAX_CODE_BYTES:
            raise self.error(self.node, f"function code exceeds {MAX_CODE_BYTES} bytes")
        return Function(self.node.name, len(self.node.args.args), len(self.locals), code)

    # -- statements -----------------------------------------------------------

    def enter(self, node: ast.AST) -> None:
        self.depth += 1
        if self.depth > MAX_EXPR_DEPTH:
            raise self.error(node, f"nested deeper than {MAX_EXPR_DEPTH} levels")

    def stmt(self, node: ast.stmt) -> None:
        self.enter(node)
        c = self.code
        if isinstance(node, ast.Expr):
            if not isinstance(node.value, ast.Constant) or type(node.value.value) is not str:
                self.expr(node.value)
                c.emit(op.POP)
        elif isinstance(node, ast.Assign):
            self.expr(node.value)
            for i, target in enumerate(node.targets):
                if i < len(node.targets) - 1:
                    c.emit(op.DUP)
                self.store(target)
        elif isinstance(node, ast.AnnAssign):
            if node.value is None or not isinstance(node.target, ast.Name):
                raise self.error(node, "annotated assignment needs a name and a value")
            self.expr(node.value)
            self.store(node.target)
        elif isinstance(node, ast.AugAssign):
            self.aug_assign(node)
        elif isinstance(node, ast.If):
            self.if_stmt(node)
        elif isinstance(node, ast.While):
            self.while_stmt(node)
        elif isinstance(node, ast.For):
            self.for_stmt(node)
        elif isinstance(node, ast.Break | ast.Continue):
            if not self.loops:
                raise self.error(node, f"{type(node).__name__.lower()} outside a loop")
            loop = self.loops[-1]
            if isinstance(node, ast.Break):
                if loop.has_iterator:
                    c.emit(op.POP)
                c.emit(op.JUMP, jump=loop.end)
            else:
                c.emit(op.JUMP, jump=loop.start)
        elif isinstance(node, ast.Return):
            if node.value is None:
                c.emit(op.LOAD_CONST, self.m.const(None, node))
            else:
                self.expr(node.value)
            c.emit(op.RETURN)
        elif isinstance(node, ast.Pass):
            pass
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                if not isinstance(target, ast.Subscript) or isinstance(target.slice, ast.Slice):
                    raise self.error(target, "del is only supported on x[key]")
                self.expr(target.value)
                self.expr(target.slice)
                c.emit(op.DELETE_SUBSCR)
        else:
            raise self.error(node, self.m.unsupported(node))
        self.depth -= 1

    def store(self, target: ast.expr) -> None:
        c = self.code
        if isinstance(target, ast.Name):
            c.emit(op.STORE_LOCAL, self.locals[target.id])
        elif isinstance(target, ast.Subscript):
            if isinstance(target.slice, ast.Slice):
                raise self.error(target, "slice assignment is not supported")
            self.expr(target.value)
            self.expr(target.slice)
            c.emit(op.STORE_SUBSCR)
        elif isinstance(target, ast.Tuple | ast.List):
            if not target.elts or len(target.elts) > MAX_BUILD_ITEMS:
                raise self.error(target, f"unpacking needs 1..{MAX_BUILD_ITEMS} targets")
            c.emit(op.UNPACK, len(target.elts))
            for elt in target.elts:
                if isinstance(elt, ast.Tuple | ast.List | ast.Starred):
                    raise self.error(elt, "nested or starred unpacking is not supported")
                self.store(elt)
        else:
            raise self.error(target, f"cannot assign to {type(target).__name__}")

    def aug_assign(self, node: ast.AugAssign) -> None:
        c = self.code
        opcode = self.binop_code(node.op, node)
        opcode = _INPLACE.get(opcode, opcode)
        target = node.target
        if isinstance(target, ast.Name):
            if target.id not in self.locals:  # pragma: no cover - collect_locals declared it
                raise self.error(target, f"unknown name {target.id!r}")
            c.emit(op.LOAD_LOCAL, self.locals[target.id])
            self.expr(node.value)
            c.emit(opcode)
            c.emit(op.STORE_LOCAL, self.locals[target.id])
        elif isinstance(target, ast.Subscript) and not isinstance(target.slice, ast.Slice):
            self.expr(target.value)
            self.expr(target.slice)
            c.emit(op.DUP2)
            c.emit(op.LOAD_SUBSCR)
            self.expr(node.value)
            c.emit(opcode)
            c.emit(op.ROT3)
            c.emit(op.STORE_SUBSCR)
        else:
            raise self.error(target, "augmented assignment needs a name or x[key]")

    def if_stmt(self, node: ast.If) -> None:
        c = self.code
        else_label = c.new_label()
        end = c.new_label()
        self.expr(node.test)
        c.emit(op.JUMP_IF_FALSE, jump=else_label)
        for s in node.body:
            self.stmt(s)
        if node.orelse:
            c.emit(op.JUMP, jump=end)
        c.place(else_label)
        for s in node.orelse:
            self.stmt(s)
        c.place(end)

    def while_stmt(self, node: ast.While) -> None:
        if node.orelse:
            raise self.error(node.orelse[0], "while ... else is not supported")
        c = self.code
        start = c.new_label()
        end = c.new_label()
        c.place(start)
        self.expr(node.test)
        c.emit(op.JUMP_IF_FALSE, jump=end)
        self.loops.append(_Loop(start, end, has_iterator=False))
        for s in node.body:
            self.stmt(s)
        self.loops.pop()
        c.emit(op.JUMP, jump=start)
        c.place(end)

    def for_stmt(self, node: ast.For) -> None:
        if node.orelse:
            raise self.error(node.orelse[0], "for ... else is not supported")
        c = self.code
        it = node.iter
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range":
            if it.keywords or not 1 <= len(it.args) <= 3:
                raise self.error(it, "range() takes 1 to 3 positional arguments")
            for a in it.args:
                self.expr(a)
            c.emit(op.RANGE_ITER, len(it.args))
        else:
            self.expr(it)
            c.emit(op.GET_ITER)
        start = c.new_label()
        end = c.new_label()
        c.place(start)
        c.emit(op.FOR_ITER, jump=end)
        self.store(node.target)
        self.loops.append(_Loop(start, end, has_iterator=True))
        for s in node.body:
            self.stmt(s)
        self.loops.pop()
        c.emit(op.JUMP, jump=start)
        c.place(end)

    # -- expressions ----------------------------------------------------------

    def binop_code(self, operator: ast.operator, node: ast.AST) -> int:
        if isinstance(operator, ast.Div):
            raise self.error(node, "'/' is not supported: use '//' for integer division")
        code = _BINOPS.get(type(operator))
        if code is None:
            raise self.error(node, f"operator {type(operator).__name__} is not supported")
        return code

    def expr(self, node: ast.expr) -> None:
        self.enter(node)
        self._expr(node)
        self.depth -= 1

    def _expr(self, node: ast.expr) -> None:
        c = self.code
        if isinstance(node, ast.Constant):
            c.emit(op.LOAD_CONST, self.m.const(self.m.literal(node), node))
        elif isinstance(node, ast.Name):
            self.load_name(node)
        elif isinstance(node, ast.BinOp):
            code = self.binop_code(node.op, node)
            self.expr(node.left)
            self.expr(node.right)
            c.emit(code)
        elif isinstance(node, ast.UnaryOp):
            self.expr(node.operand)
            c.emit(_UNARY[type(node.op)])
        elif isinstance(node, ast.BoolOp):
            end = c.new_label()
            jump = op.JUMP_IF_FALSE if isinstance(node.op, ast.And) else op.JUMP_IF_TRUE
            self.expr(node.values[0])
            for value in node.values[1:]:
                c.emit(op.DUP)
                c.emit(jump, jump=end)
                c.emit(op.POP)
                self.expr(value)
            c.place(end)
        elif isinstance(node, ast.Compare):
            self.compare(node)
        elif isinstance(node, ast.IfExp):
            other = c.new_label()
            end = c.new_label()
            self.expr(node.test)
            c.emit(op.JUMP_IF_FALSE, jump=other)
            self.expr(node.body)
            c.emit(op.JUMP, jump=end)
            c.place(other)
            self.expr(node.orelse)
            c.place(end)
        elif isinstance(node, ast.Call):
            self.call(node)
        elif isinstance(node, ast.Subscript):
            self.expr(node.value)
            if isinstance(node.slice, ast.Slice):
                for part in (node.slice.lower, node.slice.upper, node.slice.step):
                    if part is None:
                        c.emit(op.LOAD_CONST, self.m.const(None, node))
                    else:
                        self.expr(part)
                c.emit(op.LOAD_SLICE)
            else:
                self.expr(node.slice)
                c.emit(op.LOAD_SUBSCR)
        elif isinstance(node, ast.List | ast.Tuple):
            self.items(node, node.elts)
            c.emit(op.BUILD_LIST if isinstance(node, ast.List) else op.BUILD_TUPLE, len(node.elts))
        elif isinstance(node, ast.Dict):
            if len(node.keys) > MAX_BUILD_ITEMS:
                raise self.error(node, f"more than {MAX_BUILD_ITEMS} items in one display")
            for k, v in zip(node.keys, node.values, strict=True):
                if k is None:
                    raise self.error(v, "** in dict displays is not supported")
                self.expr(k)
                self.expr(v)
            c.emit(op.BUILD_DICT, len(node.keys))
        elif isinstance(node, ast.JoinedStr):
            self.fstring(node)
        else:
            raise self.error(node, self.m.unsupported(node))

    def items(self, node: ast.AST, elts: list[ast.expr]) -> None:
        if len(elts) > MAX_BUILD_ITEMS:
            raise self.error(node, f"more than {MAX_BUILD_ITEMS} items in one display")
        for e in elts:
            self.expr(e)

    def fstring(self, node: ast.JoinedStr) -> None:
        c = self.code
        if len(node.values) > MAX_BUILD_ITEMS:
            raise self.error(node, f"more than {MAX_BUILD_ITEMS} parts in one f-string")
        for part in node.values:
            if isinstance(part, ast.Constant):
                c.emit(op.LOAD_CONST, self.m.const(part.value, part))
            elif isinstance(part, ast.FormattedValue):
                if part.conversion != -1 or part.format_spec is not None:
                    raise self.error(
                        part, "f-string conversions and format specs are not supported"
                    )
                self.expr(part.value)
                c.emit(op.CALL_BUILTIN, op.BUILTINS["str"].id, 1)
            else:  # pragma: no cover - JoinedStr holds only these two
                raise self.error(part, "unsupported f-string part")
        c.emit(op.BUILD_STRING, len(node.values))

    def load_name(self, node: ast.Name) -> None:
        name = node.id
        if name in self.locals:
            self.code.emit(op.LOAD_LOCAL, self.locals[name])
        elif name in self.m.module_constants:
            value = self.m.literal(self.m.module_constants[name])
            self.code.emit(op.LOAD_CONST, self.m.const(value, node))
        elif name in self.m.functions or name in RESERVED_NAMES:
            raise self.error(node, f"{name!r} is not a value; it can only be called")
        else:
            raise self.error(node, f"unknown name {name!r}")

    def compare(self, node: ast.Compare) -> None:
        if len(node.ops) != 1:
            raise self.error(node, "chained comparisons are not supported (use and)")
        operator = node.ops[0]
        right = node.comparators[0]
        if isinstance(operator, ast.Is | ast.IsNot):
            if not (isinstance(right, ast.Constant) and right.value is None):
                raise self.error(node, "'is' is only supported as 'is None' / 'is not None'")
            self.expr(node.left)
            self.code.emit(op.IS_NONE)
            if isinstance(operator, ast.IsNot):
                self.code.emit(op.NOT)
            return
        self.expr(node.left)
        self.expr(right)
        self.code.emit(_CMPOPS[type(operator)])

    def call(self, node: ast.Call) -> None:
        c = self.code
        if node.keywords:
            raise self.error(node.keywords[0], "keyword arguments are not supported")
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise self.error(a, "starred arguments are not supported")
        argc = len(node.args)
        func = node.func
        if isinstance(func, ast.Name):
            name = func.id
            if name in self.locals:
                raise self.error(func, f"{name!r} is a local variable, not a function")
            if name in self.m.functions:
                info = self.m.functions[name]
                if argc != info.n_params:
                    raise self.error(
                        node, f"{name}() takes {info.n_params} argument(s), {argc} given"
                    )
                self.items(node, node.args)
                c.emit(op.CALL, info.index, argc)
                return
            if name == "range":
                raise self.error(node, "range() is only supported as the iterable of a for loop")
            arity = op.BUILTINS.get(name)
            if arity is None:
                raise self.error(func, f"unknown function {name!r}")
            self.check_arity(node, name, arity.min_args, arity.max_args, argc)
            self.items(node, node.args)
            c.emit(op.CALL_BUILTIN, arity.id, argc)
            return
        if isinstance(func, ast.Attribute):
            if isinstance(func.value, ast.Name) and func.value.id == HOST_NAME:
                arity = op.HOST_FUNCTIONS.get(func.attr)
                if arity is None:
                    raise self.error(func, f"ledger has no function {func.attr!r}")
                self.check_arity(node, f"ledger.{func.attr}", arity.min_args, arity.max_args, argc)
                self.items(node, node.args)
                c.emit(op.CALL_HOST, arity.id, argc)
                return
            bounds = op.METHODS.get(func.attr)
            if bounds is None:
                raise self.error(func, f"method {func.attr!r} is not supported")
            self.check_arity(node, f".{func.attr}", bounds[0], bounds[1], argc)
            self.expr(func.value)
            self.items(node, node.args)
            c.emit(op.CALL_METHOD, self.m.const(func.attr, func), argc)
            return
        raise self.error(node, "only named functions and methods can be called")

    def check_arity(self, node: ast.AST, name: str, lo: int, hi: int, argc: int) -> None:
        if not lo <= argc <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            raise self.error(node, f"{name}() takes {want} argument(s), {argc} given")


def _walk_in_order(node: ast.AST) -> list[ast.AST]:
    """Nodes of ``node`` depth-first in source order (ast.walk is breadth-first).

    Bounded by the tree's size; nesting is bounded by the parser and MAX_EXPR_DEPTH.
    """
    out: list[ast.AST] = []
    pending = [node]
    while pending:
        n = pending.pop()
        out.append(n)
        pending.extend(reversed(list(ast.iter_child_nodes(n))))
    return out


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse(source: str, filename: str) -> ast.Module:
    """Parse source text; every parser failure becomes a CompileError."""
    if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise CompileError(filename, 1, 1, f"source is longer than {MAX_SOURCE_BYTES} bytes")
    try:
        return ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise CompileError(filename, exc.lineno or 1, exc.offset or 1, exc.msg) from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise CompileError(filename, 1, 1, f"source cannot be parsed: {exc}") from None


def compile_source(source: str, filename: str = "<contract>") -> Module:
    """Compile contract source text to a Module; CompileError on anything unsupported."""
    tree = parse(source, filename)
    compiler = _Compiler(filename)
    try:
        module = compiler.compile_module(tree)
    except RecursionError:
        raise CompileError(filename, 1, 1, "source is nested too deeply") from None
    try:
        encode_module(module)
    except BytecodeError as exc:
        raise CompileError(filename, 1, 1, str(exc)) from None
    # The compiler's output must always pass the verifier; a VerifyError here
    # is a compiler bug and is raised as such rather than hidden.
    verify_module(module)
    return module


def compile_to_bytes(source: str, filename: str = "<contract>") -> bytes:
    """Compile and serialize: the bytes whose SHA-256 is the contract's code hash."""
    return encode_module(compile_source(source, filename))
