"""Per-peer budgets for requests that cost the answering node work and bandwidth.

A validator may ask another for certified blocks (FETCH) and model artifacts
(MODEL_FETCH). Each answer can be megabytes, so one member flooding requests
could make another read its store and queue gigabytes. A token bucket per
(peer, kind) bounds that: an honest lagging peer asks again only after each
answer, far below the rate; a flood is refused at the bucket. The clock is
injected, so tests drive it without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from consensus.bounded import BoundedMap

FETCH_PER_S = 4.0
"""Catch-up requests one peer may have answered per second (each answer at most
MAX_SERVE_BYTES)."""
FETCH_BURST = 8
MODEL_FETCH_PER_S = 1.0
"""Model artifact requests one peer may have answered per second (each answer up to 16 MiB)."""
MODEL_FETCH_BURST = 4
MODEL_FETCH_REPEAT_S = 10.0
"""The same artifact is sent to the same peer at most once in this many seconds."""
MAX_REMEMBERED_SENDS = 1_024
"""(peer, model id) pairs remembered for MODEL_FETCH_REPEAT_S."""

Clock = Callable[[], float]


@dataclass
class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up."""

    rate: float
    burst: int
    clock: Clock
    tokens: float = 0.0
    stamp: float = 0.0

    def __post_init__(self) -> None:
        assert self.rate > 0 and self.burst >= 1
        self.tokens = float(self.burst)
        self.stamp = self.clock()

    def take(self) -> bool:
        """Spend one token if there is one."""
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class PeerBudgets:
    """A bucket per (peer, kind); the peers are validators, so their number is bounded."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[tuple[bytes, str], TokenBucket] = {}
        self._sent: BoundedMap[tuple[bytes, bytes], float] = BoundedMap(MAX_REMEMBERED_SENDS)
        self.refused: dict[str, int] = {}

    def allow(self, peer: bytes, kind: str, rate: float, burst: int) -> bool:
        bucket = self._buckets.get((peer, kind))
        if bucket is None:
            bucket = self._buckets[(peer, kind)] = TokenBucket(rate, burst, self.clock)
        if bucket.take():
            return True
        self.refused[kind] = self.refused.get(kind, 0) + 1
        return False

    def first_send(self, peer: bytes, item: bytes, window_s: float) -> bool:
        """True unless ``item`` went to ``peer`` less than ``window_s`` ago (then remembers it)."""
        now = self.clock()
        key = (peer, item)
        last = self._sent.get(key)
        if last is not None and now - last < window_s:
            self.refused["repeat"] = self.refused.get("repeat", 0) + 1
            return False
        self._sent.remember(key, now)
        return True

    def forget(self, peers: set[bytes]) -> None:
        """Drop the buckets of peers that are no longer validators."""
        self._buckets = {k: v for k, v in self._buckets.items() if k[0] in peers}
