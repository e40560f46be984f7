"""docs/examples/chargeback.py on a real ledger: deployed through governance, it pays a claim
the certified model finds normal and holds one it flags, exactly as a score transaction
decides the same features."""

from __future__ import annotations

from pathlib import Path

from ledger_helpers import ADMIN, CLIENT, commit
from test_contracts import call, code, deploy, result
from test_scoring import decide, model, ready, score_tx  # noqa: F401  (model is a fixture)

from node.app.types import Receipt
from vm.bytecode import code_hash

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "chargeback.py"
NORMAL = [0, 0, 0]
FLAGGED = [8, -9, 7]


def _ok(receipt: Receipt) -> object:
    assert receipt.status == "ok", receipt.error
    return result(receipt)


def test_the_chargeback_example_pays_and_holds_by_the_certified_verdict(
    tmp_path: Path,
    model,  # type: ignore[no-untyped-def]  # noqa: F811
) -> None:
    ledger = ready(tmp_path, model)  # fraud v1 approved and active
    source = EXAMPLE.read_text()
    [refused] = commit(ledger, [deploy("chargeback", source)])
    assert refused.status != "ok"  # not approved by governance yet
    allowed = code_hash(code(source, "chargeback"))
    decide(ledger, "allow_deploy", {"name": "chargeback", "code_hash": allowed})
    [deployed] = commit(ledger, [deploy("chargeback", source)])
    assert deployed.status == "ok", deployed.error
    _ok(commit(ledger, [call("chargeback", "configure", ["fraud"], ADMIN)])[0])

    # The certified verdicts of the same features, from score transactions.
    verdicts = commit(ledger, [score_tx([float(x) for x in f], f"row {i}")
                               for i, f in enumerate((NORMAL, FLAGGED))])  # fmt: skip
    assert [r.result[2] for r in verdicts] == [False, True]  # (model id, path sum, outlier, top)

    paid, held = commit(ledger, [
        call("chargeback", "file_claim", ["c1", 250, NORMAL], CLIENT),
        call("chargeback", "file_claim", ["c2", 900, FLAGGED], CLIENT),
    ])  # fmt: skip
    assert _ok(paid) == "paid" and _ok(held) == "held"
    assert [e.name for e in paid.events] == ["paid"] and [e.name for e in held.events] == ["held"]
    [stored] = commit(ledger, [call("chargeback", "get_claim", ["c2"], CLIENT)])
    claim = _ok(stored)
    assert claim["path_sum"] == verdicts[1].result[1] and claim["status"] == "held"  # type: ignore[index]
    [balance] = commit(ledger, [call("chargeback", "balance", ["org0"], CLIENT)])
    assert _ok(balance) == 250  # only the normal claim was paid

    [own] = commit(ledger, [call("chargeback", "review", ["c2", True], CLIENT)])
    assert own.status == "reverted" and "cannot review its own claim" in own.error
    [again] = commit(ledger, [call("chargeback", "file_claim", ["c1", 1, NORMAL], CLIENT)])
    assert again.status == "reverted" and "filed already" in again.error
    [released] = commit(ledger, [call("chargeback", "review", ["c2", True], ADMIN)])  # org2
    assert _ok(released) == "paid"
    [balance] = commit(ledger, [call("chargeback", "balance", ["org0"], CLIENT)])
    assert _ok(balance) == 1150
