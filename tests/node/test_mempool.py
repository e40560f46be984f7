"""The mempool against a plain model: bounds, order, removal and expiry at each height."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_helpers import anchor_tx

from node.mempool import Mempool, MempoolFull

POOL = [anchor_tx(f"pending {i}".encode(), until=1 + i % 7) for i in range(24)]

steps = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, len(POOL) - 1)),
        st.tuples(st.just("remove"), st.integers(0, len(POOL) - 1)),
        st.tuples(st.just("expire"), st.integers(1, 9)),
    ),
    max_size=80,
)


@settings(max_examples=300)
@given(steps)
def test_the_mempool_matches_a_plain_model(ops: list[tuple[str, int]]) -> None:
    pool = Mempool(max_txs=10, max_bytes=10_000)
    model: dict[bytes, int] = {}  # id -> valid_until, in arrival order
    for op, arg in ops:
        if op == "add":
            tx = POOL[arg]
            if tx.id in model:
                assert pool.add(tx, 100) is False
            elif len(model) >= 10:
                with pytest.raises(MempoolFull):
                    pool.add(tx, 100)
            else:
                assert pool.add(tx, 100) is True
                model[tx.id] = tx.valid_until_height
        elif op == "remove":
            tx = POOL[arg]
            assert pool.remove([tx.id]) == ([tx.id] if model.pop(tx.id, None) else [])
        else:
            expected = {i for i, until in model.items() if until < arg}
            found = pool.expired(arg)
            assert set(found) <= expected  # never a live one; earlier calls may have named some
            for tx_id in pool.remove(found):
                del model[tx_id]
            for tx_id in pool.remove(expected - set(found)):  # named by an earlier height
                del model[tx_id]
        assert [t.id for t in pool.oldest(100)] == list(model)
        assert pool.bytes == 100 * len(model)


def test_expiry_names_each_pending_transaction_once_as_its_height_passes() -> None:
    pool = Mempool()
    for tx in POOL[:7]:
        pool.add(tx, 10)
    assert pool.expired(1) == []
    first = pool.expired(3)  # valid until 1 and 2
    assert sorted(first) == sorted(t.id for t in POOL[:2])
    assert pool.expired(3) == []  # already named; the node removes them
    pool.remove(first)
    assert len(pool.expired(100)) == 5


def test_the_expiry_heap_stays_bounded_under_churn() -> None:
    pool = Mempool()
    for _ in range(50):
        for tx in POOL:
            pool.add(tx, 10)
        pool.remove([tx.id for tx in POOL])
    assert len(pool._expiry) <= 2 * len(pool) + 64 + len(POOL)
