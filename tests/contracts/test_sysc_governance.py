"""The governance contract: every action's happy path and dry-run refusal, voting rules,
approval thresholds, expiry, rejection, exactly-once execution, input checks and gas."""

from __future__ import annotations

from typing import Any

import pytest
from sysc_helpers import (
    START_HEIGHT,
    World,
    admin_key,
    key,
    member_record,
    revert_message,
)

ORGS4 = ["bank-a", "bank-b", "bank-c", "bank-d"]


def orgs(n: int) -> list[str]:
    return [f"bank-{i}" for i in range(n)]


def new_member(org: str = "bank-e", admins: int = 1) -> dict[str, Any]:
    return {"org": org, **member_record(org, admins)}


def allow(name: str = "escrow", label: str = "code") -> dict[str, Any]:
    return {"name": name, "code_hash": key(label)}


def model_args(model_id: bytes, contributors: dict[str, int]) -> dict[str, Any]:
    return {
        "name": "fraud",
        "model_id": model_id,
        "size": 4096,
        "contributors": contributors,
        "anchors": [key(f"anchor/{org}") for org in sorted(contributors)],
    }


@pytest.fixture
def world() -> World:
    return World(list(ORGS4))


# -- actions: happy paths -----------------------------------------------------------------


def test_add_member_updates_members_in_sorted_order(world: World) -> None:
    world.enact("add_member", new_member("bank-0"))
    members = world.members()
    assert list(members) == ["bank-0", *ORGS4]
    assert members["bank-0"] == member_record("bank-0")
    # The new member's admin can act at once.
    assert world.propose("bank-0", "allow_deploy", allow()).error is None


def test_remove_member(world: World) -> None:
    world.enact("remove_member", {"org": "bank-d"})
    assert sorted(world.members()) == ORGS4[:3]
    assert "is not a member" in revert_message(world.vote("bank-d", 1))


def test_authorize_change_and_revoke_client(world: World) -> None:
    k = key("client-1")
    world.enact("authorize_client", {"key": k, "org": "bank-b", "roles": ["submit", "audit"]})
    stored = world.get("governance", "client:" + k.hex())
    assert stored == {"org": "bank-b", "roles": ["audit", "submit"]}
    assert world.view("governance", "client", [k]) == stored
    pid = world.enact("authorize_client", {"key": k, "org": "bank-b", "roles": ["score"]})
    assert world.proposal(pid)["dry_run"].startswith("change client")
    assert world.get("governance", "client:" + k.hex())["roles"] == ["score"]
    world.enact("revoke_client", {"key": k})
    assert world.get("governance", "client:" + k.hex()) is None


def test_set_param(world: World) -> None:
    pid = world.enact("set_param", {"name": "max_block_txs", "value": 250})
    assert world.get("governance", "param:max_block_txs") == 250
    assert world.proposal(pid)["dry_run"] == "set param max_block_txs from None to 250"
    assert world.view("governance", "param", ["max_block_txs"]) == 250


def test_allow_deploy(world: World) -> None:
    world.enact("allow_deploy", allow("escrow", "v1"))
    assert world.get("governance", "deploy:escrow") == key("v1")
    # An upgrade needs another approval with the new hash.
    world.enact("allow_deploy", allow("escrow", "v2"))
    assert world.get("governance", "deploy:escrow") == key("v2")


def test_model_actions_through_governance(world: World) -> None:
    contributors = {"bank-a": 3, "bank-b": 1}
    world.enact("approve_model", model_args(key("m1"), contributors))
    world.enact("approve_model", model_args(key("m2"), contributors))
    assert world.view("models", "versions", ["fraud"]) == 2
    world.enact("activate_model", {"name": "fraud", "version": 2})
    assert world.get("models", "active:fraud") == {"model_id": key("m2"), "version": 2}
    world.enact("rollback_model", {"name": "fraud", "version": 1})
    assert world.get("models", "active:fraud") == {"model_id": key("m1"), "version": 1}
    record = world.view("models", "active", ["fraud"])
    assert record["contributors"] == contributors
    assert record["approved_at"] == START_HEIGHT


# -- actions: dry-run refusals (nothing is stored) ----------------------------------------

