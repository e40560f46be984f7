"""Offline proof bundles, without sockets: built from a real ledger, checked from the genesis
file alone, and refused when any single byte of them changes.

The chain: a dataset and one derived from it are anchored; governance approves a model
trained on the derived one and activates it; a member joins (a validator-set change);
then a payment is scored and flagged. Every certificate is signed by its height's
validators.
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import os
from pathlib import Path

import pytest
from ledger_helpers import NODES, anchor_tx, genesis, open_ledger
from test_light import NEWCOMER, Chain, _commit, _decide, _proven_query
from test_scoring import model, score_tx  # noqa: F401  (model is a fixture)

from consensus import codec, merkle, smt
from node.app import bundle_check
from node.app.bundle import MAX_BUNDLE_BYTES, Bundle, Certified, QueryItem, StateItem, TxItem
from node.app.execution import tx_proof
from node.app.light import StateRead, VerificationError
from node.app.state import ANCHOR, storage_key
from node.app.types import Receipt


@dataclasses.dataclass
class Story:
    chain: Chain
    raw: bytes
    derived: bytes
    scored: bytes
    model_id: bytes
    artifact: bytes


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory, model) -> Story:  # type: ignore[no-untyped-def]  # noqa: F811
    ledger = open_ledger(tmp_path_factory.mktemp("bundle") / "a")
    ledger.store.put_artifact(model.model_id, model.data)
    chain = Chain(ledger, {}, [], b"", 0)
    raw = anchor_tx(b"raw payments")
    raw_digest = raw.payload.digest  # type: ignore[attr-defined]
    derived = anchor_tx(b"cleaned payments", parents=(raw_digest,))
    derived_digest = derived.payload.digest  # type: ignore[attr-defined]
    _commit(chain, [raw])
    _commit(chain, [derived])
    approve = {
        "name": "fraud",
        "model_id": model.model_id,
        "size": len(model.data),
        "contributors": {"org0": 1, "org2": 3},
        "anchors": [derived_digest],
    }
    _decide(chain, "approve_model", approve, NODES[:3])
    _decide(chain, "activate_model", {"name": "fraud", "version": 1}, NODES[:3])
    joiner = {
        "org": "org4",
        "node_key": NEWCOMER.public,
        "peer": "127.0.0.1:104",
        "api": "127.0.0.1:204",
        "admins": [NEWCOMER.public],
    }
    _decide(chain, "add_member", joiner, NODES[:3])
    assert len(chain.changes) == 1
    payment = score_tx([8.0, -9.0, 7.5], "payment 17")
    [receipt] = _commit(chain, [payment])
    assert receipt.status == "ok" and receipt.result[2] is True, receipt.error
    return Story(chain, raw_digest, derived_digest, payment.id, model.model_id, model.data)


def certified(story: Story, height: int) -> Certified:
    return Certified(story.chain.header(height), story.chain.certificates[height])


def blocks(story: Story) -> dict[int, Certified]:
    return {h: certified(story, h) for h in story.chain.certificates}


def tx_item(story: Story, tx_id: bytes) -> TxItem:
    ledger = story.chain.ledger
    height, index = ledger.store.tx_location(tx_id)  # type: ignore[misc]
    block = story.chain.block(height)
    receipts = ledger.store.receipts(height) or []
    return TxItem(
        height,
        block.txs[index],
        tx_proof(block.txs, index),
        Receipt.decode(receipts[index]),
        merkle.Tree(list(receipts)).proof(index),
    )


def state_item(story: Story, key: bytes) -> StateItem:
    ledger = story.chain.ledger
    proof = smt.prove(ledger.tree_nodes.get, ledger.store.state_root(), key)
    return StateItem(ledger.height, StateRead(key, ledger.store.get(key), proof))


def query_item(story: Story, contract: str, method: str, args: list) -> QueryItem:  # type: ignore[type-arg]
    reads = _proven_query(story.chain, contract, method, args)
    return QueryItem(story.chain.ledger.height, contract, method, args, tuple(reads))


def score_bundle(story: Story, *, artifact: bool) -> tuple[Bundle, list[str]]:
    items = [
        tx_item(story, story.scored),
        query_item(story, "models", "find", ["fraud", story.model_id]),
    ]
    extra = [story.artifact] if artifact else []
    return bundle_check.build(
        genesis(), ("tx", story.scored), story.chain.changes, blocks(story), items, extra
    )


def model_bundle(story: Story) -> tuple[Bundle, list[str]]:
    items = [
        query_item(story, "models", "version", ["fraud", 1]),
        query_item(story, "governance", "get", [1]),
        query_item(story, "models", "active", ["fraud"]),
    ]
    return bundle_check.build(
        genesis(), ("model", "fraud", 1), story.chain.changes, blocks(story), items
    )


def test_a_score_bundle_proves_the_score_the_model_and_who_certified_it(story: Story) -> None:
    bundle, facts = score_bundle(story, artifact=True)
    again, checked = bundle_check.verify(bundle.encode(), genesis())
    assert checked == facts and again == bundle
    text = "\n".join(facts)
    height = story.chain.ledger.height
    assert f"of block {height}, certified by org0, org1, org2, org3 (4 of 5 validators)" in text
    assert "'payment 17' was scored -0." in text and "by model fraud v1" in text
    assert "flagged as an outlier" in text
    assert "event flagged:" in text
    bare, facts = score_bundle(story, artifact=False)
    assert "with path sum" in "\n".join(facts) and "artifact is not in the bundle" in "\n".join(
        facts
    )
    assert len(bare.encode()) < len(bundle.encode())
    assert "(re-derived bit for bit from the signed features and the artifact)" in text


def test_an_auditor_re_derives_a_certified_score_from_the_approved_artifact(
    story: Story,
    model,  # type: ignore[no-untyped-def]  # noqa: F811
) -> None:
    import numpy as np

    from ml.train import TrainParams, train
    from node.app.types import ScorePayload

    bare, _ = score_bundle(story, artifact=False)
    _, facts = bundle_check.verify(bare.encode(), genesis(), story.artifact)
    assert facts[-1].startswith(f"re-derived: the artifact {model.model_id.hex()[:16]}...")
    assert "re-derived bit for bit" in facts[-1]
    other = train(np.random.default_rng(1).normal(size=(100, 3)), ("a", "b", "c"),
                  TrainParams(n_estimators=5)).model  # fmt: skip
    with pytest.raises(VerificationError, match="is not the model that scored"):
        bundle_check.verify(bare.encode(), genesis(), other.data)
    # The score of other features (or a receipt recording another score) is not reproduced.
    tx = tx_item(story, story.scored).tx
    payload = tx.payload
    result = tx_item(story, story.scored).receipt.result
    moved = ScorePayload(payload.model, (0.0, 0.0, 0.0), payload.reference)  # type: ignore[attr-defined]
    with pytest.raises(VerificationError, match="the certified receipt records"):
        bundle_check.rederive(story.artifact, moved, result)
    model_id, path_sum, outlier, top = result
    with pytest.raises(VerificationError, match="the certified receipt records"):
        bundle_check.rederive(story.artifact, payload, (model_id, path_sum + 1, outlier, top))  # type: ignore[arg-type]
    anchor_only, _ = bundle_check.build(
        genesis(), ("anchor", story.derived), story.chain.changes, blocks(story),
        [state_item(story, ANCHOR + story.derived), state_item(story, ANCHOR + story.raw)],
    )  # fmt: skip
    with pytest.raises(VerificationError, match="only a committed score"):
        bundle_check.verify(anchor_only.encode(), genesis(), story.artifact)


def test_a_model_bundle_proves_its_approval_and_training_data(story: Story) -> None:
    bundle, facts = model_bundle(story)
    assert bundle_check.verify(bundle.encode(), genesis())[1] == facts
    text = "\n".join(facts)
    assert "model fraud v1 (id " + story.model_id.hex() in text
    assert "was approved at height 4 by org0, org1, org2 (proposal 1 by org0" in text
    assert "royalty weights: org0=1, org2=3" in text
    assert f"trained on 1 anchored dataset(s): {story.derived.hex()}" in text
    assert "active version of fraud: v1" in text


def test_an_anchor_bundle_proves_the_record_and_its_lineage(story: Story) -> None:
    items = [
        state_item(story, ANCHOR + story.derived),
        state_item(story, ANCHOR + story.raw),
    ]
    subject = ("anchor", story.derived)
    bundle, facts = bundle_check.build(
        genesis(), subject, story.chain.changes, blocks(story), items
    )
    assert bundle_check.verify(bundle.encode(), genesis())[1] == facts
    assert facts[0].startswith(f"dataset {story.derived.hex()} (16 bytes, text/plain) was anchored")
    assert f"it derives from {story.raw.hex()}" in facts[1]
    assert facts[2].startswith(f"dataset {story.raw.hex()}")
    # The lineage cannot be cut short.
    with pytest.raises(VerificationError, match="bundle: its lineage is incomplete"):
        bundle_check.build(genesis(), subject, story.chain.changes, blocks(story), items[:1])
    # A dataset nobody anchored is proven absent.
    missing = hashlib.sha256(b"never anchored").digest()
    absent = [state_item(story, ANCHOR + missing)]
    _, facts = bundle_check.build(
        genesis(), ("anchor", missing), story.chain.changes, blocks(story), absent
    )
    assert facts[0].startswith(f"dataset {missing.hex()} is NOT anchored")


def test_a_state_bundle_proves_a_value_or_its_absence(story: Story) -> None:
    key = storage_key("models", "versions:fraud")
    parts = (story.chain.changes, blocks(story))
    _, facts = bundle_check.build(
        genesis(), ("state", "models", "versions:fraud"), *parts, [state_item(story, key)]
    )
    assert facts[0].startswith("contract models: 'versions:fraud' = 1; proven at height")
    other = storage_key("models", "versions:nosuch")
    _, facts = bundle_check.build(
        genesis(), ("state", "models", "versions:nosuch"), *parts, [state_item(story, other)]
    )
    assert facts[0].startswith("contract models has no value under 'versions:nosuch'")
    with pytest.raises(VerificationError, match="its state read is not the key it names"):
        bundle_check.build(
            genesis(), ("state", "models", "versions:fraud"), *parts, [state_item(story, other)]
        )


def _refused(data: bytes) -> bool:
    try:
        bundle_check.verify(data, genesis())
    except VerificationError:
        return True
    return False


@pytest.mark.slow
def test_every_single_byte_changed_in_a_bundle_is_caught(story: Story) -> None:
    """Every byte of a score bundle flipped, every fifth byte of a model bundle (its three
    queries with their proofs) changed by a rotating mask, and a sample of a bundle carrying
    the model artifact: every copy is refused."""
    score = score_bundle(story, artifact=False)[0].encode()
    assert not _refused(score)
    kept = _unnoticed(score, [(i, 0x01) for i in range(len(score))])
    assert kept == [], f"flipping bit 0 of byte(s) {kept[:10]} went unnoticed"
    models = model_bundle(story)[0].encode()
    assert not _refused(models)
    masks = (0x80, 0x01, 0xFF, 0x10, 0x42)
    kept = _unnoticed(models, [(i, masks[i % 5]) for i in range(0, len(models), 5)])
    assert kept == [], f"changing byte(s) {kept[:10]} went unnoticed"
    with_artifact = score_bundle(story, artifact=True)[0].encode()
    for i in range(0, len(with_artifact), max(1, len(with_artifact) // 300)):
        assert _refused(_flip(with_artifact, i, 0x10)), i


def _flip(data: bytes, index: int, mask: int) -> bytes:
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]


_ORIGINAL = b""
"""The bundle a worker of ``_unnoticed`` changes (sent once per worker, not per change)."""


def _hold(data: bytes) -> None:
    global _ORIGINAL
    _ORIGINAL = data


def _refused_change(change: tuple[int, int]) -> bool:
    return _refused(_flip(_ORIGINAL, *change))


def _unnoticed(data: bytes, changes: list[tuple[int, int]]) -> list[int]:
    """The byte indexes whose (index, mask) change the verifier accepted, checked on every
    core (each check is independent, and this test is among the suite's longest)."""
    context = multiprocessing.get_context("fork")
    with context.Pool(os.cpu_count() or 1, initializer=_hold, initargs=(data,)) as pool:
        refused = pool.map(_refused_change, changes, chunksize=64)
    return [i for (i, _), ok in zip(changes, refused, strict=True) if not ok]


def test_lies_in_a_bundle_have_their_own_messages(story: Story) -> None:
    bundle, facts = score_bundle(story, artifact=False)

    def message(changed: Bundle) -> str:
        with pytest.raises(VerificationError) as caught:
            bundle_check.verify(changed.encode(), genesis())
        return str(caught.value)

    reworded = dataclasses.replace(bundle, facts=(facts[0].replace("org0", "org3"), *facts[1:]))
    assert "fact lines differ" in message(reworded)
    assert "validator set: header" in message(dataclasses.replace(bundle, changes=()))
    cert = bundle.blocks[-1].certificate
    short = dataclasses.replace(cert, votes=cert.votes[:2])
    blocks_ = (*bundle.blocks[:-1], dataclasses.replace(bundle.blocks[-1], certificate=short))
    assert "has 2 votes, quorum is 4 of 5" in message(dataclasses.replace(bundle, blocks=blocks_))
    item = bundle.items[0]
    assert isinstance(item, TxItem)
    forged = dataclasses.replace(item.receipt, result=(*item.receipt.result[:2], False, ()))
    lied = dataclasses.replace(
        bundle, items=(dataclasses.replace(item, receipt=forged), *bundle.items[1:])
    )
    assert "receipt proof: the receipt is not in block" in message(lied)
    other = dataclasses.replace(bundle, chain_id="another-chain")
    assert "bundle: it is for chain 'another-chain'" in message(other)
    extra = dataclasses.replace(bundle, artifacts=(story.artifact, b"unrelated"))
    assert "artifacts (by id) must be distinct" in message(extra) or "no fact needs" in message(
        extra
    )
    assert "bundle: malformed" in _message_of(b"\x93\x01\x02")
    assert "over MAX_BUNDLE_BYTES" in _message_of(b"\x00" * (MAX_BUNDLE_BYTES + 1))
    assert "format 'x' is not" in _message_of(codec.encode(["x", *[[]] * 8]))


def _message_of(data: bytes) -> str:
    with pytest.raises(VerificationError) as caught:
        bundle_check.verify(data, genesis())
    return str(caught.value)


def test_bundles_need_no_ledger(story: Story, tmp_path: Path) -> None:
    """Verification reads only the bytes and the genesis file."""
    bundle, facts = model_bundle(story)
    path = tmp_path / "model.proof"
    path.write_bytes(bundle.encode())
    assert bundle_check.verify(path.read_bytes(), genesis())[1] == facts
