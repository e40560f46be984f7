"""Ledger state: a key-value overlay over the committed store, and the state root.

Execution never writes to the store directly: it writes into an
:class:`Overlay` that reads through to the committed state. A transaction
that fails is rolled back to a snapshot of the overlay; the block's overlay
becomes one write batch at commit. The state root chains a digest of each
block's sorted write set onto the previous root (DESIGN.md):

    state_root(h) = sha256(state_root(h-1) || sha256(encode(sorted [[key, value or nil]])))

with state_root(0) = state_root over the genesis writes, chained onto the genesis hash
(so the initial state, system contract code included, is committed to).

State key namespaces (bytes):

    validators                 [pubkey...]             validator set of the next height
    code/<name>                bytecode                deployed contracts (node/contracts.py)
    contract/<name>\0<key>     VM value encoding       contract storage; the governance
                                                       contract's holds members, clients,
                                                       parameters (node/governance.py)
    anchor/<digest>            anchor record            data provenance
    anchor-child/<p><c>        b""                     lineage index parent -> child
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping

from consensus import codec

VALIDATORS = b"validators"
CODE = b"code/"
STORAGE = b"contract/"
ANCHOR = b"anchor/"
ANCHOR_CHILD = b"anchor-child/"

MAX_WRITES_PER_BLOCK = 1_000_000
"""Bound on distinct keys one block may write (far above what block limits allow)."""


def state_root(previous: bytes, writes: Mapping[bytes, bytes | None]) -> bytes:
    ordered = [[k, writes[k]] for k in sorted(writes)]
    digest = hashlib.sha256(codec.encode(ordered)).digest()
    return hashlib.sha256(previous + digest).digest()


class Overlay:
    """Buffered writes over a read function of the committed state."""

    def __init__(self, read: Callable[[bytes], bytes | None]) -> None:
        self._read = read
        self._writes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self._writes:
            return self._writes[key]
        return self._read(key)

    def put(self, key: bytes, value: bytes) -> None:
        assert type(key) is bytes and type(value) is bytes
        self._writes[key] = value
        assert len(self._writes) <= MAX_WRITES_PER_BLOCK

    def delete(self, key: bytes) -> None:
        self._writes[key] = None

    def snapshot(self) -> dict[bytes, bytes | None]:
        return dict(self._writes)

    def revert(self, snapshot: dict[bytes, bytes | None]) -> None:
        self._writes = snapshot

    @property
    def writes(self) -> dict[bytes, bytes | None]:
        return dict(self._writes)

    # Typed helpers for the namespaces above.

    def get_value(self, key: bytes) -> object:
        raw = self.get(key)
        return None if raw is None else codec.decode(raw)

    def put_value(self, key: bytes, value: object) -> None:
        self.put(key, codec.encode(value))


def storage_key(contract: str, key: str) -> bytes:
    """Where a contract's storage entry lives in the state."""
    return STORAGE + contract.encode() + b"\x00" + key.encode()
