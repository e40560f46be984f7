"""Chargebacks decided by the consortium's certified fraud model.

A member files a chargeback claim with the features of the disputed payment. The contract
scores them with the active model of the family it was configured with
(``ledger.score``) and reads that model's outlier threshold (``ledger.model``), so the
verdict is the same one a score transaction would certify, on every node:

* a normal payment is paid out at once: the amount goes to the claimant organisation's
  balance in this contract, and a ``paid`` event is emitted;
* a payment the model flags is held for review: a ``held`` event, and no money moves
  until a member organisation other than the claimant releases or rejects it.

Deploy it through governance (``vigil gov propose allow-deploy chargeback
docs/examples/chargeback.py``, a vote, then ``vigil contract deploy``), then call
``configure("fraud")`` once. Features are integers (the VM has no floats): scale them
the same way the model's training data was scaled.

Storage: ``model`` -> model family name; ``claim:<id>`` -> {"org", "amount", "features",
"path_sum", "threshold", "status", "filed_at", "decided_by"}; ``balance:<org>`` -> int.
"""

# ruff: noqa: F821  (ledger and require come from the VM)

MODELS = "models"
MAX_CLAIM_ID_CHARS = 64
MAX_AMOUNT = 1000000000000
MAX_FEATURES = 64


def configure(model_name):
    """Choose the model family whose certified verdict decides claims (once)."""
    require(ledger.get("model") is None, "already configured")
    require(str(model_name) == model_name and len(model_name) >= 1, "model name required")
    ledger.put("model", model_name)
    return model_name


def file_claim(claim_id, amount, features):
    """File a chargeback; returns "paid" or "held" by the model's certified verdict."""
    name = ledger.get("model")
    require(name is not None, "configure(model_name) first")
    require(str(claim_id) == claim_id, "claim id must be a string")
    require(len(claim_id) >= 1 and len(claim_id) <= MAX_CLAIM_ID_CHARS, "claim id length")
    require(ledger.get("claim:" + claim_id) is None, f"claim {claim_id} was filed already")
    require(str(amount) != amount and amount >= 1 and amount <= MAX_AMOUNT, "amount out of range")
    require(len(features) >= 1 and len(features) <= MAX_FEATURES, "features out of range")
    active = ledger.call(MODELS, "active", [name])
    require(active is not None, f"model {name} has no active version")
    path_sum = ledger.score(name, features)
    threshold = ledger.model(active["model_id"])["threshold"]
    org = ledger.caller_org()
    status = "held"
    if path_sum >= threshold:
        status = "paid"
        ledger.put("balance:" + org, ledger.get("balance:" + org, 0) + amount)
    ledger.put(
        "claim:" + claim_id,
        {
            "org": org,
            "amount": amount,
            "features": features,
            "path_sum": path_sum,
            "threshold": threshold,
            "status": status,
            "filed_at": ledger.height(),
            "decided_by": active["version"],
        },
    )
    ledger.emit(status, {"claim": claim_id, "org": org, "amount": amount, "path_sum": path_sum})
    return status


def review(claim_id, release):
    """A member other than the claimant releases (pays) or rejects a held claim."""
    claim = ledger.get("claim:" + claim_id)
    require(claim is not None, f"no claim {claim_id}")
    require(claim["status"] == "held", f"claim {claim_id} is {claim['status']}")
    reviewer = ledger.caller_org()
    require(reviewer in ledger.members(), "only a member organisation may review")
    require(reviewer != claim["org"], "the claimant cannot review its own claim")
    if release:
        claim["status"] = "paid"
        org = claim["org"]
        ledger.put("balance:" + org, ledger.get("balance:" + org, 0) + claim["amount"])
    else:
        claim["status"] = "rejected"
    ledger.put("claim:" + claim_id, claim)
    ledger.emit(claim["status"], {"claim": claim_id, "org": claim["org"], "by": reviewer})
    return claim["status"]


def get_claim(claim_id):
    return ledger.get("claim:" + claim_id)


def balance(org):
    return ledger.get("balance:" + org, 0)
