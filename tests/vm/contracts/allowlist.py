"""An allow-list of client keys (hex) kept by one administrator."""

# ruff: noqa: F821, SIM110  (ledger, require and sha256 come from the VM, or from the oracle under CPython)

ADMIN = "admin"
LIST = "entries"
KEY_HEX_DIGITS = 64


def init():
    require(ledger.get(ADMIN) is None, "already initialised")
    ledger.put(ADMIN, ledger.caller())
    ledger.put(LIST, [])
    return ledger.caller().hex()


def _only_admin():
    require(ledger.get(ADMIN) == ledger.caller(), "admin only")


def _valid(entry):
    if len(entry) != KEY_HEX_DIGITS:
        return False
    for ch in entry:
        if ch not in "0123456789abcdef":
            return False
    return True


def add(entry):
    _only_admin()
    require(_valid(entry), "entry must be 64 lowercase hex digits")
    entries = ledger.get(LIST, [])
    require(entry not in entries, "already listed")
    entries.append(entry)
    ledger.put(LIST, entries)
    ledger.emit("added", entry)
    return len(entries)


def remove(entry):
    _only_admin()
    entries = ledger.get(LIST, [])
    require(entry in entries, "not listed")
    entries.remove(entry)
    ledger.put(LIST, entries)
    ledger.emit("removed", entry)
    return len(entries)


def is_allowed(entry):
    return entry in ledger.get(LIST, [])


def me_allowed():
    return is_allowed(ledger.caller().hex())


def listed():
    return sorted(ledger.get(LIST, []))
