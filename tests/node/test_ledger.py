"""Store, execution and the ledger boundary, on real LevelDB directories."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from ledger_helpers import (
    AUDITOR,
    CLIENT,
    GENESIS_HASH,
    NODES,
    STRANGER,
    anchor_tx,
    certify,
    genesis,
    govern,
    open_ledger,
    proposer,
)

from node.app import anchors
from node.app.ledger import Ledger
from node.app.types import Block, Receipt, Tx
from node.store import Store, StoreError


def test_build_validate_commit_keeps_replicas_identical(tmp_path: Path) -> None:
    a, b = open_ledger(tmp_path / "a"), open_ledger(tmp_path / "b")
    t1 = anchor_tx(b"one")
    t2 = anchor_tx(b"two", (t1.payload.digest,))
    for height, txs in ((1, [t1]), (2, [t2, t1])):
        proposal = a.build(height, 0, proposer(a, height), txs)
        assert b.validate(height, proposal.block) is None
        cert = certify(height, proposal.block)
        a.commit(proposal.block, cert)
        b.commit(proposal.block, cert)
    assert a.store.state_root() == b.store.state_root()
    assert a.height == b.height == 2
    block2 = Block.decode(a.store.block(2))
    assert [tx.id for tx in block2.txs] == [t2.id]  # t1 was already committed
    record = anchors.lookup(a.store.get, t2.payload.digest)
    assert record is not None and record.parents == (t1.payload.digest,)
    assert [r.digest for r in anchors.ancestors(a.store.get, record)] == [t1.payload.digest]
    kids = anchors.descendants(a.store.get, a.store.scan, t1.payload.digest)
    assert [r.digest for r in kids] == [t2.payload.digest]


def test_anchor_failures_revert_only_their_transaction(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "a")
    orphan = anchor_tx(b"orphan", (b"\x09" * 32,))
    ok = anchor_tx(b"fine")
    again = Tx.create(CLIENT, "vigil-test", GENESIS_HASH, ok.payload, 40)
    proposal = ledger.build(1, 0, proposer(ledger, 1), [orphan, ok, again])
    ledger.commit(proposal.block, certify(1, proposal.block))
    receipts = [Receipt.decode(r) for r in ledger.store.receipts(1)]
    assert [r.status for r in receipts] == ["reverted", "ok", "reverted"]
    assert "not anchored" in receipts[0].error and "already anchored" in receipts[2].error
    assert anchors.lookup(ledger.store.get, orphan.payload.digest) is None


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: anchor_tx(b"x", key=STRANGER), "unauthorised"),
        (lambda: anchor_tx(b"x", key=AUDITOR), "forbidden"),
        (lambda: anchor_tx(b"x", until=0 + 1000 + 2), "too_far_ahead"),
        (lambda: dataclasses.replace(anchor_tx(b"x"), signature=bytes(64)), "bad_signature"),
    ],
)
def test_inadmissible_transactions_are_left_out_and_make_a_block_invalid(
    tmp_path: Path,
    make,
    code: str,  # type: ignore[no-untyped-def]
) -> None:
    a, b = open_ledger(tmp_path / "a"), open_ledger(tmp_path / "b")
    bad = make()
    proposal = a.build(1, 0, proposer(a, 1), [bad])
    assert [exc.code for _, exc in proposal.rejected] == [code]
    assert Block.decode(proposal.block).txs == ()
    # A primary that includes it anyway proposes an invalid block.
    honest = Block.decode(proposal.block)
    from node.app.types import tx_root

    forged = Block(dataclasses.replace(honest.header, tx_count=1, tx_root=tx_root([bad])), (bad,))
    assert "inadmissible" in (b.validate(1, forged.encode()) or "")


def test_proposals_with_wrong_roots_or_links_are_invalid(tmp_path: Path) -> None:
    a, b = open_ledger(tmp_path / "a"), open_ledger(tmp_path / "b")
    block = Block.decode(a.build(1, 0, proposer(a, 1), [anchor_tx(b"y")]).block)
    cases = {
        "state_root": dataclasses.replace(block.header, state_root=b"\x00" * 32),
        "receipts_root": dataclasses.replace(block.header, receipts_root=b"\x00" * 32),
        "prev_hash": dataclasses.replace(block.header, prev_hash=b"\x00" * 32),
        "proposer": dataclasses.replace(block.header, proposer=NODES[3].public),
        "validators_hash": dataclasses.replace(block.header, validators_hash=b"\x00" * 32),
        "future": dataclasses.replace(block.header, timestamp_ms=10**12),
    }
    for name, header in cases.items():
        problem = b.validate(1, Block(header, block.txs).encode())
        assert problem is not None, name
    assert b.validate(1, b"junk") is not None
    assert b.validate(2, block.encode()) is not None


def test_reopening_after_commit_yields_the_last_block(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "a")
    proposal = ledger.build(1, 0, proposer(ledger, 1), [anchor_tx(b"z")])
    ledger.commit(proposal.block, certify(1, proposal.block))
    root = ledger.store.state_root()
    ledger.store.close()
    again = open_ledger(tmp_path / "a")
    assert again.height == 1 and again.store.state_root() == root
    assert again.certificate(1) == certify(1, proposal.block)


def test_damaged_or_foreign_stores_are_refused_with_the_path(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="CURRENT is missing"):
        Store(tmp_path / "nothing")
    ledger = open_ledger(tmp_path / "a")
    proposal = ledger.build(1, 0, proposer(ledger, 1), [])
    ledger.commit(proposal.block, certify(1, proposal.block))
    ledger.store.close()
    other = dataclasses.replace(genesis(), chain_id="other-chain")
    with pytest.raises(StoreError, match="belongs to genesis"):
        Ledger(Store(tmp_path / "a"), other)
    store = Store(tmp_path / "a")
    store.db.delete(b"block/" + (1).to_bytes(8, "big"))
    store.close()
    with pytest.raises(StoreError, match="block of the last height 1 is missing"):
        Ledger(Store(tmp_path / "a"), genesis())
    for name in ("CURRENT",):
        (tmp_path / "a" / name).unlink()
    with pytest.raises(StoreError, match=str(tmp_path / "a")):
        Store(tmp_path / "a")


def test_the_primary_executes_its_own_block_once(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Validation reuses the build's execution when the digest matches; others execute it."""
    a, b = open_ledger(tmp_path / "a"), open_ledger(tmp_path / "b")
    runs: list[str] = []
    for name, ledger in (("a", a), ("b", b)):
        real = ledger.executor.execute

        def counted(*args, _real=real, _name=name):  # type: ignore[no-untyped-def]
            runs.append(_name)
            return _real(*args)

        monkeypatch.setattr(ledger.executor, "execute", counted)
    proposal = a.build(1, 0, proposer(a, 1), [anchor_tx(b"once")])
    assert a.validate(1, proposal.block) is None
    assert b.validate(1, proposal.block) is None
    assert runs == ["b"]
    cert = certify(1, proposal.block)
    a.commit(proposal.block, cert)
    b.commit(proposal.block, cert)
    assert runs == ["b"] and a.store.state_root() == b.store.state_root()


