"""The application worker: one thread that runs every call into the application.

Executing a block, building a proposal, checking a batch of signatures, a VM
query or loading a model can each take far longer than the event loop may
stall (``node.looplag.TARGET_LOOP_STALL_MS``): peers' pings, timers and the
API would all wait behind it. So the shell hands that work to this thread and
carries on; the answer comes back to the loop as a callback.

Why one thread and not a pool: the application is deterministic and keeps
caches (decoded blocks, executed proposals, verified signatures, loaded
models) that are not safe to share, and its calls must see each other's
effects in order (an admission check after a commit must see the commit). One
thread gives that order without locks. Results reach the loop in the order the
calls ran, so the shell sees "admitted" before "committed" when that is what
happened.

Two queues: consensus work (build, validate, commit) always runs before queued
client work (admission, queries, uploads), so client traffic cannot delay a
block (CometBFT's rule). Client work is bounded by ``MAX_CLIENT_TASKS``; past
it the caller is refused with ``WorkerBusy`` rather than queueing without
limit. Consensus work is bounded by the replica itself (one build, one commit,
and validations bounded by its view window) and is never refused.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger("vigil.node")

T = TypeVar("T")

MAX_CLIENT_TASKS = 256
"""Client tasks (admission batches, queries, model uploads) queued for the worker at once."""
MAX_CONSENSUS_TASKS = 4_096
"""Consensus tasks queued at once; the replica's own bounds keep far below this, so reaching it
means a bug, and the node stops rather than queue without limit."""
assert MAX_CLIENT_TASKS < MAX_CONSENSUS_TASKS


class WorkerBusy(Exception):
    """Too much client work is queued already: try again later (HTTP 503)."""


@dataclass(frozen=True)
class Outcome:
    """What a task returned, or the exception it raised."""

    value: Any = None
    error: BaseException | None = None


class AppWorker:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._cond = threading.Condition()
        self._consensus: deque[tuple[Callable[[], Any], Callable[[Outcome], None]]] = deque()
        self._client: deque[tuple[Callable[[], Any], Callable[[Outcome], None]]] = deque()
        self._closed = False
        self._thread = threading.Thread(target=self._main, name="vigil-app", daemon=True)
        self._thread.start()

    @property
    def thread_id(self) -> int | None:
        """The worker thread's id in the operating system (its CPU is read from /proc)."""
        return self._thread.native_id

    # ------------------------------------------------------------ on the loop

    def consensus(self, fn: Callable[[], Any], done: Callable[[Outcome], None]) -> None:
        """Run ``fn`` ahead of client work; call ``done`` on the loop with its outcome."""
        with self._cond:
            if self._closed:
                return
            assert len(self._consensus) < MAX_CONSENSUS_TASKS, "consensus work is not bounded"
            self._consensus.append((fn, done))
            self._cond.notify()

    def client_call(self, fn: Callable[[], Any], done: Callable[[Outcome], None]) -> None:
        """Run ``fn`` after any consensus work, ``done`` on the loop; raise WorkerBusy when full."""
        with self._cond:
            if self._closed:
                raise WorkerBusy("the node is shutting down")
            if len(self._client) >= MAX_CLIENT_TASKS:
                raise WorkerBusy(f"{MAX_CLIENT_TASKS} requests already wait for this node")
            self._client.append((fn, done))
            self._cond.notify()

    async def client(self, fn: Callable[[], T]) -> T:
        """Await ``fn`` run on the worker after any consensus work; raise WorkerBusy when full."""
        future: asyncio.Future[T] = self._loop.create_future()

        def done(outcome: Outcome) -> None:
            if future.done():
                return
            if outcome.error is not None:
                future.set_exception(outcome.error)
            else:
                future.set_result(outcome.value)

        self.client_call(fn, done)
        return await future

    def pending(self) -> dict[str, int]:
        with self._cond:
            return {"consensus": len(self._consensus), "client": len(self._client)}

    async def close(self) -> None:
        """Finish the task under way, drop the queued ones and stop the thread."""
        with self._cond:
            self._closed = True
            self._consensus.clear()
            self._client.clear()
            self._cond.notify()
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)

    # ------------------------------------------------------------ on the worker thread

    def _main(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._consensus and not self._client:
                    self._cond.wait()
                if self._closed:
                    return
                queue = self._consensus if self._consensus else self._client
                fn, done = queue.popleft()
            try:
                outcome = Outcome(value=fn())
            except Exception as exc:  # handed to the loop, which decides what it means
                outcome = Outcome(error=exc)
            try:
                self._loop.call_soon_threadsafe(done, outcome)
            except RuntimeError:  # the loop closed while this task ran
                return
