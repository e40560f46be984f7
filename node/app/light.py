"""The light client: check what a node says from the genesis file alone. No I/O of its own.

Trust starts at the genesis file: its members' node keys are the validators of
height 1. From there every fact is checked, never believed:

1. **Validator-set changes** are followed through the blocks that make them. A
   block at height c whose execution changed the membership is checked like
   any header (below, with the set of height c), and then the new set, the
   value of the state key ``validators`` after block c, is checked with a
   state proof against block c's ``state_root``. That set signs from height
   c + 1 on. There is no trusting period: membership changes are themselves
   certified by the members of their time.
2. **A header** is accepted when its chain is the genesis file's, its
   ``validators_hash`` is the hash of the set this client followed to its
   height (a mismatch means the node left a change out), and its certificate
   holds a quorum of distinct members of that set, each signature valid under
   the commit domain and this chain's genesis hash.
3. **Facts under a header**: a transaction (Merkle proof to ``tx_root``), its
   receipt (to ``receipts_root``), and any state key's value or absence (a
   sparse Merkle proof to ``state_root``).
4. **A contract query** (a read-only method run): the node sends every state
   key the run read, each with its proof; the client checks them, then runs
   the same method itself in the VM over those values only, at the header's
   height and time. A read the node gave no proof for, or a proof for a key the
   run never read, fails; the answer is the client's own run, never the node's.

Every failure raises :class:`VerificationError` naming the step that failed
and why, so a person can tell a lying node from a broken one.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from consensus import codec, merkle, smt
from consensus.certificate import Certificate, CertificateError
from consensus.record import FieldError
from node.app import contracts, governance
from node.app.genesis import Genesis
from node.app.ledger import validators_hash
from node.app.state import VALIDATORS, Overlay
from node.app.types import Block, Header, Receipt, Tx, receipts_root
from vm.errors import HostUnavailable, VMError

MAX_FOLLOWED_CHANGES = 100_000
"""Validator-set changes one client keeps (a consortium changes membership rarely)."""


MAX_PROVEN_READS = 256
"""State keys one proven query may read: every read travels with a proof (about 0.8 KB), so
this bounds a proven answer near 0.4 MB of hex."""


class VerificationError(Exception):
    """What a node said does not check out. ``step`` names the check; the message says why."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


@dataclass(frozen=True)
class StateRead:
    """One state key's value (None: absent) with its proof under some header's state root."""

    key: bytes
    value: bytes | None
    proof: smt.Proof


class UnprovenRead(HostUnavailable):
    """A query run read a key with no proof (a HostUnavailable, so the VM never turns it into
    an ordinary failed call: the whole run is abandoned)."""


class TooManyReads(HostUnavailable):
    """A query run read more than MAX_PROVEN_READS keys: too many to prove in one answer."""


class ReadRecorder:
    """A state reader that remembers the first value of every key read (the node's side of a
    proven query: these are the keys it proves)."""

    def __init__(self, read: Callable[[bytes], bytes | None]) -> None:
        self._read = read
        self.reads: dict[bytes, bytes | None] = {}

    def __call__(self, key: bytes) -> bytes | None:
        if key not in self.reads:
            if len(self.reads) >= MAX_PROVEN_READS:
                raise TooManyReads(f"the query reads more than {MAX_PROVEN_READS} state keys")
            self.reads[key] = self._read(key)
        return self.reads[key]


@dataclass(frozen=True)
class QueryRun:
    """What a contract query returned, with the height and time it ran at."""

    value: Any
    events: list[tuple[str, bytes]]
    gas_used: int


def run_query(
    read: Callable[[bytes], bytes | None],
    contract: str,
    method: str,
    args: list[Any],
    height: int,
    time_ms: int,
    gas_cap: int | None = None,
) -> QueryRun:
    """Run a read-only method over ``read`` as the node and the client both do: the gas limit
    is the chain's ``max_tx_gas`` read from the same state. Raises VMError if the run fails.

    A node may serve queries with less gas (``gas_cap``): a run that succeeds under the cap
    uses the same gas and gives the same answer under ``max_tx_gas``, so a client re-running it
    with the chain's limit agrees; one that needs more is refused, never answered differently."""
    state = Overlay(read)
    gas = governance.param(state, "max_tx_gas")
    if gas_cap is not None:
        gas = min(gas, gas_cap)
    value, events, used = contracts.query(state, contract, method, args, height, time_ms, gas)
    return QueryRun(value, events, used)