REFUSALS = [
    ("add_member", new_member("bank-a"), "org bank-a is already a member"),
    (
        "add_member",
        {**new_member(), "node_key": member_record("bank-b")["node_key"]},
        "node_key is already used by member bank-b",
    ),
    ("add_member", {**new_member(), "admins": []}, "admins must have 1..16 items"),
    (
        "add_member",
        {**new_member(), "admins": [admin_key("bank-c")]},
        "is already an admin of bank-c",
    ),
    ("add_member", {**new_member(), "admins": [key("x"), key("x")]}, "is listed twice"),
    ("remove_member", {"org": "bank-z"}, "org bank-z is not a member"),
    ("authorize_client", {"key": key("c"), "org": "bank-z", "roles": ["submit"]}, "not a member"),
    ("authorize_client", {"key": key("c"), "org": "bank-a", "roles": ["root"]}, "roles must be"),
    ("authorize_client", {"key": key("c"), "org": "bank-a", "roles": []}, "roles must have 1..4"),
    (
        "authorize_client",
        {"key": admin_key("bank-b"), "org": "bank-a", "roles": ["submit"]},
        "is an admin of org bank-b",
    ),
    ("revoke_client", {"key": key("nobody")}, "no client with key"),
    ("set_param", {"name": "max_gas", "value": 5}, "unknown param max_gas"),
    ("set_param", {"name": "proposal_ttl", "value": 1000}, "param proposal_ttl is already 1000"),
    ("set_param", {"name": "approval:vote", "value": 50}, "unknown param approval:vote"),
    ("approve_model", model_args(key("m"), {"bank-z": 1}), "contributor bank-z is not a member"),
    ("approve_model", model_args(key("m"), {"bank-a": 0}), "weight of bank-a must be in"),
    ("activate_model", {"name": "fraud", "version": 1}, "model fraud has no version 1"),
    ("rollback_model", {"name": "fraud", "version": 1}, "model fraud has no version 1"),
    ("allow_deploy", {"name": "Escrow", "code_hash": key("c")}, "contract name Escrow must"),
]


@pytest.mark.parametrize(("kind", "args", "message"), REFUSALS)
def test_dry_run_refuses(world: World, kind: str, args: dict[str, Any], message: str) -> None:
    before = {k: dict(v) for k, v in world.state.items()}
    assert message in revert_message(world.propose("bank-a", kind, args))
    assert world.state == before


def test_remove_last_member_is_refused() -> None:
    world = World(["solo"])
    assert revert_message(world.propose("solo", "remove_member", {"org": "solo"})) == (
        "cannot remove the last member"
    )


def test_model_dry_runs_against_registry(world: World) -> None:
    world.enact("approve_model", model_args(key("m1"), {"bank-a": 1}))
    again = world.propose("bank-a", "approve_model", model_args(key("m1"), {"bank-a": 1}))
    assert "is already version 1 of fraud" in revert_message(again)
    no_active = world.propose("bank-a", "rollback_model", {"name": "fraud", "version": 1})
    assert revert_message(no_active) == "model fraud has no active version"
    world.enact("activate_model", {"name": "fraud", "version": 1})
    twice = world.propose("bank-a", "activate_model", {"name": "fraud", "version": 1})
    assert revert_message(twice) == "version 1 of fraud is already active"
    up = world.propose("bank-a", "rollback_model", {"name": "fraud", "version": 1})
    assert "below the active one (1)" in revert_message(up)
    world.enact("allow_deploy", allow("escrow", "v1"))
    same = world.propose("bank-a", "allow_deploy", allow("escrow", "v1"))
    assert "is already allowed for escrow" in revert_message(same)


# -- input validation -----------------------------------------------------------------------

IDENTITY = bytes([1]) + bytes(31)
Y_IS_P = bytes.fromhex("ed" + "ff" * 30 + "7f")

