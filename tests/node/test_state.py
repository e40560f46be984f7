"""The state overlay: reverting to a mark undoes exactly the writes made since."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from node.app.state import Overlay

COMMITTED = {b"a": b"1", b"b": b"2"}
keys = st.sampled_from([b"a", b"b", b"c", b"d"])
ops = st.lists(st.tuples(keys, st.none() | st.binary(min_size=1, max_size=3)), max_size=12)


def apply(state: Overlay, changes: list) -> None:
    for key, value in changes:
        if value is None:
            state.delete(key)
        else:
            state.put(key, value)


@settings(max_examples=200, deadline=None)
@given(ops, ops, ops)
def test_revert_restores_the_view_at_each_mark(first: list, second: list, third: list) -> None:
    state = Overlay(COMMITTED.get)
    apply(state, first)
    outer = state.snapshot()
    seen_outer = {k: state.get(k) for k in (b"a", b"b", b"c", b"d")}
    writes_outer = state.writes
    apply(state, second)
    inner = state.snapshot()
    writes_inner = state.writes
    apply(state, third)
    state.revert(inner)
    assert state.writes == writes_inner
    state.revert(outer)
    assert state.writes == writes_outer
    assert {k: state.get(k) for k in (b"a", b"b", b"c", b"d")} == seen_outer
    assert state.wrote(b"a") == (b"a" in writes_outer)


def test_write_limits_are_refusals_at_their_edge() -> None:
    """Fault 9: the block's write bounds were asserts (gone under python -O, a crash otherwise).

    Now the write that would cross a bound raises StateLimitExceeded, a Revert:
    the transaction making it fails on every node alike and nothing it wrote stays.
    """
    import pytest

    from node.app.state import MAX_JOURNAL_ENTRIES, MAX_WRITES_PER_BLOCK, Revert, StateLimitExceeded

    assert MAX_WRITES_PER_BLOCK <= MAX_JOURNAL_ENTRIES
    state = Overlay(COMMITTED.get, max_writes=3, max_journal=5)
    for key in (b"k1", b"k2", b"k3"):
        state.put(key, b"v")  # exactly at the key bound
    state.put(b"k1", b"again")  # rewriting a key adds no key
    with pytest.raises(StateLimitExceeded):
        state.put(b"k4", b"v")
    assert not state.wrote(b"k4")
    state.delete(b"k2")  # the fifth journal entry: at the bound
    with pytest.raises(Revert, match="more than 5 writes"):
        state.put(b"k3", b"v")
    mark = 2
    state.revert(mark)
    state.put(b"k3", b"fits again")
