"""Royalties: each score call charges the scoring org a fee and pays the model's contributors.

Only the node calls ``charge`` (as the system address) once per score transaction. The fee
is governance's ``score_fee`` parameter; contributor org c of the active model version gets
floor(fee * w_c / W) and the remainder goes to the contributor that sorts first, so the sum
of all balances is always exactly 0. Balances are ints and may go negative.

Storage: ``balance:<org>`` -> int; ``orgs`` -> sorted list of orgs that have a balance.
Each charge emits ``charged`` {"org", "model", "fee", "paid": {contributor: share}}, so a
score's receipt proves what it cost and who was paid.
"""

# ruff: noqa: F821  (ledger, require and sha256 come from the VM)

# sha256(b"vigil/system"): the caller key the node uses when it charges a score call.
SYSTEM = (
    b"\xb9\x4a\x4c\x88\x9a\x0d\x3a\xbe\x20\x26\x81\x97\xc1\xb3\x14\xaf"
    b"\xca\x72\xea\x13\xaf\x47\x33\x00\x4a\xcc\x61\x11\x87\xa5\x3e\x78"
)
ORG_FIRST = "abcdefghijklmnopqrstuvwxyz0123456789"
ORG_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-"
# Org ids match [a-z0-9][a-z0-9_-]{0,31}.
MAX_ORG_CHARS = 32
NAME_FIRST = "abcdefghijklmnopqrstuvwxyz"
NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
# Model names match [a-z][a-z0-9_]{0,63}.
MAX_NAME_CHARS = 64


def _type(x):
    if x is None:
        return "none"
    s = str(x)
    if s == x:
        return "str"
    c = s[:1]
    if c == "[":
        return "list"
    if c == "(":
        return "tuple"
    if c == "{":
        return "dict"
    if c == "b":
        return "bytes"
    if c == "T" or c == "F":
        return "bool"
    return "int"


def _check_pattern(x, what, first, chars, max_chars):
    require(_type(x) == "str", f"{what} must be a string")
    require(len(x) >= 1 and len(x) <= max_chars, f"{what} must have 1..{max_chars} characters")
    require(x[0] in first, f"{what} {x} must start with one of {first}")
    for c in x:
        require(c in chars, f"{what} {x} may only contain {chars}")


def _check_org(org):
    _check_pattern(org, "org", ORG_FIRST, ORG_CHARS, MAX_ORG_CHARS)


def _add(org, amount, orgs):
    key = "balance:" + org
    old = ledger.get(key)
    if old is None:
        i = 0
        while i < len(orgs) and orgs[i] < org:
            i += 1
        orgs.insert(i, org)
        old = 0
    ledger.put(key, old + amount)


def charge(org, model_name):
    """Charge ``org`` the score fee for one call of ``model_name`` (system only); the fee."""
    require(ledger.caller() == SYSTEM, "only the node may charge royalties")
    _check_org(org)
    _check_pattern(model_name, "model name", NAME_FIRST, NAME_CHARS, MAX_NAME_CHARS)
    fee = ledger.call("governance", "param", ["score_fee"])
    require(_type(fee) == "int" and fee >= 0, "governance param score_fee must be an int >= 0")
    record = ledger.call("models", "active", [model_name])
    require(record is not None, f"model {model_name} has no active version")
    if fee == 0:
        return 0
    contributors = record["contributors"]
    names = sorted(contributors.keys())
    total = 0
    for c in names:
        total += contributors[c]
    require(total > 0, f"model {model_name} has no contributor weight")
    orgs = ledger.get("orgs", [])
    _add(org, -fee, orgs)
    paid = 0
    shares = {}
    for c in names:
        share = fee * contributors[c] // total
        shares[c] = share
        paid += share
    shares[names[0]] += fee - paid
    for c in names:
        if shares[c] != 0:
            _add(c, shares[c], orgs)
    ledger.put("orgs", orgs)
    # The payout of this charge, per contributor: the receipt (and so any proof of it)
    # says who earned what from this score.
    ledger.emit("charged", {"org": org, "model": model_name, "fee": fee, "paid": shares})
    return fee


def balance(org):
    _check_org(org)
    return ledger.get("balance:" + org, 0)


def balances():
    """Every org's balance, sorted by org."""
    out = {}
    for org in ledger.get("orgs", []):
        out[org] = ledger.get("balance:" + org)
    return out
