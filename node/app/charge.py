"""The royalty charge of a score, computed by the node instead of the VM.

Every score transaction charges the scoring organisation the ``score_fee`` and
credits the model's contributors (``royalties.charge`` in
``system_contracts/royalties.py``, which stays the rule's text). Run in the VM
that costs about 2.5 ms a score, three contract executions with their
nested calls, against a signature check of about 0.1 ms: the VM made scores
25 times dearer than the floor every node pays (issue 15). So while the
royalties, governance and models contracts are the system code installed at
genesis, the node carries the charge out natively, as a precompile: the same
storage reads, the same writes in the same order, the same ``charged`` event,
and a fixed gas of ``GAS_ROYALTY_CHARGE``. Anything outside the common path
(an upgraded contract, a missing or odd stored value, a limit the VM would
enforce) is handed to the VM, which gives the exact answer and its error, so
this module never has to reproduce a failure. A differential test
(tests/node/test_native_charge.py) holds it to the VM's writes and events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from consensus.bounded import BoundedMap
from node.app import governance
from node.app.contracts import CallContext
from node.app.state import CODE, Overlay, decoded_value, storage_key
from node.app.system import MODELS_CONTRACT, system_code
from vm.errors import VMError
from vm.gas import (
    GAS_EMIT,
    GAS_STORAGE_WRITE,
    INT_LIMIT,
    MAX_EVENT_DATA_BYTES,
    MAX_STORAGE_VALUE_BYTES,
)
from vm.values import encode_value

ROYALTIES_CONTRACT = "royalties"
GOVERNANCE_CONTRACT = "governance"
GAS_ROYALTY_CHARGE = 4 * GAS_STORAGE_WRITE + GAS_EMIT + 2_800
"""Gas of one native charge: about four storage writes and an event at the VM's rates
(5,000). The VM's own metering of the same charge is about 11,800, most of it the
interpreter's walk over the contract; the native charge does none of that."""
assert GAS_ROYALTY_CHARGE == 5_000
MAX_NATIVE_ORGS = 256
"""Orgs with a balance the native charge handles; past it the VM charges (and meters the
walk over the list the contract does)."""
MAX_NATIVE_CONTRIBUTORS = 64
"""Contributors of a model version the native charge handles; past it the VM charges."""
MAX_REMEMBERED_ENCODINGS = 256
"""Entries of each memo this module keeps: charge terms, ``orgs`` lists, ``charged`` events,
balances and state keys (each a pure function of the bytes or arguments it is kept by, so a
remembered one is the one working it out again would give)."""
SCORE_FEE_PARAM = "score_fee"
ORG_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
MODEL_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True)
class Charge:
    """What one charge does: storage writes in the VM's order (by state key), and its
    event's data."""

    writes: dict[bytes, bytes]
    event: bytes | None


def is_system_code(state: Overlay) -> bool:
    """Whether the three contracts a charge runs through are still the genesis code."""
    code = system_code()
    for name in (ROYALTIES_CONTRACT, GOVERNANCE_CONTRACT, MODELS_CONTRACT):
        raw = state.get(_CODE_KEYS[name])
        if raw is not None and raw is _SEEN_SYSTEM_CODE.get(name):
            continue  # the very bytes object found equal before (a block reads it each time)
        if raw is None or raw != code[name]:
            return False
        _SEEN_SYSTEM_CODE[name] = raw
    return True


_CODE_KEYS = {
    name: CODE + name.encode()
    for name in (ROYALTIES_CONTRACT, GOVERNANCE_CONTRACT, MODELS_CONTRACT)
}
_SEEN_SYSTEM_CODE: dict[str, bytes] = {}
"""The stored code object last found equal to each system contract's genesis code (held, so
its identity cannot pass to other bytes)."""


def charge(state: Overlay, ctx: CallContext, org: str, model: str) -> int | None:
    """Charge ``org`` one score of ``model``; the gas, or None where the VM must do it.

    Nothing is written unless the whole charge is computed.
    """
    if not is_system_code(state):
        return None
    try:
        planned = plan(state, org, model)
    except VMError:
        return None  # a value over a VM limit: the VM names it
    if planned is None:
        return None
    for key, data in planned.writes.items():
        state.put(key, data)
    if planned.event is not None:
        ctx.events.append(("charged", planned.event))
    return GAS_ROYALTY_CHARGE


