"""The `anchor` transaction: data provenance records and their lineage.

An anchor records that a file with a given SHA-256 digest, size and media
type existed, who anchored it and which earlier anchored digests it derives
from. Parents must already be anchored (earlier, or earlier in the same
block), so the lineage is a DAG whose every edge points back in time. A digest
is anchored once; anchoring it again is reverted with the height it has.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from consensus import codec
from node.app.state import ANCHOR, ANCHOR_CHILD, Overlay, Revert
from node.app.types import AnchorPayload, Event, Tx

MAX_LINEAGE_NODES = 256
"""Most ancestors (and, separately, descendants) one lineage query returns."""


@dataclass(frozen=True)
class AnchorRecord:
    digest: bytes
    height: int
    tx_id: bytes
    sender: bytes
    size: int
    media_type: str
    parents: tuple[bytes, ...]
    metadata: tuple[tuple[str, str], ...]

    def to_wire(self) -> list:
        return [
            self.height,
            self.tx_id,
            self.sender,
            self.size,
            self.media_type,
            list(self.parents),
            [list(kv) for kv in self.metadata],
        ]

    @classmethod
    def from_wire(cls, digest: bytes, value: list) -> AnchorRecord:
        height, tx_id, sender, size, media_type, parents, metadata = value
        return cls(
            digest, height, tx_id, sender, size, media_type, tuple(parents),
            tuple((k, v) for k, v in metadata),
        )  # fmt: skip

    def to_json(self) -> dict:
        return {
            "digest": self.digest.hex(),
            "height": self.height,
            "tx": self.tx_id.hex(),
            "sender": self.sender.hex(),
            "size": self.size,
            "media_type": self.media_type,
            "parents": [p.hex() for p in self.parents],
            "metadata": dict(self.metadata),
        }


def execute_anchor(
    state: Overlay, tx: Tx, height: int, ctx: object
) -> tuple[object, list[Event], int]:
    """Record an anchor; anchors use no gas (their size is bounded by the payload limits)."""
    payload = tx.payload
    assert isinstance(payload, AnchorPayload)
    existing = state.get(ANCHOR + payload.digest)
    if existing is not None:
        at = codec.decode(existing)[0]
        raise Revert(f"digest {payload.digest.hex()} is already anchored at height {at}")
    for parent in payload.parents:
        if state.get(ANCHOR + parent) is None:
            raise Revert(f"parent {parent.hex()} is not anchored")
    record = AnchorRecord(
        payload.digest, height, tx.id, tx.sender, payload.size, payload.media_type,
        payload.parents, payload.metadata,
    )  # fmt: skip
    state.put_value(ANCHOR + payload.digest, record.to_wire())
    for parent in payload.parents:
        state.put(ANCHOR_CHILD + parent + payload.digest, b"")
    return None, [Event("anchored", (payload.digest,))], 0


Reader = Callable[[bytes], bytes | None]
Scanner = Callable[[bytes, int], Iterator[tuple[bytes, bytes]]]


def lookup(read: Reader, digest: bytes) -> AnchorRecord | None:
    raw = read(ANCHOR + digest)
    return None if raw is None else AnchorRecord.from_wire(digest, codec.decode(raw))


def ancestors(read: Reader, record: AnchorRecord) -> list[AnchorRecord]:
    """Every anchored ancestor, nearest first (breadth-first), at most MAX_LINEAGE_NODES."""
    out: list[AnchorRecord] = []
    seen = {record.digest}
    queue = deque(record.parents)
    while queue and len(out) < MAX_LINEAGE_NODES:
        digest = queue.popleft()
        if digest in seen:
            continue
        seen.add(digest)
        parent = lookup(read, digest)
        if parent is not None:
            out.append(parent)
            queue.extend(parent.parents)
    return out


def descendants(read: Reader, scan: Scanner, digest: bytes) -> list[AnchorRecord]:
    """Every anchor derived from ``digest``, nearest first, at most MAX_LINEAGE_NODES."""
    out: list[AnchorRecord] = []
    seen = {digest}
    queue = deque([digest])
    while queue and len(out) < MAX_LINEAGE_NODES:
        current = queue.popleft()
        prefix = ANCHOR_CHILD + current
        for key, _ in scan(prefix, MAX_LINEAGE_NODES):
            child = key[len(prefix) :]
            if child in seen:
                continue
            seen.add(child)
            record = lookup(read, child)
            if record is not None:
                out.append(record)
                queue.append(child)
    return out[:MAX_LINEAGE_NODES]
