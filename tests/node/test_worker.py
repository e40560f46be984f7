"""The application worker: order, priority, bounds, errors and a loop that keeps running."""

from __future__ import annotations

import asyncio
import threading

import pytest

from node import worker as worker_module
from node.worker import MAX_CLIENT_TASKS, AppWorker, Outcome, WorkerBusy


def _blocker() -> tuple[threading.Event, threading.Event]:
    started, release = threading.Event(), threading.Event()
    return started, release


async def _hold(worker: AppWorker) -> threading.Event:
    """Occupy the worker until the returned event is set."""
    started, release = _blocker()

    def hold() -> None:
        started.set()
        release.wait(10)

    worker.consensus(hold, lambda outcome: None)
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
    return release


async def test_consensus_work_runs_before_queued_client_work_and_answers_keep_order() -> None:
    worker = AppWorker(asyncio.get_running_loop())
    ran: list[str] = []
    answered: list[str] = []
    try:
        release = await _hold(worker)
        clients = [
            asyncio.ensure_future(worker.client(lambda i=i: ran.append(f"client{i}") or i))
            for i in range(3)
        ]
        await asyncio.sleep(0)
        for name in ("commit", "validate"):
            worker.consensus(
                lambda name=name: ran.append(name),
                lambda outcome, name=name: answered.append(name),
            )
        release.set()
        assert await asyncio.gather(*clients) == [0, 1, 2]
        assert ran == ["commit", "validate", "client0", "client1", "client2"]
        assert answered == ["commit", "validate"]
    finally:
        await worker.close()


async def test_client_work_is_refused_past_its_bound() -> None:
    worker = AppWorker(asyncio.get_running_loop())
    try:
        release = await _hold(worker)
        queued = [asyncio.ensure_future(worker.client(lambda: 1)) for _ in range(MAX_CLIENT_TASKS)]
        await asyncio.sleep(0)
        assert worker.pending() == {"consensus": 0, "client": MAX_CLIENT_TASKS}
        with pytest.raises(WorkerBusy, match="already wait"):
            await worker.client(lambda: 1)
        worker.consensus(lambda: None, lambda outcome: None)  # consensus work is never refused
        release.set()
        assert sum(await asyncio.gather(*queued)) == MAX_CLIENT_TASKS
    finally:
        await worker.close()


async def test_an_exception_reaches_the_caller_and_the_worker_goes_on() -> None:
    worker = AppWorker(asyncio.get_running_loop())
    outcomes: list[Outcome] = []
    try:
        with pytest.raises(ZeroDivisionError):
            await worker.client(lambda: 1 // 0)
        worker.consensus(lambda: [][1], outcomes.append)
        assert await worker.client(lambda: "still here") == "still here"
        assert isinstance(outcomes[0].error, IndexError)
    finally:
        await worker.close()


async def test_close_finishes_the_running_task_and_drops_the_queue() -> None:
    worker = AppWorker(asyncio.get_running_loop())
    ran: list[str] = []
    release = await _hold(worker)
    worker.consensus(lambda: ran.append("queued"), lambda outcome: None)
    closing = asyncio.ensure_future(worker.close())
    await asyncio.sleep(0.01)
    release.set()
    await closing
    assert ran == []
    with pytest.raises(WorkerBusy, match="shutting down"):
        await worker.client(lambda: 1)


async def test_the_loop_keeps_running_while_the_worker_is_busy() -> None:
    """The point of the worker: heavy application work does not freeze the event loop."""
    worker = AppWorker(asyncio.get_running_loop())
    ticks = 0
    done = threading.Event()

    def heavy() -> int:
        total = 0
        while not done.is_set():  # pure Python, holding the GIL between switches
            total += sum(range(1_000))
        return total

    async def ticker() -> None:
        nonlocal ticks
        while ticks < 20:
            await asyncio.sleep(0.001)
            ticks += 1
        done.set()

    try:
        result = asyncio.ensure_future(worker.client(heavy))
        await asyncio.wait_for(ticker(), 30)  # would never finish on a frozen loop
        assert await result > 0
    finally:
        done.set()
        await worker.close()


def test_the_bounds_relate() -> None:
    assert worker_module.MAX_CLIENT_TASKS < worker_module.MAX_CONSENSUS_TASKS
