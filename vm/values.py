"""VM values: the canonical encoding used for storage, events, arguments and results.

A VM value is ``None``, ``bool``, ``int`` (``-INT_LIMIT < x < INT_LIMIT``),
``str``, ``bytes``, or a ``list``, ``tuple`` or ``dict`` of VM values. Dict keys
are scalars: ``str``, ``int``, ``bytes``, ``bool`` or ``None``.

Encoding (through :mod:`consensus.codec`, so one value has one byte string):
scalars are stored as themselves, except integers outside the codec's range,
which become ``[1, <signed big-endian bytes>]``; a list is ``[2, item...]``, a
tuple ``[3, item...]`` and a dict ``[4, key, value, key, value...]`` in
insertion order. Types and order survive a round trip exactly, so storing a
value and reading it back behaves like a deep copy.
"""

from __future__ import annotations

from typing import Any

from consensus import codec
from vm.errors import BytecodeError, ExecutionError, LimitExceeded
from vm.gas import (
    INT_LIMIT,
    MAX_CONTAINER_ITEMS,
    MAX_NESTING_DEPTH,
    MAX_STR_BYTES,
    MAX_VISIT_ITEMS,
)

TAG_BIGINT = 1
TAG_LIST = 2
TAG_TUPLE = 3
TAG_DICT = 4

CONTAINER_TYPES = (list, tuple, dict)
SCALAR_TYPES = (type(None), bool, int, str, bytes)
KEY_TYPES = SCALAR_TYPES
"""Types allowed as dict keys (scalars only, so hashing never recurses)."""


SEQUENCE_TYPES = (list, tuple, str, bytes, dict)
"""The types a contract can iterate, take the length of, or unpack."""


def type_name(v: Any) -> str:
    """The CPython name of a value's type, for error messages."""
    return "NoneType" if v is None else type(v).__name__


def is_intlike(v: Any) -> bool:
    """True for int and bool (CPython arithmetic treats bool as int)."""
    t = type(v)
    return t is int or t is bool


def check_key(k: Any) -> Any:
    """``k`` if it may be inserted as a dict key; ExecutionError(TypeError) otherwise."""
    if type(k) not in KEY_TYPES:
        raise ExecutionError(
            "TypeError", f"dict keys must be str, int, bytes, bool or None, not {type_name(k)}"
        )
    return k


class DecodeError(BytecodeError):
    """Bytes are not the canonical encoding of a VM value."""


def measure(value: Any) -> tuple[int, int]:
    """(nodes, string bytes) of ``value``; LimitExceeded if it is too deep or has too many nodes.

    Walks iteratively (no recursion), so cyclic or very deep values are caught
    by the depth limit before any recursive CPython operation touches them.
    Shared parts count every time they are reached, as CPython would walk
    them again. The byte count is the total length of the str and bytes met.
    """
    t = type(value)
    if t is str or t is bytes:
        return 1, len(value)
    if t is not list and t is not tuple and t is not dict:
        return 1, 0
    count = 0
    nbytes = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        count += 1
        if count > MAX_VISIT_ITEMS:
            raise LimitExceeded(f"value has more than {MAX_VISIT_ITEMS} elements to visit")
        if depth > MAX_NESTING_DEPTH:
            raise LimitExceeded(f"value is nested deeper than {MAX_NESTING_DEPTH}")
        if type(item) is dict:
            count += len(item)
            for k in item:
                if type(k) is str or type(k) is bytes:
                    nbytes += len(k)
            children: Any = item.values()
        else:
            children = item
        for child in children:
            ct = type(child)
            if ct is list or ct is tuple or ct is dict:
                pending.append((child, depth + 1))
            else:
                count += 1
                if ct is str or ct is bytes:
                    nbytes += len(child)
        if count > MAX_VISIT_ITEMS:
            raise LimitExceeded(f"value has more than {MAX_VISIT_ITEMS} elements to visit")
    return count, nbytes


def visit(value: Any) -> int:
    """Number of nodes of ``value`` (see :func:`measure` for the limits it enforces)."""
    return measure(value)[0]


def _int_to_bytes(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 8) // 8, "big", signed=True)


def _to_wire(value: Any) -> Any:
    t = type(value)
    if value is None or t is bool or t is str or t is bytes:
        return value
    if t is int:
        if codec.INT_MIN <= value <= codec.INT_MAX:
            return value
        if not -INT_LIMIT < value < INT_LIMIT:
            # Never write what decode_value would refuse.
            raise LimitExceeded("integer out of the VM's range")
        return [TAG_BIGINT, _int_to_bytes(value)]
    if t is list:
        return [TAG_LIST, *[_to_wire(v) for v in value]]
    if t is tuple:
        return [TAG_TUPLE, *[_to_wire(v) for v in value]]
    if t is dict:
        out: list[Any] = [TAG_DICT]
        for k, v in value.items():
            out.append(_to_wire(k))
            out.append(_to_wire(v))
        return out
    raise ExecutionError("TypeError", f"a {t.__name__} is not a VM value")


