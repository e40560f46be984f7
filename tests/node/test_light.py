"""The light client against a lying node, without sockets: every way to lie has its message.

The chain: an anchor block, a member joins by vote, an original member is
removed by vote, then more blocks; every certificate is signed by a quorum of
its own height's validators. The client starts from the genesis file only.
"""

from __future__ import annotations

import dataclasses

import pytest
from ledger_helpers import NODES, anchor_tx, certify, genesis, open_ledger, proposer
from test_contracts import call

from consensus import merkle, smt
from consensus.certificate import Certificate
from consensus.crypto import PrivateKey
from node.app.execution import tx_proof
from node.app.ledger import Ledger
from node.app.light import (
    LightClient,
    ReadRecorder,
    StateRead,
    ValidatorChange,
    VerificationError,
    run_query,
)
from node.app.state import ANCHOR, VALIDATORS
from node.app.types import Block, Header, Receipt, receipts_root
from vm.gas import MAX_VALUE_BYTES
from vm.values import decode_value

NEWCOMER = PrivateKey.from_seed(b"n" * 32)
KEYS = {k.public: k for k in [*NODES, NEWCOMER]}


@dataclasses.dataclass
class Chain:
    ledger: Ledger
    certificates: dict[int, Certificate]
    changes: list[ValidatorChange]
    anchor: bytes
    late_height: int

    def header(self, height: int) -> Header:
        return Block.decode(self.ledger.store.block(height)).header  # type: ignore[arg-type]

    def block(self, height: int) -> Block:
        return Block.decode(self.ledger.store.block(height))  # type: ignore[arg-type]

    def receipts(self, height: int) -> list[Receipt]:
        return [Receipt.decode(r) for r in self.ledger.store.receipts(height) or []]


def _commit(chain: Chain, txs: list) -> list[Receipt]:  # type: ignore[type-arg]
    ledger = chain.ledger
    height = ledger.height + 1
    before = ledger.validators(height)
    block = ledger.build(height, 0, proposer(ledger, height), txs).block
    quorum = len(before) - (len(before) - 1) // 3
    cert = certify(height, block, [KEYS[v] for v in before[:quorum]])
    ledger.commit(block, cert)
    chain.certificates[height] = cert
    after = ledger.validators(height + 1)
    if after != before:
        proof = smt.prove(ledger.tree_nodes.get, ledger.store.state_root(), VALIDATORS)
        chain.changes.append(ValidatorChange(chain.header(height), cert, tuple(after), proof))
    return chain.receipts(height)


def _decide(chain: Chain, kind: str, args: dict, voters: list[PrivateKey]) -> None:
    [proposed] = _commit(chain, [call("governance", "propose", [kind, args], key=NODES[0])])
    assert proposed.status == "ok", proposed.error
    pid = decode_value(proposed.result, MAX_VALUE_BYTES)
    votes = _commit(chain, [call("governance", "vote", [pid, True], key=k) for k in voters])
    assert all(v.status == "ok" for v in votes), [v.error for v in votes]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    ledger = open_ledger(tmp_path_factory.mktemp("light") / "a")
    made = Chain(ledger, {}, [], b"", 0)
    anchor = anchor_tx(b"training data")
    _commit(made, [anchor])
    made.anchor = anchor.payload.digest  # type: ignore[attr-defined]
    joiner = {
        "org": "org4",
        "node_key": NEWCOMER.public,
        "peer": "127.0.0.1:104",
        "api": "127.0.0.1:204",
        "admins": [NEWCOMER.public],
    }
    _decide(made, "add_member", joiner, NODES[:3])
    _decide(made, "remove_member", {"org": "org1"}, [NODES[0], NODES[2], NODES[3], NEWCOMER])
    _commit(made, [anchor_tx(b"after the changes")])
    made.late_height = ledger.height
    assert len(made.changes) == 2
    assert NODES[1].public not in ledger.validators(made.late_height)
    return made


