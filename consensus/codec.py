"""Canonical msgpack: one value, one encoding, one hash.

Every signed or hashed object in Vigil goes through this module. The encoder
produces msgpack with the smallest header for every integer, string, byte
string and array (what msgpack-python emits with ``use_bin_type=True``). The
decoder accepts exactly those bytes and nothing else: it refuses trailing
bytes, input over a size limit, extension types, maps and floats unless the
caller allows them, and any input whose re-encoding differs from the input
(over-wide integers, ``str16`` where ``fixstr`` fits, float32, ...).

Allowed values: ``None``, ``bool``, ``int`` (-2**63 .. 2**64-1), ``bytes``,
``str`` (valid UTF-8), lists and tuples (both encode as arrays; decoding gives
lists), finite ``float`` when allowed, and ``dict`` with ``str`` keys when
allowed (encoded with keys sorted by their UTF-8 bytes; decoding requires that
order and no duplicates).
"""

from __future__ import annotations

import math
from typing import Any

import msgpack

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""Default upper bound on one encoded value (a block of many transactions fits)."""

MAX_DEPTH = 32
"""Deepest nesting of arrays/maps accepted on encode and decode."""

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1


class CodecError(ValueError):
    """Base class: the bytes or value are not canonical Vigil msgpack."""


class OversizeError(CodecError):
    """The input is longer than the allowed maximum."""


class TrailingBytesError(CodecError):
    """Bytes follow the end of the first complete value."""


class MalformedError(CodecError):
    """The input is not valid msgpack (truncated, invalid UTF-8, bad header, ...)."""


class NonCanonicalError(CodecError):
    """The input decodes, but re-encodes to different bytes (e.g. an over-wide integer)."""


class UnexpectedMapError(CodecError):
    """A map appeared where only arrays are allowed."""


class UnexpectedFloatError(CodecError):
    """A float appeared where floats are not allowed, or a float is NaN or infinite."""


class UnsupportedTypeError(CodecError):
    """A value of a type the codec does not carry (extension types, sets, objects, ...)."""


class DepthError(CodecError):
    """Arrays or maps are nested deeper than MAX_DEPTH."""


def _reject_ext(code: int, data: bytes) -> Any:
    raise UnsupportedTypeError(f"msgpack extension type {code} is not allowed")


def _valid(value: Any, allow_float: bool, allow_map: bool, depth: int) -> bool:
    """Whether ``value`` lies in the canonical value space: ``_check`` without building the
    path of every item (the common case is valid; only a failure needs the path, so
    ``encode`` asks ``_check`` for the reason only then)."""
    t = type(value)
    if value is None or t is bool or t is str or t is bytes:
        return True
    if t is int:
        return INT_MIN <= value <= INT_MAX
    if t is float:
        return allow_float and math.isfinite(value)
    if depth >= MAX_DEPTH:
        return False
    if t is list or t is tuple:
        for item in value:
            # Scalars are checked here, not by a call each: most items are scalars, and a
            # call per item was most of what encoding a receipt or a block cost.
            ti = type(item)
            if ti is str or ti is bytes or ti is bool or item is None:
                continue
            if ti is int:
                if not INT_MIN <= item <= INT_MAX:
                    return False
                continue
            if not _valid(item, allow_float, allow_map, depth + 1):
                return False
        return True
    if t is dict:
        if not allow_map:
            return False
        for key, item in value.items():
            if type(key) is not str or not _valid(item, allow_float, allow_map, depth + 1):
                return False
        return True
    return False


def _check(value: Any, allow_float: bool, allow_map: bool, depth: int, path: str) -> None:
    """Raise if ``value`` holds anything outside the canonical value space, naming where."""
    t = type(value)
    if value is None or t is bool or t is str or t is bytes:
        return
    if t is int:
        if not INT_MIN <= value <= INT_MAX:
            raise UnsupportedTypeError(f"{path}: integer {value} outside msgpack range")
        return
    if t is float:
        if not allow_float:
            raise UnexpectedFloatError(f"{path}: float not allowed here")
        if not math.isfinite(value):
            raise UnexpectedFloatError(f"{path}: float must be finite, got {value!r}")
        return
    if depth >= MAX_DEPTH:
        raise DepthError(f"{path}: nested deeper than {MAX_DEPTH}")
    if t is list or t is tuple:
        for i, item in enumerate(value):
            _check(item, allow_float, allow_map, depth + 1, f"{path}[{i}]")
        return
    if t is dict:
        if not allow_map:
            raise UnexpectedMapError(f"{path}: map where an array is expected")
        for key, item in value.items():
            if type(key) is not str:
                raise UnsupportedTypeError(f"{path}: map key {key!r} is not a string")
            _check(item, allow_float, allow_map, depth + 1, f"{path}.{key}")
        return
    raise UnsupportedTypeError(f"{path}: type {t.__name__} cannot be encoded")


def _sorted_maps(value: Any) -> Any:
    """Copy ``value`` with every dict's keys in canonical (UTF-8 byte) order."""
    t = type(value)
    if t is dict:
        return {k: _sorted_maps(value[k]) for k in sorted(value, key=lambda k: k.encode())}
    if t is list or t is tuple:
        return [_sorted_maps(v) for v in value]
    return value


