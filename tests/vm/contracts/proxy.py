"""Votes through the voting contract (ledger.call) and keeps its own log."""

# ruff: noqa: F821  (ledger, require and sha256 come from the VM, or from the oracle under CPython)

MAX_LOG = 5


def vote_via(pid, approve):
    state = ledger.call("voting", "vote", [pid, approve])
    entries = ledger.get("log", [])
    entries.append((pid, approve, state))
    ledger.put("log", entries)
    ledger.emit("relayed", pid)
    # Fails after the nested call succeeded: its writes must be undone too.
    require(len(entries) <= MAX_LOG, "log full")
    return state


def tally(pid):
    return ledger.call("voting", "tally", [pid])


def loop_back():
    return ledger.call("proxy", "tally", [0])


def missing():
    return ledger.call("nowhere", "tally", [0])


def log():
    return ledger.get("log", [])