def client(chain: Chain) -> LightClient:
    light = LightClient(genesis())
    light.follow_all(chain.changes)
    return light


def test_a_read_after_a_join_and_a_removal_verifies(chain: Chain) -> None:
    light = client(chain)
    h = chain.late_height
    assert light.validators_at(h) == tuple(chain.ledger.validators(h))
    block, receipts = chain.block(h), chain.receipts(h)
    light.verify_tx(chain.header(h), chain.certificates[h], block.txs[0], tx_proof(block.txs, 0))
    proof = merkle.Tree([r.encode() for r in receipts]).proof(0)
    light.verify_receipt(chain.header(h), chain.certificates[h], receipts[0], proof)
    assert receipts_root(receipts) == chain.header(h).receipts_root
    key = ANCHOR + chain.anchor
    value = chain.ledger.store.get(key)
    state_proof = smt.prove(chain.ledger.tree_nodes.get, chain.ledger.store.state_root(), key)
    light.verify_state(chain.header(h), chain.certificates[h], key, value, state_proof)
    missing = ANCHOR + bytes(32)
    absent = smt.prove(chain.ledger.tree_nodes.get, chain.ledger.store.state_root(), missing)
    light.verify_state(chain.header(h), chain.certificates[h], missing, None, absent)


def test_a_tampered_receipt_or_event_is_caught(chain: Chain) -> None:
    light, h = client(chain), chain.late_height
    receipts = chain.receipts(h)
    proof = merkle.Tree([r.encode() for r in receipts]).proof(0)
    for forged in (
        dataclasses.replace(receipts[0], status="reverted", error="Revert: made up"),
        dataclasses.replace(receipts[0], events=()),
        dataclasses.replace(receipts[0], gas_used=receipts[0].gas_used + 1),
    ):
        with pytest.raises(VerificationError, match="receipt proof: the receipt is not in block"):
            light.verify_receipt(chain.header(h), chain.certificates[h], forged, proof)


def test_a_tampered_transaction_is_caught(chain: Chain) -> None:
    light, h = client(chain), chain.late_height
    block = chain.block(h)
    other = anchor_tx(b"something else")
    with pytest.raises(VerificationError, match="transaction proof"):
        light.verify_tx(chain.header(h), chain.certificates[h], other, tx_proof(block.txs, 0))


def test_a_proof_for_another_block_size_is_caught(chain: Chain) -> None:
    """An RFC 9162 path for index 0 is the same for several tree sizes: the header's
    tx_count pins the size, so a node cannot pass a proof off for a bigger block."""
    light, h = client(chain), chain.late_height
    block = chain.block(h)
    proof = tx_proof(block.txs, 0)
    assert proof.size == 1
    padded = dataclasses.replace(proof, size=2)
    with pytest.raises(VerificationError, match="for a block of 2 transactions; block .* holds 1"):
        light.verify_tx(chain.header(h), chain.certificates[h], block.txs[0], padded)


def test_a_changed_or_hidden_state_value_is_caught(chain: Chain) -> None:
    light, h = client(chain), chain.late_height
    key = ANCHOR + chain.anchor
    root = chain.ledger.store.state_root()
    proof = smt.prove(chain.ledger.tree_nodes.get, root, key)
    value = chain.ledger.store.get(key)
    assert value is not None
    with pytest.raises(VerificationError, match="state proof: the proven value differs"):
        light.verify_state(chain.header(h), chain.certificates[h], key, value + b"x", proof)
    with pytest.raises(VerificationError, match="state proof: the proof shows the key present"):
        light.verify_state(chain.header(h), chain.certificates[h], key, None, proof)
    hidden = smt.Proof(proof.siblings, None)  # the node claims the anchor does not exist
    with pytest.raises(VerificationError, match="state proof: the proof does not reach"):
        light.verify_state(chain.header(h), chain.certificates[h], key, None, hidden)


