"""The host interface the interpreter calls, and an in-memory host for tests and the CLI.

The interpreter reaches the ledger only through an object with the methods of
:class:`Host`. Storage values and event payloads cross this boundary as the
canonical bytes of :func:`vm.values.encode_value`; everything else as VM
values. The node implements the same protocol over its database; the
:class:`InMemoryHost` here keeps state in dictionaries.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from vm.errors import ExecutionFailure, HostError, LimitExceeded
from vm.gas import DEFAULT_GAS_LIMIT, MAX_CONTRACT_CALL_DEPTH
from vm.interpreter import Program, Result, execute

DEFAULT_CALLER = bytes(32)
"""Caller public key used by the in-memory host when none is given."""


class Host(Protocol):
    """What a contract's ``ledger`` object offers, as the interpreter calls it."""

    def get(self, key: str) -> bytes | None:
        """The stored encoding under ``key`` in the running contract's storage, or None."""

    def put(self, key: str, value: bytes) -> None:
        """Store an encoded value (called only when the call succeeded)."""

    def delete(self, key: str) -> None:
        """Remove ``key`` (called only when the call succeeded)."""

    def caller(self) -> bytes:
        """Public key of the transaction's sender."""

    def caller_org(self) -> str:
        """Organisation of the sender."""

    def height(self) -> int:
        """Height of the block being executed."""

    def time(self) -> int:
        """Block timestamp in milliseconds."""

    def emit(self, name: str, data: bytes) -> None:
        """Record an event with an encoded payload (called only on success)."""

    def members(self) -> list[str]:
        """Current member organisations, in a fixed order."""

    def call(
        self, contract: str, method: str, args: list[Any], gas: int, depth: int
    ) -> tuple[Any, int]:
        """Run another contract's method with at most ``gas``; return (value, gas used).

        A failure is raised as an ExecutionFailure and fails the calling contract too.
        """

    def score(self, model: str, features: list[int]) -> int:
        """Score a feature vector with a model; the node wires this to the ML module."""

    def key_ok(self, key: bytes) -> bool:
        """Whether ``key`` may enter the chain as a public key (canonical, not small order)."""

    def anchor(self, digest: bytes) -> dict | None:
        """The anchor record of a dataset digest: ``{"height", "org", "parents"}`` (``org``
        the anchoring client's organisation, None if it has none now), or None."""

    def merge_id(self, model_ids: list[bytes]) -> bytes:
        """The id of the deterministic federated merge (``ml.merge``) of these artifacts."""

    def model(self, model_id: bytes) -> dict:
        """What a model artifact records: ``{"size", "trees", "threshold", "features",
        "datasets"}`` (a row is an outlier iff its path sum is below ``threshold``)
        (``datasets`` a list of ``[digest, rows]``, None before artifact version 3)."""


