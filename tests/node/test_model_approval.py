"""Approving a model version on a real ledger: the artifact itself (read by id) must match the
proposal, and with require_anchored_training every training dataset must be anchored on
chain by a member; the dry run names each dataset with its anchor."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from ledger_helpers import CLIENT, NODES, anchor_tx, commit, open_ledger
from test_contracts import call, result
from test_scoring import decide

from ml.train import TrainParams, train
from node.app.ledger import Ledger
from node.app.types import Block
from vm.gas import MAX_VALUE_BYTES
from vm.values import decode_value

ROWS = np.random.default_rng(9).normal(size=(120, 3))


def _files() -> tuple[bytes, bytes]:
    """Two members' training files (the bytes whose SHA-256 they anchor)."""
    return b"bank-a payments 2026", b"bank-b payments 2026"


@pytest.fixture(scope="module")
def trained():  # type: ignore[no-untyped-def]
    a, b = _files()
    datasets = [(hashlib.sha256(a).digest(), 70), (hashlib.sha256(b).digest(), 50)]
    v3 = train(ROWS, ("amount", "hour", "risk"), TrainParams(n_estimators=5), datasets=datasets)
    v2 = train(ROWS, ("amount", "hour", "risk"), TrainParams(n_estimators=6), [bytes(32)])
    return v3.model, v2.model


def _ledger(path: Path, *models) -> Ledger:  # type: ignore[no-untyped-def]
    ledger = open_ledger(path)
    for m in models:
        ledger.store.put_artifact(m.model_id, m.data)  # uploaded before proposing
    decide(ledger, "set_param", {"name": "require_anchored_training", "value": 1})
    return ledger


def _args(model, **over) -> dict:  # type: ignore[no-untyped-def]
    args = {
        "name": "fraud",
        "model_id": model.model_id,
        "size": len(model.data),
        "contributors": {},
        "anchors": [d for d, _ in model.datasets or ()] or [bytes(32)],
    }
    return args | over


def _propose(ledger: Ledger, args: dict):  # type: ignore[no-untyped-def]
    [receipt] = commit(ledger, [call("governance", "propose", ["approve_model", args], NODES[0])])
    return receipt


def test_a_model_trained_on_unanchored_data_is_refused(tmp_path: Path, trained) -> None:  # type: ignore[no-untyped-def]
    v3, _ = trained
    ledger = _ledger(tmp_path, v3)
    first, second = _files()
    commit(ledger, [anchor_tx(first)])  # only bank-a's file is anchored
    refused = _propose(ledger, _args(v3))
    assert refused.status == "reverted"
    missing = hashlib.sha256(second).digest().hex()[:16]
    assert f"training dataset {missing} is not anchored on chain by a member" in refused.error


def test_anchored_training_data_is_approved_and_the_dry_run_names_it(
    tmp_path: Path,
    trained,  # type: ignore[no-untyped-def]
) -> None:
    v3, _ = trained
    ledger = _ledger(tmp_path, v3)
    first, second = _files()
    commit(ledger, [anchor_tx(first)])
    parent = hashlib.sha256(first).digest()
    commit(ledger, [anchor_tx(second, parents=(parent,))])
    anchored_at = ledger.height
    receipt = _propose(ledger, _args(v3))
    assert receipt.status == "ok", receipt.error
    pid = decode_value(receipt.result, MAX_VALUE_BYTES)
    [shown] = commit(ledger, [call("governance", "get", [pid], CLIENT)])
    dry_run = result(shown)["dry_run"]
    second_digest = hashlib.sha256(second).digest().hex()[:16]
    assert f"{second_digest}: 50 rows, anchored at height {anchored_at} by org0" in dry_run
    assert f"derived from ['{parent.hex()[:16]}']" in dry_run
    assert f"{parent.hex()[:16]}: 70 rows" in dry_run
    votes = commit(ledger, [call("governance", "vote", [pid, True], k) for k in NODES[:3]])
    assert [v.status for v in votes] == ["ok"] * 3, [v.error for v in votes]
    for digest in (parent, hashlib.sha256(second).digest()):
        [used] = commit(ledger, [call("models", "trained_on", [digest], CLIENT)])
        assert result(used) == [["fraud", 1]]  # the anchor's lineage names the model version
    [version] = commit(ledger, [call("models", "version", ["fraud", 1], CLIENT)])
    assert result(version)["contributors"] == {"org0": 120}  # the rows org0's client anchored


def test_royalty_weights_are_the_recorded_contributions(tmp_path: Path, trained) -> None:  # type: ignore[no-untyped-def]
    from ledger_helpers import ADMIN

    v3, _ = trained
    ledger = _ledger(tmp_path, v3)
    first, second = _files()
    commit(ledger, [anchor_tx(first)])  # org0's client
    commit(ledger, [anchor_tx(second, key=ADMIN)])  # org2's client
    typed = _propose(ledger, _args(v3, contributors={"org0": 1, "org2": 1}))
    assert "contributors must be the recorded contributions" in typed.error
    assert "{'org0': 70, 'org2': 50}" in typed.error, typed.error
    repeated = _propose(ledger, _args(v3, contributors={"org0": 70, "org2": 50}))
    assert repeated.status == "ok", repeated.error  # repeating them exactly is fine
    pid = decode_value(repeated.result, MAX_VALUE_BYTES)
    [shown] = commit(ledger, [call("governance", "get", [pid], CLIENT)])
    assert "royalty weights ['org0=70', 'org2=50']" in result(shown)["dry_run"]


def test_the_proposal_must_match_the_artifact(tmp_path: Path, trained) -> None:  # type: ignore[no-untyped-def]
    v3, v2 = trained
    ledger = _ledger(tmp_path, v3, v2)
    for data in _files():
        commit(ledger, [anchor_tx(data)])
    wrong_size = _propose(ledger, _args(v3, size=len(v3.data) + 1))
    assert f"size must be the artifact's {len(v3.data)} bytes" in wrong_size.error
    one_missing = _propose(ledger, _args(v3, anchors=[v3.datasets[0][0]]))
    assert "anchors must be the artifact's 2 training dataset(s)" in one_missing.error
    other = _propose(ledger, _args(v3, anchors=[v3.datasets[0][0], bytes(32)]))
    assert "anchors must include training dataset" in other.error
    legacy = _propose(ledger, _args(v2))  # format 2: no datasets recorded
    assert "records no training datasets" in legacy.error


def test_with_the_rule_off_an_old_artifact_is_still_approved(tmp_path: Path, trained) -> None:  # type: ignore[no-untyped-def]
    _, v2 = trained
    ledger = open_ledger(tmp_path)  # these test ledgers start with the rule off
    ledger.store.put_artifact(v2.model_id, v2.data)
    off = _propose(ledger, _args(v2))
    assert "contributors must have 1..32 orgs" in off.error  # typed weights, as before
    assert _propose(ledger, _args(v2, contributors={"org0": 1})).status == "ok"


def test_a_proposal_waits_for_an_artifact_this_node_lacks(tmp_path: Path, trained) -> None:  # type: ignore[no-untyped-def]
    """Without the artifact the proposal is not built into a block (it waits to be fetched)
    rather than reverted: every node must reach the same verdict."""
    from ledger_helpers import proposer

    v3, _ = trained
    ledger = open_ledger(tmp_path)
    tx = call("governance", "propose", ["approve_model", _args(v3)], NODES[0])
    built = ledger.build(1, 0, proposer(ledger, 1), [tx])
    assert built.missing_models == [v3.model_id]
    assert Block.decode(built.block).txs == ()
