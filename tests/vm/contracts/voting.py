"""Proposals decided by a quorum of member organisations (one vote per organisation)."""

# ruff: noqa: F821  (ledger, require and sha256 come from the VM, or from the oracle under CPython)

MAX_TITLE = 80


def _key(pid):
    return "proposal:" + str(pid)


def propose(pid, title, quorum):
    require(len(title) > 0 and len(title) <= MAX_TITLE, "bad title")
    require(quorum >= 1 and quorum <= len(ledger.members()), "bad quorum")
    require(ledger.get(_key(pid)) is None, "proposal exists")
    proposal = {
        "title": title,
        "quorum": quorum,
        "yes": [],
        "no": [],
        "state": "open",
        "by": ledger.caller_org(),
        "at": ledger.height(),
    }
    ledger.put(_key(pid), proposal)
    ledger.emit("proposed", {"pid": pid, "quorum": quorum})
    return pid


def vote(pid, approve):
    p = ledger.get(_key(pid))
    require(p is not None, "no such proposal")
    require(p["state"] == "open", "voting is closed")
    org = ledger.caller_org()
    require(org in ledger.members(), "not a member")
    require(org not in p["yes"] and org not in p["no"], "already voted")
    if approve:
        p["yes"].append(org)
    else:
        p["no"].append(org)
    n = len(ledger.members())
    if len(p["yes"]) >= p["quorum"]:
        p["state"] = "approved"
        ledger.emit("approved", {"pid": pid, "yes": len(p["yes"])})
    elif len(p["no"]) > n - p["quorum"]:
        p["state"] = "rejected"
        ledger.emit("rejected", {"pid": pid, "no": len(p["no"])})
    ledger.put(_key(pid), p)
    return p["state"]


def tally(pid):
    p = ledger.get(_key(pid))
    if p is None:
        return None
    return (len(p["yes"]), len(p["no"]), p["state"])


def withdraw(pid):
    p = ledger.get(_key(pid))
    require(p is not None, "no such proposal")
    require(p["by"] == ledger.caller_org(), "only the proposer may withdraw")
    require(p["state"] == "open", "voting is closed")
    ledger.delete(_key(pid))
    ledger.emit("withdrawn", pid)
    return True
