"""Ledger state: a key-value overlay over the committed store, and the state root.

Execution never writes to the store directly: it writes into an
:class:`Overlay` that reads through to the committed state. A transaction
that fails is rolled back to a snapshot of the overlay; the block's overlay
becomes one write batch at commit. The state root is the root of a sparse
Merkle tree over every key and value (``consensus/smt.py``), so a certified
header's ``state_root`` proves any key's current value, or its absence; at
height 0 it is the tree of the genesis writes (system contract code included).

State key namespaces (bytes):

    validators                 [pubkey...]             validator set of the next height
    code/<name>                bytecode                deployed contracts (node/app/contracts.py)
    contract/<name>\0<key>     VM value encoding       contract storage; the governance
                                                       contract's holds members, clients,
                                                       parameters (node/app/governance.py)
    anchor/<digest>            anchor record            data provenance
    anchor-child/<p><c>        b""                     lineage index parent -> child
    drift/<model id>           drift record            committed score histogram and PSI
                                                       windows (node/app/drift_state.py)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from consensus import codec
from vm.gas import MAX_STORAGE_VALUE_BYTES
from vm.values import decode_value

VALIDATORS = b"validators"
CODE = b"code/"
STORAGE = b"contract/"
ANCHOR = b"anchor/"
ANCHOR_CHILD = b"anchor-child/"

MAX_WRITES_PER_BLOCK = 1_000_000
"""Bound on distinct keys one block may write (far above what block limits allow)."""
MAX_JOURNAL_ENTRIES = 10 * MAX_WRITES_PER_BLOCK
"""Bound on puts and deletes one block may make (each is undoable until the block ends)."""
assert MAX_WRITES_PER_BLOCK <= MAX_JOURNAL_ENTRIES

_ABSENT = object()


class Revert(Exception):
    """A transaction failed during execution; its writes are rolled back, its receipt says why."""


class StateLimitExceeded(Revert):
    """A block's writes reached MAX_WRITES_PER_BLOCK or MAX_JOURNAL_ENTRIES.

    Raised by the write that would cross the bound, so the transaction making
    it reverts (on every node alike) and the block keeps what came before.
    """


MAX_OVERLAY_READ_BYTES = 32 * 1024 * 1024
"""Committed reads one overlay remembers (keys and values); past it reads go to storage."""


class Overlay:
    """Buffered writes over a read function of the committed state.

    Every write is journalled with the value it replaced, so rolling a failed
    transaction back costs only what that transaction wrote, not a copy of
    the whole block's writes per transaction.
    """

    def __init__(
        self,
        read: Callable[[bytes], bytes | None],
        *,
        max_writes: int = MAX_WRITES_PER_BLOCK,
        max_journal: int = MAX_JOURNAL_ENTRIES,
    ) -> None:
        assert 0 < max_writes <= max_journal
        self._read = read
        self.max_writes = max_writes
        self.max_journal = max_journal
        self._writes: dict[bytes, bytes | None] = {}
        self._journal: list[tuple[bytes, object]] = []
        self._reads: dict[bytes, bytes | None] = {}
        self._read_bytes = 0

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` in this overlay: its own write, else the committed value.

        Committed reads are remembered (within ``MAX_OVERLAY_READ_BYTES``): an overlay lives
        for one block's execution or one admission batch on the application worker, and the
        committed state cannot change under it, while a block of scores reads the same
        contract code and parameters thousands of times.
        """
        if key in self._writes:
            return self._writes[key]
        if key in self._reads:
            return self._reads[key]
        value = self._read(key)
        size = len(key) + (0 if value is None else len(value))
        if self._read_bytes + size <= MAX_OVERLAY_READ_BYTES:
            self._reads[key] = value
            self._read_bytes += size
        return value

    def put(self, key: bytes, value: bytes) -> None:
        assert type(key) is bytes and type(value) is bytes
        self._record(key, value)

    def delete(self, key: bytes) -> None:
        self._record(key, None)

    def _record(self, key: bytes, value: bytes | None) -> None:
        if len(self._journal) >= self.max_journal:
            raise StateLimitExceeded(f"the block makes more than {self.max_journal} writes")
        if key not in self._writes and len(self._writes) >= self.max_writes:
            raise StateLimitExceeded(f"the block writes more than {self.max_writes} keys")
        self._journal.append((key, self._writes.get(key, _ABSENT)))
        self._writes[key] = value

    def snapshot(self) -> int:
        """A mark to :meth:`revert` to."""
        return len(self._journal)

    def revert(self, mark: int) -> None:
        """Undo every write made since ``mark`` was taken."""
        assert 0 <= mark <= len(self._journal)
        while len(self._journal) > mark:
            key, previous = self._journal.pop()
            if previous is _ABSENT:
                del self._writes[key]
            else:
                self._writes[key] = previous  # type: ignore[assignment]

    def wrote(self, key: bytes) -> bool:
        return key in self._writes

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


MAX_DECODED_VALUES = 1024
"""Stored contract values kept decoded, by their bytes (see ``decoded_value``)."""
MAX_CACHED_VALUE_BYTES = 16 * 1024
"""Larger stored values are decoded on every read instead (the cache stays under 16 MiB)."""


def decoded_value(raw: bytes) -> Any:
    """A stored contract value, decoded (raises vm.errors.VMError on damaged bytes).

    Score transactions read the same few entries thousands of times a block (the fee, the
    active model's record, the balances), so small values are decoded once and shared:
    callers only read the result, never change it.
    """
    if len(raw) > MAX_CACHED_VALUE_BYTES:
        return decode_value(raw, MAX_STORAGE_VALUE_BYTES)
    return _decoded_small(raw)


@lru_cache(maxsize=MAX_DECODED_VALUES)
def _decoded_small(raw: bytes) -> Any:
    return decode_value(raw, MAX_STORAGE_VALUE_BYTES)
