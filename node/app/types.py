"""Ledger data types: transactions, their payloads, headers, blocks and receipts.

Each type is a :class:`consensus.record.Record`, so it has exactly one
encoding (an msgpack array in the field order below), a hash, and validation
that names the failing field. The layouts follow DESIGN.md:

    Tx     = [chain_id, sender, nonce, valid_until_height, kind, payload, signature]
    Header = [chain_id, height, prev_hash, timestamp_ms, view, proposer,
              tx_root, receipts_root, state_root, validators_hash]
    Block  = [header, txs]

A transaction's id is the SHA-256 of its *unsigned body* (the first six
fields), so the id does not depend on the signature bytes. The signature is
over that body under the ``vigil/tx/v1`` domain and the chain id.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from consensus import codec, merkle
from consensus.certificate import Certificate, CertificateError, Vote
from consensus.crypto import (
    DOMAIN_TX,
    HASH_BYTES,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    PrivateKey,
    verify,
)
from consensus.messages import MAX_BLOCK_BYTES_ON_WIRE
from consensus.record import (
    INT_FIELD_MAX,
    Bytes,
    FieldError,
    Float,
    Int,
    Nested,
    OneOf,
    Pairs,
    Record,
    Seq,
    Str,
    Tagged,
    Value,
    freeze_value,
    wire,
)
from vm.gas import MAX_MODULE_BYTES

__all__ = [
    "AnchorPayload",
    "Block",
    "CallPayload",
    "Certificate",
    "CertificateError",
    "DeployPayload",
    "Event",
    "Header",
    "Receipt",
    "ScorePayload",
    "Tx",
    "Vote",
]

NONCE_BYTES = 16
MAX_TX_BYTES = 320 * 1024
"""Largest encoded transaction accepted anywhere (API, mempool, block); a deploy of the largest
module the VM accepts fits."""
MAX_BLOCK_TXS = 10_000
"""Hard ceiling on transactions per block; the `max_block_txs` parameter may only lower it."""
MAX_BLOCK_BYTES = 8 * 1024 * 1024
"""Hard ceiling on an encoded block; the `max_block_bytes` parameter may only lower it."""
assert MAX_BLOCK_BYTES <= MAX_BLOCK_BYTES_ON_WIRE, "a block must fit a PRE-PREPARE or BLOCK message"
assert MAX_TX_BYTES < MAX_BLOCK_BYTES
MAX_ANCHOR_PARENTS = 64
MAX_ANCHOR_METADATA = 32
MAX_METADATA_VALUE_BYTES = 1024
MAX_CONTRACT_CODE_BYTES = MAX_MODULE_BYTES
MAX_CALL_ARGS_BYTES = 64 * 1024
MAX_FEATURES = 1024
MAX_EVENTS_PER_RECEIPT = 64
MAX_EVENT_DATA_BYTES = 8 * 1024
MAX_RESULT_BYTES = 64 * 1024 + 64
"""A receipt's result: a contract's return value (at most the VM's MAX_VALUE_BYTES) encoded."""
MAX_ERROR_BYTES = 1024

CHAIN_ID_PATTERN = r"[a-z0-9][a-z0-9._-]{0,63}"
NAME_PATTERN = r"[a-z][a-z0-9_]{0,63}"
META_KEY_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
MEDIA_TYPE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}"

ChainId = Str(64, CHAIN_ID_PATTERN, "a chain id (lowercase letters, digits, '.', '_', '-')")
Name = Str(64, NAME_PATTERN, "a name (lowercase letter, then letters, digits or '_')")
Hash32 = Bytes(HASH_BYTES)
PublicKey = Bytes(PUBLIC_KEY_BYTES)


@dataclass(frozen=True)
class AnchorPayload(Record):
    """Data provenance: a file's digest, size and type, the digests it derives from, metadata."""

    NAME = "anchor"
    digest: bytes = wire(Hash32)
    size: int = wire(Int(0))
    media_type: str = wire(Str(127, MEDIA_TYPE_PATTERN, "a media type like text/csv"))
    parents: tuple[bytes, ...] = wire(Seq(Hash32, MAX_ANCHOR_PARENTS, sorted_unique=True))
    metadata: tuple[tuple[str, str], ...] = wire(
        Pairs(
            Str(64, META_KEY_PATTERN, "a metadata key"),
            Str(MAX_METADATA_VALUE_BYTES),
            MAX_ANCHOR_METADATA,
        )
    )

    def check_invariants(self, path: str) -> None:
        if self.digest in self.parents:
            raise FieldError(f"{path}.parents", "a digest cannot be its own parent")


