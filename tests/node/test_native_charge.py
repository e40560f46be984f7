"""The node's native royalty charge against the royalties contract run in the VM (the oracle).

Wherever the native charge answers, the VM must succeed with the same storage writes (same
keys, bytes and order) and the same ``charged`` event; wherever the state is off the common
path the native charge must decline (None) and leave the state untouched, so the VM decides.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_helpers import genesis

from node.app import charge as native
from node.app.contracts import CallContext, ContractRevert
from node.app.execution import genesis_writes
from node.app.scoring import vm_charge
from node.app.state import CODE, Overlay, storage_key
from node.app.system import system_code
from vm.gas import INT_LIMIT, MAX_STORAGE_VALUE_BYTES
from vm.values import encode_value

BASE = genesis_writes(genesis())
MODEL = "fraud"

orgs = st.sampled_from(["org0", "org1", "org2", "bank-a", "b_2", "zeta", "a"])
odd_orgs = st.sampled_from(["", "Org", "-x", "x" * 33, "a b"])
ints = st.integers(0, 1_000) | st.integers(-5, 5) | st.sampled_from([INT_LIMIT - 3, -INT_LIMIT + 3])
stored = ints | st.none() | st.booleans() | st.text(max_size=3) | st.lists(ints, max_size=2)


def mostly(draw: Any, good: st.SearchStrategy, bad: st.SearchStrategy) -> Any:
    """Four times in five a value on the common path, else anything (so both paths are hit)."""
    return draw(good if draw(st.integers(0, 4)) else bad)


@st.composite
def states(draw: Any) -> tuple[dict[bytes, bytes], str, str]:
    writes = dict(BASE)

    def put(contract: str, key: str, value: Any) -> None:
        if value is not None:
            writes[storage_key(contract, key)] = encode_value(value, MAX_STORAGE_VALUE_BYTES)

    odd_fee = ints | st.booleans() | st.text(max_size=2)
    fee = mostly(draw, st.none() | st.integers(0, 1_000), odd_fee)
    put("governance", "param:score_fee", fee)
    weights = st.integers(0, 50) if draw(st.integers(0, 4)) else ints
    least = mostly(draw, st.just(1), st.just(0))
    contributors = draw(st.dictionaries(orgs, weights, min_size=least, max_size=4))
    version = draw(st.integers(1, 3))
    if mostly(draw, st.just(True), st.just(False)):
        put("models", f"active:{MODEL}", {"model_id": bytes(32), "version": version})
        record: Any = {"model_id": bytes(32), "contributors": contributors}
        put("models", f"model:{MODEL}:{version}", mostly(draw, st.just(record), stored))
    listed = draw(st.lists(orgs, max_size=5, unique=True))
    put("royalties", "orgs", mostly(draw, st.just(sorted(listed)), st.just(listed) | stored))
    for org in draw(st.lists(orgs, max_size=4, unique=True)):
        put("royalties", "balance:" + org, mostly(draw, st.none() | ints, stored))
    payer = mostly(draw, orgs, odd_orgs)
    model = mostly(draw, st.just(MODEL), st.just("other") | st.just("Bad"))
    return writes, payer, model


def vm_outcome(writes: dict[bytes, bytes], payer: str, model: str) -> tuple[Any, Any, Any]:
    state = Overlay(writes.get)
    ctx = CallContext(state, 10, 1_000)
    try:
        vm_charge(state, ctx, payer, model, writes[CODE + b"royalties"])
    except ContractRevert as exc:
        return "reverted", str(exc), None
    return list(state.writes.items()), ctx.events, None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(states())
def test_the_native_charge_writes_and_emits_what_the_contract_does(
    case: tuple[dict[bytes, bytes], str, str],
) -> None:
    writes, payer, model = case
    state = Overlay(writes.get)
    ctx = CallContext(state, 10, 1_000)
    gas = native.charge(state, ctx, payer, model)
    expected_writes, expected_events, _ = vm_outcome(writes, payer, model)
    if gas is None:
        assert state.writes == {} and ctx.events == []  # declined: untouched, the VM decides
        return
    assert gas == native.GAS_ROYALTY_CHARGE
    assert expected_writes != "reverted", f"the VM refused what the node charged: {expected_events}"
    assert list(state.writes.items()) == expected_writes
    assert ctx.events == expected_events


def test_the_common_charge_is_native_and_pays_every_contributor() -> None:
    writes = dict(BASE)
    put = lambda c, k, v: writes.__setitem__(storage_key(c, k), encode_value(v, 1 << 16))  # noqa: E731
    put("models", f"active:{MODEL}", {"model_id": bytes(32), "version": 1})
    put("models", f"model:{MODEL}:1", {"contributors": {"org0": 1, "org1": 2}})
    state = Overlay(writes.get)
    ctx = CallContext(state, 10, 1_000)
    assert native.charge(state, ctx, "org2", MODEL) == native.GAS_ROYALTY_CHARGE
    assert vm_outcome(writes, "org2", MODEL)[:2] == (list(state.writes.items()), ctx.events)
    balances = {k: v for k, v in state.writes.items() if b"balance:" in k}
    assert len(balances) == 3  # the payer and both contributors


def test_an_upgraded_contract_is_charged_by_the_vm() -> None:
    """A governance upgrade of any contract the charge runs through turns the native path off."""
    code = system_code()
    for name in ("royalties", "governance", "models"):
        writes = {**BASE, CODE + name.encode(): code[name] + b""}
        assert native.is_system_code(Overlay(writes.get))
        writes[CODE + name.encode()] = code["royalties" if name != "royalties" else "models"]
        state = Overlay(writes.get)
        assert not native.is_system_code(state)
        assert native.charge(state, CallContext(state, 1, 1), "org1", MODEL) is None
        state = Overlay({**BASE}.get)
        assert native.is_system_code(state)  # the same code objects, remembered
        state.delete(CODE + name.encode())
        assert not native.is_system_code(state)  # gone is not the genesis code
        native._SEEN_SYSTEM_CODE.clear()
        assert not native.is_system_code(state)  # nor when none was seen before


def test_the_limits_hand_large_lists_to_the_vm() -> None:
    writes = dict(BASE)
    put = lambda c, k, v: writes.__setitem__(storage_key(c, k), encode_value(v, 1 << 16))  # noqa: E731
    put("models", f"active:{MODEL}", {"model_id": bytes(32), "version": 1})
    put("models", f"model:{MODEL}:1", {"contributors": {"org0": 1}})
    many = sorted(f"o{i:04d}" for i in range(native.MAX_NATIVE_ORGS))
    put("royalties", "orgs", many)
    assert native.plan(Overlay(writes.get), "org1", MODEL) is not None  # at the edge
    put("royalties", "orgs", sorted([*many, "o9999"]))
    assert native.plan(Overlay(writes.get), "org1", MODEL) is None  # one over
    contributors = {f"c{i}": 1 for i in range(native.MAX_NATIVE_CONTRIBUTORS)}
    put("royalties", "orgs", [])
    put("models", f"model:{MODEL}:1", {"contributors": contributors})
    assert native.plan(Overlay(writes.get), "org1", MODEL) is not None
    put("models", f"model:{MODEL}:1", {"contributors": {**contributors, "cx": 1}})
    assert native.plan(Overlay(writes.get), "org1", MODEL) is None


@st.composite
def changes(draw: Any) -> tuple[str, str, Any]:
    """A write between two charges to one of the values a charge's terms come from."""
    contract, key = draw(
        st.sampled_from(
            [
                ("governance", "param:score_fee"),
                ("models", f"active:{MODEL}"),
                ("models", f"model:{MODEL}:1"),
                ("models", f"model:{MODEL}:2"),
                ("royalties", "orgs"),
                ("royalties", "balance:org1"),
                ("royalties", "balance:zeta"),
            ]
        )
    )
    value = draw(
        ints
        | st.none()
        | st.just({"model_id": bytes(32), "version": 2})
        | st.just({"contributors": {"org1": 3, "zeta": 1}})
        | st.lists(orgs, max_size=3, unique=True).map(sorted)
    )
    return contract, key, value


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(states(), st.lists(st.tuples(orgs, st.none() | changes()), min_size=2, max_size=6))
def test_charges_in_a_row_match_the_contract_as_their_inputs_change(  # type: ignore[no-untyped-def]
    case, steps
) -> None:
    """Many charges on one block's overlay, with writes between them to the fee, the active
    version, its record, the orgs list or a balance: each charge the node makes (its terms
    remembered from an earlier one where the inputs read the same) is the VM's."""
    writes, _, model = case
    node_state, vm_state = Overlay(writes.get), Overlay(writes.get)
    for payer, change in steps:
        if change is not None:
            contract, key, value = change
            for state in (node_state, vm_state):
                if value is None:
                    state.delete(storage_key(contract, key))
                else:
                    state.put(storage_key(contract, key), encode_value(value, 1 << 16))
        ctx = CallContext(node_state, 10, 1_000)
        mark = node_state.snapshot()
        gas = native.charge(node_state, ctx, payer, model)
        vm_ctx = CallContext(vm_state, 10, 1_000)
        vm_mark = vm_state.snapshot()
        try:
            vm_charge(vm_state, vm_ctx, payer, model, writes[CODE + b"royalties"])
        except ContractRevert:
            vm_state.revert(vm_mark)
            if gas is not None:
                raise AssertionError("the VM refused what the node charged") from None
            node_state.revert(mark)
            continue
        if gas is None:  # declined: the VM charges instead, on both
            assert node_state.snapshot() == mark
            vm_charge(node_state, ctx, payer, model, writes[CODE + b"royalties"])
        assert node_state.writes == vm_state.writes
        assert ctx.events == vm_ctx.events