def test_certificates_short_duplicated_or_from_a_removed_member_are_caught(chain: Chain) -> None:
    light, h = client(chain), chain.late_height
    header, cert = chain.header(h), chain.certificates[h]
    short = dataclasses.replace(cert, votes=cert.votes[:-1])
    with pytest.raises(VerificationError, match="certificate: .* votes, quorum is 3 of 4"):
        light.verify_header(header, short)
    with pytest.raises(Exception, match="(?i)duplicate|twice|sorted|unique"):
        doubled = dataclasses.replace(cert, votes=(cert.votes[0], *cert.votes[:-1]))
        light.verify_header(header, doubled)
    removed = certify(h, chain.ledger.store.block(h), [NODES[1], NODES[0], NODES[2]])  # type: ignore[arg-type]
    with pytest.raises(VerificationError, match="not a validator of that height"):
        light.verify_header(header, removed)
    wrong_chain = dataclasses.replace(header, chain_id="other")
    with pytest.raises(VerificationError, match="header is for chain 'other'"):
        light.verify_header(wrong_chain, cert)
    with pytest.raises(VerificationError, match="certificate signs another block"):
        light.verify_header(dataclasses.replace(header, timestamp_ms=header.timestamp_ms + 1), cert)


def test_a_missing_or_forged_validator_set_change_is_caught(chain: Chain) -> None:
    h = chain.late_height
    unaware = LightClient(genesis())
    unaware.follow(chain.changes[0])  # the node leaves the removal out
    with pytest.raises(
        VerificationError, match="validator set: .* a validator-set change is missing"
    ):
        unaware.verify_header(chain.header(h), chain.certificates[h])
    forged = dataclasses.replace(chain.changes[0], validators=(NEWCOMER.public,))
    with pytest.raises(VerificationError, match="validator-set change: the set said to follow"):
        LightClient(genesis()).follow(forged)
    stolen = dataclasses.replace(
        chain.changes[1], proof=smt.Proof(chain.changes[1].proof.siblings[1:], None)
    )
    fresh = LightClient(genesis())
    fresh.follow(chain.changes[0])
    with pytest.raises(VerificationError, match="validator-set change"):
        fresh.follow(stolen)
    backwards = LightClient(genesis())
    backwards.follow_all(chain.changes)
    with pytest.raises(VerificationError, match="comes after one at"):
        backwards.follow(chain.changes[0])


def test_votes_signed_for_another_genesis_are_refused(chain: Chain) -> None:
    """A staging chain with the same chain id and members: its votes verify nothing here."""
    h = chain.late_height
    block = chain.ledger.store.block(h)
    assert block is not None
    signers = [KEYS[v] for v in chain.ledger.validators(h)[:3]]
    staging = certify(h, block, signers, chain=bytes(32))
    with pytest.raises(VerificationError, match="certificate: .* bad signature"):
        client(chain).verify_header(chain.header(h), staging)


def test_the_ledger_keeps_what_a_light_client_needs_to_follow_changes(chain: Chain) -> None:
    """The records a node serves (GET /v1/light/changes) parse and verify from genesis."""
    records = chain.ledger.validator_changes(0, 64)
    assert [r.height for r in records] == [c.header.height for c in chain.changes]
    light = LightClient(genesis())
    light.follow_all(
        [ValidatorChange.parse(r.header, r.certificate, r.validators, r.proof) for r in records]
    )
    h = chain.late_height
    light.verify_header(chain.header(h), chain.certificates[h])
    assert chain.ledger.validator_changes(records[0].height, 64) == records[1:]
    with pytest.raises(VerificationError, match="malformed record"):
        ValidatorChange.parse(records[0].header, records[0].certificate, [], b"junk")
    key = ANCHOR + chain.anchor
    light.verify_state(
        chain.header(h), chain.certificates[h], key, chain.ledger.store.get(key),
        chain.ledger.state_proof(key),
    )  # fmt: skip


