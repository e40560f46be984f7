"""A consortium whose keys each stand for one role, and the governance that moves them between
membership states: the fixture of the permission matrix (tests/node/test_permission_matrix.py)
and of the API's permission table (tests/node/test_api_permissions.py).

Four members, ``bank-a`` .. ``bank-d``, each with a node key and a separate admin key.
Every key under test belongs to ``bank-b`` (the *subject* org):

    admin         bank-b's admin key (listed in members["bank-b"]["admins"])
    node          bank-b's node key (a validator; neither admin nor client)
    client_submit / client_score / client_audit / client_admin
                  clients of bank-b with that one role
    client_all    a client of bank-b with all four roles
    admin_client  bank-b's second admin key, also authorised by governance as a client of
                  bank-b with the role ``score`` (allowed: the key is an admin of no other org)

States are reached by real governance: proposals by bank-a's admin, approved by the admins of
bank-a, bank-c and bank-d (three of four), executed in committed blocks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from consensus.certificate import Certificate, Vote, commit_message
from consensus.crypto import DOMAIN_COMMIT, PrivateKey
from node.app.genesis import DEFAULT_PARAMS, Genesis, Member
from node.app.genesis import Client as GenesisClient
from node.app.ledger import Ledger
from node.app.types import (
    AnchorPayload,
    Block,
    CallPayload,
    DeployPayload,
    Receipt,
    ScorePayload,
    Tx,
)
from node.sim.workload import FEATURES, contract_code, sim_model
from vm.bytecode import code_hash
from vm.gas import MAX_VALUE_BYTES
from vm.values import decode_value, encode_value

CHAIN_ID = "vigil-perm"
ORGS = ("bank-a", "bank-b", "bank-c", "bank-d")
SUBJECT = "bank-b"
"""The org every key under test belongs to."""
VOTERS = ("bank-a", "bank-c", "bank-d")
"""The admins that carry governance through (three of four members)."""
MODEL = "fraud"
CONTRACT = "screen"
"""An application contract, deployed in the setup (node/sim/workload.py's source)."""
SPARE_CONTRACT = "screen_two"
"""A name governance allows the same code under, left undeployed for the `deploy` column."""
TX_LIFETIME = 100


def _key(label: str) -> PrivateKey:
    return PrivateKey.from_seed(hashlib.sha256(b"vigil-perm/" + label.encode()).digest())


NODE_KEYS = {org: _key("node/" + org) for org in ORGS}
ADMIN_KEYS = {org: _key("admin/" + org) for org in ORGS}
CLIENT_ROLES = {
    "client_submit": ("submit",),
    "client_score": ("score",),
    "client_audit": ("audit",),
    "client_admin": ("admin",),
    "client_all": ("admin", "audit", "score", "submit"),
}
DUAL_ROLES = ("score",)
"""The client roles governance gives the admin_client key."""

KEYS: dict[str, PrivateKey] = {
    "admin": ADMIN_KEYS[SUBJECT],
    "node": NODE_KEYS[SUBJECT],
    **{name: _key(name) for name in CLIENT_ROLES},
    "admin_client": _key("admin_client"),
    "stranger": _key("stranger"),
}
"""Signers by role name (the weak and impostor senders are made in the matrix itself)."""

WEAK_KEY = bytes([1]) + bytes(31)
"""The identity point: of small order, so the signature (identity, 0) verifies for any
message under it (consensus/crypto.py ``check_public_key``)."""


def genesis() -> Genesis:
    members = tuple(
        Member(
            org,
            NODE_KEYS[org].public,
            f"127.0.0.1:{7100 + i}",
            f"127.0.0.1:{7200 + i}",
            tuple(
                sorted(
                    [ADMIN_KEYS[org].public]
                    + ([KEYS["admin_client"].public] if org == SUBJECT else [])
                )
            ),
        )
        for i, org in enumerate(ORGS)
    )
    clients = tuple(
        sorted(
            (
                GenesisClient(KEYS[name].public, SUBJECT, roles)
                for name, roles in CLIENT_ROLES.items()
            ),
            key=lambda c: c.key,
        )
    )
    # The model is trained on generated rows nobody anchors (as in node/sim).
    params = {**DEFAULT_PARAMS, "require_anchored_training": 0}
    return Genesis(CHAIN_ID, 0, members, clients, tuple(sorted(params.items())))


GENESIS = genesis()
GENESIS_HASH = GENESIS.hash()


def sign(key: PrivateKey, payload: Any, until: int = TX_LIFETIME) -> Tx:
    return Tx.create(key, CHAIN_ID, GENESIS_HASH, payload, until)


def call_payload(contract: str, method: str, args: list) -> CallPayload:
    return CallPayload(contract, method, encode_value(args, MAX_VALUE_BYTES))


def payloads(open_proposal: int) -> dict[str, Any]:
    """One payload per column of the matrix (a fresh anchor digest each time it is called)."""
    digest = hashlib.sha256(b"perm anchor " + str(open_proposal).encode()).digest()
    return {
        "anchor": AnchorPayload(digest, 10, "text/plain", (), ()),
        "score": ScorePayload(MODEL, (0.5, 12.0, 3.0), "ref-1"),
        "deploy": DeployPayload(SPARE_CONTRACT, contract_code()),
        "call": call_payload(CONTRACT, "note", [b"permission matrix"]),
        "call:propose": call_payload(
            "governance", "propose", ["set_param", {"name": "score_fee", "value": 12}]
        ),
        "call:vote": call_payload("governance", "vote", [open_proposal, True]),
    }


def proposer(ledger: Ledger, height: int) -> bytes:
    validators = ledger.validators(height)
    return validators[height % len(validators)]


def certify(ledger: Ledger, height: int, block: bytes) -> Certificate:
    """A commit certificate from a quorum of the validators of ``height``."""
    digest = Block.decode(block).hash()
    by_key = {k.public: k for k in NODE_KEYS.values()}
    signers = [by_key[v] for v in ledger.validators(height)][:3]
    votes = sorted(
        (Vote(k.public, k.sign(DOMAIN_COMMIT, GENESIS_HASH, commit_message(height, 0, digest)))
         for k in signers),
        key=lambda v: v.encode(),
    )  # fmt: skip
    return Certificate(height, 0, digest, tuple(votes))


def commit(ledger: Ledger, txs: Sequence[Tx]) -> list[Receipt]:
    """Build, certify and commit the next block with every one of ``txs``; its receipts."""
    height = ledger.height + 1
    proposal = ledger.build(height, 0, proposer(ledger, height), list(txs))
    assert proposal.rejected == [], [(t.kind, e.code, e.message) for t, e in proposal.rejected]
    assert len(Block.decode(proposal.block).txs) == len(txs), "the build left some out"
    ledger.commit(proposal.block, certify(ledger, height, proposal.block))
    return [Receipt.decode(r) for r in ledger.store.receipts(height) or []]


def result(receipt: Receipt) -> Any:
    return decode_value(receipt.result, MAX_VALUE_BYTES)


def decided(first_id: int, actions: Sequence[tuple[str, dict]]) -> list[Tx]:
    """Transactions that propose each action (ids from ``first_id``) and approve it."""
    txs = []
    for pid, (kind, args) in enumerate(actions, start=first_id):
        txs.append(sign(ADMIN_KEYS[VOTERS[0]], call_payload("governance", "propose", [kind, args])))
        txs += [
            sign(ADMIN_KEYS[org], call_payload("governance", "vote", [pid, True])) for org in VOTERS
        ]
    return txs


def setup(ledger: Ledger) -> int:
    """Bring a fresh chain to the *active* state; the id of the proposal left open for votes.

    Governance allows the application contract's code under two names, registers and
    activates the model (its artifact uploaded first), and authorises bank-b's second admin
    key as a client; a client deploys the contract; bank-a proposes a parameter change that
    stays open.
    """
    model = sim_model()
    ledger.store.put_artifact(model.model_id, model.data)
    digest = code_hash(contract_code())
    actions = [
        ("allow_deploy", {"name": CONTRACT, "code_hash": digest}),
        ("allow_deploy", {"name": SPARE_CONTRACT, "code_hash": digest}),
        (
            "approve_model",
            {
                "name": MODEL,
                "model_id": model.model_id,
                "size": len(model.data),
                "contributors": {"bank-a": 1},
                "anchors": [hashlib.sha256(b"training").digest()],
            },
        ),
        ("activate_model", {"name": MODEL, "version": 1}),
        (
            "authorize_client",
            {
                "key": KEYS["admin_client"].public,
                "org": SUBJECT,
                "roles": list(DUAL_ROLES),
            },
        ),
    ]
    assert len(FEATURES) == 3
    first = 1
    txs = decided(first, actions)
    txs.append(sign(KEYS["client_all"], DeployPayload(CONTRACT, contract_code())))
    open_id = first + len(actions)
    txs.append(sign(ADMIN_KEYS[VOTERS[0]], call_payload(
        "governance", "propose", ["set_param", {"name": "max_tx_window", "value": 999}]
    )))  # fmt: skip
    receipts = commit(ledger, txs)
    assert [r.status for r in receipts] == ["ok"] * len(txs), [r.error for r in receipts]
    assert result(receipts[-1]) == open_id
    return open_id


def revoke_clients(ledger: Ledger, first_id: int, names: Sequence[str] | None = None) -> None:
    """The *revoked* state: governance revokes the client keys ``names``, by default every
    client key of bank-b (admin_client's client entry included; it stays an admin key)."""
    names = [*CLIENT_ROLES, "admin_client"] if names is None else names
    txs = decided(first_id, [("revoke_client", {"key": KEYS[n].public}) for n in names])
    receipts = commit(ledger, txs)
    assert [r.status for r in receipts] == ["ok"] * len(txs), [r.error for r in receipts]


def remove_subject(ledger: Ledger, first_id: int) -> None:
    """The *org removed* state: governance removes bank-b (its client entries stay stored)."""
    txs = decided(first_id, [("remove_member", {"org": SUBJECT})])
    receipts = commit(ledger, txs)
    assert [r.status for r in receipts] == ["ok"] * len(txs), [r.error for r in receipts]
