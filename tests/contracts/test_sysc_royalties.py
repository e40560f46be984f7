"""Royalties: the pro-rata split with its remainder rule, balances that always sum to zero,
the system-only charge, and the fee taken from governance."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sysc_helpers import (
    SYSTEM_KEY,
    SYSTEM_ORG,
    World,
    admin_key,
    contract_address,
    key,
    revert_message,
)

ORGS = ["bank-a", "bank-b", "bank-c", "bank-d"]


def with_model(world: World, contributors: dict[str, int], name: str = "fraud") -> None:
    """Register and activate a model version as governance would have (storage set up)."""
    world.put(
        "models",
        f"model:{name}:1",
        {
            "version": 1,
            "model_id": key(name),
            "size": 1,
            "contributors": contributors,
            "anchors": [],
            "approved_at": 1,
        },
    )
    world.put("models", "versions:" + name, 1)
    world.put("models", "active:" + name, {"model_id": key(name), "version": 1})


def charge(world: World, org: str, model: str = "fraud") -> Any:
    return world.call("royalties", "charge", [org, model], SYSTEM_KEY, SYSTEM_ORG)


def test_pro_rata_split_with_remainder_to_first_contributor() -> None:
    world = World(list(ORGS))
    with_model(world, {"bank-c": 1, "bank-b": 1, "bank-a": 1})
    assert charge(world, "bank-d").value == 10
    # 10 // 3 = 3 each; the remainder 1 goes to bank-a, the contributor that sorts first.
    assert world.view("royalties", "balances", []) == {
        "bank-a": 4,
        "bank-b": 3,
        "bank-c": 3,
        "bank-d": -10,
    }
    assert world.get("royalties", "orgs") == ["bank-a", "bank-b", "bank-c", "bank-d"]
    assert world.view("royalties", "balance", ["bank-a"]) == 4
    assert world.view("royalties", "balance", ["bank-z"]) == 0


def test_each_charge_says_who_was_paid() -> None:
    from vm.gas import MAX_STORAGE_VALUE_BYTES
    from vm.values import decode_value

    world = World(list(ORGS))
    with_model(world, {"bank-b": 2, "bank-a": 1})
    charge(world, "bank-d")
    [(contract, _, data)] = [e for e in world.events if e[1] == "charged"]
    assert contract == "royalties"
    event = decode_value(data, MAX_STORAGE_VALUE_BYTES)
    assert event == {"org": "bank-d", "model": "fraud", "fee": 10,
                     "paid": {"bank-a": 4, "bank-b": 6}}  # fmt: skip
    assert sum(event["paid"].values()) == event["fee"]


def test_weighted_split_and_self_charge() -> None:
    world = World(list(ORGS))
    world.put("governance", "param:score_fee", 100)
    with_model(world, {"bank-a": 3, "bank-b": 1})
    charge(world, "bank-a")
    assert world.view("royalties", "balances", []) == {"bank-a": -25, "bank-b": 25}


def test_zero_fee_changes_nothing() -> None:
    world = World(list(ORGS))
    world.put("governance", "param:score_fee", 0)
    with_model(world, {"bank-a": 1})
    assert charge(world, "bank-b").value == 0
    assert "royalties" not in world.state


def test_only_the_system_may_charge() -> None:
    world = World(list(ORGS))
    with_model(world, {"bank-a": 1})
    for caller, org in [
        (admin_key("bank-a"), "bank-a"),
        (contract_address("governance"), "contract:governance"),
        (bytes(32), "system"),
    ]:
        result = world.call("royalties", "charge", ["bank-b", "fraud"], caller, org)
        assert revert_message(result) == "only the node may charge royalties"
    assert "royalties" not in world.state


def test_charge_input_checks() -> None:
    world = World(list(ORGS))
    assert revert_message(charge(world, "bank-b")) == "model fraud has no active version"
    assert "org must be a string" in revert_message(charge(world, b"bank-b"))
    assert "model name Fraud must start" in revert_message(charge(world, "bank-b", "Fraud"))


def test_fee_follows_governance_through_a_real_vote() -> None:
    world = World(list(ORGS))
    contributors = {"bank-a": 1, "bank-b": 2}
    world.enact(
        "approve_model",
        {
            "name": "fraud",
            "model_id": key("m"),
            "size": 10,
            "contributors": contributors,
            "anchors": [key("a")],
        },
    )
    world.enact("activate_model", {"name": "fraud", "version": 1})
    world.enact("set_param", {"name": "score_fee", "value": 30})
    gas = charge(world, "bank-c").gas_used
    assert world.view("royalties", "balances", []) == {"bank-a": 10, "bank-b": 20, "bank-c": -30}
    assert gas < 200_000, gas


@settings(max_examples=40, deadline=None)
@given(
    weights=st.dictionaries(
        st.sampled_from(ORGS), st.integers(min_value=1, max_value=10**18), min_size=1
    ),
    fee=st.integers(min_value=0, max_value=10**18),
    payers=st.lists(st.sampled_from([*ORGS, "outsider"]), min_size=1, max_size=8),
)
def test_balances_always_sum_to_zero(weights: dict[str, int], fee: int, payers: list[str]) -> None:
    world = World(list(ORGS))
    world.put("governance", "param:score_fee", fee)
    with_model(world, weights)
    expected: dict[str, int] = {}
    names = sorted(weights)
    total = sum(weights.values())
    for payer in payers:
        assert charge(world, payer).ok
        if fee == 0:
            continue
        shares = {c: fee * weights[c] // total for c in names}
        shares[names[0]] += fee - sum(shares.values())
        expected[payer] = expected.get(payer, 0) - fee
        for c in names:
            if shares[c]:
                expected[c] = expected.get(c, 0) + shares[c]
    balances = world.view("royalties", "balances", [])
    assert sum(balances.values()) == 0
    assert balances == dict(sorted(expected.items()))


def test_balances_add_up_across_versions_a_rollback_and_a_removal() -> None:
    """Each charge is split by the weights of the version active when it is made; over a
    new version, a rollback and a contributor's removal, what scorers paid is exactly what
    contributors received, and every org's balance is the sum of its own shares."""
    world = World(list(ORGS))
    versions = {1: {"bank-a": 3, "bank-b": 1}, 2: {"bank-b": 1, "bank-c": 2}}
    for n, weights in versions.items():
        args = {"name": "fraud", "model_id": key(f"v{n}"), "size": 1, "contributors": weights,
                "anchors": [key(f"a{n}")]}  # fmt: skip
        world.enact("approve_model", args)
    expected = dict.fromkeys(ORGS, 0)
    paid = credited = 0

    def charges(version: int, payers: list[str]) -> None:
        nonlocal paid, credited
        weights = versions[version]
        total = sum(weights.values())
        for payer in payers:
            assert charge(world, payer).value == 10
            paid += 10
            expected[payer] -= 10
            shares = {org: 10 * w // total for org, w in weights.items()}
            shares[min(weights)] += 10 - sum(shares.values())
            for org, share in shares.items():
                expected[org] += share
                credited += share

    world.enact("activate_model", {"name": "fraud", "version": 1})
    charges(1, ["bank-c", "bank-d", "bank-c"])
    world.enact("activate_model", {"name": "fraud", "version": 2})
    charges(2, ["bank-a", "bank-d"])
    world.enact("rollback_model", {"name": "fraud", "version": 1})
    charges(1, ["bank-d"])
    world.enact("remove_member", {"org": "bank-b"})  # a contributor of both versions leaves
    charges(1, ["bank-c", "bank-a"])
    balances = world.view("royalties", "balances", [])
    assert balances == {org: v for org, v in expected.items() if org in balances}
    assert sum(balances.values()) == 0
    assert paid == 80 and credited == paid  # every fee paid went to the contributors
    assert balances["bank-b"] == expected["bank-b"] != 0  # a removed member keeps its earnings
