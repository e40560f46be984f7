"""deploy and call transactions on a real ledger: gas, reverts, nested calls, permissions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ledger_helpers import ADMIN, CLIENT, commit, open_ledger

from consensus.crypto import PrivateKey
from node import contracts
from node.state import Overlay
from node.types import CallPayload, DeployPayload, Tx
from vm.compiler import compile_to_bytes
from vm.gas import MAX_VALUE_BYTES
from vm.values import decode_value, encode_value

COUNTER = """
def bump(n):
    require(n > 0, "n must be positive")
    total = ledger.get("total", 0) + n
    ledger.put("total", total)
    ledger.emit("Bumped", {"by": ledger.caller_org(), "total": total})
    return total


def spin():
    i = 0
    while True:
        i += 1


def who():
    return [ledger.caller(), ledger.caller_org()]
"""

PROXY = """
def relay(n):
    return ledger.call("counter", "bump", [n])


def ask():
    return ledger.call("counter", "who", [])
"""


def code(source: str, name: str) -> bytes:
    return compile_to_bytes(source, f"{name}.py")


def deploy(name: str, source: str, key: PrivateKey = ADMIN) -> Tx:
    return Tx.create(key, "vigil-test", DeployPayload(name, code(source, name)), 50)


def call(contract: str, method: str, args: list, key: PrivateKey = CLIENT) -> Tx:
    payload = CallPayload(contract, method, encode_value(args, MAX_VALUE_BYTES))
    return Tx.create(key, "vigil-test", payload, 50)


def result(receipt) -> object:  # type: ignore[no-untyped-def]
    return decode_value(receipt.result, MAX_VALUE_BYTES)


def test_deploy_then_call_changes_state_and_records_gas(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "a")
    [r] = commit(ledger, [deploy("counter", COUNTER)])
    assert r.status == "ok" and r.gas_used > 0
    receipts = commit(ledger, [call("counter", "bump", [5]), call("counter", "bump", [2])])
    assert [x.status for x in receipts] == ["ok", "ok"]
    assert [result(x) for x in receipts] == [5, 7]
    assert receipts[1].events[0].name == "Bumped"
    assert decode_value(receipts[1].events[0].data, MAX_VALUE_BYTES) == {"by": "org0", "total": 7}
    state = Overlay(ledger.store.get)
    value, _, _ = contracts.query(state, "counter", "who", [], 3, 0, 1_000_000)
    assert value == [bytes(32), ""]


def test_reverts_keep_no_writes_but_charge_gas(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "a")
    commit(ledger, [deploy("counter", COUNTER)])
    root = ledger.store.state_root()
    bad, spin = commit(ledger, [call("counter", "bump", [-1]), call("counter", "spin", [])])
    assert (
        bad.status == "reverted" and bad.error == "Revert: n must be positive" and bad.gas_used > 0
    )
    assert spin.status == "reverted" and spin.error.startswith("OutOfGas")
    assert spin.gas_used == ledger.param("max_tx_gas")
    state = Overlay(ledger.store.get)
    assert state.get(contracts.storage_key("counter", "total")) is None
    assert ledger.store.state_root() != root  # the state root still advances per block


def test_runtime_errors_record_only_their_kind(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "a")
    commit(ledger, [deploy("counter", COUNTER)])
    [r] = commit(ledger, [call("counter", "bump", ["x"])])
    assert r.status == "reverted" and r.error == "ExecutionError: TypeError"


def test_nested_calls_see_the_calling_contract(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "a")
    commit(ledger, [deploy("counter", COUNTER), deploy("proxy", PROXY)])
    asked, relayed = commit(ledger, [call("proxy", "ask", []), call("proxy", "relay", [3])])
    assert result(asked) == [contracts.contract_address("proxy"), "contract:proxy"]
    assert result(relayed) == 3
    assert relayed.events[0].name == "Bumped"


def test_deploy_needs_the_admin_role_and_a_free_name(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "a")
    proposal = ledger.build(1, 0, ledger.validators(1)[1], [deploy("counter", COUNTER, key=CLIENT)])
    assert [exc.code for _, exc in proposal.rejected] == ["forbidden"]
    first, second = commit(ledger, [deploy("counter", COUNTER), deploy("counter", PROXY)])
    assert first.status == "ok" and "already deployed" in second.error
    junk = Tx.create(ADMIN, "vigil-test", DeployPayload("junk", b"\x00\x01"), 50)
    [r] = commit(ledger, [junk])
    assert r.status == "reverted" and r.error.startswith("bytecode rejected")


def test_block_gas_limit_defers_calls_to_later_blocks(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "a")
    commit(ledger, [deploy("counter", COUNTER)])
    tight = ledger.param("max_tx_gas")
    writes = {b"param/max_block_gas": encode_int(tight + tight // 2)}
    with ledger.store.db.write_batch() as batch:
        for k, v in writes.items():
            batch.put(b"state/" + k, v)
    spins = [call("counter", "spin", []) for _ in range(3)]
    receipts = commit(ledger, spins)
    assert len(receipts) == 1  # one spin uses max_tx_gas; a second would pass the block limit
    receipts = commit(ledger, spins[1:])
    assert len(receipts) == 1


def encode_int(value: int) -> bytes:
    from consensus import codec

    return codec.encode(value)


def test_call_arguments_must_be_a_vm_list(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "a")
    commit(ledger, [deploy("counter", COUNTER)])
    payload = CallPayload("counter", "bump", encode_value(5, MAX_VALUE_BYTES))
    not_list = Tx.create(CLIENT, "vigil-test", payload, 50)
    garbage = Tx.create(CLIENT, "vigil-test", dataclasses.replace(payload, args=b"\xc1"), 50)
    missing = call("nothing", "bump", [1])
    receipts = commit(ledger, [not_list, garbage, missing])
    assert [r.status for r in receipts] == ["reverted"] * 3
    assert "must encode a list" in receipts[0].error
    assert "not VM values" in receipts[1].error
    assert "no contract named" in receipts[2].error
