"""Canonical msgpack: round trips, and every non-canonical input rejected with its own error."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import codec
from consensus.codec import (
    DepthError,
    MalformedError,
    NonCanonicalError,
    OversizeError,
    TrailingBytesError,
    UnexpectedFloatError,
    UnexpectedMapError,
    UnsupportedTypeError,
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(codec.INT_MIN, codec.INT_MAX)
    | st.binary(max_size=300)
    | st.text(max_size=300)
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=8), max_leaves=40)
float_values = st.recursive(
    scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=6),
    max_leaves=20,
)
map_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)


def as_lists(value: object) -> object:
    if isinstance(value, tuple | list):
        return [as_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: as_lists(v) for k, v in value.items()}
    return value


@settings(max_examples=400, deadline=None)
@given(values)
def test_round_trip(value: object) -> None:
    data = codec.encode(value)
    assert codec.decode(data) == value
    assert codec.encode(codec.decode(data)) == data


@settings(max_examples=200, deadline=None)
@given(float_values)
def test_round_trip_with_floats_when_allowed(value: object) -> None:
    data = codec.encode(value, allow_float=True)
    assert codec.decode(data, allow_float=True) == value


@settings(max_examples=200, deadline=None)
@given(map_values)
def test_maps_round_trip_in_canonical_key_order(value: object) -> None:
    data = codec.encode(value, allow_map=True)
    back = codec.decode(data, allow_map=True)
    assert back == value
    assert codec.encode(back, allow_map=True) == data


@settings(max_examples=400, deadline=None)
@given(values, st.data())
def test_mutated_encoding_is_rejected_or_a_different_value(
    value: object, data: st.DataObject
) -> None:
    raw = bytearray(codec.encode(value))
    kind = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate", "append"]))
    pos = data.draw(st.integers(0, len(raw) - 1))
    if kind == "flip":
        raw[pos] ^= data.draw(st.integers(1, 255))
    elif kind == "insert":
        raw.insert(pos, data.draw(st.integers(0, 255)))
    elif kind == "delete":
        del raw[pos]
    elif kind == "truncate":
        del raw[pos:]
    else:
        raw.extend(data.draw(st.binary(min_size=1, max_size=4)))
    try:
        decoded = codec.decode(bytes(raw))
    except codec.CodecError:
        return
    # Accepted only if it is itself canonical: a different value with a different hash.
    assert codec.encode(decoded) == bytes(raw) != codec.encode(value)


def test_tuples_encode_as_arrays() -> None:
    assert codec.encode((1, (2, b"x"))) == codec.encode([1, [2, b"x"]])


@pytest.mark.parametrize(
    "raw",
    [
        b"\xcc\x05",  # uint8 holding a fixint value
        b"\xcd\x00\x05",  # uint16
        b"\xce\x00\x00\x00\x05",  # uint32
        b"\xcf\x00\x00\x00\x00\x00\x00\x00\x05",  # uint64
        b"\xd0\x01",  # int8 holding a positive fixint
        b"\xd1\xff\xff",  # int16 -1
        b"\xd9\x01a",  # str8 for a fixstr
        b"\xda\x00\x01a",  # str16
        b"\xc5\x00\x01a",  # bin16 for a bin8
        b"\xdc\x00\x01\x01",  # array16 for a fixarray
        b"\xdd\x00\x00\x00\x01\x01",  # array32
    ],
)
def test_over_wide_encodings_are_non_canonical(raw: bytes) -> None:
    with pytest.raises(NonCanonicalError):
        codec.decode(raw)


def test_float32_is_non_canonical_even_where_floats_are_allowed() -> None:
    raw = b"\xca" + struct.pack(">f", 1.5)
    with pytest.raises(NonCanonicalError):
        codec.decode(raw, allow_float=True)
    with pytest.raises(UnexpectedFloatError):
        codec.decode(raw)


def test_floats_rejected_unless_allowed_and_never_nan() -> None:
    raw = msgpack.packb([1, 2.5])
    with pytest.raises(UnexpectedFloatError):
        codec.decode(raw)
    assert codec.decode(raw, allow_float=True) == [1, 2.5]
    with pytest.raises(UnexpectedFloatError):
        codec.decode(msgpack.packb(float("nan")), allow_float=True)
    with pytest.raises(UnexpectedFloatError):
        codec.encode(float("inf"), allow_float=True)
    with pytest.raises(UnexpectedFloatError):
        codec.encode([0.5])


def test_maps_rejected_where_arrays_are_expected() -> None:
    raw = msgpack.packb({"a": 1})
    with pytest.raises(UnexpectedMapError):
        codec.decode(raw)
    with pytest.raises(UnexpectedMapError):
        codec.encode([{"a": 1}])


def test_map_key_order_and_duplicates_are_non_canonical() -> None:
    unsorted = b"\x82\xa1b\x01\xa1a\x02"
    with pytest.raises(NonCanonicalError):
        codec.decode(unsorted, allow_map=True)
    duplicate = b"\x82\xa1a\x01\xa1a\x02"
    with pytest.raises(NonCanonicalError):
        codec.decode(duplicate, allow_map=True)
    assert codec.decode(b"\x82\xa1a\x02\xa1b\x01", allow_map=True) == {"a": 2, "b": 1}
    with pytest.raises(UnsupportedTypeError):
        codec.encode({1: 2}, allow_map=True)


def test_trailing_bytes_rejected() -> None:
    with pytest.raises(TrailingBytesError):
        codec.decode(codec.encode([1, 2]) + b"\x00")


def test_truncated_and_reserved_bytes_are_malformed() -> None:
    with pytest.raises(MalformedError):
        codec.decode(codec.encode([1, b"abc"])[:-1])
    with pytest.raises(MalformedError):
        codec.decode(b"\xc1")
    with pytest.raises(MalformedError):
        codec.decode(b"")
    with pytest.raises(MalformedError):
        codec.decode(b"\xa2\xff\xfe")  # invalid UTF-8 in a str


def test_extension_types_and_timestamps_rejected() -> None:
    with pytest.raises(UnsupportedTypeError):
        codec.decode(b"\xd4\x05\x00")
    with pytest.raises(UnsupportedTypeError):
        codec.decode(b"\xd6\xff\x00\x00\x00\x00")
    with pytest.raises(UnsupportedTypeError):
        codec.encode({1, 2})
    with pytest.raises(UnsupportedTypeError):
        codec.encode(2**64)
    with pytest.raises(UnsupportedTypeError):
        codec.decode("text")  # type: ignore[arg-type]


def test_size_limit_at_its_edge() -> None:
    raw = codec.encode(b"x" * 100)
    assert codec.decode(raw, max_size=len(raw)) == b"x" * 100
    with pytest.raises(OversizeError):
        codec.decode(raw, max_size=len(raw) - 1)
    huge = codec.encode(b"x" * codec.MAX_MESSAGE_BYTES)
    with pytest.raises(OversizeError):
        codec.decode(huge)


def nested(depth: int) -> object:
    value: object = 0
    for _ in range(depth):
        value = [value]
    return value


def test_depth_limit_at_its_edge() -> None:
    ok = nested(codec.MAX_DEPTH)
    assert codec.decode(codec.encode(ok)) == ok
    with pytest.raises(DepthError):
        codec.encode(nested(codec.MAX_DEPTH + 1))
    raw = b"\x91" * (codec.MAX_DEPTH + 1) + b"\x00"
    with pytest.raises(DepthError):
        codec.decode(raw)
    with pytest.raises(codec.CodecError):
        codec.decode(b"\x91" * 100_000 + b"\x00")


def test_integer_range_edges() -> None:
    for v in (codec.INT_MIN, codec.INT_MAX, 0, -1, 127, 128, -32, -33):
        assert codec.decode(codec.encode(v)) == v
    with pytest.raises(UnsupportedTypeError):
        codec.encode(codec.INT_MIN - 1)


def test_bool_and_int_stay_distinct() -> None:
    assert codec.encode(True) != codec.encode(1)
    assert codec.decode(codec.encode(True)) is True


anything = st.recursive(
    scalars
    | st.floats()
    | st.integers(codec.INT_MIN - 2, codec.INT_MAX + 2)
    | st.sets(st.integers(), max_size=2)
    | st.builds(object),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4) | st.integers(0, 3), inner, max_size=3)
    ),
    max_leaves=20,
)


def deep(levels: int) -> list:
    """``levels`` arrays, each inside the next."""
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


@settings(max_examples=400)
@given(anything, st.booleans(), st.booleans())
def test_the_fast_validity_walk_agrees_with_the_reasoned_check(
    value: object, allow_float: bool, allow_map: bool
) -> None:
    """encode decides with _valid and asks _check only for the reason: the two never differ."""
    try:
        codec._check(value, allow_float, allow_map, 0, "$")
        reasoned = True
    except codec.CodecError:
        reasoned = False
    assert codec._valid(value, allow_float, allow_map, 0) == reasoned


@pytest.mark.parametrize("levels", [codec.MAX_DEPTH, codec.MAX_DEPTH + 1])
def test_the_fast_walk_holds_the_depth_edge(levels: int) -> None:
    ok = levels <= codec.MAX_DEPTH
    assert codec._valid(deep(levels), False, False, 0) == ok
    if not ok:
        with pytest.raises(DepthError):
            codec.encode(deep(levels))


def test_a_part_encoded_for_its_depth_in_a_message_obeys_the_messages_depth_limit() -> None:
    def nested(depth: int) -> Any:
        value: Any = 1
        for _ in range(depth):
            value = [value]
        return value

    for at in (0, 1, 3, codec.MAX_DEPTH - 1):
        deepest = nested(codec.MAX_DEPTH - at)  # arrays at message levels at..MAX_DEPTH-1
        assert codec.encode(deepest, depth=at) == codec.encode(deepest)
        with pytest.raises(codec.DepthError):
            codec.encode([deepest], depth=at)
        message = deepest
        for _ in range(at):  # the part inside ``at`` arrays: a message the decoder takes
            message = [message]
        assert codec.decode(codec.encode(message)) == message
        with pytest.raises(codec.DepthError):
            codec.encode([message])
    with pytest.raises(AssertionError):
        codec.encode(1, depth=codec.MAX_DEPTH)