def _int(value: Any) -> bool:
    return type(value) is int and -INT_LIMIT < value < INT_LIMIT


@dataclass(frozen=True)
class _Terms:
    """What a charge of one org on one model takes from the state besides the balances: the
    fee, the shares, the orgs list and the event, with the stored bytes they came from.

    A block of scores charges the same few orgs on the same model thousands of times, and
    these inputs change only when governance, the model's versions or the orgs list do, so
    they are remembered (``_TERMS``) and used again while the four stored values read the
    same bytes; working them out at every charge was a third of the charge (issue 15)."""

    fee_raw: bytes | None
    active_raw: bytes | None
    record_key: bytes
    record_raw: bytes | None
    orgs_raw: bytes | None
    fee: int
    shares: tuple[tuple[str, int], ...]
    """(contributor, share) in name order; the payer pays ``fee``."""
    orgs: tuple[str, ...]
    """The stored orgs list (the charge inserts an org whose balance is new)."""
    orgs_bytes: bytes
    event: bytes


_TERMS: BoundedMap[tuple[str, str], _Terms] = BoundedMap(MAX_REMEMBERED_ENCODINGS)
_FEE_KEY = storage_key(GOVERNANCE_CONTRACT, governance.PARAM_PREFIX + SCORE_FEE_PARAM)
_ORGS_KEY = storage_key(ROYALTIES_CONTRACT, "orgs")
_FREE = object()
"""``_terms``' answer for a fee of 0: the charge writes and emits nothing."""


def plan(state: Overlay, org: str, model: str) -> Charge | None:
    """The charge as ``royalties.charge(org, model)`` makes it, or None off the common path."""
    if type(org) is not str or not ORG_PATTERN.fullmatch(org):
        return None
    if type(model) is not str or not MODEL_NAME_PATTERN.fullmatch(model):
        return None
    terms = _terms(state, org, model)
    if terms is None:
        return None
    if terms is _FREE:
        return Charge({}, None)
    assert isinstance(terms, _Terms)
    orgs = list(terms.orgs)  # the charge inserts new orgs
    balances: dict[str, int] = {}
    if not _add(state, balances, org, -terms.fee, orgs):
        return None
    for c, share in terms.shares:
        if share != 0 and not _add(state, balances, c, share, orgs):
            return None
    writes = {_balance_key(o): _balance_bytes(v) for o, v in balances.items()}
    writes[_ORGS_KEY] = (
        terms.orgs_bytes if len(orgs) == len(terms.orgs) else _orgs_bytes(tuple(orgs))
    )
    return Charge(writes, terms.event)


def _terms(state: Overlay, org: str, model: str) -> _Terms | object | None:
    """The remembered terms while their stored inputs are unchanged, else worked out anew."""
    fee_raw, orgs_raw = state.get(_FEE_KEY), state.get(_ORGS_KEY)
    active_raw = state.get(_active_key(model))
    known = _TERMS.get((org, model))
    if (
        known is not None
        and known.fee_raw == fee_raw
        and known.active_raw == active_raw
        and known.orgs_raw == orgs_raw
        and state.get(known.record_key) == known.record_raw
    ):
        return known
    terms = _work_out(state, org, model, fee_raw, active_raw, orgs_raw)
    if isinstance(terms, _Terms):
        _TERMS.remember((org, model), terms)
    return terms


