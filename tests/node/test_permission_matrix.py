"""The permission boundary as a matrix: every signer role x membership state x transaction
kind, on real ledgers (MemoryStorage, the real system contracts, governance by real votes).

The expected outcome of every cell is written out below, from the rules in
docs/governance.md ("Who may act", "Actions") and docs/node.md (a kind's role) and the
admission rules of node/app/execution.py; it is never computed by the code under test.
docs/permissions.md states the same matrix in words.

Each cell checks two things:

* admission (``Ledger.admit``, the mempool's check): admitted, or refused with the code;
* a block: an honest build takes an admitted transaction and a second ledger validates that
  block (execute-then-vote); its receipt is ``ok`` and changes the state root, or
  ``reverted`` with the reason and leaves the state root as it was. A refused transaction
  is left out of an honest build with the same code, and a block that carries it anyway (a
  Byzantine primary's) is invalid on every other replica.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import pytest
from perm_chain import (
    CLIENT_ROLES,
    GENESIS,
    GENESIS_HASH,
    KEYS,
    SUBJECT,
    WEAK_KEY,
    payloads,
    proposer,
    remove_subject,
    revoke_clients,
    setup,
    sign,
)

from node.app.execution import HANDLERS, ROLE_FOR_KIND, TxRejected
from node.app.genesis import ROLES
from node.app.ledger import Ledger
from node.app.storage import MemoryStorage
from node.app.types import PAYLOAD_TYPES, Block, Header, Tx, tx_root

KINDS = ("anchor", "score", "deploy", "call", "call:propose", "call:vote")
"""The matrix's columns: every transaction kind of node/app/types.py; ``call`` three times,
since who may call what is the governance contract's rule: an application contract's
method (``screen.note``, which writes), ``governance.propose`` and ``governance.vote``."""

NOT_ADMIN = f"reverted: key is not an admin of org {SUBJECT}"
"""The governance contract's answer to a propose or vote from a key that is not an admin."""

OK = "ok"
FORBIDDEN, UNAUTHORISED = "forbidden", "unauthorised"
REFUSALS = {"forbidden", "unauthorised", "weak_key", "bad_signature"}
"""Admission codes (execution.py ``Executor.check``). Anything else is an admitted
transaction's receipt: ``ok`` or ``reverted: <reason>``."""

# Signers (tests/node/perm_chain.py makes the keys; all but the last three are bank-b's):
#   admin          bank-b's admin key          node          bank-b's node key
#   client_<role>  a client with that one role client_all    a client with all four roles
#   admin_client   a second admin key of bank-b, also a client of bank-b with role score
#   stranger       a key the chain never saw
#   impostor       claims client_all's key, signed with the stranger's (bad signature)
#   weak           the small-order identity key with the forged signature that verifies
X = UNAUTHORISED
F = FORBIDDEN
EXPECTED: dict[str, dict[str, tuple[str, str, str, str, str, str]]] = {
    # Everyone as governance made them.
    "active": {
        #                 anchor  score  deploy  call  call:propose  call:vote
        "admin":         (F,      F,     F,      OK,   OK,           OK),
        "node":          (X,      X,     X,      X,    X,            X),
        "client_submit": (OK,     F,     OK,     OK,   NOT_ADMIN,    NOT_ADMIN),
        "client_score":  (F,      OK,    F,      F,    F,            F),
        "client_audit":  (F,      F,     F,      F,    F,            F),
        "client_admin":  (F,      F,     F,      F,    F,            F),
        "client_all":    (OK,     OK,    OK,     OK,   NOT_ADMIN,    NOT_ADMIN),
        "admin_client":  (F,      OK,    F,      OK,   OK,           OK),
        "stranger":      (X,      X,     X,      X,    X,            X),
        "impostor":      ("bad_signature",) * 6,
        "weak":          ("weak_key",) * 6,
    },
    # Governance revoked every client key of bank-b (admin_client's client entry too).
    "revoked": {
        "admin":         (F,      F,     F,      OK,   OK,           OK),
        "node":          (X,      X,     X,      X,    X,            X),
        "client_submit": (X,      X,     X,      X,    X,            X),
        "client_score":  (X,      X,     X,      X,    X,            X),
        "client_audit":  (X,      X,     X,      X,    X,            X),
        "client_admin":  (X,      X,     X,      X,    X,            X),
        "client_all":    (X,      X,     X,      X,    X,            X),
        "admin_client":  (F,      F,     F,      OK,   OK,           OK),
    },
    # Governance removed bank-b: its admins are nobody's, its client entries stay stored
    # but count for nothing.
    "org_removed": {
        "admin":         (X,      X,     X,      X,    X,            X),
        "node":          (X,      X,     X,      X,    X,            X),
        "client_submit": (X,      X,     X,      X,    X,            X),
        "client_score":  (X,      X,     X,      X,    X,            X),
        "client_audit":  (X,      X,     X,      X,    X,            X),
        "client_admin":  (X,      X,     X,      X,    X,            X),
        "client_all":    (X,      X,     X,      X,    X,            X),
        "admin_client":  (X,      X,     X,      X,    X,            X),
    },
}  # fmt: skip

