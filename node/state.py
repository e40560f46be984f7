"""Ledger state: a key-value overlay over the committed store, and the state root.

Execution never writes to the store directly: it writes into an
:class:`Overlay` that reads through to the committed state. A transaction
that fails is rolled back to a snapshot of the overlay; the block's overlay
becomes one write batch at commit. The state root chains a digest of each
block's sorted write set onto the previous root (DESIGN.md):

    state_root(h) = sha256(state_root(h-1) || sha256(encode(sorted [[key, value or nil]])))

with state_root(0) = the genesis hash.

State key namespaces (bytes):

    client/<pubkey>            [org, [roles...]]       authorised client keys
    param/<name>               int                     chain parameters
    validators                 [pubkey...]             validator set of the next height
    members                    [[org, [admin keys]]...] member organisations (sorted by org)
    code/<name>                bytecode                 deployed contracts (node/contracts.py)
    contract/<name>\0<key>     encoded VM value         contract storage
    anchor/<digest>            anchor record            data provenance
    anchor-child/<p><c>        b""                     lineage index parent -> child
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping

from consensus import codec

CLIENT = b"client/"
PARAM = b"param/"
VALIDATORS = b"validators"
MEMBERS = b"members"
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


def param(state: Overlay, name: str) -> int:
    value = state.get_value(PARAM + name.encode())
    assert type(value) is int, f"parameter {name} missing from state"
    return value


def client_roles(state: Overlay, key: bytes) -> tuple[str, tuple[str, ...]] | None:
    """(org, roles) of an authorised client key, or None."""
    value = state.get_value(CLIENT + key)
    if value is None:
        return None
    org, roles = value  # type: ignore[misc]
    return org, tuple(roles)