BAD_INPUT = [
    ("nuke", {}, "action kind must be one of"),
    (7, {}, "action kind must be one of"),
    ("remove_member", ["bank-a"], "args must be a dict"),
    ("remove_member", {}, "missing arg org"),
    ("remove_member", {"org": "bank-b", "why": "x"}, "unknown arg why"),
    ("remove_member", {"org": b"bank-b"}, "org must be a string"),
    ("remove_member", {"org": "Bank-b"}, "org Bank-b must start with"),
    ("remove_member", {"org": "-bank"}, "must start with"),
    ("remove_member", {"org": "bank b"}, "may only contain"),
    ("remove_member", {"org": "b" * 33}, "org must have 1..32 characters"),
    ("add_member", {**new_member(), "node_key": "ab" * 32}, "node_key must be bytes"),
    ("add_member", {**new_member(), "node_key": bytes(31)}, "node_key must be 32 bytes, not 31"),
    ("add_member", {**new_member(), "admins": admin_key("bank-e")}, "admins must be a list"),
    # Fault 6: small-order and non-canonical keys entered governance unchecked.
    ("add_member", {**new_member(), "node_key": IDENTITY}, "not a usable Ed25519 key"),
    ("add_member", {**new_member(), "node_key": Y_IS_P}, "not a usable Ed25519 key"),
    ("add_member", {**new_member(), "admins": [IDENTITY]}, "not a usable Ed25519 key"),
    (
        "authorize_client",
        {"key": IDENTITY, "org": "bank-a", "roles": ["submit"]},
        "not a usable Ed25519 key",
    ),
    ("add_member", {**new_member(), "peer": "host"}, "peer host must be host:port"),
    ("add_member", {**new_member(), "peer": "h:0"}, "peer port must be 1..65535"),
    ("add_member", {**new_member(), "peer": "h:65536"}, "peer port must be 1..65535"),
    ("add_member", {**new_member(), "peer": "h:123456"}, "must end with a port"),
    ("add_member", {**new_member(), "api": "a b:80"}, "api host a b may only contain"),
    ("add_member", {**new_member(), "api": ":80"}, "api :80 has no host"),
    ("add_member", {**new_member(), "api": "h:8x"}, "must end with a port"),
    ("set_param", {"name": "max_block_txs", "value": True}, "must be an integer"),
    ("set_param", {"name": "max_block_txs", "value": "5"}, "must be an integer"),
    ("set_param", {"name": 5, "value": 5}, "param name must be a string"),
]


@pytest.mark.parametrize(("kind", "args", "message"), BAD_INPUT)
def test_bad_input_is_refused(world: World, kind: Any, args: Any, message: str) -> None:
    assert message in revert_message(world.propose("bank-a", kind, args))


def test_port_edges(world: World) -> None:
    assert world.propose("bank-a", "add_member", {**new_member(), "peer": "h:65535"}).ok
    assert world.propose("bank-a", "add_member", {**new_member(), "peer": "[::1]:1"}).ok


PARAM_EDGES = [
    ("max_block_txs", 1, 10000),
    ("max_block_bytes", 1024, 8388608),
    ("max_tx_window", 1, 1000000),
    ("max_tx_gas", 1, 100000000),
    ("max_block_gas", 1, 10000000000),
    ("proposal_ttl", 1, 1000000),
    ("score_fee", 0, 10**18),
    ("drift_window", 50, 1_000_000),
    ("drift_notice_ppm", 1, 100_000_000),
    ("drift_alarm_ppm", 1, 100_000_000),
    ("approval:add_member", 1, 100),
    ("approval:allow_deploy", 1, 100),
]


@pytest.mark.parametrize(("name", "lo", "hi"), PARAM_EDGES)
def test_param_ranges_at_their_edges(world: World, name: str, lo: int, hi: int) -> None:
    for value in (lo, hi):
        if world.get("governance", "param:" + name) != value:
            assert world.propose("bank-a", "set_param", {"name": name, "value": value}).ok
    for value in (lo - 1, hi + 1):
        result = world.propose("bank-a", "set_param", {"name": name, "value": value})
        assert f"must be in {lo}..{hi}" in revert_message(result)


@pytest.mark.parametrize(("field", "limit"), [("org", 32), ("admins", 16)])
def test_member_limits_at_their_edges(world: World, field: str, limit: int) -> None:
    def args(n: int) -> dict[str, Any]:
        if field == "org":
            return new_member("b" * n)
        return {**new_member(), "admins": [key(f"adm/{i}") for i in range(n)]}

    assert world.propose("bank-a", "add_member", args(limit)).ok
    assert "1.." + str(limit) in revert_message(
        world.propose("bank-a", "add_member", args(limit + 1))
    )


