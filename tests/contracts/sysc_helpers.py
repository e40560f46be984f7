"""A chain-like world for the system contracts: the three programs over one in-memory state.

The VM's InMemoryHost gives nested ``ledger.call``s the caller of the outer call; the node
gives them the calling contract's address and the org ``contract:<name>``. ChainLikeHost
mirrors the node's rule so the "only governance may change models" checks run for real.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from consensus.crypto import PrivateKey, is_acceptable_public_key
from vm.compiler import compile_source
from vm.gas import DEFAULT_GAS_LIMIT, MAX_STORAGE_VALUE_BYTES
from vm.host import InMemoryHost
from vm.interpreter import Program, Result, prepare
from vm.values import decode_value, encode_value

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_DIR = ROOT / "node" / "app" / "system_contracts"
NAMES = ("governance", "models", "royalties")
SYSTEM_KEY = hashlib.sha256(b"vigil/system").digest()
SYSTEM_ORG = "system"
START_HEIGHT = 10


def contract_address(name: str) -> bytes:
    """The caller key a contract presents to the contracts it calls (the node's rule)."""
    return hashlib.sha256(b"vigil/contract/" + name.encode()).digest()


@cache
def program(name: str) -> Program:
    path = CONTRACT_DIR / f"{name}.py"
    return prepare(compile_source(path.read_text(), str(path)))


def key(label: str) -> bytes:
    """A deterministic public key for a label (a real key: governance checks the point)."""
    return PrivateKey.from_seed(hashlib.sha256(b"test-key/" + label.encode()).digest()).public


def admin_key(org: str, i: int = 0) -> bytes:
    return key(f"admin/{org}/{i}")


def member_record(org: str, admins: int = 1) -> dict[str, Any]:
    return {
        "node_key": key(f"node/{org}"),
        "peer": f"{org}.example:7000",
        "api": f"{org}.example:8000",
        "admins": [admin_key(org, i) for i in range(admins)],
    }


@dataclass
class ChainLikeHost(InMemoryHost):
    """InMemoryHost whose nested calls carry the calling contract's identity."""

    def key_ok(self, key: bytes) -> bool:
        return is_acceptable_public_key(key)

    def nested_identity(self) -> tuple[bytes, str]:
        return contract_address(self.contract), "contract:" + self.contract


@dataclass
class World:
    """The three system contracts deployed over one state, as the node sets them up."""

    orgs: list[str]
    admins: int = 1
    height: int = START_HEIGHT
    params: dict[str, int] = field(default_factory=lambda: {"proposal_ttl": 1000, "score_fee": 10})
    state: dict[str, dict[str, bytes]] = field(default_factory=dict)
    events: list[tuple[str, str, bytes]] = field(default_factory=list)
    artifacts: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    """What ``ledger.model`` answers by model id: the artifacts the nodes hold."""
    anchored: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    """What ``ledger.anchor`` answers by digest: the datasets anchored on chain."""

    def __post_init__(self) -> None:
        self.put(
            "governance",
            "members",
            {org: member_record(org, self.admins) for org in sorted(self.orgs)},
        )
        for name, value in self.params.items():
            self.put("governance", "param:" + name, value)

    # -- raw storage ------------------------------------------------------------------------

    def put(self, contract: str, k: str, value: Any) -> None:
        self.state.setdefault(contract, {})[k] = encode_value(value, MAX_STORAGE_VALUE_BYTES)

    def get(self, contract: str, k: str) -> Any:
        data = self.state.get(contract, {}).get(k)
        return None if data is None else decode_value(data, MAX_STORAGE_VALUE_BYTES)

    # -- calls --------------------------------------------------------------------------------

    def call(
        self,
        contract: str,
        method: str,
        args: list[Any],
        caller: bytes = bytes(32),
        org: str = "",
        gas: int = DEFAULT_GAS_LIMIT,
    ) -> Result:
        host = ChainLikeHost(
            contract=contract,
            state=self.state,
            caller_key=caller,
            org=org,
            block_height=self.height,
            member_orgs=sorted(self.members()),
            contracts={name: program(name) for name in NAMES},
            events=self.events,
            anchors=self.anchored,
            models_by_id=self.artifacts,
        )
        return host.run(program(contract), method, args, gas_limit=gas)

    def view(self, contract: str, method: str, args: list[Any]) -> Any:
        result = self.call(contract, method, args)
        assert result.error is None, result.error
        return result.value

    def members(self) -> dict[str, Any]:
        return self.get("governance", "members") or {}

    def as_admin(self, org: str, method: str, args: list[Any], i: int = 0) -> Result:
        return self.call("governance", method, args, caller=admin_key(org, i), org=org)

    def propose(self, org: str, kind: str, args: dict[str, Any]) -> Result:
        if kind == "approve_model" and type(args.get("model_id")) is bytes:
            self.upload(args)
        return self.as_admin(org, "propose", [kind, args])

    def upload(self, args: dict[str, Any]) -> None:
        """The artifact an approve_model proposal names, as its proposer uploads it first:
        its size and training datasets are those the proposal lists (one row each), unless a
        test put a different artifact under that id."""
        anchors = args.get("anchors")
        datasets = sorted([d, 1] for d in anchors) if type(anchors) is list else []
        self.artifacts.setdefault(
            args["model_id"],
            {"size": args.get("size"), "trees": 1, "features": ["x"], "datasets": datasets},
        )

    def vote(self, org: str, pid: int, approve: bool = True) -> Result:
        return self.as_admin(org, "vote", [pid, approve])

    def proposal(self, pid: int) -> dict[str, Any]:
        return self.get("governance", f"proposal:{pid}")

    def enact(self, kind: str, args: dict[str, Any], voters: list[str] | None = None) -> int:
        """Propose as the first member and vote yes with ``voters`` (default: everyone)."""
        orgs = sorted(self.members())
        result = self.propose(orgs[0], kind, args)
        assert result.error is None, result.error
        pid = result.value
        for org in voters if voters is not None else orgs:
            if self.proposal(pid)["status"] != "open":
                break
            voted = self.vote(org, pid)
            assert voted.error is None, voted.error
        assert self.proposal(pid)["status"] == "executed", self.proposal(pid)
        return pid


def revert_message(result: Result) -> str:
    """The revert message of a failed call (fails the test if the call did not revert)."""
    assert result.error is not None, f"expected a revert, got {result.value!r}"
    assert result.error.kind == "Revert", result.error
    return result.error.message
