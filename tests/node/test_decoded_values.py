"""Stored values decoded once and shared: the same value as a fresh decode, bounded in size."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.app import drift_state
from node.app.drift_state import DriftRecord
from node.app.state import MAX_CACHED_VALUE_BYTES, _decoded_small, decoded_value
from vm.errors import VMError
from vm.gas import MAX_STORAGE_VALUE_BYTES
from vm.values import decode_value, encode_value

scalars = st.none() | st.booleans() | st.integers(-(2**200), 2**200) | st.text(max_size=8)
values = st.recursive(
    scalars | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)


@settings(max_examples=200)
@given(values)
def test_a_shared_decoded_value_equals_a_fresh_decode(value: object) -> None:
    raw = encode_value(value, MAX_STORAGE_VALUE_BYTES)
    assert decoded_value(raw) == decode_value(raw, MAX_STORAGE_VALUE_BYTES) == value


def test_only_values_up_to_the_cached_size_are_kept() -> None:
    _decoded_small.cache_clear()
    for size in (MAX_CACHED_VALUE_BYTES - 8, MAX_CACHED_VALUE_BYTES + 8):
        raw = encode_value(b"x" * size, MAX_STORAGE_VALUE_BYTES)
        assert decoded_value(raw) == b"x" * size
    assert _decoded_small.cache_info().currsize == 1  # the larger one is decoded, not kept


def test_damaged_bytes_are_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(VMError):
            decoded_value(b"\xc1")


def test_a_drift_record_read_back_from_its_bytes_is_the_record_written() -> None:
    record = DriftRecord(window_count=3, windows=2, last_psi_ppm=7, history=((1, 2, 3),))
    raw = record.encode()
    drift_state._RECENT.clear()
    fresh = DriftRecord.decode(raw)
    drift_state._RECENT[raw] = record
    assert DriftRecord.decode(raw) is record and fresh == record


def test_an_overlay_remembers_committed_reads_within_its_byte_bound(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """One block's execution reads the same committed entries again and again: each is read
    from storage once, writes still win, and past MAX_OVERLAY_READ_BYTES reads go to storage."""
    from node.app import state as state_module
    from node.app.state import Overlay

    stored = {b"a": b"1" * 10, b"b": b"2" * 10}
    reads: list[bytes] = []

    def read(key: bytes) -> bytes | None:
        reads.append(key)
        return stored.get(key)

    overlay = Overlay(read)
    assert [overlay.get(b"a") for _ in range(3)] == [b"1" * 10] * 3 and reads == [b"a"]
    overlay.put(b"a", b"new")
    assert overlay.get(b"a") == b"new" and overlay.get(b"missing") is None
    overlay.get(b"missing")
    assert reads == [b"a", b"missing"]  # an absent key is remembered too
    monkeypatch.setattr(state_module, "MAX_OVERLAY_READ_BYTES", 11)  # one entry of 11 bytes
    small = Overlay(read)
    reads.clear()
    small.get(b"a"), small.get(b"a"), small.get(b"b"), small.get(b"b")
    assert reads == [b"a", b"b", b"b"]  # "a" fits the bound exactly; "b" is past it
