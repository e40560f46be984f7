"""Ledger records: one encoding each, hashes that change with any byte, named field errors."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import ALL_RECORDS, CHAIN, CHAIN_HASH, KEYS

from consensus import codec, merkle
from consensus.record import FieldError, Record
from node.app import types
from node.app.genesis import Genesis
from node.app.types import AnchorPayload, Block, Header, Receipt, ScorePayload, Tx, tx_root

RECORD_CLASSES: dict[str, type[Record]] = {
    "tx": Tx,
    "header": Header,
    "block": Block,
    "receipt": Receipt,
    "certificate": types.Certificate,
    "genesis": Genesis,
}


@pytest.mark.parametrize("name", sorted(ALL_RECORDS))
def test_round_trip(name: str) -> None:
    cls = RECORD_CLASSES[name]

    @settings(max_examples=60, deadline=None)
    @given(ALL_RECORDS[name])
    def check(obj: Record) -> None:
        data = obj.encode()
        back = cls.decode(data)
        assert back == obj
        assert back.encode() == data
        assert back.hash() == obj.hash()

    check()


@pytest.mark.parametrize("name", sorted(ALL_RECORDS))
def test_mutated_encoding_is_rejected_or_a_different_object(name: str) -> None:
    cls = RECORD_CLASSES[name]

    @settings(max_examples=120, deadline=None)
    @given(ALL_RECORDS[name], st.data())
    def check(obj: Record, data: st.DataObject) -> None:
        raw = bytearray(obj.encode())
        pos = data.draw(st.integers(0, len(raw) - 1))
        how = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if how == "flip":
            raw[pos] ^= data.draw(st.integers(1, 255))
        elif how == "insert":
            raw.insert(pos, data.draw(st.integers(0, 255)))
        else:
            del raw[pos]
        try:
            other = cls.decode(bytes(raw))
        except (codec.CodecError, FieldError):
            return
        assert other != obj
        assert other.encode() == bytes(raw)
        if name != "tx":
            assert other.hash() != obj.hash()
        else:
            # A tx id covers the body only: a changed signature keeps the id but fails to verify.
            assert other.id != obj.id or not other.verify_signature(CHAIN_HASH)

    check()


@settings(max_examples=40, deadline=None)
@given(ALL_RECORDS["tx"])
def test_tx_signature_verifies_and_id_ignores_signature(tx: Tx) -> None:
    assert tx.verify_signature(CHAIN_HASH)
    forged = dataclasses.replace(tx, signature=bytes(64))
    assert forged.id == tx.id
    assert not forged.verify_signature(CHAIN_HASH)
    moved = dataclasses.replace(tx, valid_until_height=tx.valid_until_height + 1)
    assert moved.id != tx.id and not moved.verify_signature(CHAIN_HASH)


def anchor(**overrides: object) -> AnchorPayload:
    fields = dict(digest=b"\x01" * 32, size=5, media_type="text/csv", parents=(), metadata=())
    fields.update(overrides)
    return AnchorPayload(**fields)  # type: ignore[arg-type]


def test_field_errors_name_the_failing_field() -> None:
    tx = Tx.create(KEYS[0], CHAIN, CHAIN_HASH, anchor(), 10)
    wire = tx.to_wire()
    cases = {
        "tx.payload.digest": lambda w: w[5].__setitem__(0, b"\x01" * 31),
        "tx.payload.parents[0]": lambda w: w[5].__setitem__(3, [b"x"]),
        "tx.payload.media_type": lambda w: w[5].__setitem__(2, "no slash"),
        "tx.payload.metadata[1].key": lambda w: w[5].__setitem__(4, [["b", ""], ["a", ""]]),
        "tx.kind": lambda w: w.__setitem__(4, "mint"),
        "tx.nonce": lambda w: w.__setitem__(2, b"short"),
        "tx.valid_until_height": lambda w: w.__setitem__(3, 0),
        "tx.chain_id": lambda w: w.__setitem__(0, "Has Spaces"),
        "tx.sender": lambda w: w.__setitem__(1, "not bytes"),
        "tx.signature": lambda w: w.__setitem__(6, True),
    }
    for path, mutate in cases.items():
        w = [list(x) if isinstance(x, list) else x for x in wire]
        mutate(w)
        with pytest.raises(FieldError) as info:
            Tx.from_wire(w)
        assert info.value.path == path, (path, str(info.value))


def test_payload_must_match_kind() -> None:
    tx = Tx.create(KEYS[0], CHAIN, CHAIN_HASH, anchor(), 10)
    w = tx.to_wire()
    w[4] = "score"
    with pytest.raises(FieldError, match=r"tx.payload"):
        Tx.from_wire(w)
    with pytest.raises(FieldError, match="does not belong"):
        Tx(CHAIN, KEYS[0].public, bytes(16), 10, "score", anchor(), bytes(64))


def test_bool_is_not_an_int_and_floats_only_in_score_features() -> None:
    with pytest.raises(FieldError, match="tx.valid_until_height"):
        Tx(CHAIN, KEYS[0].public, bytes(16), True, "anchor", anchor(), bytes(64))
    with pytest.raises(FieldError, match="anchor.size"):
        anchor(size=5.0)
    with pytest.raises(FieldError, match=r"score.features\[0\]"):
        ScorePayload("m", (1,), "")
    with pytest.raises(FieldError, match="finite"):
        ScorePayload("m", (float("nan"),), "")


def test_anchor_limits_at_their_edges() -> None:
    parents = tuple(sorted(bytes([i, j]) + bytes(30) for i in range(1, 3) for j in range(40)))
    ok = parents[: types.MAX_ANCHOR_PARENTS]
    assert anchor(parents=ok).parents == ok
    with pytest.raises(FieldError, match="exceeds the limit"):
        anchor(parents=parents[: types.MAX_ANCHOR_PARENTS + 1])
    with pytest.raises(FieldError, match="sorted and unique"):
        anchor(parents=(ok[1], ok[0]))
    with pytest.raises(FieldError, match="its own parent"):
        anchor(parents=(b"\x01" * 32,))
    value = "v" * types.MAX_METADATA_VALUE_BYTES
    assert anchor(metadata=(("k", value),)).metadata == (("k", value),)
    with pytest.raises(FieldError, match="longer than"):
        anchor(metadata=(("k", value + "v"),))


def test_tx_size_limit_at_its_edge() -> None:
    code = b"\x00" * types.MAX_CONTRACT_CODE_BYTES
    biggest = Tx.create(KEYS[0], CHAIN, CHAIN_HASH, types.DeployPayload("c", code), 10)
    assert len(biggest.encode()) <= types.MAX_TX_BYTES
    assert Tx.decode(biggest.encode()) == biggest
    # Input of exactly MAX_TX_BYTES passes the size gate (and fails on its fields);
    # one byte more is refused before anything is decoded.
    for size, error in (
        (types.MAX_TX_BYTES, FieldError),
        (types.MAX_TX_BYTES + 1, codec.OversizeError),
    ):
        filler = b"\x00" * (size - len(codec.encode([b""])) - 3)
        raw = codec.encode([filler])
        raw = codec.encode([b"\x00" * (len(filler) + size - len(raw))])
        assert len(raw) == size
        with pytest.raises(error):
            Tx.decode(raw)


def test_block_checks_tx_root_chain_and_duplicates() -> None:
    t1 = Tx.create(KEYS[0], CHAIN, CHAIN_HASH, anchor(), 10)
    t2 = Tx.create(KEYS[1], CHAIN, CHAIN_HASH, anchor(digest=b"\x02" * 32), 10)
    good = Header(
        CHAIN,
        1,
        bytes(32),
        0,
        0,
        KEYS[0].public,
        2,
        tx_root([t1, t2]),
        bytes(32),
        bytes(32),
        bytes(32),
    )
    block = Block(good, (t1, t2))
    assert block.hash() == good.hash()
    with pytest.raises(FieldError, match="block.header.tx_root"):
        Block(good, (t2, t1))
    with pytest.raises(FieldError, match="block.header.tx_count"):
        Block(good, (t1,))
    dup = dataclasses.replace(good, tx_root=tx_root([t1, t1]))
    with pytest.raises(FieldError, match=r"block.txs\[1\]: transaction appears twice"):
        Block(dup, (t1, t1))
    other_chain = Tx.create(KEYS[0], "other-chain", CHAIN_HASH, anchor(), 10)
    bad = dataclasses.replace(good, tx_count=1, tx_root=tx_root([other_chain]))
    with pytest.raises(FieldError, match=r"block.txs\[0\].chain_id"):
        Block(bad, (other_chain,))
    empty = dataclasses.replace(good, tx_count=0, tx_root=merkle.EMPTY_ROOT)
    assert Block(empty, ()).txs == ()


def test_tx_proof_against_header_root() -> None:
    items = [
        Tx.create(KEYS[0], CHAIN, CHAIN_HASH, anchor(digest=bytes([i]) * 32), 10)
        for i in range(1, 8)
    ]
    root = tx_root(items)
    tree = merkle.Tree([t.encode() for t in items])
    for i, tx in enumerate(items):
        assert merkle.verify(root, tx.encode(), tree.proof(i))


def test_receipt_status_and_error_agree() -> None:
    Receipt(bytes(32), "ok", 0, None, (), "")
    with pytest.raises(FieldError, match="receipt.error"):
        Receipt(bytes(32), "ok", 0, None, (), "oops")
    with pytest.raises(FieldError, match="must say why"):
        Receipt(bytes(32), "reverted", 0, None, (), "")
    with pytest.raises(FieldError, match="receipt.status"):
        Receipt(bytes(32), "maybe", 0, None, (), "x")
