"""The serialized module format and its decoding into instructions.

A module is the canonical codec encoding of::

    ["vigil-vm", FORMAT_VERSION, [constant...], [[name, n_params, n_locals, code], ...]]

Constants are ``None``, ``bool``, ``int``, ``str`` or ``bytes`` in the value
encoding of :mod:`vm.values`. ``code`` is a byte string of instructions (see
:mod:`vm.opcodes`). A function whose name starts with ``_`` is private. The
code hash, which names a contract's code on the ledger, is the SHA-256 of the
serialized bytes. Decoding checks structure only; :mod:`vm.verifier` checks
that the code is safe to run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consensus import codec
from consensus.crypto import sha256
from vm import opcodes as op
from vm.errors import BytecodeError, VerifyError
from vm.gas import (
    INT_LIMIT,
    MAX_CODE_BYTES,
    MAX_CONSTANTS,
    MAX_FUNCTIONS,
    MAX_LOCALS,
    MAX_MODULE_BYTES,
    MAX_NAME_BYTES,
    MAX_PARAMS,
)
from vm.values import DecodeError, _from_wire, _to_wire

MAGIC = "vigil-vm"
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Function:
    """One function of a module: its name, parameter and local-slot counts, and code."""

    name: str
    n_params: int
    n_locals: int
    code: bytes

    @property
    def public(self) -> bool:
        return not self.name.startswith("_")


@dataclass(frozen=True, slots=True)
class Module:
    """A compiled contract: constants pool and function table."""

    constants: tuple[Any, ...]
    functions: tuple[Function, ...]

    def function_index(self, name: str) -> int | None:
        for i, f in enumerate(self.functions):
            if f.name == name:
                return i
        return None


@dataclass(frozen=True, slots=True)
class Instruction:
    offset: int
    op: int
    operands: tuple[int, ...]


def encode_module(module: Module) -> bytes:
    """Serialize ``module``; BytecodeError if it breaks a structural limit."""
    check_shape(module)
    wire = [
        MAGIC,
        FORMAT_VERSION,
        [_to_wire(c) for c in module.constants],
        [[f.name, f.n_params, f.n_locals, f.code] for f in module.functions],
    ]
    data = codec.encode(wire)
    if len(data) > MAX_MODULE_BYTES:
        raise BytecodeError(f"module is {len(data)} bytes, limit is {MAX_MODULE_BYTES}")
    return data


def code_hash(data: bytes) -> bytes:
    """The identity of serialized code: SHA-256 of its bytes."""
    return sha256(data)


def check_shape(module: Module) -> None:
    """Structural limits of a module (counts, names, sizes); BytecodeError if broken."""
    if len(module.constants) > MAX_CONSTANTS:
        raise BytecodeError(f"{len(module.constants)} constants, limit is {MAX_CONSTANTS}")
    if not 0 < len(module.functions) <= MAX_FUNCTIONS:
        raise BytecodeError(f"module needs 1..{MAX_FUNCTIONS} functions")
    for c in module.constants:
        if c is not None and type(c) not in (bool, int, str, bytes):
            raise BytecodeError(f"constant of type {type(c).__name__} is not allowed")
        if type(c) is str:
            try:
                c.encode("utf-8")
            except UnicodeEncodeError:
                raise BytecodeError("string constant is not valid UTF-8") from None
        if type(c) is int and not -INT_LIMIT < c < INT_LIMIT:
            raise BytecodeError("integer constant out of the VM's range")
    names = set()
    for f in module.functions:
        if type(f.name) is not str or not f.name.isidentifier():
            raise BytecodeError(f"function name {f.name!r} is not an identifier")
        if len(f.name.encode()) > MAX_NAME_BYTES:
            raise BytecodeError(f"function name longer than {MAX_NAME_BYTES} bytes")
        if f.name in names:
            raise BytecodeError(f"function {f.name!r} defined twice")
        names.add(f.name)
        if type(f.n_params) is not int or not 0 <= f.n_params <= MAX_PARAMS:
            raise BytecodeError(f"{f.name}: parameter count must be 0..{MAX_PARAMS}")
        if type(f.n_locals) is not int or not f.n_params <= f.n_locals <= MAX_LOCALS:
            raise BytecodeError(f"{f.name}: local count must be n_params..{MAX_LOCALS}")
        if type(f.code) is not bytes or not 0 < len(f.code) <= MAX_CODE_BYTES:
            raise BytecodeError(f"{f.name}: code must be 1..{MAX_CODE_BYTES} bytes")


def decode_module(data: bytes) -> Module:
    """Parse serialized bytes into a Module; BytecodeError names what is wrong."""
    if type(data) is not bytes:
        raise BytecodeError("module must be bytes")
    try:
        wire = codec.decode(data, max_size=MAX_MODULE_BYTES)
    except codec.CodecError as exc:
        raise BytecodeError(f"not a canonical module: {exc}") from None
    if type(wire) is not list or len(wire) != 4:
        raise BytecodeError("module must be a 4-item array")
    magic, version, consts, funcs = wire
    if magic != MAGIC:
        raise BytecodeError(f"bad magic {magic!r}")
    if version != FORMAT_VERSION or type(version) is not int:
        raise BytecodeError(f"unsupported format version {version!r}")
    if type(consts) is not list or type(funcs) is not list:
        raise BytecodeError("constants and functions must be arrays")
    if len(consts) > MAX_CONSTANTS:
        raise BytecodeError(f"{len(consts)} constants, limit is {MAX_CONSTANTS}")
    constants = []
    for c in consts:
        try:
            value = _from_wire(c, 0)
        except DecodeError as exc:
            raise BytecodeError(f"bad constant: {exc}") from None
        if type(value) in (list, tuple, dict):
            raise BytecodeError("constants must be scalars")
        constants.append(value)
    functions = []
    for f in funcs:
        if type(f) is not list or len(f) != 4:
            raise BytecodeError("function entry must be a 4-item array")
        name, n_params, n_locals, code = f
        if type(name) is not str:
            raise BytecodeError("function name must be a string")
        functions.append(Function(name, n_params, n_locals, code))
    module = Module(tuple(constants), tuple(functions))
    check_shape(module)
    if encode_module(module) != data:
        raise BytecodeError("module encoding is not canonical")
    return module


def decode_code(code: bytes) -> list[Instruction]:
    """Split code into instructions; VerifyError on an unknown opcode or a cut-off operand."""
    out: list[Instruction] = []
    pc = 0
    n = len(code)
    while pc < n:
        opcode = code[pc]
        count = op.OPERAND_COUNT.get(opcode)
        if count is None:
            raise VerifyError(f"unknown opcode 0x{opcode:02x} at offset {pc}")
        end = pc + 1 + op.OPERAND_BYTES * count
        if end > n:
            raise VerifyError(f"operand of {op.NAMES[opcode]} at offset {pc} is cut off")
        operands = tuple(
            int.from_bytes(
                code[pc + 1 + i * op.OPERAND_BYTES : pc + 1 + (i + 1) * op.OPERAND_BYTES], "big"
            )
            for i in range(count)
        )
        out.append(Instruction(pc, opcode, operands))
        pc = end
    return out


def encode_instruction(opcode: int, *operands: int) -> bytes:
    """Bytes of one instruction (used by the compiler and by tests that build code by hand)."""
    assert op.OPERAND_COUNT[opcode] == len(operands), (op.NAMES[opcode], operands)
    out = bytearray((opcode,))
    for v in operands:
        assert 0 <= v <= op.MAX_OPERAND
        out += v.to_bytes(op.OPERAND_BYTES, "big")
    return bytes(out)
