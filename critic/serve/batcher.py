"""Dynamic batching: concurrent requests merged into one judge call, run in one worker thread.

Each request is a :class:`Job` of one kind (``"compare"``: pairs, ``"score"``:
conversations) and a list of items. The collector takes the oldest job, adds
the waiting jobs of the same kind while the batch holds at most ``max_items``
items (waiting up to ``max_wait_s`` for more), hands the whole batch to
``run(kind, items)`` in the one worker thread (so the event loop stays free and
the model sees one call at a time), and gives every job exactly its own slice of
the results, in order. An item's own failure is a :class:`CriticError` in its
place (``compare_each`` and ``score_each`` return them); an exception from
``run`` fails that batch's jobs alone. Past ``max_queue`` waiting jobs a new
one is refused (:class:`QueueFull`); a job whose client has gone or whose time
is up is dropped if it has not started, and its results are thrown away if it
has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from critic.serve.metrics import Metrics

logger = logging.getLogger("critic")

Run = Callable[[str, list[Any]], Sequence[Any]]


class QueueFull(Exception):
    """More jobs are waiting than the queue holds."""


class BatchFailed(Exception):
    """The judge call of this job's batch raised; ``reason`` says what happened."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class Job:
    kind: str
    items: list[Any]
    future: asyncio.Future[list[Any]]
    dropped: bool = False  # the client has gone or its time is up: nobody waits for the result
    enqueued: float = field(default_factory=time.perf_counter)


class Batcher:
    """Merges concurrent jobs into judge calls; start it inside the event loop, stop it to drain."""

    def __init__(self, run: Run, *, max_items: int, max_wait_s: float, max_queue: int,
                 metrics: Metrics | None = None) -> None:
        self._run = run
        self.max_items = max_items
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.metrics = metrics or Metrics()
        self._pending: deque[Job] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False

    @property
    def waiting(self) -> int:
        """Jobs waiting for the judge (not counting the batch it is running)."""
        return sum(1 for job in self._pending if not job.dropped)

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="critic-judge")
        self._task = asyncio.get_running_loop().create_task(self._collect(), name="critic-batcher")

    async def stop(self) -> None:
        """Finish every job already accepted, then stop the worker thread."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def submit(self, kind: str, items: list[Any], *, timeout_s: float,
                     disconnected: Callable[[], Any] | None = None) -> list[Any]:
        """The results of ``items``, in order. Raises QueueFull, BatchFailed, TimeoutError, or ConnectionError
        when ``disconnected()`` (an awaitable that returns when the client goes) finishes first."""
        if not items:
            return []
        if self._closing or self._wake is None:
            raise QueueFull("the server is shutting down")
        if self.waiting >= self.max_queue:
            raise QueueFull(f"{self.waiting} requests are waiting, the queue holds {self.max_queue}")
        job = Job(kind, list(items), asyncio.get_running_loop().create_future())
        self._pending.append(job)
        self.metrics.queue_depth.set(self.waiting)
        self._wake.set()
        watch = asyncio.ensure_future(disconnected()) if disconnected is not None else None
        try:
            waiters: set[asyncio.Future[Any]] = {job.future} | ({watch} if watch is not None else set())
            done, _ = await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            if job.future in done:
                return job.future.result()
            job.dropped = True
            if watch is not None and watch in done:
                raise ConnectionError("the client disconnected")
            raise TimeoutError(f"no answer within {timeout_s:g} s")
        except asyncio.CancelledError:
            job.dropped = True
            raise
        finally:
            if watch is not None:
                watch.cancel()
            self.metrics.queue_depth.set(self.waiting)

    async def _collect(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch(loop)
            if batch is None:
                return
            await self._execute(loop, batch)

    async def _next_batch(self, loop: asyncio.AbstractEventLoop) -> list[Job] | None:
        assert self._wake is not None
        while True:
            self._discard_dropped()
            if self._pending:
                break
            if self._closing:
                return None
            self._wake.clear()
            await self._wake.wait()
        first = self._pending.popleft()
        batch, size = [first], len(first.items)
        deadline = loop.time() + self.max_wait_s
        while size < self.max_items:
            for job in list(self._pending):
                if not job.dropped and job.kind == first.kind and size + len(job.items) <= self.max_items:
                    self._pending.remove(job)
                    batch.append(job)
                    size += len(job.items)
            remaining = deadline - loop.time()
            if size >= self.max_items or remaining <= 0 or self._closing:
                break
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), remaining)
        self.metrics.queue_depth.set(self.waiting)
        return batch

    def _discard_dropped(self) -> None:
        while self._pending and self._pending[0].dropped:
            self._pending.popleft()

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[Job]) -> None:
        live = [job for job in batch if not job.dropped]
        if not live:
            return
        items = [item for job in live for item in job.items]
        kind = live[0].kind
        self.metrics.batch_items.observe(len(items))
        started = time.perf_counter()
        try:
            results = await loop.run_in_executor(self._executor, self._run, kind, items)
            if len(results) != len(items):
                raise RuntimeError(f"the judge returned {len(results)} results for {len(items)} items")
        except Exception as error:  # noqa: BLE001 (a judge failure fails this batch; the server goes on)
            logger.warning("a %s batch of %d items failed: %s: %s", kind, len(items), type(error).__name__, error)
            reason = f"the judge failed on this request's batch: {type(error).__name__}: {error}"
            for job in live:
                if not job.future.done() and not job.dropped:
                    job.future.set_exception(BatchFailed(reason))
            return
        finally:
            self.metrics.batch_seconds.observe(time.perf_counter() - started)
        position = 0
        for job in live:
            mine = list(results[position : position + len(job.items)])
            position += len(job.items)
            if not job.future.done() and not job.dropped:
                job.future.set_result(mine)
