"""Event-loop lag: how long the node's asyncio loop was kept from running its callbacks.

A task sleeps LAG_TICK_MS at a time and records how much later than asked it woke up.
Anything that holds the loop shows up here as a stall, so the longest one is a direct
measure of how long consensus timers, peer frames and API requests may be kept waiting.
The loop thread's own CPU time per tick tells work on the loop from waiting for the GIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable

LAG_TICK_MS = 50
"""How often the monitor wakes; stalls shorter than the scheduler's jitter are noise."""
RECENT_STALLS = 16
"""How many of the latest wake-up delays the monitor keeps (for `recent_max`)."""

TARGET_LOOP_STALL_MS = 100
"""The longest the loop should be held by one piece of work: well under the replica's
request and progress timeouts, so a heavy block cannot cost a view. Application work runs
on the application worker (node/worker.py), so the loop's own work stays under it; its
wake-ups can still be later when it waits for the GIL or a core (figures in docs/node.md)."""

assert LAG_TICK_MS >= 1
assert LAG_TICK_MS < TARGET_LOOP_STALL_MS, "the monitor must wake more often than the target"
assert RECENT_STALLS >= 1


class LoopLagMonitor:
    """Wakes every LAG_TICK_MS on the running loop and records how late each wake-up was."""

    def __init__(self, tick_ms: int = LAG_TICK_MS, recent: int = RECENT_STALLS) -> None:
        self.tick_ms = tick_ms
        self.max_stall_ms = 0.0
        self.max_busy_ms = 0.0
        """The most CPU time the loop's own thread spent within one tick beyond the tick's own
        bookkeeping: work holding the loop, as opposed to waiting for a core or the GIL."""
        self.recent: deque[float] = deque(maxlen=recent)
        self.samples = 0
        self.observe: Callable[[float], None] | None = None
        """Told each tick's lateness in seconds (the node's metrics histogram)."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def record(self, late_ms: float, busy_ms: float = 0.0) -> None:
        self.max_busy_ms = max(self.max_busy_ms, busy_ms)
        late_ms = max(0.0, late_ms)
        self.samples += 1
        self.recent.append(late_ms)
        self.max_stall_ms = max(self.max_stall_ms, late_ms)
        if self.observe is not None:
            self.observe(late_ms / 1000)

    @property
    def recent_max_ms(self) -> float:
        return max(self.recent, default=0.0)

    async def _run(self) -> None:
        interval = self.tick_ms / 1000
        while True:
            asked, cpu = time.monotonic(), time.thread_time()
            await asyncio.sleep(interval)
            self.record(
                (time.monotonic() - asked - interval) * 1000,
                (time.thread_time() - cpu) * 1000,
            )

    def status(self) -> dict:
        return {
            "max_loop_stall_ms": round(self.max_stall_ms, 1),
            "max_loop_busy_ms": round(self.max_busy_ms, 1),
            "recent_max_loop_stall_ms": round(self.recent_max_ms, 1),
            "recent_loop_stalls_ms": [round(v, 1) for v in self.recent],
        }
