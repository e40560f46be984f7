"""Admitted transactions kept by their encoding, and block decoding that reuses them.

Every transaction reaches a node twice: alone (from a client or a peer's
gossip, decoded and checked at admission) and again inside a proposal. Decoding
a block checked every field of every transaction a second time, about a sixth
of a replica's work per transaction (issue 15). A block is canonical msgpack,
so each transaction inside it re-encodes to exactly the bytes it arrived as;
where those bytes are those of a transaction this node already decoded, the
decoded object is used as it is. Anything else is decoded and checked in full,
so a block decodes to the same value either way; only the work differs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from consensus import codec
from node.app.types import MAX_BLOCK_TXS, Block, Tx


class KnownTxs:
    """A bounded map from a transaction's canonical encoding to its decoded object."""

    def __init__(self, capacity: int) -> None:
        assert capacity > 0
        self.capacity = capacity
        self._by_encoding: OrderedDict[bytes, Tx] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_encoding)

    def add(self, txs: Iterable[Tx]) -> None:
        for tx in txs:
            key = tx.encode()
            self._by_encoding[key] = tx
            self._by_encoding.move_to_end(key)
        while len(self._by_encoding) > self.capacity:
            self._by_encoding.popitem(last=False)

    def forget(self, txs: Iterable[Tx]) -> None:
        """Drop committed transactions: they never come again (a second copy is refused)."""
        for tx in txs:
            self._by_encoding.pop(tx.encode(), None)

    def get(self, wire: Any) -> Tx | None:
        """The known transaction whose wire form (from a canonical decode) is ``wire``."""
        if type(wire) is not list:
            return None
        return self._by_encoding.get(codec.reencode(wire))


def decode_block(raw: bytes, known: KnownTxs, max_size: int | None = None) -> Block:
    """``Block.decode(raw)``, taking known transactions as they are (raises like it)."""
    wire = codec.decode(raw, max_size=max_size or Block.MAX_BYTES, allow_float=True)
    if type(wire) is list and len(wire) == 2 and type(wire[1]) is list:
        txs = wire[1]
        if len(txs) <= MAX_BLOCK_TXS:  # longer: from_wire refuses it, naming the limit
            wire = [wire[0], [known.get(item) or item for item in txs]]
    return Block.from_wire(wire)
