"""Offline proof bundles: one file that proves a fact to anyone holding the genesis file.

A bundle carries everything a :class:`~node.app.light.LightClient` needs, with
no node to ask: the validator-set changes from genesis up to the heights it
uses, the certified headers of those heights, and the proven items (a
transaction with its receipt, state reads, contract queries re-run over proven
reads, model artifacts checked by hash). It ends with the facts they prove in
words. :func:`verify` checks every byte and derives the facts again from the
checked items (node/app/bundle_check.py); the bundle's own fact lines must
equal them, so the words a person reads were proven too, not merely carried.

The encoding is canonical msgpack (``consensus/codec.py``) of lists only, with
every list in its one allowed order (changes and blocks by height, reads by
key), so each bundle has exactly one encoding: change any byte and either a
check fails or the decoding does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consensus import codec, merkle, smt
from consensus.certificate import Certificate
from consensus.record import FieldError
from node.app.light import StateRead, ValidatorChange, VerificationError
from node.app.types import Header, Receipt, Tx
from vm.errors import VMError
from vm.gas import MAX_STORAGE_VALUE_BYTES, MAX_VALUE_BYTES
from vm.values import decode_value, encode_value

FORMAT = "vigil-proof/1"
MAX_BUNDLE_BYTES = 32 * 1024 * 1024
"""Largest bundle read: model artifacts (at most 16 MiB, ml/limits.py) plus proofs."""
MAX_BUNDLE_ITEMS = 64
"""Proven items in one bundle (an anchor and its lineage is the largest use)."""
SUBJECTS = ("tx", "anchor", "model", "state")


def bundle_error(reason: str) -> VerificationError:
    return VerificationError("bundle", reason)


@dataclass(frozen=True)
class Certified:
    header: Header
    certificate: Certificate


@dataclass(frozen=True)
class TxItem:
    height: int
    tx: Tx
    tx_proof: merkle.Proof
    receipt: Receipt
    receipt_proof: merkle.Proof


@dataclass(frozen=True)
class StateItem:
    height: int
    read: StateRead


@dataclass(frozen=True)
class QueryItem:
    height: int
    contract: str
    method: str
    args: list[Any]
    reads: tuple[StateRead, ...]


Item = TxItem | StateItem | QueryItem


@dataclass(frozen=True)
class Bundle:
    chain_id: str
    genesis_hash: bytes
    subject: tuple[Any, ...]
    """What the bundle proves: ("tx", hash), ("anchor", digest), ("model", name, version or 0
    for the active one) or ("state", contract, key)."""
    changes: tuple[ValidatorChange, ...]
    blocks: tuple[Certified, ...]
    items: tuple[Item, ...]
    artifacts: tuple[bytes, ...]
    facts: tuple[str, ...]

    def encode(self) -> bytes:
        return codec.encode(
            [
                FORMAT,
                self.chain_id,
                self.genesis_hash,
                list(self.subject),
                [_change_wire(c) for c in self.changes],
                [[b.header.encode(), b.certificate.encode()] for b in self.blocks],
                [_item_wire(i) for i in self.items],
                list(self.artifacts),
                list(self.facts),
            ]
        )


def _read_wire(r: StateRead) -> list:
    return [r.key, r.value, r.proof.to_wire()]


def _change_wire(c: ValidatorChange) -> list:
    return [c.header.encode(), c.certificate.encode(), list(c.validators), c.proof.to_wire()]


def _item_wire(item: Item) -> list:
    if isinstance(item, TxItem):
        return ["tx", item.height, item.tx.encode(), item.tx_proof.to_wire(),
                item.receipt.encode(), item.receipt_proof.to_wire()]  # fmt: skip
    if isinstance(item, StateItem):
        return ["state", item.height, _read_wire(item.read)]
    args = encode_value(item.args, MAX_VALUE_BYTES)
    return ["query", item.height, item.contract, item.method, args,
            [_read_wire(r) for r in item.reads]]  # fmt: skip


# ---------------------------------------------------------------- decoding (untrusted)


def _list(value: Any, n: int | None, what: str) -> list:
    if type(value) is not list or (n is not None and len(value) != n):
        raise bundle_error(f"{what} must be a list" + (f" of {n}" if n is not None else ""))
    return value


def _typed(value: Any, kind: type, what: str) -> Any:
    if type(value) is not kind:
        raise bundle_error(f"{what} must be {kind.__name__}")
    return value


def _read_of(value: Any) -> StateRead:
    key, val, proof = _list(value, 3, "a state read")
    if val is not None:
        _typed(val, bytes, "a read value")
    return StateRead(_typed(key, bytes, "a read key"), val, smt.Proof.from_wire(proof))


def _item_of(value: Any) -> Item:
    fields = _list(value, None, "an item")
    kind = fields[0] if fields else None
    if kind == "tx":
        _, height, tx, tproof, receipt, rproof = _list(fields, 6, "a tx item")
        return TxItem(_typed(height, int, "a height"), Tx.decode(_typed(tx, bytes, "a tx")),
                      merkle.Proof.from_wire(tproof),
                      Receipt.decode(_typed(receipt, bytes, "a receipt")),
                      merkle.Proof.from_wire(rproof))  # fmt: skip
    if kind == "state":
        _, height, read = _list(fields, 3, "a state item")
        return StateItem(_typed(height, int, "a height"), _read_of(read))
    if kind == "query":
        _, height, contract, method, args, reads = _list(fields, 6, "a query item")
        parsed = decode_value(_typed(args, bytes, "query arguments"), MAX_VALUE_BYTES)
        if type(parsed) is not list:
            raise bundle_error("query arguments must be a list")
        return QueryItem(_typed(height, int, "a height"), _typed(contract, str, "a contract"),
                         _typed(method, str, "a method"), parsed,
                         tuple(_read_of(r) for r in _list(reads, None, "query reads")))  # fmt: skip
    raise bundle_error(f"unknown item kind {kind!r}")


def decode(data: bytes) -> Bundle:
    """Parse a bundle (untrusted bytes: anything malformed is a VerificationError)."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise bundle_error(f"{len(data)} bytes, over MAX_BUNDLE_BYTES ({MAX_BUNDLE_BYTES})")
    try:
        top = codec.decode(data, max_size=MAX_BUNDLE_BYTES)
        fmt, chain, ghash, subject, changes, blocks, items, artifacts, facts = _list(
            top, 9, "a bundle"
        )
        if fmt != FORMAT:
            raise bundle_error(f"format {fmt!r} is not {FORMAT!r}")
        if len(_list(items, None, "items")) > MAX_BUNDLE_ITEMS:
            raise bundle_error(f"more than {MAX_BUNDLE_ITEMS} items")
        return Bundle(
            _typed(chain, str, "the chain id"),
            _typed(ghash, bytes, "the genesis hash"),
            tuple(_list(subject, None, "the subject")),
            tuple(
                ValidatorChange.parse(*_change_fields(c))
                for c in _list(changes, None, "changes")
            ),
            tuple(Certified(Header.decode(_typed(h, bytes, "a header")),
                            Certificate.decode(_typed(c, bytes, "a certificate")))
                  for h, c in (_list(b, 2, "a block") for b in _list(blocks, None, "blocks"))),
            tuple(_item_of(i) for i in items),
            tuple(_typed(a, bytes, "an artifact") for a in _list(artifacts, None, "artifacts")),
            tuple(_typed(f, str, "a fact") for f in _list(facts, None, "facts")),
        )  # fmt: skip
    except (codec.CodecError, FieldError, ValueError, TypeError, VMError) as exc:
        raise bundle_error(f"malformed: {exc}") from None


def _change_fields(value: Any) -> tuple[bytes, bytes, list[bytes], bytes]:
    header, cert, validators, proof = _list(value, 4, "a validator-set change")
    keys = [_typed(v, bytes, "a validator key") for v in _list(validators, None, "validators")]
    return (_typed(header, bytes, "a header"), _typed(cert, bytes, "a certificate"), keys,
            codec.encode(proof))  # fmt: skip


def storage_value(value: bytes | None) -> Any:
    """A contract storage value, decoded (None when absent)."""
    return None if value is None else decode_value(value, MAX_STORAGE_VALUE_BYTES)