def test_weak_sender_key_is_refused_even_when_authorised(tmp_path: Path) -> None:
    """Regression: under the identity key the signature R = identity, S = 0 verifies for
    every message, so a weak key authorised in state let anyone transact as it."""
    weak = bytes.fromhex("01" + "00" * 31)
    ledger = open_ledger(tmp_path / "a")
    govern(ledger, "client:" + weak.hex(), {"org": "org0", "roles": ["submit"]})
    honest = anchor_tx(b"weak")
    forged = dataclasses.replace(honest, sender=weak, signature=weak + bytes(32))
    assert forged.verify_signature(GENESIS_HASH)  # the forgery is a valid Ed25519 signature
    proposal = ledger.build(1, 0, proposer(ledger, 1), [forged])
    assert [exc.code for _, exc in proposal.rejected] == ["weak_key"]
    assert Block.decode(proposal.block).txs == ()


def test_a_chain_with_the_same_id_but_another_genesis_refuses_txs_and_votes(
    tmp_path: Path,
) -> None:
    """Regression: signatures were bound to the chain id string, so a reset or staging chain
    with the same id accepted the old chain's transactions and COMMIT votes."""
    from consensus.certificate import CertificateError
    from consensus.messages import COMMIT, Vote, seal

    a = open_ledger(tmp_path / "a")
    params = dict(genesis().params)
    params["max_block_txs"] = params["max_block_txs"] - 1
    genesis_b = dataclasses.replace(genesis(), params=tuple(sorted(params.items())))
    b = Ledger(Store(tmp_path / "b", create=True), genesis_b, clock_ms=lambda: 1_000)
    assert a.chain_id == b.chain_id and a.genesis_hash != b.genesis_hash

    tx = anchor_tx(b"replayed")  # signed for genesis A
    assert tx.verify_signature(a.genesis_hash) and not tx.verify_signature(b.genesis_hash)
    assert a.build(1, 0, proposer(a, 1), [tx]).rejected == []
    proposal = b.build(1, 0, proposer(b, 1), [tx])
    assert [exc.code for _, exc in proposal.rejected] == ["bad_signature"]

    block = a.build(1, 0, proposer(a, 1), []).block
    cert = certify(1, block)  # COMMIT votes signed for genesis A
    cert.verify(a.genesis_hash, a.validators(1))
    with pytest.raises(CertificateError, match="bad signature"):
        cert.verify(b.genesis_hash, b.validators(1))
    vote = seal(NODES[0], a.genesis_hash, COMMIT, Vote(1, 0, Block.decode(block).hash()))
    assert vote.verify_signature(a.genesis_hash)
    assert not vote.verify_signature(b.genesis_hash)