def test_member_count_limit() -> None:
    world = World(orgs(31))
    world.enact("add_member", new_member("bank-x"))
    assert len(world.members()) == 32
    full = world.propose("bank-0", "add_member", new_member("bank-y"))
    assert revert_message(full) == "the consortium already has 32 members"
    world.enact("remove_member", {"org": "bank-x"})


def test_model_limits_at_their_edges(world: World) -> None:
    anchors = [key(f"anchor/{i}") for i in range(256)]
    ok = {**model_args(key("m"), {"bank-a": 10**18}), "anchors": anchors}
    assert world.propose("bank-a", "approve_model", ok).ok
    over = {**ok, "anchors": [*anchors, key("anchor/x")]}
    assert "anchors must have 1..256 items" in revert_message(
        world.propose("bank-a", "approve_model", over)
    )
    heavy = model_args(key("m"), {"bank-a": 10**18 + 1})
    assert "must be in 1..1000000000000000000" in revert_message(
        world.propose("bank-a", "approve_model", heavy)
    )
    size = {**model_args(key("m"), {"bank-a": 1}), "size": 0}
    assert "size must be in" in revert_message(world.propose("bank-a", "approve_model", size))


def test_contributor_limit() -> None:
    world = World(orgs(32))
    names = sorted(world.members())
    ok = model_args(key("m"), dict.fromkeys(names, 1))
    assert world.propose(names[0], "approve_model", ok).ok
    over = model_args(key("m"), {f"org-{i}": 1 for i in range(33)})
    assert "contributors must have at most 32 orgs" in revert_message(
        world.propose(names[0], "approve_model", over)
    )
    none = model_args(key("m2"), {}) | {"anchors": [key("anchor/x")]}  # rule off: typed, >= 1
    assert "contributors must have 1..32 orgs" in revert_message(
        world.propose(names[0], "approve_model", none)
    )


# -- who may propose and vote ---------------------------------------------------------------


def test_non_member_cannot_propose_or_vote(world: World) -> None:
    mallory = admin_key("mallory")
    as_mallory = world.call("governance", "propose", ["allow_deploy", allow()], mallory, "mallory")
    assert "mallory is not a member" in revert_message(as_mallory)
    pid = world.propose("bank-a", "allow_deploy", allow()).value
    vote = world.call("governance", "vote", [pid, True], mallory, "mallory")
    assert "mallory is not a member" in revert_message(vote)
    assert world.proposal(pid)["votes"] == {}


def test_client_of_member_cannot_vote(world: World) -> None:
    client = key("client-b")
    world.enact("authorize_client", {"key": client, "org": "bank-b", "roles": ["admin"]})
    pid = world.propose("bank-a", "allow_deploy", allow()).value
    vote = world.call("governance", "vote", [pid, True], client, "bank-b")
    assert revert_message(vote) == "key is not an admin of org bank-b"
    propose = world.call("governance", "propose", ["allow_deploy", allow()], client, "bank-b")
    assert revert_message(propose) == "key is not an admin of org bank-b"


def test_one_vote_per_org_across_its_admins() -> None:
    world = World(list(ORGS4), admins=2)
    pid = world.propose("bank-a", "allow_deploy", allow()).value
    assert world.as_admin("bank-b", "vote", [pid, True], i=0).ok
    again = world.as_admin("bank-b", "vote", [pid, False], i=1)
    assert revert_message(again) == "org bank-b has already voted"
    assert world.proposal(pid)["votes"] == {"bank-b": True}


# -- lifecycle ------------------------------------------------------------------------------


def test_proposal_record(world: World) -> None:
    result = world.propose("bank-c", "allow_deploy", allow())
    assert result.value == 1
    assert world.propose("bank-a", "allow_deploy", allow("other")).value == 2
    p = world.proposal(1)
    assert p == {
        "id": 1,
        "kind": "allow_deploy",
        "args": allow(),
        "proposer": "bank-c",
        "created": START_HEIGHT,
        "expires": START_HEIGHT + 1000,
        "votes": {},
        "status": "open",
        "dry_run": f"allow deploying code {key('code').hex()} as contract escrow",
        "executed_at": None,
    }
    assert world.view("governance", "get", [1]) == p
    assert world.view("governance", "get", [3]) is None
    assert world.get("governance", "next_proposal") == 3
    names = [(name, contract) for contract, name, _ in world.events]
    assert names == [("proposed", "governance"), ("proposed", "governance")]


