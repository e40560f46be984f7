"""The loop-lag monitor sees a callback that holds the event loop."""

from __future__ import annotations

import asyncio
import time

from node.looplag import RECENT_STALLS, LoopLagMonitor


def test_a_blocking_callback_shows_as_a_stall() -> None:
    async def scenario() -> LoopLagMonitor:
        monitor = LoopLagMonitor(tick_ms=10)
        monitor.start()
        await asyncio.sleep(0.05)
        deadline = time.thread_time() + 0.2
        while time.thread_time() < deadline:  # hold the loop for 0.2 s of its own CPU
            pass
        await asyncio.sleep(0.05)
        await monitor.stop()
        return monitor

    monitor = asyncio.run(scenario())
    assert monitor.max_stall_ms >= 150
    assert monitor.max_busy_ms >= 150  # the loop's own thread was the one working
    status = monitor.status()
    assert status["max_loop_stall_ms"] >= 150
    assert len(status["recent_loop_stalls_ms"]) <= RECENT_STALLS


def test_recent_keeps_only_the_latest_values() -> None:
    monitor = LoopLagMonitor(recent=RECENT_STALLS)
    monitor.record(500.0)
    for _ in range(RECENT_STALLS):
        monitor.record(1.0)
    assert monitor.max_stall_ms == 500.0
    assert monitor.recent_max_ms == 1.0
    monitor.record(-3.0)  # a clock that woke early is no stall
    assert min(monitor.recent) == 0.0


def test_work_on_another_thread_is_not_the_loops_work() -> None:
    """Busy time counts only the loop thread's CPU, so a stall caused by another thread
    holding the GIL or a core is told apart from work done on the loop."""

    async def scenario() -> LoopLagMonitor:
        monitor = LoopLagMonitor(tick_ms=10)
        monitor.start()
        await asyncio.sleep(0.05)
        await asyncio.get_running_loop().run_in_executor(None, time.sleep, 0.2)
        await monitor.stop()
        return monitor

    monitor = asyncio.run(scenario())
    assert monitor.max_busy_ms < 150