def _has_map(value: Any) -> bool:
    t = type(value)
    if t is dict:
        return True
    if t is list or t is tuple:
        return any(_has_map(v) for v in value)
    return False


def _pack(value: Any, allow_map: bool) -> bytes:
    if allow_map and _has_map(value):
        value = _sorted_maps(value)
    return msgpack.packb(value, use_bin_type=True)


def encode(
    value: Any, *, allow_float: bool = False, allow_map: bool = False, depth: int = 0
) -> bytes:
    """Encode ``value`` canonically; raise a CodecError subclass if it cannot be.

    ``depth``: how deep ``value`` will sit inside an enclosing message whose encoding is
    joined from its parts' (``MAX_DEPTH`` counts from the message's top)."""
    assert 0 <= depth < MAX_DEPTH
    _require_valid(value, allow_float, allow_map, depth)
    return _pack(value, allow_map)


def pack_canonical(value: Any) -> bytes:
    """``encode(value)`` for a value its maker already confined to the canonical value space
    (map-free, float-free, every int in range, nested at most MAX_DEPTH): the bytes without
    the validity walk. Its callers build the value from those types themselves (for
    example vm.values.encode_value, at most vm.gas.MAX_NESTING_DEPTH deep, asserted there,
    drift records and receipt parts), and their tests hold the bytes to ``encode``'s."""
    return msgpack.packb(value, use_bin_type=True)


def _require_valid(value: Any, allow_float: bool, allow_map: bool, depth: int = 0) -> None:
    """Raise the reasoned CodecError (``_check``) if the fast walk finds ``value`` invalid."""
    if not _valid(value, allow_float, allow_map, depth):
        _check(value, allow_float, allow_map, depth, "$")
        raise AssertionError("_valid and _check disagree")  # _check raised for anything invalid


def array_header(count: int) -> bytes:
    """The canonical (shortest) msgpack header of an array of ``count`` items: an array's
    encoding is this header followed by its items' encodings."""
    if count < 16:
        return bytes([0x90 | count])
    if count < 1 << 16:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


def reencode(value: Any) -> bytes:
    """The bytes of a map-free part of a value ``decode`` returned: the bytes it was decoded
    from (the input was canonical), so no check is needed."""
    return msgpack.packb(value, use_bin_type=True)


def decode(
    data: bytes,
    *,
    max_size: int = MAX_MESSAGE_BYTES,
    allow_float: bool = False,
    allow_map: bool = False,
) -> Any:
    """Decode exactly one canonical value from ``data``.

    Raises a CodecError subclass naming the reason for any rejection. Arrays
    come back as lists; maps (when allowed) as dicts in canonical key order.
    """
    if type(data) is not bytes:
        if isinstance(data, bytearray | memoryview):
            data = bytes(data)
        else:
            raise UnsupportedTypeError(f"decode expects bytes, got {type(data).__name__}")
    if len(data) > max_size:
        raise OversizeError(f"input is {len(data)} bytes, limit is {max_size}")
    if not data:
        raise MalformedError("input is empty")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            ext_hook=_reject_ext,
            timestamp=0,
        )
    except msgpack.ExtraData as exc:
        raise TrailingBytesError(f"{len(exc.extra)} trailing byte(s) after the value") from None
    except CodecError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        raise MalformedError(f"not valid msgpack: {exc}") from None
    _require_valid(value, allow_float, allow_map)
    # The re-encoding sorts map keys, so one comparison covers integer, string
    # and float widths, key order and duplicate keys (the last one wins in
    # the dict, so the re-encoding is shorter).
    if _pack(value, allow_map) != data:
        raise NonCanonicalError("input is not canonical (widths, map key order or duplicate keys)")
    return value
