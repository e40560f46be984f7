"""BoundedMap against a plain model: the newest ``limit`` keys by last insertion, each with
its last value; copies and pickles keep the bound."""

from __future__ import annotations

import copy
import pickle

from hypothesis import given
from hypothesis import strategies as st

from consensus.bounded import BoundedMap

ops = st.lists(
    st.one_of(
        st.tuples(st.just("one"), st.integers(0, 12), st.integers()),
        st.tuples(
            st.just("all"), st.lists(st.tuples(st.integers(0, 12), st.integers()), max_size=8)
        ),
    ),
    max_size=60,
)


@given(st.integers(1, 6), ops)
def test_holds_the_newest_keys_with_their_last_values(limit: int, steps: list) -> None:
    bounded: BoundedMap[int, int] = BoundedMap(limit)
    model: list[tuple[int, int]] = []  # oldest first, each key once
    for step in steps:
        pairs = [(step[1], step[2])] if step[0] == "one" else step[1]
        if step[0] == "one":
            bounded.remember(step[1], step[2])
        else:
            bounded.remember_all(pairs)
        for key, value in pairs:
            model = [(k, v) for k, v in model if k != key] + [(key, value)]
        model = model[-limit:]
        assert list(bounded.items()) == model
        assert len(bounded) <= limit


def test_copies_and_pickles_keep_the_bound_and_the_order() -> None:
    bounded: BoundedMap[str, int] = BoundedMap(3)
    bounded.remember_all((k, i) for i, k in enumerate("abcd"))
    for twin in (copy.copy(bounded), copy.deepcopy(bounded), pickle.loads(pickle.dumps(bounded))):
        assert type(twin) is BoundedMap and twin.limit == 3
        assert list(twin.items()) == [("b", 1), ("c", 2), ("d", 3)]
        twin.remember("e", 4)
        assert list(twin) == ["c", "d", "e"]
    assert list(bounded) == ["b", "c", "d"]  # the copies are their own


def test_reads_do_not_reorder() -> None:
    bounded: BoundedMap[str, int] = BoundedMap(2)
    bounded.remember("a", 1)
    bounded.remember("b", 2)
    assert bounded.get("a") == 1 and "a" in bounded and bounded["a"] == 1
    bounded.remember("c", 3)
    assert list(bounded) == ["b", "c"]