def test_expiry(world: World) -> None:
    world.put("governance", "param:proposal_ttl", 5)
    pid = world.propose("bank-a", "allow_deploy", allow()).value
    world.height = START_HEIGHT + 4
    assert world.vote("bank-a", pid).ok
    world.height = START_HEIGHT + 5
    late = world.vote("bank-b", pid)
    assert revert_message(late) == f"proposal {pid} expired at height {START_HEIGHT + 5}"
    assert world.view("governance", "get", [pid])["status"] == "expired"
    assert world.proposal(pid)["status"] == "open"


def test_rejection_when_approval_is_out_of_reach(world: World) -> None:
    pid = world.propose("bank-a", "allow_deploy", allow()).value
    assert world.vote("bank-a", pid, False).value == "open"
    assert world.vote("bank-b", pid, False).value == "rejected"
    assert revert_message(world.vote("bank-c", pid)) == f"proposal {pid} is rejected"
    assert world.get("governance", "deploy:escrow") is None
    assert [name for _, name, _ in world.events][-1] == "rejected"


def test_executes_exactly_once(world: World) -> None:
    pid = world.enact("approve_model", model_args(key("m1"), {"bank-a": 1}), ORGS4[:3])
    assert world.proposal(pid)["executed_at"] == START_HEIGHT
    assert revert_message(world.vote("bank-d", pid)) == f"proposal {pid} is executed"
    assert world.view("models", "versions", ["fraud"]) == 1
    kinds = [name for _, name, _ in world.events]
    assert kinds.count("executed") == 1
    assert kinds.count("registered") == 1


def test_failing_execution_reverts_the_vote(world: World) -> None:
    first = world.propose("bank-a", "add_member", new_member()).value
    second = world.propose("bank-b", "add_member", new_member()).value
    for org in ORGS4[:2]:
        assert world.vote(org, second).ok
    for org in ORGS4[:3]:
        assert world.vote(org, first).ok
    assert world.proposal(first)["status"] == "executed"
    # bank-e joined: 5 members, so the fourth yes is the one that would execute.
    assert world.vote("bank-c", second).value == "open"
    last = world.vote("bank-d", second)
    assert revert_message(last) == "org bank-e is already a member"
    assert world.proposal(second)["votes"] == {"bank-a": True, "bank-b": True, "bank-c": True}
    assert world.proposal(second)["status"] == "open"


def test_votes_of_removed_members_do_not_count(world: World) -> None:
    pid = world.propose("bank-a", "allow_deploy", allow()).value
    assert world.vote("bank-d", pid).ok
    world.enact("remove_member", {"org": "bank-d"}, ORGS4[:3])
    # 3 members remain: bank-d's yes no longer counts, two yes of three is not > 2/3.
    assert world.vote("bank-a", pid).value == "open"
    assert world.vote("bank-b", pid).value == "open"
    assert world.vote("bank-c", pid).value == "executed"


@pytest.mark.parametrize(("n", "needed"), [(3, 3), (4, 3), (5, 4), (7, 5)])
def test_default_threshold_edges(n: int, needed: int) -> None:
    world = World(orgs(n))
    pid = world.propose("bank-0", "allow_deploy", allow()).value
    for i in range(needed - 1):
        assert world.vote(f"bank-{i}", pid).value == "open"
    assert world.get("governance", "deploy:escrow") is None
    assert world.vote(f"bank-{needed - 1}", pid).value == "executed"
    assert world.get("governance", "deploy:escrow") == key("code")


@pytest.mark.parametrize(
    ("n", "percent", "needed"), [(4, 50, 2), (5, 60, 3), (7, 100, 7), (3, 1, 1)]
)
def test_approval_override_edges(n: int, percent: int, needed: int) -> None:
    world = World(orgs(n))
    world.enact("set_param", {"name": "approval:allow_deploy", "value": percent})
    pid = world.propose("bank-0", "allow_deploy", allow()).value
    for i in range(needed - 1):
        assert world.vote(f"bank-{i}", pid).value == "open"
    assert world.vote(f"bank-{needed - 1}", pid).value == "executed"
    # The override applies to its own kind only: other kinds keep the default rule.
    other = world.propose("bank-0", "set_param", {"name": "max_block_txs", "value": 9}).value
    default_needed = 2 * n // 3 + 1
    for i in range(default_needed - 1):
        assert world.vote(f"bank-{i}", other).value == "open"
    assert world.vote(f"bank-{default_needed - 1}", other).value == "executed"


