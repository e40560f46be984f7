"""Transactions and score payloads check themselves without the generic per-field walk
(node/app/types.py): a differential test against the generic record checks, which stay the
rule, on valid transactions and on every kind of damage to their wire form."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import txs

from consensus import codec
from consensus.record import FieldError, Record
from node.app.types import MAX_FEATURES, MAX_SCORE_REFERENCE_BYTES, ScorePayload, Tx


@contextlib.contextmanager
def generic_checks() -> Iterator[None]:
    """Tx and ScorePayload checked by the generic record checks alone, meanwhile."""
    saved = {cls: cls.__dict__["_validate"] for cls in (Tx, ScorePayload)}
    try:
        for cls in saved:
            cls._validate = Record._validate  # type: ignore[method-assign]
        yield
    finally:
        for cls, method in saved.items():
            cls._validate = method  # type: ignore[method-assign]


def outcome(wire: Any) -> tuple[str, Any]:
    try:
        tx = Tx.from_wire(wire)
    except FieldError as exc:
        return "field", str(exc)
    return "ok", (tuple(getattr(tx, name) for name, _ in Tx.schema()), Record.encode(tx))


ODD = (
    [None, True, 0, -1, 2**63, 2**63 - 1, 1.5, math.inf, math.nan, "", "x", "Bad", "a" * 65,
     "é" * 65, b"", bytes(16), bytes(32), bytes(64), [], [1.0], (1.0,), {"a": 1}]
)  # fmt: skip
odd = st.sampled_from(ODD)
features = st.lists(
    st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1.7e308, -1.7e308, 0.0])
    | odd, max_size=6,
) | st.sampled_from([[0.5] * MAX_FEATURES, [0.5] * (MAX_FEATURES + 1), [1e308] * 4])  # fmt: skip
references = st.text(max_size=4) | st.sampled_from(
    ["r" * MAX_SCORE_REFERENCE_BYTES, "r" * (MAX_SCORE_REFERENCE_BYTES + 1), "é" * 64, "é" * 65]
)


@st.composite
def damaged(draw: st.DrawFn) -> list:
    """A transaction's wire form with some of its fields (score payloads' too) replaced."""
    tx = draw(txs())
    wire = codec.decode(Record.encode(tx), allow_float=True)
    if draw(st.booleans()):
        wire[4] = "score"
        wire[5] = [draw(st.sampled_from(["fraud", "Fraud", "f" * 64, "f" * 65]) | odd),
                   draw(features), draw(references | odd)]  # fmt: skip
    for _ in range(draw(st.integers(0, 2))):
        field = draw(st.integers(0, 6))
        wire[field] = draw(odd | st.sampled_from(["anchor", "score", "call", "deploy", "vote"]))
    if draw(st.integers(0, 9)) == 0:
        wire = wire[: draw(st.integers(0, 6))]
    return wire


@settings(max_examples=500, deadline=None)
@given(damaged())
def test_a_transaction_checks_as_the_generic_record_does(wire: list) -> None:
    fast = outcome(wire)
    with generic_checks():
        slow = outcome(wire)
    assert fast == slow


@settings(max_examples=100, deadline=None)
@given(txs())
def test_a_valid_transaction_decodes_to_the_same_record_either_way(tx: Tx) -> None:
    raw = Record.encode(tx)
    fast = Tx.decode(raw)
    with generic_checks():
        slow = Tx.decode(raw)
    assert fast == slow == tx and type(fast.payload) is type(slow.payload)
    assert fast.encode() == slow.encode() == raw


def test_every_field_of_a_score_transaction_at_every_odd_value() -> None:
    """Each field of a valid score transaction (and of its payload) replaced in turn by each
    odd value: the random test above draws a valid rest of the transaction too rarely."""
    from strategies import CHAIN, CHAIN_HASH, KEYS

    payload = ScorePayload("fraud", (0.5, -1.25), "ref")
    tx = Tx.create(KEYS[0], CHAIN, CHAIN_HASH, payload, 10)
    base = codec.decode(Record.encode(tx), allow_float=True)
    candidates = [*ODD, 1, 2**63 - 1, "score", "anchor"]
    for field in range(7):
        for value in candidates:
            wire = [*base[:field], value, *base[field + 1 :]]
            fast = outcome(wire)
            with generic_checks():
                assert fast == outcome(wire), (field, value)
    for field in range(3):
        for value in candidates:
            wire = [*base[:5], [*base[5][:field], value, *base[5][field + 1 :]], base[6]]
            fast = outcome(wire)
            with generic_checks():
                assert fast == outcome(wire), ("payload", field, value)