CASES = [
    (state, role, kind, row[i])
    for state, rows in EXPECTED.items()
    for role, row in rows.items()
    for i, kind in enumerate(KINDS)
]

KNOWN_BUGS: dict[tuple[str, str, str], str] = {}
"""Cells where the code disagrees with the documented rule, as strict xfails with the reason
(a fixed bug then fails its xfail): none now."""


def _params() -> list:  # type: ignore[type-arg]
    out = []
    for state, role, kind, expected in CASES:
        bug = KNOWN_BUGS.get((state, role, kind))
        marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
        out.append(pytest.param(state, role, kind, expected, marks=marks,
                                id=f"{state}-{role}-{kind}"))  # fmt: skip
    return out


@dataclass
class Chain:
    """One membership state: a ledger that builds and another that validates its blocks."""

    primary: Ledger
    replica: Ledger
    open_proposal: int

    @property
    def height(self) -> int:
        return self.primary.height + 1


def _fork(storage: MemoryStorage) -> Ledger:
    return Ledger(copy.deepcopy(storage), GENESIS, clock_ms=lambda: 1_000)


@pytest.fixture(scope="module")
def chains() -> dict[str, Chain]:
    storage = MemoryStorage()
    open_proposal = setup(Ledger(storage, GENESIS, clock_ms=lambda: 1_000))
    revoked, removed = _fork(storage), _fork(storage)
    revoke_clients(revoked, open_proposal + 1)
    remove_subject(removed, open_proposal + 1)
    out = {}
    for state, ledger in (("active", _fork(storage)), ("revoked", revoked),
                          ("org_removed", removed)):  # fmt: skip
        out[state] = Chain(_fork(ledger.store), _fork(ledger.store), open_proposal)  # type: ignore[arg-type]
    return out


def signed(role: str, kind: str, open_proposal: int) -> Tx:
    """The transaction of one cell, signed (or forged) as ``role``."""
    payload = payloads(open_proposal)[kind]
    if role == "impostor":
        tx = sign(KEYS["stranger"], payload)
        return dataclasses.replace(tx, sender=KEYS["client_all"].public)
    if role == "weak":
        tx = sign(KEYS["stranger"], payload)
        forged = dataclasses.replace(tx, sender=WEAK_KEY, signature=WEAK_KEY + bytes(32))
        assert forged.verify_signature(GENESIS_HASH)  # the forgery is a valid Ed25519 signature
        return forged
    return sign(KEYS[role], payload)


def _admission(ledger: Ledger, tx: Tx) -> str | None:
    try:
        ledger.admit(tx)
    except TxRejected as exc:
        return exc.code
    return None


def _carrying(ledger: Ledger, height: int, txs: list[Tx]) -> bytes:
    """What a Byzantine primary sends: an honest build's header, then its own tx list."""
    honest = Block.decode(ledger.build(height, 0, proposer(ledger, height), []).block)
    header = dataclasses.replace(honest.header, tx_count=len(txs), tx_root=tx_root(txs))
    assert isinstance(header, Header)
    return Block(header, tuple(txs)).encode()


