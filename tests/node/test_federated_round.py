"""A federated round on a real ledger: governance opens it, members submit local models
trained only on data they anchored, the chain computes the merge's id when it closes, and
only that merged model can be proposed, with each member's rows as its royalty weight."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from ledger_helpers import ADMIN, CLIENT, NODES, anchor_tx, commit, open_ledger
from test_contracts import call, result
from test_scoring import decide

from ml.merge import merge
from ml.train import TrainParams, train
from node.app.ledger import Ledger

FEATURES = ("amount", "hour", "risk")


def _local_model(seed: int, data: bytes, rows: int):  # type: ignore[no-untyped-def]
    """A member's local model: trained on its own rows, naming the file it anchored."""
    matrix = np.random.default_rng(seed).normal(size=(rows, 3))
    params = TrainParams(n_estimators=8, random_state=seed)
    return train(matrix, FEATURES, params, datasets=[(hashlib.sha256(data).digest(), rows)]).model


def _call(ledger: Ledger, method: str, args: list, key=CLIENT):  # type: ignore[no-untyped-def]
    [receipt] = commit(ledger, [call("models", method, args, key)])
    return receipt


def test_a_round_merges_the_members_models_and_only_that_merge_is_approved(
    tmp_path: Path,
) -> None:
    ledger = open_ledger(tmp_path)
    file_a, file_b = b"bank org0 payments", b"bank org2 payments"
    commit(ledger, [anchor_tx(file_a)])  # org0's client anchors its own data
    commit(ledger, [anchor_tx(file_b, key=ADMIN)])  # org2's client anchors its own data
    mine, theirs = _local_model(1, file_a, 60), _local_model(2, file_b, 40)
    borrowed = _local_model(3, file_a, 30)  # trained on org0's anchored file
    merged = merge([mine, theirs])
    for m in (mine, theirs, borrowed, merged):
        ledger.store.put_artifact(m.model_id, m.data)  # uploaded to the nodes

    deadline = ledger.height + 8
    decide(ledger, "open_round", {"name": "fed", "features": list(FEATURES),
                                  "deadline": deadline, "min_members": 2})  # fmt: skip
    assert result(_call(ledger, "submit", [1, mine.model_id])) == 60
    stolen = _call(ledger, "submit", [1, borrowed.model_id], ADMIN)
    assert stolen.status == "reverted" and "is not anchored by org2" in stolen.error
    assert result(_call(ledger, "submit", [1, theirs.model_id], ADMIN)) == 40
    twice = _call(ledger, "submit", [1, borrowed.model_id])
    assert twice.status == "reverted" and "org0 has already submitted" in twice.error
    early = _call(ledger, "close_round", [1])
    assert early.status == "reverted" and f"open until height {deadline}" in early.error

    while ledger.height < deadline:
        commit(ledger, [])
    late = _call(ledger, "submit", [1, borrowed.model_id])
    assert late.status == "reverted"
    assert result(_call(ledger, "close_round", [1])) == "closed"
    round_ = result(_call(ledger, "get_round", [1]))
    assert round_["merged"] == merged.model_id  # type: ignore[index]  # the chain's own merge

    [wrong] = commit(ledger, [call("governance", "propose", ["approve_round", {
        "round": 1, "model_id": mine.model_id, "size": len(mine.data)}], NODES[0])])  # fmt: skip
    assert wrong.status == "reverted" and "is not the merge of round 1" in wrong.error
    decide(ledger, "approve_round", {"round": 1, "model_id": merged.model_id,
                                     "size": len(merged.data)})  # fmt: skip
    version = result(commit(ledger, [call("models", "version", ["fed", 1], CLIENT)])[0])
    assert version["model_id"] == merged.model_id  # type: ignore[index]
    assert version["contributors"] == {"org0": 60, "org2": 40}  # type: ignore[index]
    assert result(_call(ledger, "get_round", [1]))["status"] == "approved"  # type: ignore[index]
    trained = result(_call(ledger, "trained_on", [hashlib.sha256(file_b).digest()]))
    assert trained == [["fed", 1]]


def test_a_round_with_too_few_submissions_fails(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path)
    file_a = b"lonely data"
    commit(ledger, [anchor_tx(file_a)])
    mine = _local_model(1, file_a, 50)
    ledger.store.put_artifact(mine.model_id, mine.data)
    deadline = ledger.height + 6
    decide(ledger, "open_round", {"name": "fed", "features": list(FEATURES),
                                  "deadline": deadline, "min_members": 2})  # fmt: skip
    assert result(_call(ledger, "submit", [1, mine.model_id])) == 50
    while ledger.height < deadline:
        commit(ledger, [])
    assert result(_call(ledger, "close_round", [1])) == "failed"
    [refused] = commit(ledger, [call("governance", "propose", ["approve_round", {
        "round": 1, "model_id": mine.model_id, "size": len(mine.data)}], NODES[0])])  # fmt: skip
    assert refused.status == "reverted" and "round 1 is failed" in refused.error