def _proven_query(chain: Chain, contract: str, method: str, args: list) -> list[StateRead]:  # type: ignore[type-arg]
    """What an honest node sends for a proven query: every key the run read, with its proof."""
    ledger = chain.ledger
    recorder = ReadRecorder(ledger.store.get)
    header = chain.header(ledger.height)
    run_query(recorder, contract, method, args, header.height, header.timestamp_ms)
    root = ledger.store.state_root()
    return [
        StateRead(k, v, smt.prove(ledger.tree_nodes.get, root, k))
        for k, v in sorted(recorder.reads.items())
    ]


def test_a_query_reruns_over_proven_reads_and_every_lie_about_them_is_caught(chain: Chain) -> None:
    light, h = client(chain), chain.late_height
    header, cert = chain.header(h), chain.certificates[h]
    reads = _proven_query(chain, "governance", "proposals", [1, 50])
    run = light.verify_query(header, cert, "governance", "proposals", [1, 50], reads)
    assert [p["kind"] for p in run.value] == ["add_member", "remove_member"]
    assert [p["status"] for p in run.value] == ["executed", "executed"]

    with pytest.raises(VerificationError, match="query proof: the query reads key .* no proof"):
        light.verify_query(header, cert, "governance", "proposals", [1, 50], reads[1:])
    extra = StateRead(
        ANCHOR + chain.anchor,
        chain.ledger.store.get(ANCHOR + chain.anchor),
        smt.prove(
            chain.ledger.tree_nodes.get, chain.ledger.store.state_root(), ANCHOR + chain.anchor
        ),
    )
    with pytest.raises(VerificationError, match="query proof: 1 proven key.* never reads"):
        light.verify_query(header, cert, "governance", "proposals", [1, 50], [*reads, extra])
    present = next(i for i, r in enumerate(reads) if r.value is not None)
    altered = list(reads)
    altered[present] = dataclasses.replace(reads[present], value=reads[present].value + b"\x00")
    with pytest.raises(VerificationError, match="state proof: key .*: the proven value differs"):
        light.verify_query(header, cert, "governance", "proposals", [1, 50], altered)
    hidden = list(reads)
    hidden[present] = StateRead(
        reads[present].key, None, smt.Proof(reads[present].proof.siblings, None)
    )
    with pytest.raises(VerificationError, match="state proof: key .*"):
        light.verify_query(header, cert, "governance", "proposals", [1, 50], hidden)
    with pytest.raises(VerificationError, match="query proof: key .* is proven twice"):
        light.verify_query(header, cert, "governance", "proposals", [1, 50], [*reads, reads[0]])
    # Proofs from a later state under an earlier header do not reach its root.
    early = chain.late_height - 1
    with pytest.raises(VerificationError, match="state proof"):
        light.verify_query(
            chain.header(early),
            chain.certificates[early],
            "governance",
            "proposals",
            [1, 50],
            reads,
        )


def test_a_whole_block_verifies_and_a_receipt_left_out_or_swapped_is_caught(chain: Chain) -> None:
    light = client(chain)
    h = next(h for h in chain.certificates if len(chain.block(h).txs) >= 3)  # the member votes
    block, cert, receipts = chain.block(h), chain.certificates[h], chain.receipts(h)
    light.verify_block(block, cert, receipts)
    with pytest.raises(VerificationError, match="receipts: 2 receipts for 3 transactions"):
        light.verify_block(block, cert, receipts[:2])
    with pytest.raises(VerificationError, match="receipts: receipt 0 is not transaction 0's"):
        light.verify_block(block, cert, [receipts[1], receipts[0], *receipts[2:]])
    changed = dataclasses.replace(receipts[0], gas_used=receipts[0].gas_used + 1)
    with pytest.raises(VerificationError, match="receipts: the receipts are not block"):
        light.verify_block(block, cert, [changed, *receipts[1:]])
    with pytest.raises(VerificationError, match="certificate"):
        light.verify_block(block, chain.certificates[h - 1], receipts)
