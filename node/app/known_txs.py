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

from collections.abc import Iterable
from typing import Any

import msgpack

from consensus import codec
from consensus.bounded import BoundedMap
from node.app.types import MAX_BLOCK_TXS, Block, Header, Tx


class KnownTxs:
    """A bounded map from a transaction's canonical encoding to its decoded object."""

    def __init__(self, capacity: int) -> None:
        self._by_encoding: BoundedMap[bytes, Tx] = BoundedMap(capacity)

    def __len__(self) -> int:
        return len(self._by_encoding)

    def add(self, txs: Iterable[Tx]) -> None:
        self._by_encoding.remember_all((tx.encode(), tx) for tx in txs)

    def forget(self, txs: Iterable[Tx]) -> None:
        """Drop committed transactions: they never come again (a second copy is refused)."""
        for tx in txs:
            self._by_encoding.pop(tx.encode(), None)

    def get_encoded(self, raw: bytes) -> Tx | None:
        """The known transaction whose canonical encoding is ``raw``."""
        return self._by_encoding.get(raw)

    def get(self, wire: Any) -> Tx | None:
        """The known transaction whose wire form (from a canonical decode) is ``wire``."""
        if type(wire) is not list:
            return None
        return self._by_encoding.get(codec.reencode(wire))


def decode_block(raw: bytes, known: KnownTxs, max_size: int | None = None) -> Block:
    """``Block.decode(raw)``, taking known transactions as they are (raises like it)."""
    max_size = max_size or Block.MAX_BYTES
    if len(raw) <= max_size:
        block = _from_known(raw, known)
        if block is not None:
            return block
    wire = codec.decode(raw, max_size=max_size, allow_float=True)
    if type(wire) is list and len(wire) == 2 and type(wire[1]) is list:
        txs = wire[1]
        if len(txs) <= MAX_BLOCK_TXS:  # longer: from_wire refuses it, naming the limit
            wire = [wire[0], [known.get(item) or item for item in txs]]
    return Block.from_wire(wire)


def _from_known(raw: bytes, known: KnownTxs) -> Block | None:
    """The block, decoded part by part; None if any part fails (then the caller decodes it
    in full, which gives the error, or the answer, this would have).

    A block's bytes are a two-item array: the header's encoding and an array of the
    transactions' encodings. Cut at the items' ends (msgpack's ``skip`` walks a value
    without building it), each transaction is looked up by its bytes alone: it is not
    unpacked, walked for validity and packed again to find its known object, which cost
    a replica about 7 us a transaction on the event loop (issue 15). A transaction this
    node has not seen is decoded from its own bytes (which it keeps: its id needs no
    re-encoding). With both array headers in their shortest form, nothing after the last
    transaction, and the header and every transaction canonical on their own, the block's
    bytes are canonical, and decoding them in full gives this same block (a transaction's
    fields hold no value nested deep enough for its depth in the block to matter).
    """
    try:
        cuts = _cut(raw)
        if cuts is None:
            return None
        header_raw, tx_raws = cuts
        txs = [known.get_encoded(tx_raw) or Tx.decode(tx_raw) for tx_raw in tx_raws]
        return Block.from_wire([Header.decode(header_raw), txs])
    except (ValueError, TypeError, codec.CodecError, msgpack.UnpackException):
        return None  # FieldError is a ValueError: the full decode names the fault


def _cut(raw: bytes) -> tuple[bytes, list[bytes]] | None:
    """The header's bytes and each transaction's, or None if ``raw`` is not framed as a
    block (two arrays, their headers canonical, nothing trailing)."""
    unpacker = msgpack.Unpacker(max_buffer_size=max(len(raw), 1))
    unpacker.feed(raw)
    if unpacker.read_array_header() != 2 or unpacker.tell() != 1 or raw[0] != _BLOCK_ARRAY:
        return None
    unpacker.skip()
    header_end = unpacker.tell()
    count = unpacker.read_array_header()
    start = unpacker.tell()
    if count > MAX_BLOCK_TXS or raw[header_end:start] != codec.array_header(count):
        return None
    tx_raws = []
    for _ in range(count):
        unpacker.skip()
        end = unpacker.tell()
        tx_raws.append(raw[start:end])
        start = end
    if start != len(raw):
        return None
    return raw[1:header_end], tx_raws


_BLOCK_ARRAY = codec.array_header(2)[0]