@dataclass(frozen=True)
class CallPayload(Record):
    NAME = "call"
    contract: str = wire(Name)
    method: str = wire(Name)
    args: bytes = wire(Bytes(max_len=MAX_CALL_ARGS_BYTES))
    """The argument list in the VM's value encoding (vm.values.encode_value), so types survive."""


@dataclass(frozen=True)
class DeployPayload(Record):
    NAME = "deploy"
    name: str = wire(Name)
    code: bytes = wire(Bytes(max_len=MAX_CONTRACT_CODE_BYTES))


MAX_SCORE_REFERENCE_BYTES = 128


@dataclass(frozen=True)
class ScorePayload(Record):
    """A row of features to score under a model family's active version.

    Every node decodes every score transaction once, so the checks run without the generic
    per-field walk (which built a path string for each feature); anything off the common path
    takes the generic checks, for their exact error (a differential test holds both)."""

    NAME = "score"
    model: str = wire(Name)
    features: tuple[float, ...] = wire(Seq(Float(), MAX_FEATURES))
    reference: str = wire(Str(MAX_SCORE_REFERENCE_BYTES))

    def _validate(self, path: str) -> None:
        model, features, reference = self.model, self.features, self.reference
        held = type(features)
        if (
            type(model) is str
            and Name.pattern.fullmatch(model) is not None  # type: ignore[union-attr]
            and (held is list or held is tuple)
            and len(features) <= MAX_FEATURES
            and _finite_floats(features)
            and type(reference) is str
            and len(reference.encode()) <= MAX_SCORE_REFERENCE_BYTES
        ):
            if held is list:
                object.__setattr__(self, "features", tuple(features))
            return
        super()._validate(path)


def _finite_floats(values: list | tuple) -> bool:
    """Whether every value is a finite float (a false "no" only sends the values to the
    generic checks: a sum of finite floats may overflow)."""
    return {*map(type, values)} <= _FLOAT_ONLY and math.isfinite(sum(values))


_FLOAT_ONLY = {float}


PAYLOAD_TYPES: dict[str, type[Record]] = {
    "anchor": AnchorPayload,
    "call": CallPayload,
    "deploy": DeployPayload,
    "score": ScorePayload,
}


SIGNATURE_HEADER = b"\xc4" + bytes([SIGNATURE_BYTES])
"""msgpack's header of a 64-byte bin (a transaction's last field)."""
SIGNED_TAIL = len(SIGNATURE_HEADER) + SIGNATURE_BYTES


@dataclass(frozen=True)
class Tx(Record):
    NAME = "tx"
    MAX_BYTES = MAX_TX_BYTES
    chain_id: str = wire(ChainId)
    sender: bytes = wire(PublicKey)
    nonce: bytes = wire(Bytes(NONCE_BYTES))
    valid_until_height: int = wire(Int(1))
    kind: str = wire(OneOf(*PAYLOAD_TYPES))
    payload: Record = wire(Tagged("kind", PAYLOAD_TYPES))
    signature: bytes = wire(Bytes(SIGNATURE_BYTES))

    @classmethod
    def create(
        cls,
        key: PrivateKey,
        chain_id: str,
        genesis_hash: bytes,
        payload: Record,
        valid_until_height: int,
        nonce: bytes | None = None,
    ) -> Tx:
        """Build and sign a transaction; the kind follows from the payload's type.

        The signature is bound to ``genesis_hash``, so it is refused by any other chain,
        even one with the same ``chain_id``.
        """
        kind = payload.NAME
        if PAYLOAD_TYPES.get(kind) is not type(payload):
            raise FieldError("tx.payload", f"{type(payload).__name__} is not a transaction payload")
        nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
        body = [chain_id, key.public, nonce, valid_until_height, kind, payload.to_wire()]
        signature = key.sign(DOMAIN_TX, genesis_hash, codec.encode(body, allow_float=True))
        return cls(chain_id, key.public, nonce, valid_until_height, kind, payload, signature)

    @classmethod
    def decode(cls, data: bytes, *, max_size: int | None = None) -> Tx:
        """Decode canonical bytes; the object keeps them as its encoding, and its signed body
        is those bytes less the signature (no re-encoding: decoding checked they are canonical,
        and the seven fields' array starts with a one-byte header)."""
        data = bytes(data)
        tx = super().decode(data, max_size=max_size)
        assert data[0] == 0x97 and data[-SIGNED_TAIL:-SIGNATURE_BYTES] == SIGNATURE_HEADER
        tx.__dict__["_encoded"] = data
        tx.__dict__["_body"] = codec.array_header(6) + data[1:-SIGNED_TAIL]
        return tx

    def _validate(self, path: str) -> None:
        """The generic checks without their per-field walk, for the common case (every node
        decodes every transaction, from a client or a peer, once); anything off it takes the
        generic checks for their exact error (a differential test holds both)."""
        kind, payload = self.kind, self.payload
        payload_type = PAYLOAD_TYPES.get(kind) if type(kind) is str else None
        if (
            payload_type is not None
            and type(self.chain_id) is str
            and ChainId.pattern.fullmatch(self.chain_id) is not None  # type: ignore[union-attr]
            and type(self.sender) is bytes
            and len(self.sender) == PUBLIC_KEY_BYTES
            and type(self.nonce) is bytes
            and len(self.nonce) == NONCE_BYTES
            and type(self.valid_until_height) is int
            and 1 <= self.valid_until_height <= INT_FIELD_MAX
            and type(self.signature) is bytes
            and len(self.signature) == SIGNATURE_BYTES
        ):
            if type(payload) is payload_type:
                return
            if type(payload) is list:
                object.__setattr__(
                    self, "payload", payload_type.from_wire(payload, f"{path}.payload")
                )
                return
        super()._validate(path)

    def body_bytes(self) -> bytes:
        """The signed part: every field but the signature."""
        return self._body

    @cached_property
    def _body(self) -> bytes:
        return codec.encode(self.to_wire()[:6], allow_float=True)

    @cached_property
    def _encoded(self) -> bytes:
        return Record.encode(self)

    def encode(self) -> bytes:
        """The canonical encoding, computed once per object (a tx is immutable)."""
        return self._encoded

    @cached_property
    def id(self) -> bytes:
        return hashlib.sha256(self._body).digest()

    def hash(self) -> bytes:
        """The transaction id: SHA-256 of the unsigned body."""
        return self.id

    def verify_signature(self, genesis_hash: bytes) -> bool:
        return verify(self.sender, DOMAIN_TX, genesis_hash, self.body_bytes(), self.signature)