def _work_out(
    state: Overlay,
    org: str,
    model: str,
    fee_raw: bytes | None,
    active_raw: bytes | None,
    orgs_raw: bytes | None,
) -> _Terms | object | None:
    """The contract's reading of the fee, the contributors and the orgs list."""
    fee = None if fee_raw is None else decoded_value(fee_raw)
    if fee is None:
        fee = governance.GOVERNANCE_PARAMS[SCORE_FEE_PARAM]
    if not _int(fee) or fee < 0:
        return None
    current = None if active_raw is None else decoded_value(active_raw)
    if type(current) is not dict or not _int(current.get("version")):
        return None
    record_key = storage_key(MODELS_CONTRACT, f"model:{model}:{current['version']}")
    record_raw = state.get(record_key)
    contributors = _contributors(None if record_raw is None else decoded_value(record_raw))
    if contributors is None:
        return None
    if fee == 0:
        return _FREE
    names = sorted(contributors)
    total = sum(contributors.values())
    if not _int(total) or total <= 0:
        return None
    if not all(_int(fee * weight) for weight in contributors.values()):
        return None  # the contract's fee * weight would overflow the VM's integers
    orgs = None if orgs_raw is None else decoded_value(orgs_raw)
    orgs = [] if orgs is None else orgs
    if type(orgs) is not list or len(orgs) > MAX_NATIVE_ORGS:
        return None
    if any(type(o) is not str for o in orgs):
        return None
    shares = {c: fee * contributors[c] // total for c in names}
    shares[names[0]] += fee - sum(shares.values())
    paid = tuple(shares.items())
    return _Terms(
        fee_raw, active_raw, record_key, record_raw, orgs_raw, fee, paid, tuple(orgs),
        _orgs_bytes(tuple(orgs)), _event_bytes(org, model, fee, paid),
    )  # fmt: skip


@lru_cache(maxsize=MAX_REMEMBERED_ENCODINGS)
def _active_key(model: str) -> bytes:
    return storage_key(MODELS_CONTRACT, "active:" + model)


_BALANCE = "balance:"
_BALANCES: BoundedMap[bytes, int] = BoundedMap(MAX_REMEMBERED_ENCODINGS)
"""The balances this module encoded last, by their bytes: every charge of a block reads the
balances the previous one wrote (an int's encoding is unique, so these bytes mean it)."""


def _balance_bytes(value: int) -> bytes:
    raw = encode_value(value, MAX_STORAGE_VALUE_BYTES)
    _BALANCES.remember(raw, value)
    return raw


@lru_cache(maxsize=MAX_REMEMBERED_ENCODINGS)
def _balance_key(org: str) -> bytes:
    return storage_key(ROYALTIES_CONTRACT, _BALANCE + org)


@lru_cache(maxsize=MAX_REMEMBERED_ENCODINGS)
def _orgs_bytes(orgs: tuple[str, ...]) -> bytes:
    """The stored ``orgs`` list: the same list at nearly every charge, so encoded once."""
    return encode_value(list(orgs), MAX_STORAGE_VALUE_BYTES)


@lru_cache(maxsize=MAX_REMEMBERED_ENCODINGS)
def _event_bytes(org: str, model: str, fee: int, paid: tuple[tuple[str, int], ...]) -> bytes:
    """The ``charged`` event's data (the contract's dict, keys in its order): the same for
    every score of one organisation on one model version at one fee, so encoded once."""
    event = {"org": org, "model": model, "fee": fee, "paid": dict(paid)}
    return encode_value(event, MAX_EVENT_DATA_BYTES)


def _contributors(record: Any) -> dict[str, int] | None:
    """The active version's contributor weights (``models.active(model)["contributors"]``)."""
    if type(record) is not dict:
        return None
    contributors = record.get("contributors")
    if type(contributors) is not dict or not 1 <= len(contributors) <= MAX_NATIVE_CONTRIBUTORS:
        return None
    for name, weight in contributors.items():
        if type(name) is not str or not _int(weight) or weight < 0:
            return None
    return contributors


def _add(state: Overlay, balances: dict[str, int], org: str, amount: int, orgs: list[str]) -> bool:
    """The contract's ``_add``: a new org joins ``orgs`` in sorted place; False off the path."""
    if org in balances:
        old: Any = balances[org]
    else:
        raw = state.get(_balance_key(org))
        if raw is None:
            i = 0
            while i < len(orgs) and orgs[i] < org:
                i += 1
            orgs.insert(i, org)
            old = 0
        else:
            old = _BALANCES.get(raw)
            if old is None:
                old = decoded_value(raw)
    if not _int(old) or not _int(old + amount):
        return False
    balances[org] = old + amount
    return True
