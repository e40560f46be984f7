"""The VM's error types: the only exceptions the compiler, verifier and interpreter raise.

Every error has a ``kind`` (its class name, shown by the CLI and recorded in
receipts) and a plain message. Callers catch :class:`VMError` and nothing else.
"""

from __future__ import annotations

from vm.gas import MAX_MESSAGE_CHARS


def cut(text: str) -> str:
    """``text`` bounded to MAX_MESSAGE_CHARS characters (error messages end up in receipts)."""
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."


class VMError(Exception):
    """Base class of everything the VM raises."""

    @property
    def kind(self) -> str:
        return type(self).__name__

    @property
    def message(self) -> str:
        return str(self)


class CompileError(VMError):
    """The source is not a valid Vigil contract; names the file, line and column (1-based).

    ``errors`` lists every error found (this one first): the compiler reports
    the first error of each function.
    """

    def __init__(self, file: str, line: int, col: int, message: str) -> None:
        self.file = file
        self.line = line
        self.col = col
        self.detail = message
        self.errors: list[CompileError] = [self]
        super().__init__(f"{file}:{line}:{col}: {message}")


class BytecodeError(VMError):
    """Serialized bytecode is malformed (bad header, truncated, non-canonical, over a limit)."""


class VerifyError(VMError):
    """Bytecode decoded but breaks a verifier rule (unknown opcode, bad jump, stack height...)."""


class ExecutionFailure(VMError):
    """Base class of errors that end a call at run time; the call's writes and events are dropped.

    ``gas_used`` is filled in by the interpreter before the error leaves it.
    """

    gas_used: int = 0


class OutOfGas(ExecutionFailure):
    """The call ran out of gas."""


class LimitExceeded(ExecutionFailure):
    """A size, depth or count limit was hit (value size, memory, call depth, integer range...)."""


class IntegerOverflow(LimitExceeded):
    """An integer result is outside ``-2**255 < x < 2**255``."""


class Revert(ExecutionFailure):
    """``require(cond, msg)`` failed: the contract refused the call with ``msg`` (cut if long)."""

    def __init__(self, message: str) -> None:
        super().__init__(cut(message))


class ExecutionError(ExecutionFailure):
    """An operation failed the way CPython would fail it (wrong types, missing key, ...).

    ``python_kind`` names the CPython exception class the same operation raises
    (``TypeError``, ``KeyError``, ``ZeroDivisionError``...), so the differential
    test can check that the VM fails where and how CPython fails.
    """

    def __init__(self, python_kind: str, message: str) -> None:
        self.python_kind = python_kind
        super().__init__(cut(f"{python_kind}: {message}"))


class HostError(ExecutionFailure):
    """The host refused a request (unknown contract or model, re-entrant call, bad call)."""

    def __init__(self, message: str) -> None:
        super().__init__(cut(message))


class CallError(VMError):
    """The call itself is invalid before anything runs (unknown or private method, bad args)."""


class HostUnavailable(Exception):
    """The host cannot answer *now* (a node lacks a model artifact it must fetch first).

    Deliberately not a VMError: it is never turned into a failed call or a
    receipt, because another node that can answer would record a different
    outcome. It leaves :func:`vm.interpreter.execute` unchanged, and the
    embedder abandons the whole execution and retries once it can answer.
    """
