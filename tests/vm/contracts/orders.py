"""A small state machine: an order moves through allowed transitions only."""

# ruff: noqa: F821  (ledger, require and sha256 come from the VM, or from the oracle under CPython)


def _transitions():
    return {
        "created": ["paid", "cancelled"],
        "paid": ["shipped", "refunded"],
        "shipped": ["delivered", "lost"],
        "lost": ["refunded"],
        "delivered": [],
        "cancelled": [],
        "refunded": [],
    }


def create(oid, amount):
    require(amount > 0, "amount must be positive")
    key = f"order:{oid}"
    require(ledger.get(key) is None, "order exists")
    order = {"state": "created", "amount": amount, "history": [("created", ledger.height())]}
    ledger.put(key, order)
    return "created"


def advance(oid, to):
    key = f"order:{oid}"
    order = ledger.get(key)
    require(order is not None, "unknown order")
    allowed = _transitions()[order["state"]]
    require(to in allowed, f"cannot go from {order['state']} to {to}")
    order["state"] = to
    order["history"].append((to, ledger.height()))
    ledger.put(key, order)
    ledger.emit("moved", (oid, to))
    if len(_transitions()[to]) == 0:
        done = ledger.get("done", 0)
        ledger.put("done", done + 1)
    return len(order["history"])


def history(oid):
    order = ledger.get(f"order:{oid}")
    require(order is not None, "unknown order")
    out = []
    for step in order["history"]:
        out.append(step[0])
    return out


def states():
    names = list(_transitions().keys())
    names.sort()
    return tuple(names)