@dataclass(frozen=True)
class Header(Record):
    NAME = "header"
    chain_id: str = wire(ChainId)
    height: int = wire(Int(1))
    prev_hash: bytes = wire(Hash32)
    timestamp_ms: int = wire(Int(0))
    view: int = wire(Int(0))
    proposer: bytes = wire(PublicKey)
    tx_count: int = wire(Int(0))
    """How many transactions (and receipts) the block holds: a Merkle proof's tree size is
    checked against it, since an RFC 9162 audit path alone does not fix the size."""
    tx_root: bytes = wire(Hash32)
    receipts_root: bytes = wire(Hash32)
    state_root: bytes = wire(Hash32)
    validators_hash: bytes = wire(Hash32)


def tx_root(txs: tuple[Tx, ...] | list[Tx]) -> bytes:
    """Merkle root over the full encodings of ``txs`` (so a proof carries the signed tx)."""
    return merkle.root([tx.encode() for tx in txs])


@dataclass(frozen=True)
class Block(Record):
    """A header and its transactions; the block hash is the header hash."""

    NAME = "block"
    MAX_BYTES = MAX_BLOCK_BYTES
    header: Header = wire(Nested(Header))
    txs: tuple[Tx, ...] = wire(Seq(Nested(Tx), MAX_BLOCK_TXS))

    def check_invariants(self, path: str) -> None:
        ids = set()
        for i, tx in enumerate(self.txs):
            if tx.chain_id != self.header.chain_id:
                raise FieldError(f"{path}.txs[{i}].chain_id", "differs from the header's chain id")
            if tx.id in ids:
                raise FieldError(f"{path}.txs[{i}]", "transaction appears twice in the block")
            ids.add(tx.id)
        if self.header.tx_count != len(self.txs):
            raise FieldError(f"{path}.header.tx_count", "does not match the block's transactions")
        if tx_root(self.txs) != self.header.tx_root:
            raise FieldError(f"{path}.header.tx_root", "does not match the block's transactions")

    def hash(self) -> bytes:
        return self.header.hash()

    def encode(self) -> bytes:
        """The canonical encoding, joined from the header's and each transaction's own
        (cached) encodings: an array's encoding is its header then its items' encodings, so
        this is byte for byte ``Record.encode`` without walking every transaction again."""
        parts = [codec.array_header(2), self.header.encode(), codec.array_header(len(self.txs))]
        parts.extend(tx.encode() for tx in self.txs)
        return b"".join(parts)