@pytest.mark.parametrize(
    ("state", "role", "kind", "expected"),
    _params(),
)
def test_a_signer_may_send_a_kind_only_as_the_table_says(
    chains: dict[str, Chain], state: str, role: str, kind: str, expected: str
) -> None:
    chain = chains[state]
    tx = signed(role, kind, chain.open_proposal)
    height = chain.height
    before = chain.primary.store.state_root()

    refused = _admission(chain.primary, tx)
    proposal = chain.primary.build(height, 0, proposer(chain.primary, height), [tx])
    block = Block.decode(proposal.block)

    if expected in REFUSALS:
        assert refused == expected
        assert [(t.id, e.code) for t, e in proposal.rejected] == [(tx.id, expected)]
        assert block.txs == ()
        forced = _carrying(chain.primary, height, [tx])
        problem = chain.replica.validate(height, forced)
        assert problem is not None and problem.startswith("inadmissible transaction"), problem
        with pytest.raises(TxRejected) as info:
            chain.replica.executor.execute([tx], height, block.header.timestamp_ms)
        assert info.value.code == expected
        return

    assert refused is None
    assert proposal.rejected == [] and [t.id for t in block.txs] == [tx.id]
    assert chain.replica.validate(height, proposal.block) is None
    executed = chain.replica.executor.execute(block.txs, height, block.header.timestamp_ms)
    [receipt] = executed.receipts
    if expected == OK:
        assert (receipt.status, receipt.error) == ("ok", "")
        assert executed.state_root != before, "an admitted transaction changed nothing"
    else:
        reason = expected.removeprefix("reverted: ")
        assert receipt.status == "reverted" and reason in receipt.error, receipt.error
        assert executed.state_root == before, "a reverted transaction changed the state"
    assert block.header.state_root == executed.state_root


@pytest.mark.parametrize("state", ["revoked", "org_removed"])
def test_a_transaction_admitted_before_a_membership_change_meets_the_new_rules_in_the_block(
    chains: dict[str, Chain], state: str
) -> None:
    """Roles can change between admission and the block: everything bank-b's keys had
    admitted while active is built, once governance changed them, as the new state's row
    says (docs/architecture.md, "Not yet true": rules are checked again at the block)."""
    active = chains["active"]
    pending = []
    for role, row in EXPECTED[state].items():
        for kind, then in zip(KINDS, EXPECTED["active"][role], strict=True):
            if then in REFUSALS or ("active", role, kind) in KNOWN_BUGS:
                continue
            tx = signed(role, kind, active.open_proposal)
            assert _admission(active.primary, tx) is None, (role, kind)
            pending.append((tx, row[KINDS.index(kind)], (role, kind)))
    assert len(pending) >= 10
    later = chains[state].primary
    height = later.height + 1
    proposal = later.build(height, 0, proposer(later, height), [t for t, _, _ in pending])
    refused = {t.id: e.code for t, e in proposal.rejected}
    taken = {t.id for t in Block.decode(proposal.block).txs}
    for tx, now, cell in pending:
        if now in REFUSALS:
            assert refused.get(tx.id) == now and tx.id not in taken, cell
        else:
            assert tx.id in taken and tx.id not in refused, cell


def test_the_matrix_covers_every_kind_role_and_state() -> None:
    """A new transaction kind, client role or signer fails here until the table has it."""
    assert {k.split(":")[0] for k in KINDS} == set(PAYLOAD_TYPES) == set(HANDLERS)
    assert set(ROLE_FOR_KIND) == set(HANDLERS)
    single = {roles[0] for name, roles in CLIENT_ROLES.items() if len(roles) == 1}
    assert single == set(ROLES) and CLIENT_ROLES["client_all"] == ROLES
    assert set(EXPECTED["active"]) == {*KEYS, "impostor", "weak"}
    bank_b = set(KEYS) - {"stranger"}
    assert all(set(rows) == bank_b for state, rows in EXPECTED.items() if state != "active")
    assert all(len(row) == len(KINDS) for rows in EXPECTED.values() for row in rows.values())
    assert len(CASES) == 162