assert MAX_NESTING_DEPTH < codec.MAX_DEPTH  # encode_value's wire form needs no codec walk


def encode_value(value: Any, max_bytes: int) -> bytes:
    """Canonical bytes of ``value``; LimitExceeded if too deep, too big or over ``max_bytes``."""
    visit(value)  # bounds the depth, so the wire form needs no second walk
    try:
        data = codec.pack_canonical(_to_wire(value))
    except UnicodeEncodeError as exc:  # a str holding lone surrogates
        raise ExecutionError("UnicodeEncodeError", str(exc)) from None
    if len(data) > max_bytes:
        raise LimitExceeded(f"encoded value is {len(data)} bytes, limit is {max_bytes}")
    return data


def _from_wire(item: Any, depth: int) -> Any:
    t = type(item)
    if item is None or t is bool or t is str or t is bytes:
        if (t is str or t is bytes) and len(item) > MAX_STR_BYTES:
            raise DecodeError(f"string of {len(item)} exceeds {MAX_STR_BYTES}")
        return item
    if t is int:
        return item
    if t is not list or not item or type(item[0]) is not int:
        raise DecodeError("array without a type tag")
    tag = item[0]
    body = item[1:]
    if tag == TAG_BIGINT:
        if len(body) != 1 or type(body[0]) is not bytes or not body[0]:
            raise DecodeError("big integer must be one non-empty byte string")
        n = int.from_bytes(body[0], "big", signed=True)
        if not -INT_LIMIT < n < INT_LIMIT:
            raise DecodeError("integer out of the VM's range")
        return n
    if depth >= MAX_NESTING_DEPTH:
        raise DecodeError(f"value nested deeper than {MAX_NESTING_DEPTH}")
    if len(body) > (2 if tag == TAG_DICT else 1) * MAX_CONTAINER_ITEMS:
        raise DecodeError("container has too many items")
    if tag == TAG_LIST:
        return [_from_wire(v, depth + 1) for v in body]
    if tag == TAG_TUPLE:
        return tuple(_from_wire(v, depth + 1) for v in body)
    if tag == TAG_DICT:
        if len(body) % 2:
            raise DecodeError("dict needs an even number of items")
        out: dict[Any, Any] = {}
        for i in range(0, len(body), 2):
            key = _from_wire(body[i], depth + 1)
            if type(key) not in KEY_TYPES:
                raise DecodeError("dict key must be str, int, bytes, bool or None")
            out[key] = _from_wire(body[i + 1], depth + 1)
        return out
    raise DecodeError(f"unknown value tag {tag}")


def decode_value(data: bytes, max_bytes: int) -> Any:
    """Decode canonical bytes made by :func:`encode_value`; DecodeError on anything else."""
    try:
        wire = codec.decode(data, max_size=max_bytes)
    except codec.CodecError as exc:
        raise DecodeError(f"not a canonical value: {exc}") from None
    value = _from_wire(wire, 0)
    # One value, one encoding: rejects duplicate dict keys, non-minimal big
    # integers and big-integer tags on integers the codec carries directly.
    try:
        again = codec.encode(_to_wire(value))
    except codec.CodecError as exc:  # pragma: no cover - _from_wire bounds depth
        raise DecodeError(f"value does not re-encode: {exc}") from None
    if again != data:
        raise DecodeError("value encoding is not canonical")
    if type(value) is int and not -INT_LIMIT < value < INT_LIMIT:  # pragma: no cover
        raise DecodeError("integer out of the VM's range")
    return value


def check_value(value: Any) -> None:
    """Raise ExecutionError/LimitExceeded unless ``value`` is a VM value within the limits.

    Used on values arriving from outside (call arguments, host results).
    """
    visit(value)
    pending = [value]
    while pending:
        item = pending.pop()
        t = type(item)
        if item is None or t is bool:
            continue
        if t is int:
            if not -INT_LIMIT < item < INT_LIMIT:
                raise LimitExceeded("integer out of the VM's range")
        elif t is str or t is bytes:
            if len(item) > MAX_STR_BYTES:
                raise LimitExceeded(f"string longer than {MAX_STR_BYTES}")
        elif t is list or t is tuple:
            if len(item) > MAX_CONTAINER_ITEMS:
                raise LimitExceeded(f"container longer than {MAX_CONTAINER_ITEMS}")
            pending.extend(item)
        elif t is dict:
            if len(item) > MAX_CONTAINER_ITEMS:
                raise LimitExceeded(f"dict larger than {MAX_CONTAINER_ITEMS}")
            for k, v in item.items():
                if type(k) not in KEY_TYPES:
                    raise ExecutionError("TypeError", f"dict key of type {type(k).__name__}")
                pending.append(v)
        else:
            raise ExecutionError("TypeError", f"a {t.__name__} is not a VM value")
