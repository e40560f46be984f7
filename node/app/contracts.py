"""`deploy` and `call` transactions: the contract VM run against the ledger's state.

Contract code lives in state under ``code/<name>`` (serialized, verified
bytecode) and each contract's storage under ``contract/<name>\\0<key>``, so it
is covered by the state root like everything else. The node's host gives a
contract the sender as ``ledger.caller()`` and the sender's organisation as
``ledger.caller_org()``; a contract called by another contract sees the
calling contract's address (``contract_address(name)``) and the organisation
``contract:<name>`` instead, so a contract can tell a governed call from a
direct one.

Gas: each call runs with at most the ``max_tx_gas`` parameter; a block's
transactions may use at most ``max_block_gas`` together. A receipt records the
gas used, whether the call succeeded or not. Error messages that could differ
between Python versions (the text of a run-time ``ExecutionError``) are not
recorded, only their kind, because receipts are agreed by consensus.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from consensus.bounded import BoundedMap
from consensus.crypto import is_acceptable_public_key
from node.app import anchors, governance
from node.app.state import CODE, Overlay, Revert, storage_key
from node.app.types import MAX_EVENTS_PER_RECEIPT, CallPayload, DeployPayload, Event, Tx
from vm.bytecode import code_hash

__all__ = ["CODE", "code_hash", "contract_address", "program_for", "query", "storage_key"]
from vm.errors import CallError, ExecutionError, HostError, LimitExceeded, VMError
from vm.gas import (
    GAS_PER_STORAGE_BYTE_WRITTEN,
    GAS_STORAGE_WRITE,
    MAX_CONTRACT_CALL_DEPTH,
    MAX_VALUE_BYTES,
)
from vm.interpreter import Program, execute, load
from vm.values import decode_value, encode_value

CONTRACT_ORG_PREFIX = "contract:"
MAX_PROGRAM_CACHE = 64
"""Verified programs kept in memory by code hash."""

Scorer = Callable[[str, list[int]], int]


def contract_address(name: str) -> bytes:
    """The caller key a contract presents when it calls another contract."""
    return hashlib.sha256(b"vigil/contract/" + name.encode()).digest()


_programs: BoundedMap[bytes, Program] = BoundedMap(MAX_PROGRAM_CACHE)


def program_for(code: bytes) -> Program:
    """Decode and verify bytecode once per code hash (raises a VMError if it is bad)."""
    digest = code_hash(code)
    program = _programs.get(digest)
    if program is None:
        program = load(code)
        _programs.remember(digest, program)
    return program


@dataclass
class CallContext:
    """One transaction's view of the chain while its contract calls run."""

    state: Overlay
    height: int
    time_ms: int
    score: Scorer | None = None
    """``ledger.score`` for contracts (None where no model can be loaded)."""
    scoring: Any = None
    """The block's node.app.scoring.Scoring, for `score` transactions."""
    events: list[tuple[str, bytes]] = field(default_factory=list)


class ChainHost:
    """The VM host protocol over the ledger state (see vm/host.py)."""

    def __init__(
        self, ctx: CallContext, contract: str, caller: bytes, org: str, active: tuple[str, ...]
    ) -> None:
        self.ctx = ctx
        self.contract = contract
        self._caller = caller
        self._org = org
        self.active = active

    def get(self, key: str) -> bytes | None:
        return self.ctx.state.get(storage_key(self.contract, key))

    def put(self, key: str, value: bytes) -> None:
        self.ctx.state.put(storage_key(self.contract, key), value)

    def delete(self, key: str) -> None:
        self.ctx.state.delete(storage_key(self.contract, key))

    def caller(self) -> bytes:
        return self._caller

    def caller_org(self) -> str:
        return self._org

    def height(self) -> int:
        return self.ctx.height

    def time(self) -> int:
        return self.ctx.time_ms

    def emit(self, name: str, data: bytes) -> None:
        self.ctx.events.append((name, data))

    def members(self) -> list[str]:
        return sorted(governance.members(self.ctx.state))

    def key_ok(self, key: bytes) -> bool:
        return is_acceptable_public_key(key)

    def anchor(self, digest: bytes) -> dict | None:
        """An anchored dataset: its height, parents and the organisation of the client that
        anchored it (None unless that client's organisation is a member now)."""
        record = anchors.lookup(self.ctx.state.get, digest)
        if record is None:
            return None
        found = governance.client(self.ctx.state, record.sender)
        org = found[0] if found and found[0] in governance.members(self.ctx.state) else None
        return {"height": record.height, "org": org, "parents": list(record.parents)}

    def model(self, model_id: bytes) -> dict:
        """What the artifact ``model_id`` records. Raises ArtifactMissing (the block waits for
        the artifact, on every node alike) when this node does not hold it yet."""
        m = self._loaded(model_id)
        return {
            "size": len(m.data),
            "trees": m.n_trees,
            "threshold": m.threshold,
            "features": list(m.feature_names),
            "datasets": None if m.datasets is None else [[d, n] for d, n in m.datasets],
        }

    def merge_id(self, model_ids: list[bytes]) -> bytes:
        """The id of ``ml.merge.merge`` of these artifacts: the same bytes on every node, so a
        contract can demand that a proposed merged model is exactly that merge."""
        from ml.errors import MergeError
        from ml.merge import merge

        models = [self._loaded(i) for i in model_ids]
        try:
            return merge(models).model_id
        except MergeError as exc:
            raise HostError(f"the models do not merge: {exc}") from None

    def _loaded(self, model_id: bytes) -> Any:
        """A model from the block's model cache (ArtifactMissing if this node lacks it)."""
        if self.ctx.scoring is None:
            raise HostError("model artifacts are not available here")
        return self.ctx.scoring.scorer(model_id).model

    def score(self, model: str, features: list[int]) -> int:
        if self.ctx.score is None:
            raise HostError("anomaly scoring is not available on this chain yet")
        return self.ctx.score(model, features)

    def call(
        self, contract: str, method: str, args: list[Any], gas: int, depth: int
    ) -> tuple[Any, int]:
        if depth + 1 > MAX_CONTRACT_CALL_DEPTH:
            raise LimitExceeded(f"contract calls nested deeper than {MAX_CONTRACT_CALL_DEPTH}")
        if contract == self.contract or contract in self.active:
            raise HostError(f"re-entrant call into {contract!r} is not allowed")
        code = self.ctx.state.get(CODE + contract.encode())
        if code is None:
            raise HostError(f"no contract named {contract!r}")
        child = ChainHost(
            self.ctx,
            contract,
            contract_address(self.contract),
            CONTRACT_ORG_PREFIX + self.contract,
            (*self.active, self.contract),
        )
        result = execute(
            program_for(code), method, args, child, gas_limit=gas, contract_depth=depth + 1
        )
        if result.error is not None:
            raise HostError(f"call to {contract}.{method} failed: {describe(result.error)}")
        return result.value, result.gas_used


