"""The mempool against a plain model: bounds, order, removal and expiry at each height."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_helpers import anchor_tx

from consensus.crypto import PrivateKey
from node.mempool import MEMPOOL_SHARES, Mempool, MempoolFull, ShareFull

SENDERS = [PrivateKey.from_seed(bytes([100 + i]) * 32) for i in range(8)]
POOL = [anchor_tx(f"pending {i}".encode(), key=SENDERS[i % 8], until=1 + i % 7) for i in range(24)]
"""Three transactions from each of eight senders: both the count bound and the shares bite."""

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
    pool = Mempool(max_txs=2 * MEMPOOL_SHARES, max_bytes=10_000)
    share = pool.share
    assert share == 2  # a sender may hold 2 of the 16 slots
    model: dict[bytes, int] = {}  # id -> valid_until, in arrival order
    sender_of = {tx.id: tx.sender for tx in POOL}
    for op, arg in ops:
        if op == "add":
            tx = POOL[arg]
            held = sum(sender_of[i] == tx.sender for i in model)
            if tx.id in model:
                assert pool.add(tx, 100) is False
            elif len(model) >= pool.max_txs:
                with pytest.raises(MempoolFull):
                    pool.add(tx, 100)
            elif held >= share:
                with pytest.raises(ShareFull):
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


def test_one_sender_holds_its_share_and_no_more_while_others_still_find_room() -> None:
    pool = Mempool(max_txs=16, max_bytes=10_000)
    assert pool.share == 16 // MEMPOOL_SHARES
    mine = [anchor_tx(f"mine {i}".encode(), key=SENDERS[0]) for i in range(pool.share + 1)]
    for tx in mine[:-1]:
        assert pool.add(tx, 10)  # up to the share exactly
    with pytest.raises(ShareFull):
        pool.add(mine[-1], 10)
    assert pool.add(anchor_tx(b"theirs", key=SENDERS[1]), 10)  # another sender is unaffected
    pool.remove([mine[0].id])
    assert pool.add(mine[-1], 10)  # a slot of its own freed
