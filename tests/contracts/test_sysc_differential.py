"""Differential run: the three system contracts in the VM and as plain CPython must agree.

Hypothesis plays random sequences of proposals (valid and invalid), votes, height changes
and royalty charges against both worlds. After every step the outcome (value or revert
message) and the whole storage of every contract must be identical. The CPython world
mirrors the node's rules: nested calls see the calling contract's address, a nested call's
writes land when it returns, and a failed top-level call leaves everything as it was.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sysc_helpers import (
    CONTRACT_DIR,
    NAMES,
    SYSTEM_KEY,
    SYSTEM_ORG,
    World,
    admin_key,
    contract_address,
    key,
    member_record,
)

from consensus.crypto import is_acceptable_public_key
from vm.gas import MAX_STORAGE_VALUE_BYTES
from vm.values import decode_value

ORGS = ["bank-a", "bank-b", "bank-c", "bank-d"]
_DELETED = object()


class Reverted(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def require(cond: Any, message: str = "requirement failed") -> None:
    if not cond:
        raise Reverted(message)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class OracleLedger:
    def __init__(self, world: OracleWorld, contract: str, caller: bytes, org: str) -> None:
        self.world, self.contract, self._caller, self._org = world, contract, caller, org
        self.writes: dict[str, Any] = {}

    def get(self, k: str, default: Any = None) -> Any:
        if k in self.writes:
            v = self.writes[k]
            return default if v is _DELETED else copy.deepcopy(v)
        own = self.world.state.setdefault(self.contract, {})
        return copy.deepcopy(own[k]) if k in own else default

    def put(self, k: str, value: Any) -> None:
        self.writes[k] = copy.deepcopy(value)

    def delete(self, k: str) -> None:
        self.writes[k] = _DELETED

    def key_ok(self, key: Any) -> bool:
        return is_acceptable_public_key(key)

    def anchor(self, digest: bytes) -> Any:
        return copy.deepcopy(self.world.anchored.get(digest))

    def model(self, model_id: bytes) -> Any:
        return copy.deepcopy(self.world.artifacts[model_id])

    def caller(self) -> bytes:
        return self._caller

    def caller_org(self) -> str:
        return self._org

    def height(self) -> int:
        return self.world.height

    def emit(self, name: str, data: Any) -> None:
        pass

    def call(self, contract: str, method: str, args: list[Any]) -> Any:
        return self.world.run(
            contract, method, args, contract_address(self.contract), "contract:" + self.contract
        )


class OracleWorld:
    def __init__(self, vm_world: World) -> None:
        self.height = vm_world.height
        self.anchored = vm_world.anchored
        self.artifacts = vm_world.artifacts
        self.state = {
            c: {k: decode_value(v, MAX_STORAGE_VALUE_BYTES) for k, v in kv.items()}
            for c, kv in vm_world.state.items()
        }
        self.modules: dict[str, dict[str, Any]] = {}
        for name in NAMES:
            path = CONTRACT_DIR / f"{name}.py"
            namespace: dict[str, Any] = {"require": require, "sha256": sha256}
            exec(compile(path.read_text(), str(path), "exec"), namespace)
            self.modules[name] = namespace

    def run(self, contract: str, method: str, args: list[Any], caller: bytes, org: str) -> Any:
        namespace = self.modules[contract]
        ledger = OracleLedger(self, contract, caller, org)
        namespace["ledger"] = ledger
        try:
            value = namespace[method](*copy.deepcopy(args))
        finally:
            namespace["ledger"] = None
        own = self.state.setdefault(contract, {})
        for k, v in ledger.writes.items():
            if v is _DELETED:
                own.pop(k, None)
            else:
                own[k] = v
        return copy.deepcopy(value)

    def top(self, contract: str, method: str, args: list[Any], caller: bytes, org: str) -> Any:
        saved = copy.deepcopy(self.state)
        try:
            return ("ok", self.run(contract, method, args, caller, org))
        except Reverted as exc:
            self.state = saved
            text = exc.message
            return ("revert", text if len(text) <= 256 else text[:253] + "...")


def typed_equal(a: Any, b: Any) -> bool:
    """Equality that also requires equal types and dict order (True != 1, (1,) != [1])."""
    if type(a) is not type(b):
        return False
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(typed_equal(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return list(a) == list(b) and all(typed_equal(a[k], b[k]) for k in a)
    return a == b


def vm_outcome(world: World, contract: str, method: str, args: list[Any], caller, org) -> Any:
    result = world.call(contract, method, args, caller, org)
    if result.error is None:
        return ("ok", result.value)
    assert result.error.kind == "Revert", result.error
    return ("revert", result.error.message)


def model(label: str, weights: dict[str, int]) -> dict[str, Any]:
    return {
        "name": "fraud",
        "model_id": key(label),
        "size": 10,
        "contributors": weights,
        "anchors": [key("anchor/" + label)],
    }


ACTIONS = [
    ("add_member", {"org": "bank-e", **member_record("bank-e")}),
    ("add_member", {"org": "bank-a", **member_record("bank-a")}),
    ("remove_member", {"org": "bank-d"}),
    ("remove_member", {"org": "bank-e"}),
    ("authorize_client", {"key": key("c1"), "org": "bank-b", "roles": ["score", "submit"]}),
    ("revoke_client", {"key": key("c1")}),
    ("set_param", {"name": "score_fee", "value": 7}),
    ("set_param", {"name": "approval:set_param", "value": 50}),
    ("set_param", {"name": "proposal_ttl", "value": 3}),
    ("approve_model", model("m1", {"bank-a": 2, "bank-c": 1})),
    ("approve_model", model("m2", {"bank-b": 1, "bank-d": 5})),
    ("activate_model", {"name": "fraud", "version": 1}),
    ("activate_model", {"name": "fraud", "version": 2}),
    ("rollback_model", {"name": "fraud", "version": 1}),
    ("allow_deploy", {"name": "escrow", "code_hash": key("code")}),
    ("remove_member", {"org": "Bad Org"}),
]

actors = st.sampled_from([*ORGS, "bank-e", "mallory"])
steps = st.lists(
    st.one_of(
        st.tuples(st.just("propose"), actors, st.sampled_from(range(len(ACTIONS)))),
        st.tuples(st.just("vote"), actors, st.integers(1, 5), st.booleans()),
        st.tuples(st.just("enact"), st.sampled_from(range(len(ACTIONS))), st.booleans()),
        st.tuples(st.just("charge"), actors),
        st.tuples(st.just("wait"), st.integers(1, 5)),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps, seeded=st.booleans())
def test_vm_and_cpython_agree(steps: list[tuple[Any, ...]], seeded: bool) -> None:
    vm = World(list(ORGS))
    for kind, args in ACTIONS:  # every model a step may propose has been uploaded
        if kind == "approve_model":
            vm.upload(args)
    if seeded:
        vm.enact(*ACTIONS[9])
        vm.enact("activate_model", {"name": "fraud", "version": 1})
    oracle = OracleWorld(vm)
    expanded: list[tuple[Any, ...]] = []
    next_id = 3 if seeded else 1
    for step in steps:
        # An enact step: bank-a proposes, then every original member votes the same way on
        # the id counted over enact steps (other steps may shift it: any proposal will do).
        if step[0] == "enact":
            expanded.append(("propose", "bank-a", step[1]))
            expanded.extend(("vote", org, next_id, step[2]) for org in ORGS)
            next_id += 1
        else:
            expanded.append(step)
    for step in expanded:
        if step[0] == "wait":
            vm.height += step[1]
            oracle.height += step[1]
            continue
        if step[0] == "charge":
            call = ("royalties", "charge", [step[1], "fraud"], SYSTEM_KEY, SYSTEM_ORG)
        elif step[0] == "propose":
            kind, args = ACTIONS[step[2]]
            call = ("governance", "propose", [kind, args], admin_key(step[1]), step[1])
        else:
            call = ("governance", "vote", [step[2], step[3]], admin_key(step[1]), step[1])
        expected = oracle.top(*call)
        got = vm_outcome(vm, *call)
        event(f"{step[0]}: {got[0]} {got[1] if got[0] == 'ok' and step[0] == 'vote' else ''}")
        assert typed_equal(got, expected), (step, got, expected)
        decoded = {
            c: {k: decode_value(v, MAX_STORAGE_VALUE_BYTES) for k, v in kv.items()}
            for c, kv in vm.state.items()
        }
        wanted = {c: kv for c, kv in oracle.state.items() if kv or c in decoded}
        assert typed_equal(dict(sorted(decoded.items())), dict(sorted(wanted.items())))