@dataclass
class InMemoryHost:
    """A host over dictionaries: ``state[contract][key] = encoded value``.

    ``contracts`` maps names to programs callable through ``ledger.call``;
    ``models`` maps model names to scoring functions. Nested calls share the
    same state; :meth:`run` makes a whole call atomic by restoring a snapshot
    when it fails, and re-entrant calls (into a contract already running) are
    refused.
    """

    contract: str = "contract"
    state: dict[str, dict[str, bytes]] = field(default_factory=dict)
    caller_key: bytes = DEFAULT_CALLER
    org: str = "org"
    block_height: int = 0
    block_time: int = 0
    member_orgs: list[str] = field(default_factory=list)
    contracts: dict[str, Program] = field(default_factory=dict)
    models: dict[str, Callable[[list[int]], int]] = field(default_factory=dict)
    events: list[tuple[str, str, bytes]] = field(default_factory=list)
    active: list[str] = field(default_factory=list)
    anchors: dict[bytes, dict] = field(default_factory=dict)
    """What ``ledger.anchor`` answers, by digest."""
    models_by_id: dict[bytes, dict] = field(default_factory=dict)
    """What ``ledger.model`` answers, by model id."""
    merges: dict[tuple[bytes, ...], bytes] = field(default_factory=dict)
    """What ``ledger.merge_id`` answers, by the sorted input ids."""
    key_check: Callable[[bytes], bool] = field(default=lambda key: len(key) == 32)
    """What ``ledger.key_ok`` answers; the node and the CLI give it the curve check of
    ``consensus.crypto`` (the VM imports nothing from the other packages)."""

    def get(self, key: str) -> bytes | None:
        return self.state.get(self.contract, {}).get(key)

    def put(self, key: str, value: bytes) -> None:
        self.state.setdefault(self.contract, {})[key] = value

    def delete(self, key: str) -> None:
        self.state.get(self.contract, {}).pop(key, None)

    def caller(self) -> bytes:
        return self.caller_key

    def caller_org(self) -> str:
        return self.org

    def height(self) -> int:
        return self.block_height

    def time(self) -> int:
        return self.block_time

    def emit(self, name: str, data: bytes) -> None:
        self.events.append((self.contract, name, data))

    def members(self) -> list[str]:
        return list(self.member_orgs)

    def key_ok(self, key: bytes) -> bool:
        return bool(self.key_check(key))

    def anchor(self, digest: bytes) -> dict | None:
        return copy.deepcopy(self.anchors.get(digest))

    def merge_id(self, model_ids: list[bytes]) -> bytes:
        merged = self.merges.get(tuple(sorted(model_ids)))
        if merged is None:
            raise HostError("these models cannot be merged here")
        return merged

    def model(self, model_id: bytes) -> dict:
        facts = self.models_by_id.get(model_id)
        if facts is None:
            raise HostError(f"no model artifact {model_id.hex()}")
        return copy.deepcopy(facts)

    def score(self, model: str, features: list[int]) -> int:
        fn = self.models.get(model)
        if fn is None:
            raise HostError(f"no model named {model!r}")
        return fn(features)

    def call(
        self, contract: str, method: str, args: list[Any], gas: int, depth: int
    ) -> tuple[Any, int]:
        if depth + 1 > MAX_CONTRACT_CALL_DEPTH:
            raise LimitExceeded(f"contract calls nested deeper than {MAX_CONTRACT_CALL_DEPTH}")
        program = self.contracts.get(contract)
        if program is None:
            raise HostError(f"no contract named {contract!r}")
        if contract == self.contract or contract in self.active:
            raise HostError(f"re-entrant call into {contract!r} is not allowed")
        caller_key, org = self.nested_identity()
        child = type(self)(
            contract=contract,
            state=self.state,
            caller_key=caller_key,
            org=org,
            block_height=self.block_height,
            block_time=self.block_time,
            member_orgs=self.member_orgs,
            contracts=self.contracts,
            models=self.models,
            events=self.events,
            active=[*self.active, self.contract],
        )
        result = execute(program, method, args, child, gas_limit=gas, contract_depth=depth + 1)
        if result.error is not None:
            if isinstance(result.error, ExecutionFailure):
                raise result.error
            raise HostError(f"call to {contract}.{method} failed: {result.error}")
        return result.value, result.gas_used

    def nested_identity(self) -> tuple[bytes, str]:
        """(caller key, org) a contract called from this one sees: here, the same sender.

        The node instead presents the calling contract's address; a subclass can do the same.
        """
        return self.caller_key, self.org

    def run(
        self,
        program: Program,
        method: str,
        args: list[Any],
        gas_limit: int = DEFAULT_GAS_LIMIT,
    ) -> Result:
        """Execute a top-level call atomically: on failure state and events are restored."""
        saved_state = copy.deepcopy(self.state)
        saved_events = len(self.events)
        result = execute(program, method, args, self, gas_limit=gas_limit)
        if result.error is not None:
            self.state.clear()
            self.state.update(saved_state)
            del self.events[saved_events:]
        return result
