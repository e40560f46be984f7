"""Compile-time rejections (with file, line and column), determinism and compiler limits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vm.bytecode import code_hash, decode_module
from vm.compiler import compile_source, compile_to_bytes
from vm.errors import CompileError
from vm.gas import (
    INT_LIMIT,
    MAX_BUILD_ITEMS,
    MAX_CONSTANTS,
    MAX_EXPR_DEPTH,
    MAX_FUNCTIONS,
    MAX_LOCALS,
    MAX_NAME_BYTES,
    MAX_PARAMS,
    MAX_SOURCE_BYTES,
)
from vm.opcodes import MAX_VARIADIC_ARGS

CONTRACTS = Path(__file__).parent / "contracts"

# (source, line, column, fragment of the message)
REJECTED = [
    ("import os\ndef f():\n    return 1\n", 1, 1, "imports are not supported"),
    ("from x import y\ndef f():\n    return 1\n", 1, 1, "imports are not supported"),
    ("def f():\n    return 1.5\n", 2, 12, "floats are not supported"),
    ("def f():\n    return 1j\n", 2, 12, "complex literals are not supported"),
    ("def f(x):\n    return x / 2\n", 2, 12, "'/' is not supported"),
    ("def f(x):\n    x /= 2\n", 2, 5, "'/' is not supported"),
    ("def f(x):\n    return x @ x\n", 2, 12, "MatMult is not supported"),
    ("class A:\n    pass\n", 1, 1, "classes are not supported"),
    ("def f():\n    g = lambda: 1\n", 2, 9, "lambda"),
    ("def f():\n    try:\n        pass\n    except Exception:\n        pass\n", 2, 5, "try"),
    ("def f():\n    raise ValueError()\n", 2, 5, "raise is not supported"),
    ("def f():\n    with x:\n        pass\n", 2, 5, "with statements"),
    ("def f():\n    global g\n", 2, 5, "global is not supported"),
    ("def f():\n    return [x for x in range(3)]\n", 2, 12, "list comprehensions"),
    ("def f():\n    return {x: 1 for x in range(3)}\n", 2, 12, "dict comprehensions"),
    ("def f():\n    return (x for x in [1])\n", 2, 12, "generators are not supported"),
    ("def f():\n    yield 1\n", 2, 5, "generators are not supported"),
    ("def f():\n    return {1, 2}\n", 2, 12, "sets are not supported"),
    ("def f(x):\n    return (y := x)\n", 2, 13, ":= operator"),
    ("def f(x):\n    assert x\n", 2, 5, "use require"),
    ("def f():\n    def g():\n        return 1\n    return 1\n", 2, 5, "nested functions"),
    ("async def f():\n    return 1\n", 1, 1, "async functions"),
    ("@dec\ndef f():\n    return 1\n", 1, 2, "decorators are not supported"),
    ("def f(x=1):\n    return x\n", 1, 9, "default parameter values"),
    ("def f(*xs):\n    return 1\n", 1, 1, "only plain positional parameters"),
    ("def f(**kw):\n    return 1\n", 1, 1, "only plain positional parameters"),
    ("def f(x, x):\n    return 1\n", 1, 10, "duplicate"),
    ("def f(x):\n    return sorted(x, reverse=True)\n", 2, 22, "keyword arguments"),
    ("def f(x):\n    return g(*x)\n", 2, 14, "starred arguments"),
    ("def f():\n    return y\n", 2, 12, "unknown name 'y'"),
    ("def f():\n    return print(1)\n", 2, 12, "unknown function 'print'"),
    ("def f(x):\n    return x.real\n", 2, 12, "attribute access"),
    ("def f(x):\n    return x.frobnicate()\n", 2, 12, "method 'frobnicate' is not supported"),
    ("def f():\n    return ledger.steal()\n", 2, 12, "ledger has no function 'steal'"),
    ("def f():\n    return ledger\n", 2, 12, "'ledger' is not a value"),
    ("def f():\n    return len\n", 2, 12, "'len' is not a value"),
    ("def f(x):\n    return x is 1\n", 2, 12, "'is' is only supported"),
    ("def f(x):\n    return 1 < x < 3\n", 2, 12, "chained comparisons"),
    ("def f():\n    break\n", 2, 5, "break outside a loop"),
    ("def f():\n    continue\n", 2, 5, "continue outside a loop"),
    ("def f(x):\n    while x:\n        pass\n    else:\n        pass\n", 5, 9, "while ... else"),
    ("def f(x):\n    for i in x:\n        pass\n    else:\n        pass\n", 5, 9, "for ... else"),
    ("def f(x):\n    x[1:2] = [3]\n", 2, 5, "slice assignment"),
    ("def f(x):\n    del x\n", 2, 9, "del is only supported on x[key]"),
    ("def f(x):\n    len = 3\n", 2, 5, "reserved name 'len'"),
    ("def f(ledger):\n    return 1\n", 1, 7, "reserved name 'ledger'"),
    ("def f():\n    return 1\ndef f():\n    return 2\n", 3, 1, "defined twice"),
    ("X = [1]\ndef f():\n    return 1\n", 1, 5, "module-level constants must be literals"),
    ("X = 1\nX = 2\ndef f():\n    return 1\n", 2, 1, "defined twice"),
    ("X = 1\ndef f():\n    X = 2\n", 3, 5, "module constant 'X'"),
    ("def g():\n    return 1\ndef f():\n    g = 2\n", 4, 5, "function name 'g'"),
    (f"def f():\n    return {INT_LIMIT}\n", 2, 12, "integer literal out of range"),
    ("def f(x):\n    return f'{x:>4}'\n", 2, 12, "format specs"),
    ("def f(x):\n    return f'{x!r}'\n", 2, 12, "format specs"),
    ("def f(\n", 1, 6, "never closed"),
    ("def f():\n    return range(3)\n", 2, 12, "range() is only supported"),
    ("def f():\n    return g(1)\ndef g(a, b):\n    return a\n", 2, 12, "g() takes 2 argument(s)"),
    ("def f():\n    return len(1, 2)\n", 2, 12, "len() takes 1 argument(s), 2 given"),
    ("def f(x):\n    return x.append()\n", 2, 12, ".append() takes 1 argument(s)"),
    ("def f(x):\n    a, *b = x\n", 2, 8, "starred"),
    ("def f(x):\n    (a, b), c = x\n", 2, 5, "nested or starred unpacking"),
    ("def f(x):\n    return {**x}\n", 2, 15, "** in dict displays"),
    ("def f(x):\n    return x(1)\n", 2, 12, "'x' is a local variable"),
    ("def f(x):\n    return x[0](1)\n", 2, 12, "only named functions and methods"),
    ("x = 1\n", 1, 1, "at least one function"),
    ("def f():\n    return 1\nf()\n", 3, 1, "at module level"),
    ("def f():\n    match 1:\n        case 1:\n            pass\n", 2, 5, "match statements"),
    ("def f():\n    for i in range(1, 2, 3, 4):\n        pass\n", 2, 14, "range() takes 1 to 3"),
]


@pytest.mark.parametrize(("source", "line", "col", "fragment"), REJECTED)
def test_rejections_name_file_line_and_column(
    source: str, line: int, col: int, fragment: str
) -> None:
    with pytest.raises(CompileError) as info:
        compile_source(source, "c.py")
    err = info.value
    assert (err.file, err.line, err.col) == ("c.py", line, col), str(err)
    assert fragment in err.detail
    assert str(err) == f"c.py:{line}:{col}: {err.detail}"


def test_accepted_constructs_compile() -> None:
    source = '''
"""docstring"""
LIMIT = 10
NEG = -5
NAME: str = "x"


def public(a, b):
    """A docstring inside a function is skipped."""
    total = 0
    for i in range(a):
        total += i
    for k, v in b.items():
        total += v
    xs = [1, 2, 3]
    xs[0] = 5
    xs[1] += 2
    del xs[2]
    y = z = (1, "a", b"b", None, True)
    first, second = xs
    q = first if second else NEG
    while q < LIMIT and not False or q is None:
        q += 1
        if q == 3:
            continue
        elif q > 5:
            break
        else:
            pass
    s = f"{total}-{NAME}"
    return _private(total) + len(s) + len(y) + len(z) + q


def _private(x):
    return -x // 2 % 7 ** 2 << 1 >> 1 & 255 | 1 ^ ~0
'''
    module = compile_source(source)
    names = [f.name for f in module.functions]
    assert names == ["public", "_private"]
    assert not module.functions[1].public


def test_compilation_is_deterministic_across_processes() -> None:
    """Same source, same bytes: also under another hash seed in a fresh interpreter."""
    for path in sorted(CONTRACTS.glob("*.py")):
        source = path.read_text()
        first = compile_to_bytes(source, path.name)
        assert compile_to_bytes(source, path.name) == first
        assert decode_module(first) == compile_source(source, path.name)
    path = CONTRACTS / "voting.py"
    here = code_hash(compile_to_bytes(path.read_text(), path.name)).hex()
    script = (
        "import sys; from vm.compiler import compile_to_bytes; from vm.bytecode import code_hash;"
        f"print(code_hash(compile_to_bytes(open({str(path)!r}).read(), {path.name!r})).hex())"
    )
    for seed in ("1", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
            cwd=Path(__file__).parents[2],
        )
        assert out.stdout.strip() == here


def _fn(body: str, params: str = "") -> str:
    return f"def f({params}):\n{body}"


def test_source_size_limit_edge() -> None:
    base = "def f():\n    return 1\n#"
    ok = base + "x" * (MAX_SOURCE_BYTES - len(base))
    assert len(ok.encode()) == MAX_SOURCE_BYTES
    compile_source(ok)
    with pytest.raises(CompileError, match="longer than"):
        compile_source(ok + "x")


def test_function_count_limit_edge() -> None:
    ok = "".join(f"def f{i}():\n    return {i}\n" for i in range(MAX_FUNCTIONS))
    assert len(compile_source(ok).functions) == MAX_FUNCTIONS
    with pytest.raises(CompileError, match=f"more than {MAX_FUNCTIONS} functions"):
        compile_source(ok + "def extra():\n    return 0\n")


def test_parameter_limit_edge() -> None:
    params = ", ".join(f"p{i}" for i in range(MAX_PARAMS))
    compile_source(_fn("    return 1\n", params))
    with pytest.raises(CompileError, match=f"more than {MAX_PARAMS} parameters"):
        compile_source(_fn("    return 1\n", params + ", extra"))


def test_local_limit_edge() -> None:
    body = "".join(f"    v{i} = {i}\n" for i in range(MAX_LOCALS))
    compile_source(_fn(body))
    with pytest.raises(CompileError, match=f"more than {MAX_LOCALS} local"):
        compile_source(_fn(body + "    extra = 1\n"))


def test_display_item_limit_edge() -> None:
    items = ", ".join("1" for _ in range(MAX_BUILD_ITEMS))
    compile_source(_fn(f"    return [{items}]\n"))
    with pytest.raises(CompileError, match=f"more than {MAX_BUILD_ITEMS} items"):
        compile_source(_fn(f"    return [{items}, 1]\n"))


def test_constant_pool_limit_edge() -> None:
    # The implicit `return None` adds one constant.
    body = "".join(f"    x = {i}\n" for i in range(MAX_CONSTANTS - 1))
    assert len(compile_source(_fn(body)).constants) == MAX_CONSTANTS
    with pytest.raises(CompileError, match=f"more than {MAX_CONSTANTS} constants"):
        compile_source(_fn(body + f"    x = {MAX_CONSTANTS}\n"))


def test_nesting_depth_limit_edge() -> None:
    # The return statement is one level, each unary minus one, the literal one.
    k = MAX_EXPR_DEPTH - 2
    compile_source(_fn("    return " + "-" * k + "1\n"))
    with pytest.raises(CompileError, match=f"nested deeper than {MAX_EXPR_DEPTH}"):
        compile_source(_fn("    return " + "-" * (k + 1) + "1\n"))


def test_name_length_limit_edge() -> None:
    compile_source(f"def {'f' * MAX_NAME_BYTES}():\n    return 1\n")
    with pytest.raises(CompileError, match="longer than"):
        compile_source(f"def {'f' * (MAX_NAME_BYTES + 1)}():\n    return 1\n")


def test_variadic_builtin_limit_edge() -> None:
    args = ", ".join("1" for _ in range(MAX_VARIADIC_ARGS))
    compile_source(_fn(f"    return min({args})\n"))
    with pytest.raises(CompileError, match="min\\(\\) takes"):
        compile_source(_fn(f"    return min({args}, 1)\n"))


def test_long_operator_chain_is_a_compile_error_not_a_crash() -> None:
    with pytest.raises(CompileError):
        compile_source(_fn("    return " + "+".join(["1"] * 5000) + "\n"))


def test_surrogate_string_literal_is_rejected() -> None:
    with pytest.raises(CompileError, match="UTF-8"):
        compile_source(_fn('    return "\\ud800"\n'))


def test_first_error_of_every_function_is_reported() -> None:
    source = "def f(x):\n    return x / 2\n\ndef g():\n    return 1.5\n\ndef h():\n    return 1\n"
    with pytest.raises(CompileError) as info:
        compile_source(source, "c.py")
    assert [str(e) for e in info.value.errors] == [
        "c.py:2:12: '/' is not supported: use '//' for integer division",
        "c.py:5:12: floats are not supported",
    ]