def test_vote_input_checks(world: World) -> None:
    assert "proposal id must be an integer" in revert_message(world.vote("bank-a", "1"))
    assert "proposal id must be an integer" in revert_message(world.vote("bank-a", True))
    assert "proposal id must be in" in revert_message(world.vote("bank-a", 0))
    assert revert_message(world.vote("bank-a", 9)) == "no proposal 9"
    pid = world.propose("bank-a", "allow_deploy", allow()).value
    bad = world.as_admin("bank-a", "vote", [pid, 1])
    assert revert_message(bad) == "approve must be true or false"


# -- views ----------------------------------------------------------------------------------


def test_views(world: World) -> None:
    assert world.view("governance", "members", []) == world.members()
    assert world.view("governance", "member", ["bank-b"]) == member_record("bank-b")
    assert world.view("governance", "member", ["bank-z"]) is None
    assert world.view("governance", "client", [key("nobody")]) is None
    assert world.view("governance", "param", ["score_fee"]) == 10
    world.state["governance"].pop("param:proposal_ttl")
    assert world.view("governance", "param", ["proposal_ttl"]) == 1000
    assert world.view("governance", "param", ["max_block_txs"]) is None


def test_proposals_listing(world: World) -> None:
    for i in range(51):
        assert world.propose("bank-a", "allow_deploy", allow(f"c{i}")).ok
    world.vote("bank-a", 2, False)
    page = world.view("governance", "proposals", [1, 50])
    assert [p["id"] for p in page] == list(range(1, 51))
    assert page[1]["no"] == 1 and page[1]["yes"] == 0 and page[1]["status"] == "open"
    assert [p["id"] for p in world.view("governance", "proposals", [50, 50])] == [50, 51]
    too_many = world.call("governance", "proposals", [1, 51])
    assert revert_message(too_many) == "count must be in 1..50, not 51"


# -- gas ------------------------------------------------------------------------------------


def test_gas_with_seven_members() -> None:
    """propose and vote stay far below the 10,000,000 default limit with 7 members."""
    world = World(orgs(7), admins=16)
    args = new_member("bank-x", admins=16)
    proposed = world.propose("bank-0", "add_member", args)
    assert proposed.ok
    gas = [world.vote(f"bank-{i}", proposed.value) for i in range(5)]
    assert [r.value for r in gas] == ["open"] * 4 + ["executed"]
    worst = max([proposed.gas_used] + [r.gas_used for r in gas])
    assert worst < 500_000, worst


def test_other_limits_at_their_edges(world: World) -> None:
    host = "h" * 249
    assert world.propose("bank-a", "add_member", {**new_member(), "peer": host + ":65535"}).ok
    long_peer = {**new_member(), "peer": host + "h:65535"}
    assert "peer must have 1..255 characters" in revert_message(
        world.propose("bank-a", "add_member", long_peer)
    )
    roles = ["admin", "audit", "score", "submit"]
    client = {"key": key("c"), "org": "bank-a", "roles": roles}
    assert world.propose("bank-a", "authorize_client", client).ok
    five = {**client, "roles": [*roles, "admin"]}
    assert "roles must have 1..4 items" in revert_message(
        world.propose("bank-a", "authorize_client", five)
    )
    size = {**model_args(key("m"), {"bank-a": 1}), "size": 2**40}
    assert world.propose("bank-a", "approve_model", size).ok
    size["size"] += 1
    assert "size must be in 1..1099511627776" in revert_message(
        world.propose("bank-a", "approve_model", size)
    )
    assert revert_message(world.vote("bank-a", 2**63 - 1)) == f"no proposal {2**63 - 1}"
    assert "proposal id must be in" in revert_message(world.vote("bank-a", 2**63))
    name = "p" * 64
    assert revert_message(world.propose("bank-a", "set_param", {"name": name, "value": 1})) == (
        f"unknown param {name}"
    )
    longer = world.propose("bank-a", "set_param", {"name": name + "p", "value": 1})
    assert "param name must have 1..64 characters" in revert_message(longer)
