"""Pending transactions: bounded by count and bytes, deduplicated, in arrival order.

Admission checks (signature, authorisation, expiry) are done by the node with
the ledger's rules before :meth:`Mempool.add`; the mempool itself enforces its
bounds and refuses duplicates, so a flood of client traffic is refused with a
reason (HTTP 429) instead of growing until the node dies.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterable

from node.app.execution import MAX_SIGNATURE_CACHE
from node.app.ledger import MAX_KNOWN_TXS
from node.app.types import Tx

MAX_MEMPOOL_TXS = 50_000
"""Default bound on pending transactions."""
MAX_MEMPOOL_BYTES = 64 * 1024 * 1024
"""Default bound on the encoded size of pending transactions."""
MEMPOOL_SHARES = 8
"""One sender (a client key) may hold at most 1/MEMPOOL_SHARES of the mempool's count bound
pending at once, so a single authorised client cannot take every slot and leave everyone
else with 429s (six other clients still find room when one is at its share)."""
assert MEMPOOL_SHARES >= 2 and MAX_MEMPOOL_TXS // MEMPOOL_SHARES >= 1
assert MAX_MEMPOOL_TXS <= MAX_SIGNATURE_CACHE, "every pending tx's verdict stays cached"
assert MAX_MEMPOOL_TXS <= MAX_KNOWN_TXS, "every pending tx stays decoded for the block carrying it"


class MempoolFull(Exception):
    """The mempool is at its count or byte bound."""


class ShareFull(MempoolFull):
    """The sender already holds its share of the mempool (MEMPOOL_SHARES)."""


class Mempool:
    def __init__(self, max_txs: int = MAX_MEMPOOL_TXS, max_bytes: int = MAX_MEMPOOL_BYTES) -> None:
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self._txs: OrderedDict[bytes, tuple[Tx, int]] = OrderedDict()
        self.bytes = 0
        self.share = max(1, max_txs // MEMPOOL_SHARES)
        """Pending transactions one sender may hold."""
        self._per_sender: dict[bytes, int] = {}
        self._expiry: list[tuple[int, bytes]] = []
        """(valid_until_height, id) of pending transactions, a min-heap: finding the expired
        ones at each height costs what expires, not a scan of the whole mempool. Entries of
        removed transactions stay until they reach the top (at most one per add), or until
        they outnumber the pending ones twice over, when the heap is rebuilt."""

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._txs

    def get(self, tx_id: bytes) -> Tx | None:
        """The pending copy of a transaction, if any."""
        entry = self._txs.get(tx_id)
        return None if entry is None else entry[0]

    def add(self, tx: Tx, size: int) -> bool:
        """Add a checked transaction; False if already pending; MempoolFull past a bound."""
        if tx.id in self._txs:
            return False
        if len(self._txs) >= self.max_txs:
            raise MempoolFull(f"mempool holds {len(self._txs)} transactions, its limit")
        if self.bytes + size > self.max_bytes:
            raise MempoolFull(f"mempool holds {self.bytes} bytes; {size} more exceed its limit")
        held = self._per_sender.get(tx.sender, 0)
        if held >= self.share:
            raise ShareFull(
                f"this sender already has {held} pending transactions, its share of the "
                f"mempool; wait for some to commit"
            )
        self._txs[tx.id] = (tx, size)
        self._per_sender[tx.sender] = held + 1
        self.bytes += size
        heapq.heappush(self._expiry, (tx.valid_until_height, tx.id))
        if len(self._expiry) > 2 * len(self._txs) + 64:
            self._expiry = [(t.valid_until_height, i) for i, (t, _) in self._txs.items()]
            heapq.heapify(self._expiry)
        return True

    def oldest(self, limit: int) -> list[Tx]:
        """Up to ``limit`` pending transactions, oldest first."""
        out = []
        for tx, _ in self._txs.values():
            if len(out) >= limit:
                break
            out.append(tx)
        return out

    def remove(self, tx_ids: Iterable[bytes]) -> list[bytes]:
        """Drop transactions (committed or rejected); return the ids that were pending."""
        removed = []
        for tx_id in tx_ids:
            entry = self._txs.pop(tx_id, None)
            if entry is not None:
                self.bytes -= entry[1]
                sender = entry[0].sender
                left = self._per_sender[sender] - 1
                if left:
                    self._per_sender[sender] = left
                else:
                    del self._per_sender[sender]
                removed.append(tx_id)
        assert self.bytes >= 0 and len(self._per_sender) <= len(self._txs)
        return removed

    def expired(self, height: int) -> list[bytes]:
        """Ids of pending transactions that can no longer be committed at ``height`` (they
        stay pending until removed)."""
        out = []
        while self._expiry and self._expiry[0][0] < height:
            _, tx_id = heapq.heappop(self._expiry)
            if tx_id in self._txs:
                out.append(tx_id)
        return out
