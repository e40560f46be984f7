"""Screen payments with the active anomaly model and keep a per-client tally."""

# ruff: noqa: F821  (ledger, require and sha256 come from the VM, or from the oracle under CPython)

MODEL = "iforest"
FLAG_AT = 700


def screen(client, features):
    require(len(features) > 0 and len(features) <= 8, "need 1 to 8 features")
    score = ledger.score(MODEL, features)
    verdict = "flag" if score >= FLAG_AT else "pass"
    key = "client:" + client
    record = ledger.get(key, {"pass": 0, "flag": 0, "last": None})
    record[verdict] += 1
    record["last"] = (score, ledger.height())
    ledger.put(key, record)
    if verdict == "flag":
        ledger.emit("flagged", {"client": client, "score": score})
    return verdict, score


def summary(client):
    record = ledger.get("client:" + client)
    if record is None:
        return None
    total = record["pass"] + record["flag"]
    return record["flag"] * 100 // total