def test_a_transaction_no_block_could_carry_is_refused_and_dropped_not_parked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Left pending, such a transaction kept primaries making empty blocks until it expired
    (issue 16): admission refuses it, and a build drops one admitted before the limit fell."""
    from node.app import ledger as ledger_module
    from node.app.types import AnchorPayload

    ledger = open_ledger(tmp_path)
    small = anchor_tx(b"small")
    metadata = tuple((f"k{i:02d}", "v" * 60) for i in range(20))
    payload = AnchorPayload(bytes(32), 1, "text/plain", (), metadata)
    big = Tx.create(CLIENT, "vigil-test", GENESIS_HASH, payload, 50)
    assert len(big.encode()) > len(small.encode()) + 1_000
    room = len(small.encode()) + 10
    monkeypatch.setattr(ledger_module, "BLOCK_FRAME_BYTES", ledger.param("max_block_bytes") - room)
    verdicts = ledger.admit_many([small, big])
    assert verdicts[0] is None and verdicts[1] is not None
    assert verdicts[1].code == "too_large" and str(room) in verdicts[1].message
    proposal = ledger.build(1, 0, proposer(ledger, 1), [big, small])  # big got in earlier
    assert [tx.id for tx in Block.decode(proposal.block).txs] == [small.id]
    assert [(tx.id, exc.code) for tx, exc in proposal.rejected] == [(big.id, "too_large")]


def test_a_block_may_not_name_a_view_later_than_the_one_it_was_proposed_in(
    tmp_path: Path,
) -> None:
    """Found by the frame fuzzer: only the proposer's lead of the header's view was checked,
    so a primary's block could claim any far-off view it also leads."""
    ledger = open_ledger(tmp_path)
    height = 1
    n = len(ledger.validators(height))
    lead = ledger.validators(height)[(height + n) % n]  # leads views 0 and n alike
    raw = ledger.build(height, n, lead, [anchor_tx(b"far view")]).block
    assert "later than view 0" in (ledger.validate(height, raw, 0) or "")
    assert ledger.validate(height, raw, n) is None
    assert ledger.validate(height, raw, n + 1) is None  # re-proposed by a later NEW-VIEW
    assert ledger.validate(height, raw) is None  # a certified block: no view to hold it to


def test_a_store_written_with_leveldbs_defaults_opens_and_compacts_with_the_tuned_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nodes before the store's tuning wrote Snappy-compressed 2 MiB tables without filters;
    the same directory must read, commit and compact under the tuned options, and end in
    the state a store tuned from the start reaches."""
    import plyvel

    import node.store as store_module

    tuned = ("max_file_size", "write_buffer_size", "lru_cache_size", "bloom_filter_bits",
             "compression")  # fmt: skip
    real_db = plyvel.DB
    monkeypatch.setattr(store_module.plyvel, "DB", lambda path, **kw: real_db(
        path, **{k: v for k, v in kw.items() if k not in tuned}
    ))  # fmt: skip
    old, reference = open_ledger(tmp_path / "old"), open_ledger(tmp_path / "ref")
    txs = [anchor_tx(f"dataset {i}".encode() * 50) for i in range(400)]

    def commit_to(ledger: Ledger, batch: list[Tx]) -> None:
        height = ledger.height + 1
        proposal = ledger.build(height, 0, proposer(ledger, height), batch)
        ledger.commit(proposal.block, certify(height, proposal.block))

    for i in range(0, 200, 50):
        commit_to(old, txs[i : i + 50])
    old.store.close()
    monkeypatch.setattr(store_module.plyvel, "DB", real_db)
    reopened = Ledger(Store(tmp_path / "old"), genesis(), clock_ms=lambda: 1_000)
    assert reopened.height == 4
    for i in range(200, 400, 50):
        commit_to(reopened, txs[i : i + 50])
    reopened.store.db.compact_range()  # old tables and new ones merged into new ones
    for i in range(0, 400, 50):
        commit_to(reference, txs[i : i + 50])
    assert reopened.store.state_root() == reference.store.state_root()
    assert all(reopened.store.tx_location(t.id) is not None for t in txs)
    assert reopened.store.block(1) == reference.store.block(1)


def test_committed_blocks_come_back_decoded_from_memory_or_the_store_alike(
    tmp_path: Path,
) -> None:
    """The API serves recent blocks from the objects ``commit`` applied and older ones from the
    store: both must be the stored block and receipts, byte for byte."""
    from ledger_helpers import commit

    from node.app.ledger import MAX_RECENT_BLOCKS

    ledger = open_ledger(tmp_path / "a")
    for i in range(MAX_RECENT_BLOCKS + 2):
        commit(ledger, [anchor_tx(f"block {i}".encode()), anchor_tx(f"more {i}".encode())])
    reopened = Ledger(ledger.store, genesis())  # nothing in memory: every height decoded
    for height in range(1, ledger.height + 1):
        found, fresh = ledger.committed_block(height), reopened.committed_block(height)
        assert found is not None and fresh is not None
        for block, receipts in (found, fresh):
            assert block.encode() == ledger.store.block(height)
            assert [r.encode() for r in receipts] == ledger.store.receipts(height)
    assert ledger.committed_block(ledger.height)[0] is ledger.last_committed[0]  # type: ignore[index]
    assert ledger.committed_block(1)[0] is not ledger.committed_block(1)[0]  # type: ignore[index]
    assert len(ledger._recent) == MAX_RECENT_BLOCKS
    assert ledger.committed_block(ledger.height + 1) is None
