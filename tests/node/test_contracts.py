"""deploy and call transactions on a real ledger: gas, reverts, nested calls, permissions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ledger_helpers import ADMIN, CLIENT, GENESIS_HASH, commit, govern, open_ledger

from consensus.crypto import PrivateKey
from node.app import contracts
from node.app.state import Overlay
from node.app.types import CallPayload, DeployPayload, Tx
from vm.bytecode import code_hash
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


def install(ledger, *contracts_: tuple[str, str]) -> list:  # type: ignore[no-untyped-def]
    """Approve (as governance would) and deploy contracts in one block; return receipts."""
    for name, source in contracts_:
        govern(ledger, "deploy:" + name, code_hash(code(source, name)))
    return commit(ledger, [deploy(name, source) for name, source in contracts_])


def deploy(name: str, source: str, key: PrivateKey = ADMIN) -> Tx:
    return Tx.create(key, "vigil-test", GENESIS_HASH, DeployPayload(name, code(source, name)), 50)


def call(contract: str, method: str, args: list, key: PrivateKey = CLIENT) -> Tx:
    payload = CallPayload(contract, method, encode_value(args, MAX_VALUE_BYTES))
    return Tx.create(key, "vigil-test", GENESIS_HASH, payload, 50)


def result(receipt) -> object:  # type: ignore[no-untyped-def]
    return decode_value(receipt.result, MAX_VALUE_BYTES)


def test_deploy_then_call_changes_state_and_records_gas(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "a")
    [r] = install(ledger, ("counter", COUNTER))
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
    install(ledger, ("counter", COUNTER))
    root = ledger.store.state_root()
    bad, spin = commit(ledger, [call("counter", "bump", [-1]), call("counter", "spin", [])])
    assert (
        bad.status == "reverted" and bad.error == "Revert: n must be positive" and bad.gas_used > 0
    )
    assert spin.status == "reverted" and spin.error.startswith("OutOfGas")
    assert spin.gas_used == ledger.param("max_tx_gas")
    state = Overlay(ledger.store.get)
    assert state.get(contracts.storage_key("counter", "total")) is None
    assert ledger.store.state_root() == root  # reverted work leaves the state, and its root, alone


def test_runtime_errors_record_only_their_kind(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "a")
    install(ledger, ("counter", COUNTER))
    [r] = commit(ledger, [call("counter", "bump", ["x"])])
    assert r.status == "reverted" and r.error == "ExecutionError: TypeError"


def test_nested_calls_see_the_calling_contract(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "a")
    install(ledger, ("counter", COUNTER), ("proxy", PROXY))
    asked, relayed = commit(ledger, [call("proxy", "ask", []), call("proxy", "relay", [3])])
    assert result(asked) == [contracts.contract_address("proxy"), "contract:proxy"]
    assert result(relayed) == 3
    assert relayed.events[0].name == "Bumped"


def test_deploy_needs_governance_approval_of_the_exact_code(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "a")
    [refused] = commit(ledger, [deploy("counter", COUNTER, key=CLIENT)])
    assert refused.status == "reverted" and "has not approved code" in refused.error
    govern(ledger, "deploy:counter", code_hash(code(COUNTER, "counter")))
    first, again = commit(
        ledger, [deploy("counter", COUNTER, key=CLIENT), deploy("counter", COUNTER)]
    )
    assert first.status == "ok" and first.events[0].name == "deployed"
    assert "already runs this code" in again.error
    [other] = commit(ledger, [deploy("counter", PROXY)])
    assert "has not approved code" in other.error
    govern(ledger, "deploy:counter", code_hash(code(PROXY, "counter")))
    [upgrade] = commit(ledger, [deploy("counter", PROXY)])
    assert upgrade.status == "ok" and upgrade.events[0].name == "upgraded"
    junk = b"\x00\x01"
    govern(ledger, "deploy:junk", code_hash(junk))
    junk_tx = Tx.create(ADMIN, "vigil-test", GENESIS_HASH, DeployPayload("junk", junk), 50)
    [r] = commit(ledger, [junk_tx])
    assert r.status == "reverted" and r.error.startswith("bytecode rejected")


def test_block_gas_limit_defers_calls_to_later_blocks(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "a")
    install(ledger, ("counter", COUNTER))
    tight = ledger.param("max_tx_gas")
    govern(ledger, "param:max_block_gas", tight + tight // 2)
    spins = [call("counter", "spin", []) for _ in range(3)]
    receipts = commit(ledger, spins)
    assert len(receipts) == 1  # one spin uses max_tx_gas; a second would pass the block limit
    receipts = commit(ledger, spins[1:])
    assert len(receipts) == 1


def test_call_arguments_must_be_a_vm_list(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "a")
    install(ledger, ("counter", COUNTER))
    payload = CallPayload("counter", "bump", encode_value(5, MAX_VALUE_BYTES))
    not_list = Tx.create(CLIENT, "vigil-test", GENESIS_HASH, payload, 50)
    bad_args = dataclasses.replace(payload, args=b"\xc1")
    garbage = Tx.create(CLIENT, "vigil-test", GENESIS_HASH, bad_args, 50)
    missing = call("nothing", "bump", [1])
    receipts = commit(ledger, [not_list, garbage, missing])
    assert [r.status for r in receipts] == ["reverted"] * 3
    assert "must encode a list" in receipts[0].error
    assert "not VM values" in receipts[1].error
    assert "no contract named" in receipts[2].error


def test_a_gas_bomb_in_the_mempool_costs_a_build_at_most_one_block_of_gas(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Fault 4: a build executed every candidate even after the block's gas was spent.

    With 10 M-gas calls taking most of a second each, a client with the submit role
    could make every primary's build take many times the progress timeout.
    """
    from node.app import execution

    ledger = open_ledger(tmp_path / "a")
    install(ledger, ("counter", COUNTER))
    executed: list[int] = []
    real = execution.HANDLERS["call"]

    def counted(state, tx, height, ctx):  # type: ignore[no-untyped-def]
        result = real(state, tx, height, ctx)
        executed.append(result[2])
        return result

    def counted_revert(state, tx, height, ctx):  # type: ignore[no-untyped-def]
        try:
            return counted(state, tx, height, ctx)
        except execution.ContractRevert as exc:
            executed.append(exc.gas_used)
            raise

    monkeypatch.setitem(execution.HANDLERS, "call", counted_revert)
    max_tx, max_block = ledger.param("max_tx_gas"), ledger.param("max_block_gas")
    bombs = [call("counter", "spin", []) for _ in range(40)]
    receipts = commit(ledger, bombs)
    assert sum(r.gas_used for r in receipts) <= max_block
    assert len(receipts) == max_block // max_tx
    assert sum(executed) <= max_block + max_tx  # one over-budget candidate, then it stops
    assert len(executed) <= len(receipts) + 1  # not the 40 it used to run