def describe(error: VMError) -> str:
    """A receipt's error text: deterministic on every node (no CPython message text)."""
    if isinstance(error, ExecutionError):
        return f"{error.kind}: {error.python_kind}"
    return f"{error.kind}: {error.message}"


class ContractRevert(Revert):
    """A contract call failed; it still used gas."""

    def __init__(self, message: str, gas_used: int) -> None:
        super().__init__(message)
        self.gas_used = gas_used


def execute_deploy(
    state: Overlay, tx: Tx, height: int, ctx: CallContext
) -> tuple[object, list[Event], int]:
    payload = tx.payload
    assert isinstance(payload, DeployPayload)
    gas = GAS_STORAGE_WRITE + GAS_PER_STORAGE_BYTE_WRITTEN * len(payload.code)
    if gas > governance.param(state, "max_tx_gas"):
        raise ContractRevert(
            f"deploying {len(payload.code)} bytes needs {gas} gas, over max_tx_gas", 0
        )
    digest = code_hash(payload.code)
    if governance.deploy_allowed(state, payload.name) != digest:
        raise ContractRevert(
            f"governance has not approved code {digest.hex()} for contract {payload.name!r}", 0
        )
    key = CODE + payload.name.encode()
    current = state.get(key)
    if current is not None and code_hash(current) == digest:
        raise ContractRevert(f"contract {payload.name!r} already runs this code", 0)
    try:
        program = program_for(payload.code)
    except VMError as exc:
        raise ContractRevert(f"bytecode rejected: {describe(exc)}", 0) from None
    state.put(key, payload.code)
    event = Event("upgraded" if current is not None else "deployed", (payload.name, digest))
    return (digest, tuple(program.public_methods())), [event], gas


def execute_call(
    state: Overlay, tx: Tx, height: int, ctx: CallContext
) -> tuple[object, list[Event], int]:
    payload = tx.payload
    assert isinstance(payload, CallPayload)
    code = state.get(CODE + payload.contract.encode())
    if code is None:
        raise ContractRevert(f"no contract named {payload.contract!r}", 0)
    try:
        args = decode_value(payload.args, MAX_VALUE_BYTES)
    except VMError as exc:
        raise ContractRevert(f"arguments are not VM values: {describe(exc)}", 0) from None
    if type(args) is not list:
        raise ContractRevert("arguments must encode a list", 0)
    host = ChainHost(ctx, payload.contract, tx.sender, governance.org_of(state, tx.sender), ())
    gas_limit = governance.param(state, "max_tx_gas")
    result = execute(program_for(code), payload.method, args, host, gas_limit=gas_limit)
    if result.error is not None:
        raise ContractRevert(describe(result.error), result.gas_used)
    if len(ctx.events) > MAX_EVENTS_PER_RECEIPT:
        raise ContractRevert(f"more than {MAX_EVENTS_PER_RECEIPT} events", result.gas_used)
    events = [Event(name, data) for name, data in ctx.events]
    return encode_value(result.value, MAX_VALUE_BYTES), events, result.gas_used


def query(
    state: Overlay,
    contract: str,
    method: str,
    args: list[Any],
    height: int,
    time_ms: int,
    gas_limit: int,
) -> tuple[Any, list[tuple[str, bytes]], int]:
    """Run a method against committed state without keeping its writes (read-only API)."""
    code = state.get(CODE + contract.encode())
    if code is None:
        raise CallError(f"no contract named {contract!r}")
    ctx = CallContext(state, height, time_ms)
    host = ChainHost(ctx, contract, bytes(32), "", ())
    result = execute(program_for(code), method, args, host, gas_limit=gas_limit)
    if result.error is not None:
        raise result.error
    return result.value, ctx.events, result.gas_used