@dataclass(frozen=True)
class ValidatorChange:
    """A block that changed the validator set, with the proof of the set it made."""

    header: Header
    certificate: Certificate
    validators: tuple[bytes, ...]
    proof: smt.Proof

    @classmethod
    def parse(
        cls, header: bytes, certificate: bytes, validators: Sequence[bytes], proof: bytes
    ) -> ValidatorChange:
        """From a node's bytes (untrusted: anything malformed is a VerificationError)."""
        try:
            return cls(
                Header.decode(header),
                Certificate.decode(certificate),
                tuple(validators),
                smt.Proof.from_wire(codec.decode(proof)),
            )
        except (codec.CodecError, FieldError, ValueError) as exc:
            raise VerificationError("validator-set change", f"malformed record: {exc}") from None


class LightClient:
    def __init__(self, genesis: Genesis) -> None:
        self.chain_id = genesis.chain_id
        self.genesis_hash = genesis.hash()
        self._starts: list[int] = [1]
        """Heights from which each followed validator set signs (ascending)."""
        self._sets: list[tuple[bytes, ...]] = [tuple(genesis.validators())]
        self.followed_to = 0
        """Changes have been followed through blocks up to this height."""

    # ------------------------------------------------------------ validator sets

    def validators_at(self, height: int) -> tuple[bytes, ...]:
        """The validator set of ``height`` as far as changes have been followed."""
        if height < 1:
            raise VerificationError("height", f"height {height} is before the first block")
        return self._sets[bisect.bisect_right(self._starts, height) - 1]

    def follow(self, change: ValidatorChange) -> None:
        """Check one validator-set change and sign it in for the heights after it."""
        height = change.header.height
        if height < self.followed_to:
            raise VerificationError(
                "validator-set change",
                f"change at height {height} comes after one at {self.followed_to} already followed",
            )
        if len(self._sets) >= MAX_FOLLOWED_CHANGES:
            raise VerificationError(
                "validator-set change", f"more than {MAX_FOLLOWED_CHANGES} changes to follow"
            )
        self.verify_header(change.header, change.certificate)
        value = codec.encode(list(change.validators))
        try:
            smt.verify(change.header.state_root, VALIDATORS, value, change.proof)
        except smt.ProofError as exc:
            raise VerificationError(
                "validator-set change",
                f"the set said to follow block {height} is not proven: {exc}",
            ) from None
        if not change.validators:
            raise VerificationError("validator-set change", f"block {height} leaves no validators")
        self._starts.append(height + 1)
        self._sets.append(change.validators)
        self.followed_to = height

    def follow_all(self, changes: Sequence[ValidatorChange]) -> None:
        for change in sorted(changes, key=lambda c: c.header.height):
            self.follow(change)

    # ------------------------------------------------------------ headers

    def verify_header(self, header: Header, certificate: Certificate) -> None:
        """Raise unless ``certificate`` proves ``header`` committed on this chain."""
        if header.chain_id != self.chain_id:
            raise VerificationError("header", f"header is for chain {header.chain_id!r}")
        if certificate.height != header.height:
            raise VerificationError(
                "certificate",
                f"certificate is for height {certificate.height}, header for {header.height}",
            )
        if certificate.block_hash != header.hash():
            raise VerificationError(
                "certificate", "certificate signs another block than this header"
            )
        validators = self.validators_at(header.height)
        if header.validators_hash != validators_hash(validators):
            raise VerificationError(
                "validator set",
                f"header {header.height} names another validator set than the one followed from "
                "genesis: a validator-set change is missing or forged",
            )
        try:
            certificate.verify(self.genesis_hash, validators)
        except CertificateError as exc:
            raise VerificationError("certificate", str(exc)) from None

    # ------------------------------------------------------------ facts under a header

    def verify_tx(
        self, header: Header, certificate: Certificate, tx: Tx, proof: merkle.Proof
    ) -> None:
        """Raise unless ``tx`` is in the certified block ``header`` at ``proof.index``."""
        self._verify_in_block(header, certificate, "tx_root", tx.encode(), proof, "transaction")

    def verify_receipt(
        self, header: Header, certificate: Certificate, receipt: Receipt, proof: merkle.Proof
    ) -> None:
        """Raise unless ``receipt`` is in block ``header``'s receipts at ``proof.index``."""
        self._verify_in_block(
            header, certificate, "receipts_root", receipt.encode(), proof, "receipt"
        )

    def _verify_in_block(
        self,
        header: Header,
        certificate: Certificate,
        root: str,
        leaf: bytes,
        proof: merkle.Proof,
        what: str,
    ) -> None:
        """Raise unless ``leaf`` is under the certified header's Merkle root named ``root``."""
        self.verify_header(header, certificate)
        if proof.size != header.tx_count:
            raise VerificationError(
                f"{what} proof",
                f"the proof is for a block of {proof.size} transactions; block {header.height} "
                f"holds {header.tx_count}",
            )
        if not merkle.verify(getattr(header, root), leaf, proof):
            raise VerificationError(
                f"{what} proof", f"the {what} is not in block {header.height}'s {root}"
            )

    def verify_state(
        self,
        header: Header,
        certificate: Certificate,
        key: bytes,
        value: bytes | None,
        proof: smt.Proof,
    ) -> None:
        """Raise unless ``key`` has ``value`` (None: is absent) after block ``header``."""
        self.verify_header(header, certificate)
        try:
            smt.verify(header.state_root, key, value, proof)
        except smt.ProofError as exc:
            raise VerificationError("state proof", str(exc)) from None

    def verify_reads(
        self, header: Header, certificate: Certificate, reads: Sequence[StateRead]
    ) -> dict[bytes, bytes | None]:
        """Check a set of state reads under one certified header; the proven key -> value."""
        self.verify_header(header, certificate)
        if len(reads) > MAX_PROVEN_READS:
            raise VerificationError(
                "query proof", f"{len(reads)} reads, more than {MAX_PROVEN_READS}"
            )
        proven: dict[bytes, bytes | None] = {}
        for read in reads:
            if read.key in proven:
                raise VerificationError("query proof", f"key {read.key.hex()} is proven twice")
            try:
                smt.verify(header.state_root, read.key, read.value, read.proof)
            except smt.ProofError as exc:
                raise VerificationError("state proof", f"key {read.key.hex()}: {exc}") from None
            proven[read.key] = read.value
        return proven

    def verify_query(
        self,
        header: Header,
        certificate: Certificate,
        contract: str,
        method: str,
        args: list[Any],
        reads: Sequence[StateRead],
    ) -> QueryRun:
        """Run ``contract.method(args)`` over the proven reads only, at the header's height.

        Returns this client's own run (a VMError from it is the query's real failure).
        """
        proven = self.verify_reads(header, certificate, reads)
        used: set[bytes] = set()

        def read(key: bytes) -> bytes | None:
            if key not in proven:
                raise UnprovenRead(key.hex())
            used.add(key)
            return proven[key]

        try:
            run = run_query(read, contract, method, args, header.height, header.timestamp_ms)
        except UnprovenRead as exc:
            raise VerificationError(
                "query proof", f"the query reads key {exc} and the node gave no proof of it"
            ) from None
        except VMError:
            if used != proven.keys():
                raise self._unused(proven.keys() - used) from None
            raise
        if used != proven.keys():
            raise self._unused(proven.keys() - used)
        return run

    @staticmethod
    def _unused(keys: set[bytes]) -> VerificationError:
        first = min(keys).hex()
        return VerificationError(
            "query proof", f"{len(keys)} proven key(s) the query never reads (first {first})"
        )

    def verify_block(
        self, block: Block, certificate: Certificate, receipts: Sequence[Receipt]
    ) -> None:
        """Raise unless ``block`` is certified and ``receipts`` are all of its receipts, in order.

        The block's transactions are bound to its header by decoding (``tx_root`` and
        ``tx_count``); here the receipts are bound to ``receipts_root``.
        """
        self.verify_header(block.header, certificate)
        if len(receipts) != len(block.txs):
            raise VerificationError(
                "receipts", f"{len(receipts)} receipts for {len(block.txs)} transactions"
            )
        for i, (tx, receipt) in enumerate(zip(block.txs, receipts, strict=True)):
            if receipt.tx_hash != tx.id:
                raise VerificationError("receipts", f"receipt {i} is not transaction {i}'s")
        if receipts_root(list(receipts)) != block.header.receipts_root:
            raise VerificationError(
                "receipts", f"the receipts are not block {block.header.height}'s receipts_root"
            )
