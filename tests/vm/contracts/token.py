"""A fungible token: one owner mints, anyone transfers their balance."""

# ruff: noqa: F821  (ledger, require and sha256 come from the VM, or from the oracle under CPython)


def init(supply):
    require(ledger.get("owner") is None, "already initialised")
    require(supply >= 0, "negative supply")
    owner = ledger.caller().hex()
    ledger.put("owner", owner)
    ledger.put("bal:" + owner, supply)
    ledger.put("supply", supply)
    return supply


def balance_of(who):
    return ledger.get("bal:" + who, 0)


def transfer(to, amount):
    require(amount > 0, "amount must be positive")
    me = ledger.caller().hex()
    mine = balance_of(me)
    require(mine >= amount, "insufficient balance")
    ledger.put("bal:" + me, mine - amount)
    ledger.put("bal:" + to, balance_of(to) + amount)
    ledger.emit("transfer", [me, to, amount])
    return balance_of(me)


def mint(amount):
    owner = ledger.get("owner")
    require(owner is not None, "not initialised")
    require(ledger.caller().hex() == owner, "owner only")
    require(amount > 0, "amount must be positive")
    ledger.put("supply", ledger.get("supply", 0) + amount)
    ledger.put("bal:" + owner, balance_of(owner) + amount)
    ledger.emit("mint", amount)
    return ledger.get("supply")


def burn(amount):
    me = ledger.caller().hex()
    mine = balance_of(me)
    require(amount > 0 and amount <= mine, "bad amount")
    if mine == amount:
        ledger.delete("bal:" + me)
    else:
        ledger.put("bal:" + me, mine - amount)
    ledger.put("supply", ledger.get("supply", 0) - amount)
    return mine - amount


def total_supply():
    return ledger.get("supply", 0)