MAX_EVENT_NAME_BYTES = 64
_EVENT_HEADER = codec.array_header(2)
_RECEIPT_HEADER = codec.array_header(6)
_RECEIPT_EVENT_DATA_DEPTH = 3
"""How deep an event's data sits in a receipt: receipt -> events -> event -> data."""
_HASH_HEADER = codec.pack_canonical(bytes(HASH_BYTES))[:-HASH_BYTES]
_PACKED_NO_ERROR = codec.pack_canonical("")


@dataclass(frozen=True)
class Event(Record):
    """One thing a transaction's execution announced (its name and data).

    The executor makes every event of every receipt, so the checks run once and keep the
    encoding they measure the data with: the generic checks encoded the data to measure it,
    and ``encode`` walked and packed it again (with the receipt's, a sixth of a score's
    execution, issue 15). Anything off the common path takes the generic checks, which give
    the answer and the error they always gave (a differential test holds the two together).
    """

    NAME = "event"
    name: str = wire(Str(MAX_EVENT_NAME_BYTES))
    data: Any = wire(Value(MAX_EVENT_DATA_BYTES))

    def _validate(self, path: str) -> None:
        name, data = self.name, self.data
        try:
            raw = codec.encode(data, depth=_RECEIPT_EVENT_DATA_DEPTH)
        except codec.CodecError:
            raw = None
        if (
            raw is None
            or len(raw) > MAX_EVENT_DATA_BYTES
            or type(name) is not str
            or len(name.encode()) > MAX_EVENT_NAME_BYTES
        ):
            super()._validate(path)  # raises, or takes data only a shallower message holds
            return
        frozen = freeze_value(data)
        if frozen is not data:
            object.__setattr__(self, "data", frozen)
        self.__dict__["_record_bytes"] = _EVENT_HEADER + codec.pack_canonical(name) + raw


RECEIPT_STATUSES = ("ok", "reverted", "invalid")
_PACKED_STATUS = {status: codec.pack_canonical(status) for status in RECEIPT_STATUSES}


@dataclass(frozen=True)
class Receipt(Record):
    """What executing one transaction did: status, gas, result, events, error message."""

    NAME = "receipt"
    tx_hash: bytes = wire(Hash32)
    status: str = wire(OneOf(*RECEIPT_STATUSES))
    gas_used: int = wire(Int(0))
    result: Any = wire(Value(MAX_RESULT_BYTES))
    events: tuple[Event, ...] = wire(Seq(Nested(Event), MAX_EVENTS_PER_RECEIPT))
    error: str = wire(Str(MAX_ERROR_BYTES))

    def _validate(self, path: str) -> None:
        """The generic checks, made once for the executor's receipts, keeping the encoding
        they measure the result with and joining the events' own (see ``Event``); anything
        off the common path (a decoded receipt, whose events are lists) takes the generic
        checks and their errors."""
        events, status, error = self.events, self.status, self.error
        if not (
            type(self.tx_hash) is bytes
            and len(self.tx_hash) == HASH_BYTES
            and type(status) is str
            and status in RECEIPT_STATUSES
            and type(self.gas_used) is int
            and 0 <= self.gas_used <= INT_FIELD_MAX
            and type(error) is str
            and len(error.encode()) <= MAX_ERROR_BYTES
            and (status == "ok") != bool(error)
            and type(events) is tuple
            and len(events) <= MAX_EVENTS_PER_RECEIPT
            and all(type(e) is Event and "_record_bytes" in e.__dict__ for e in events)
        ):
            super()._validate(path)
            return
        try:
            raw = codec.encode(self.result, depth=1)
        except codec.CodecError:
            raw = None
        if raw is None or len(raw) > MAX_RESULT_BYTES:
            super()._validate(path)
            return
        frozen = freeze_value(self.result)
        if frozen is not self.result:
            object.__setattr__(self, "result", frozen)
        parts = [
            _RECEIPT_HEADER,
            _HASH_HEADER,
            self.tx_hash,
            _PACKED_STATUS[status],
            codec.pack_canonical(self.gas_used),
            raw,
            codec.array_header(len(events)),
        ]
        parts.extend(e.__dict__["_record_bytes"] for e in events)
        parts.append(codec.pack_canonical(error) if error else _PACKED_NO_ERROR)
        self.__dict__["_record_bytes"] = b"".join(parts)

    def check_invariants(self, path: str) -> None:
        if self.status == "ok" and self.error:
            raise FieldError(f"{path}.error", "a successful receipt carries no error")
        if self.status != "ok" and not self.error:
            raise FieldError(f"{path}.error", f"a {self.status} receipt must say why")


def receipts_root(receipts: tuple[Receipt, ...] | list[Receipt]) -> bytes:
    return merkle.root([r.encode() for r in receipts])
