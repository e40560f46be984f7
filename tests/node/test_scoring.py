"""score transactions on a real ledger: active model, receipts, flagged events, artifacts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from ledger_helpers import (
    ADMIN,
    CLIENT,
    GENESIS_HASH,
    NODES,
    certify,
    commit,
    open_ledger,
    proposer,
)
from test_contracts import call, install

from consensus.crypto import PrivateKey
from ml.score import Scorer
from ml.train import TrainParams, train
from node.app.ledger import Ledger
from node.app.scoring import ArtifactMissing, ModelCache
from node.app.types import ScorePayload, Tx
from vm.gas import MAX_VALUE_BYTES
from vm.values import decode_value

SCREEN = """
def check(name, features):
    return ledger.score(name, features)
"""


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    data = rng.normal(0, 1, size=(300, 3))
    return train(data, ("amount", "hour", "country"), TrainParams(n_estimators=25)).model


def score_tx(features: list[float], reference: str = "payment", key: PrivateKey = ADMIN) -> Tx:
    payload = ScorePayload("fraud", tuple(features), reference)
    return Tx.create(key, "vigil-test", GENESIS_HASH, payload, 50)


def decide(ledger: Ledger, kind: str, args: dict) -> None:
    """A member proposes; three of the four members approve (their node keys are admins)."""
    [proposed] = commit(ledger, [call("governance", "propose", [kind, args], key=NODES[0])])
    assert proposed.status == "ok", proposed.error
    pid = decode_value(proposed.result, MAX_VALUE_BYTES)
    votes = commit(ledger, [call("governance", "vote", [pid, True], key=k) for k in NODES[:3]])
    assert [v.status for v in votes] == ["ok"] * 3, [v.error for v in votes]


def ready(path: Path, model) -> Ledger:  # type: ignore[no-untyped-def]
    """A ledger whose governance approved and activated ``model`` as fraud version 1."""
    ledger = open_ledger(path)
    ledger.store.put_artifact(model.model_id, model.data)
    approve = {
        "name": "fraud",
        "model_id": model.model_id,
        "size": len(model.data),
        "contributors": {"org0": 1, "org1": 2},
        "anchors": [hashlib.sha256(b"training data").digest()],
    }
    decide(ledger, "approve_model", approve)
    decide(ledger, "activate_model", {"name": "fraud", "version": 1})
    return ledger


def test_scores_match_the_scorer_and_outliers_are_flagged(tmp_path: Path, model) -> None:  # type: ignore[no-untyped-def]
    ledger = ready(tmp_path / "a", model)
    rows = [[0.1, -0.2, 0.3], [8.0, -9.0, 7.5], [0.0, 0.0, 0.0]]
    receipts = commit(ledger, [score_tx(r, f"p{i}") for i, r in enumerate(rows)])
    scorer = Scorer(model)
    for receipt, row in zip(receipts, rows, strict=True):
        assert receipt.status == "ok", receipt.error
        model_id, path_sum, outlier, top = receipt.result
        expected_sum, _, expected_outlier = scorer.score_row(np.array(row))
        assert (model_id, path_sum, outlier) == (model.model_id, expected_sum, expected_outlier)
        assert 1 <= len(top) <= 3 and all(name in model.feature_names for name, _ in top)
        flagged = [e for e in receipt.events if e.name == "flagged"]
        assert bool(flagged) == outlier
    assert receipts[1].result[2] is True  # far from the training data


def test_batched_and_single_scoring_agree_across_replicas(tmp_path: Path, model) -> None:  # type: ignore[no-untyped-def]
    a = ready(tmp_path / "a", model)
    b = follower(a, tmp_path / "b", model)
    b.store.put_artifact(model.model_id, model.data)
    rng = np.random.default_rng(3)
    txs = [score_tx([float(x) for x in rng.normal(0, 2, 3)], f"r{i}") for i in range(40)]
    height = a.height + 1
    proposal = a.build(height, 0, proposer(a, height), txs)
    assert b.validate(height, proposal.block) is None  # b scores each row on its own
    cert = certify(height, proposal.block)
    a.commit(proposal.block, cert)
    b.commit(proposal.block, cert)
    assert a.store.state_root() == b.store.state_root()
    assert a.store.receipts(height) == b.store.receipts(height)


def follower(a: Ledger, path: Path, model) -> Ledger:  # type: ignore[no-untyped-def]
    """A second ledger that has committed a's blocks (approving ``model`` needed its
    artifact), and then lost that artifact: it must fetch it before it scores."""
    from node.store import ARTIFACT

    b = open_ledger(path)
    b.store.put_artifact(model.model_id, model.data)
    for height in range(1, a.height + 1):
        b.commit(a.store.block(height), a.certificate(height))  # type: ignore[arg-type]
    b.store.db.delete(ARTIFACT + model.model_id)
    b.executor.models = ModelCache(b.store.artifact)  # nothing of it stays in memory
    return b


def test_wrong_width_unknown_model_and_missing_role(tmp_path: Path, model) -> None:  # type: ignore[no-untyped-def]
    ledger = ready(tmp_path / "a", model)
    other_model = ScorePayload("other", (1.0, 2.0, 3.0), "x")
    other = Tx.create(ADMIN, "vigil-test", GENESIS_HASH, other_model, 50)
    receipts = commit(ledger, [score_tx([1.0, 2.0]), other])
    assert "takes 3 features (amount, hour, country), got 2" in receipts[0].error
    assert "no active model named 'other'" in receipts[1].error
    height = ledger.height + 1
    proposal = ledger.build(
        height, 0, proposer(ledger, height), [score_tx([1.0, 2.0, 3.0], key=CLIENT)]
    )
    assert [exc.code for _, exc in proposal.rejected] == ["forbidden"]


def test_contracts_can_score_through_the_ledger(tmp_path: Path, model) -> None:  # type: ignore[no-untyped-def]
    ledger = ready(tmp_path / "a", model)
    install(ledger, ("screen", SCREEN))
    [r] = commit(ledger, [call("screen", "check", ["fraud", [1, 2, 3]])])

    expected, _, _ = Scorer(model).score_row(np.array([1.0, 2.0, 3.0]))
    assert r.status == "ok" and decode_value(r.result, MAX_VALUE_BYTES) == expected


def test_a_node_without_the_artifact_must_fetch_it(tmp_path: Path, model) -> None:  # type: ignore[no-untyped-def]
    a = ready(tmp_path / "a", model)
    b = follower(a, tmp_path / "b", model)
    height = a.height + 1
    proposal = a.build(height, 0, proposer(a, height), [score_tx([0.0, 0.0, 0.0])])
    with pytest.raises(ArtifactMissing) as info:
        b.validate(height, proposal.block)
    assert info.value.model_id == model.model_id
    waiting = score_tx([0.0, 0.0, 0.0])
    skipped = b.build(height, 0, proposer(b, height), [waiting])
    assert skipped.missing_models == [model.model_id]
    assert skipped.waiting == {model.model_id: [waiting.id]}  # dropped if no peer has it
    b.store.put_artifact(model.model_id, model.data)
    assert b.validate(height, proposal.block) is None


def test_a_contract_score_without_the_artifact_waits_instead_of_reverting(
    tmp_path: Path,
    model,  # type: ignore[no-untyped-def]
) -> None:
    """Fault 2: ledger.score on a node lacking the artifact became a reverted receipt.

    The receipt embedded a Python message, so it differed from the nodes that
    held the artifact, and a node committing the certified block halted.
    """
    from ledger_helpers import govern
    from test_contracts import code, deploy

    from vm.bytecode import code_hash

    a = ready(tmp_path / "a", model)
    b = follower(a, tmp_path / "b", model)
    for ledger in (a, b):  # governance approves the code (written as if voted)
        govern(ledger, "deploy:screen", code_hash(code(SCREEN, "screen")))
    commit(a, [deploy("screen", SCREEN)])
    b.commit(a.store.block(a.height), a.certificate(a.height))  # type: ignore[arg-type]
    height = a.height + 1
    tx = call("screen", "check", ["fraud", [1, 2, 3]])
    proposal = a.build(height, 0, proposer(a, height), [tx])
    with pytest.raises(ArtifactMissing):
        b.validate(height, proposal.block)
    skipped = b.build(height, 0, proposer(b, height), [tx])
    assert skipped.missing_models == [model.model_id]
    assert skipped.rejected == [] and b"screen" not in skipped.block
    cert = certify(height, proposal.block)
    with pytest.raises(ArtifactMissing):
        b.commit(proposal.block, cert)
    b.store.put_artifact(model.model_id, model.data)
    a.commit(proposal.block, cert)
    b.commit(proposal.block, cert)
    assert a.store.receipts(height) == b.store.receipts(height)


def test_host_failures_never_put_python_text_in_receipts(tmp_path: Path, model) -> None:  # type: ignore[no-untyped-def]
    """A host method that fails unexpectedly is named by request and class, not message."""
    from vm.errors import HostError
    from vm.interpreter import _Machine

    class Host:
        def height(self) -> int:
            raise ZeroDivisionError("text that differs between Python versions")

    machine = _Machine.__new__(_Machine)
    machine.host = Host()
    with pytest.raises(HostError) as info:
        machine.ask_host("height")
    assert str(info.value) == "host height failed: ZeroDivisionError"