def test_a_build_stops_after_passing_over_max_build_skips(tmp_path: Path) -> None:
    """Candidates too large for the bytes left are passed over a bounded number of times."""
    from node.app.execution import MAX_BUILD_SKIPS

    ledger = open_ledger(tmp_path / "a")
    install(ledger, ("counter", COUNTER))
    filler = call("counter", "bump", [0, "y" * 1000])  # about 1.1 KB: goes in first
    big = [call("counter", "bump", [n, "x" * 2000]) for n in range(MAX_BUILD_SKIPS)]
    small = call("counter", "bump", [1])
    height = ledger.height + 1
    room = 3_000  # each big one fits an empty block, none fits beside the filler
    assert all(len(filler.encode()) + len(b.encode()) > room >= len(b.encode()) for b in big)
    body = ledger.executor.select([filler, *big, small], height, 2_000, 100, room)
    assert body.txs == [filler] and body.rejected == []  # big ones passed over, then it stopped
    body = ledger.executor.select([filler, *big[1:], small], height, 2_000, 100, room)
    assert [tx.id for tx in body.txs] == [filler.id, small.id]


def test_gas_free_anchors_still_fill_a_block_whose_gas_is_spent(tmp_path: Path) -> None:
    """Once a call's gas does not fit, later calls wait, but anchors (no gas) still go in."""
    from ledger_helpers import anchor_tx

    ledger = open_ledger(tmp_path / "a")
    install(ledger, ("counter", COUNTER))
    max_tx, max_block = ledger.param("max_tx_gas"), ledger.param("max_block_gas")
    spins = [call("counter", "spin", []) for _ in range(max_block // max_tx + 2)]
    late = anchor_tx(b"after the bombs")
    receipts = commit(ledger, [*spins, late])
    assert [r.tx_hash for r in receipts][-1] == late.id
    assert len(receipts) == max_block // max_tx + 1
