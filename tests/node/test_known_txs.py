"""Blocks encode from their parts' cached encodings and decode reusing admitted transactions:
both give exactly what the generic record codec gives, for valid and for hostile bytes."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_helpers import anchor_tx
from strategies import CHAIN_HASH, blocks, headers_for, txs

from consensus import codec
from consensus.record import FieldError, Record
from node.app.known_txs import KnownTxs, decode_block
from node.app.types import Block, Tx


@settings(max_examples=100, deadline=None)
@given(txs())
def test_a_decoded_transaction_keeps_its_bytes_and_signed_body_exactly(tx: Tx) -> None:
    raw = Record.encode(tx)
    decoded = Tx.decode(raw)
    generic = Tx.from_wire(codec.decode(raw, allow_float=True))
    assert decoded.encode() == raw and decoded.body_bytes() == generic.body_bytes()
    assert decoded.id == generic.id == tx.id and decoded.verify_signature(CHAIN_HASH)


@pytest.mark.parametrize("count", [0, 1, 15, 16, 17, 65_535, 65_536, 70_000])
def test_array_headers_are_msgpack_canonical_at_each_width_edge(count: int) -> None:
    header = codec.array_header(count)
    assert msgpack.packb([None] * count).startswith(header)
    assert len(msgpack.packb([None] * count)) == len(header) + count


@st.composite
def wide_blocks(draw: st.DrawFn) -> Block:
    items = tuple(draw(st.lists(txs(), min_size=16, max_size=18, unique_by=lambda t: t.id)))
    return Block(draw(headers_for(items)), items)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks() | wide_blocks())
def test_a_block_encodes_as_the_generic_record_encoding(block: Block) -> None:
    assert block.encode() == Record.encode(block)
    assert Block.decode(block.encode()) == block


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks(), st.data())
def test_decoding_with_known_transactions_gives_the_same_block(block: Block, data) -> None:  # type: ignore[no-untyped-def]
    known = KnownTxs(8)
    known.add(data.draw(st.lists(st.sampled_from(block.txs), max_size=4)) if block.txs else [])
    raw = block.encode()
    decoded = decode_block(raw, known)
    assert decoded == Block.decode(raw) and decoded.encode() == raw


def outcome(decode, raw: bytes) -> str:  # type: ignore[no-untyped-def]
    try:
        return repr(decode(raw))
    except (codec.CodecError, FieldError) as exc:
        return f"{type(exc).__name__}: {exc}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks(), st.integers(0, 10_000), st.integers(0, 255))
def test_a_mutated_block_is_refused_or_decoded_the_same_either_way(
    block: Block, where: int, byte: int
) -> None:
    """A known transaction never makes a hostile block pass: every byte flip decodes (or fails)
    the same with the cache as without it."""
    raw = bytearray(block.encode())
    raw[where % len(raw)] = byte
    known = KnownTxs(8)
    known.add(block.txs)
    mutated = bytes(raw)
    assert outcome(lambda r: decode_block(r, known), mutated) == outcome(Block.decode, mutated)


def test_the_cache_is_bounded_and_forgets_committed_transactions() -> None:
    items = [anchor_tx(f"data {i}".encode()) for i in range(5)]
    known = KnownTxs(3)
    known.add(items)
    assert len(known) == 3
    assert known.get(codec.decode(items[0].encode(), allow_float=True)) is None  # evicted
    newest = items[-1]
    assert known.get(codec.decode(newest.encode(), allow_float=True)) is newest
    known.forget([newest])
    assert known.get(codec.decode(newest.encode(), allow_float=True)) is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks(), st.sampled_from(["as-is", "trailing", "wide-block", "wide-txs", "three",
                                  "truncated", "header-float"]))  # fmt: skip
def test_a_block_of_known_transactions_is_cut_by_its_bytes_and_decodes_the_same(
    block: Block, framing: str
) -> None:
    """The block is cut into its items' bytes instead of decoded whole (known transactions
    looked up, the others decoded alone), so each reframing of the same items must decode
    (or fail) exactly as the full decode does."""
    known = KnownTxs(64)
    known.add(block.txs[: len(block.txs) // 2])  # the others are decoded from their bytes
    header, items = block.header.encode(), [tx.encode() for tx in block.txs]
    txs_array = codec.array_header(len(items)) + b"".join(items)
    raw = {
        "as-is": block.encode(),
        "trailing": block.encode() + b"\xc0",
        "wide-block": b"\xdc\x00\x02" + header + txs_array,
        "wide-txs": b"\x92" + header + b"\xdc" + len(items).to_bytes(2, "big") + b"".join(items),
        "three": b"\x93" + header + txs_array + b"\xc0",
        "truncated": block.encode()[:-1],
        "header-float": b"\x92" + header[:-9] + msgpack.packb(1.5) + txs_array,
    }[framing]
    assert outcome(lambda r: decode_block(r, known), raw) == outcome(Block.decode, raw)
    if framing == "as-is":
        decoded = decode_block(raw, known)
        half = len(block.txs) // 2
        assert all(a is b for a, b in zip(decoded.txs[:half], block.txs[:half], strict=True))
        assert all(tx.__dict__.get("_encoded") == tx.encode() for tx in decoded.txs[half:])
