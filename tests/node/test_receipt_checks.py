"""Receipts and events check themselves on a fast path (node/app/types.py): a differential
test against the generic record checks, which stay the rule, at the limits' edges too."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import codec
from consensus.record import FieldError, Record
from node.app.types import (
    MAX_ERROR_BYTES,
    MAX_EVENT_DATA_BYTES,
    MAX_EVENTS_PER_RECEIPT,
    MAX_RESULT_BYTES,
    Event,
    Receipt,
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**65)
    | st.binary(max_size=8)
    | st.text(max_size=4)
    | st.floats(allow_nan=True)
    | st.dictionaries(st.text(max_size=2), st.integers(0, 3), max_size=2)
    | st.sets(st.integers(0, 3), max_size=2)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple),
    max_leaves=8,
)


def nested(depth: int, leaf: Any = 1) -> Any:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


EDGES = (
        nested(27), nested(28), nested(29), nested(30), nested(31), nested(32),
        b"x" * (MAX_EVENT_DATA_BYTES - 3), b"x" * (MAX_EVENT_DATA_BYTES - 2),
        b"x" * (MAX_EVENT_DATA_BYTES + 1), b"x" * (MAX_RESULT_BYTES - 5),
        b"x" * (MAX_RESULT_BYTES - 4), b"x" * (MAX_RESULT_BYTES + 1),
)  # fmt: skip
edge_values = st.sampled_from(EDGES)
any_value = values | edge_values
names = (
    st.text(max_size=3) | st.sampled_from(["é" * 32, "é" * 33, "a" * 64, "a" * 65]) | st.integers()
)
errors = (
    st.sampled_from(["", "boom", "x" * MAX_ERROR_BYTES, "x" * (MAX_ERROR_BYTES + 1)])
    | st.text(max_size=3)
    | st.none()
)


def outcome(make: Any) -> tuple[str, Any]:
    """('ok', (fields, encoding)) or the error's type and text, for one way of making a record."""
    try:
        record = make()
    except FieldError as exc:
        return "field", str(exc)
    try:
        encoding = record.encode()
    except codec.CodecError as exc:
        return "encode", type(exc).__name__
    fields = tuple(getattr(record, name) for name, _ in type(record).schema())
    return "ok", (fields, encoding)


def generic(cls: type[Record], *fields: Any) -> Record:
    """The record the generic checks alone make (its encoding is computed the generic way,
    ``Record.encode``, when asked)."""
    record = cls.__new__(cls)
    for (name, _), value in zip(cls.schema(), fields, strict=True):
        object.__setattr__(record, name, value)
    Record._validate(record, cls._path())
    return record


@settings(max_examples=400, deadline=None)
@given(name=names, data=any_value)
def test_an_event_checks_and_encodes_as_the_generic_record_does(name: Any, data: Any) -> None:
    fast = outcome(lambda: Event(name, data))
    slow = outcome(lambda: generic(Event, name, data))
    assert fast == slow


@settings(max_examples=400, deadline=None)
@given(
    tx_hash=st.binary(min_size=31, max_size=33) | st.text(max_size=2),
    status=st.sampled_from(["ok", "reverted", "invalid", "done", b"ok"]),
    gas=st.integers(-1, 2**64) | st.booleans() | st.sampled_from([0, 2**63 - 1, 2**63]),
    result=any_value,
    events=st.lists(st.tuples(names, any_value), max_size=3)
    | st.sampled_from(
        [[("e", 1)] * MAX_EVENTS_PER_RECEIPT, [("e", 1)] * (MAX_EVENTS_PER_RECEIPT + 1)]
    ),
    error=errors,
    as_list=st.booleans(),
)
def test_a_receipt_checks_and_encodes_as_the_generic_record_does(  # type: ignore[no-untyped-def]
    tx_hash, status, gas, result, events, error, as_list
) -> None:
    made: list[Event] = []
    for name, data in events:
        try:
            made.append(Event(name, data))
        except FieldError:
            return  # the event itself is refused, on both paths (the test above)
    held = list(made) if as_list else tuple(made)
    fast = outcome(lambda: Receipt(tx_hash, status, gas, result, held, error))
    slow = outcome(lambda: generic(Receipt, tx_hash, status, gas, result, held, error))
    assert fast == slow
    if fast[0] == "ok":
        decoded = Receipt.decode(fast[1][1])
        assert decoded.encode() == fast[1][1]


def test_results_and_event_data_at_the_depth_and_size_edges() -> None:
    """Every edge value as a result and as event data in an otherwise valid receipt (the
    random test above rarely draws a valid receipt around one)."""
    for value in EDGES:
        for status, error in (("ok", ""), ("reverted", "why")):
            fast = outcome(lambda: Receipt(bytes(32), status, 7, value, (), error))  # noqa: B023
            slow = outcome(lambda: generic(Receipt, bytes(32), status, 7, value, (), error))  # noqa: B023
            assert fast == slow, (len(codec.encode(value)), status)
        try:
            event = Event("e", value)
        except FieldError:
            assert outcome(lambda: generic(Event, "e", value))[0] == "field"  # noqa: B023
            continue
        fast = outcome(lambda: Receipt(bytes(32), "ok", 7, None, (event,), ""))  # noqa: B023
        slow = outcome(lambda: generic(Receipt, bytes(32), "ok", 7, None, (event,), ""))  # noqa: B023
        assert fast == slow
    assert "_record_bytes" in Receipt(bytes(32), "ok", 7, [1, [2]], (Event("e", 1),), "").__dict__
