"""The models registry: register/activate/rollback rules, storage layout the node reads, and
that only the governance contract (by its address) may change it."""

from __future__ import annotations

import ast
import hashlib
from typing import Any

import pytest
from sysc_helpers import (
    CONTRACT_DIR,
    START_HEIGHT,
    World,
    admin_key,
    contract_address,
    key,
    revert_message,
)

GOVERNANCE = contract_address("governance")


def constant(contract: str, name: str) -> Any:
    """A module constant of a contract source, read with Python's own parser."""
    tree = ast.parse((CONTRACT_DIR / f"{contract}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == name:  # type: ignore[attr-defined]
            return ast.literal_eval(node.value)
    raise KeyError(name)


def test_address_constants_are_the_hashes() -> None:
    assert constant("models", "GOVERNANCE") == hashlib.sha256(b"vigil/contract/governance").digest()
    assert constant("royalties", "SYSTEM") == hashlib.sha256(b"vigil/system").digest()


def register(
    world: World, label: str, caller: bytes = GOVERNANCE, org: str = "contract:governance"
):
    args = ["fraud", key(label), 100, {"bank-a": 2, "bank-b": 1}, [key("anchor")]]
    return world.call("models", "register", args, caller, org)


@pytest.fixture
def world() -> World:
    return World(["bank-a", "bank-b", "bank-c"])


def test_register_versions_and_layout(world: World) -> None:
    assert register(world, "m1").value == 1
    world.height = START_HEIGHT + 7
    assert register(world, "m2").value == 2
    assert world.get("models", "versions:fraud") == 2
    assert world.get("models", "model:fraud:2") == {
        "version": 2,
        "model_id": key("m2"),
        "size": 100,
        "contributors": {"bank-a": 2, "bank-b": 1},
        "anchors": [key("anchor")],
        "approved_at": START_HEIGHT + 7,
    }
    assert world.view("models", "version", ["fraud", 1])["model_id"] == key("m1")
    assert world.view("models", "version", ["fraud", 3]) is None
    assert world.view("models", "find", ["fraud", key("m2")]) == 2
    assert world.view("models", "active", ["fraud"]) is None
    assert "already version 1" in revert_message(register(world, "m1"))


def test_activate_and_rollback_rules(world: World) -> None:
    for label in ("m1", "m2", "m3"):
        register(world, label)
    gov = (GOVERNANCE, "contract:governance")
    assert "has no active version" in revert_message(
        world.call("models", "rollback", ["fraud", 1], *gov)
    )
    assert "has no version 4" in revert_message(
        world.call("models", "activate", ["fraud", 4], *gov)
    )
    assert world.call("models", "activate", ["fraud", 3], *gov).ok
    assert world.get("models", "active:fraud") == {"model_id": key("m3"), "version": 3}
    assert "already active" in revert_message(world.call("models", "activate", ["fraud", 3], *gov))
    for bad in (3, 4):
        assert revert_message(world.call("models", "rollback", ["fraud", bad], *gov))
    world.height += 1
    assert world.call("models", "rollback", ["fraud", 1], *gov).ok
    assert world.get("models", "active:fraud") == {"model_id": key("m1"), "version": 1}
    assert world.view("models", "active", ["fraud"])["model_id"] == key("m1")
    # Activating a later version again after a rollback is an ordinary activation.
    assert world.call("models", "activate", ["fraud", 2], *gov).ok
    assert world.view("models", "history", ["fraud"]) == [
        (START_HEIGHT, 3),
        (START_HEIGHT + 1, 1),
        (START_HEIGHT + 1, 2),
    ]


@pytest.mark.parametrize(
    ("caller", "org"),
    [
        (admin_key("bank-a"), "bank-a"),
        (bytes(32), "contract:governance"),
        (contract_address("royalties"), "contract:royalties"),
    ],
)
def test_only_governance_changes_the_registry(world: World, caller: bytes, org: str) -> None:
    expected = "only the governance contract may change the model registry"
    assert revert_message(register(world, "m1", caller, org)) == expected
    register(world, "m1")
    for method in ("activate", "rollback"):
        assert revert_message(world.call("models", method, ["fraud", 1], caller, org)) == expected
    assert world.get("models", "versions:fraud") == 1
    assert world.get("models", "active:fraud") is None


def test_view_input_checks(world: World) -> None:
    assert "model name must be a string" in revert_message(world.call("models", "active", [5]))
    assert "must start with a-z" in revert_message(world.call("models", "versions", ["9x"]))
    assert "may only contain" in revert_message(world.call("models", "versions", ["a:b"]))
    assert "1..64 characters" in revert_message(world.call("models", "versions", ["a" * 65]))
    assert world.view("models", "versions", ["a" * 64]) == 0
    assert "version must be an integer" in revert_message(
        world.call("models", "version", ["fraud", "1"])
    )
    assert "model_id must be 32 bytes" in revert_message(
        world.call("models", "find", ["fraud", bytes(31)])
    )


def test_history_keeps_the_last_activations(world: World) -> None:
    register(world, "m1")
    register(world, "m2")
    limit = constant("models", "MAX_HISTORY")
    entries = [(h, 1 + h % 2) for h in range(limit)]
    world.put("models", "history:fraud", entries)
    world.put("models", "active:fraud", {"model_id": key("m1"), "version": 1})
    assert world.call("models", "activate", ["fraud", 2], GOVERNANCE, "contract:governance").ok
    kept = world.view("models", "history", ["fraud"])
    assert len(kept) == limit
    assert kept[0] == entries[1]
    assert kept[-1] == (START_HEIGHT, 2)
