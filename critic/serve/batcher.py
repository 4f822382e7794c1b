"""Dynamic batching: concurrent requests merged into judge calls of at most ``max_items``, run in one worker thread.

Each request is a :class:`Job` of one kind (``"compare"``: pairs, ``"score"``:
conversations) and a list of items, already parsed (the request body is gone by
then). The collector takes the oldest job, adds the waiting jobs of the same
kind while the call holds at most ``max_items`` items (waiting up to
``max_wait_s`` for more), hands the call to ``run(kind, items)`` in the one
worker thread (so the event loop stays free and the model sees one call at a
time), and gives every job exactly its own results, in order. A job with more
than ``max_items`` items (a ``/v1/rank`` of many responses) is judged over
several calls, slice by slice, in order. An item's own failure is a
:class:`CriticError` in its place (``compare_each`` and ``score_each`` return
them); an exception from ``run`` fails the jobs in that call alone. Past
``max_queue`` waiting jobs a new one is refused (:class:`QueueFull`).

A job whose client has gone or whose time is up is dropped: none of its items
still waiting is judged. The call already running cannot be interrupted (a model
call is not cancellable), so its items are judged and the results thrown away.

Shutdown (:meth:`Batcher.drain`, on SIGTERM): no new job is accepted; the
waiting jobs are judged while each call is expected to end within the budget
(estimated from the last call's time per item); at the budget's end every job
not answered yet, waiting or in the running call, is refused with
:class:`ShuttingDown`, which the server answers 503 with ``Retry-After``.
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


class ShuttingDown(QueueFull):
    """The server is stopping: this job was not (or will not be) judged; another server, or this one restarted,
    can take it."""


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
    results: list[Any] = field(default_factory=list)
    sent: int = 0  # items handed to the judge so far (a big job goes over several calls)
    dropped: bool = False  # the client has gone or its time is up: nobody waits for the result
    enqueued: float = field(default_factory=time.perf_counter)

    def answer(self, error: BaseException) -> None:
        """End the job with ``error`` unless it is answered already."""
        if not self.future.done():
            self.future.set_exception(error)
        self.dropped = True


Slice = tuple[Job, int, int]  # a job's items [start, stop) in one judge call


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
        self._running: list[Job] = []  # the jobs of the call being gathered or run
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        self._deadline: float | None = None  # set by drain(): the loop time by which every job is answered
        self._seconds_per_item: float | None = None  # the last call's, to tell what still fits the budget

    @property
    def waiting(self) -> int:
        """Jobs waiting for the judge (not counting the ones whose last items are in the running call)."""
        return sum(1 for job in self._pending if not job.dropped)

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="critic-judge")
        self._task = asyncio.get_running_loop().create_task(self._collect(), name="critic-batcher")

    def drain(self, budget_s: float) -> None:
        """Stop accepting jobs; judge what fits in ``budget_s`` seconds; refuse the rest then (ShuttingDown)."""
        if self._closing or self._wake is None:
            return
        loop = asyncio.get_running_loop()
        self._closing = True
        self._deadline = loop.time() + budget_s
        loop.call_at(self._deadline, self._refuse_unanswered, "the shutdown budget is spent")
        logger.info("shutting down: %d requests waiting, %.0f s to answer them", self.waiting, budget_s)
        self._wake.set()

    async def stop(self) -> None:
        """Finish every job already accepted (within the drain budget, if :meth:`drain` was called), then stop."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            left = None if self._deadline is None else max(0.0, self._deadline - asyncio.get_running_loop().time())
            done, _ = await asyncio.wait({self._task}, timeout=left)
            if not done:  # a judge call outlived the budget: its jobs were answered 503; leave it to end alone
                self._task.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=self._deadline is None)

    async def submit(self, kind: str, items: list[Any], *, timeout_s: float,
                     disconnected: Callable[[], Any] | None = None) -> list[Any]:
        """The results of ``items``, in order. Raises QueueFull (ShuttingDown), BatchFailed, TimeoutError, or
        ConnectionError when ``disconnected()`` (an awaitable that returns when the client goes) finishes first."""
        if not items:
            return []
        if self._closing or self._wake is None:
            raise ShuttingDown("the server is shutting down")
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
            if self._deadline is not None and not self._fits(loop, batch):
                self._refuse_unanswered("the rest would not be judged within the shutdown budget")
                self._running = []
                return
            await self._execute(loop, batch)

    async def _next_batch(self, loop: asyncio.AbstractEventLoop) -> list[Slice] | None:
        assert self._wake is not None
        while True:
            self._discard_dropped()
            if self._pending:
                break
            if self._closing:
                return None
            self._wake.clear()
            await self._wake.wait()
        first = self._pending[0]
        batch = [self._take(first, self.max_items)]
        size = batch[0][2] - batch[0][1]
        deadline = loop.time() + self.max_wait_s
        while size < self.max_items:
            for job in list(self._pending):
                if not job.dropped and job.kind == first.kind and size < self.max_items:
                    batch.append(self._take(job, self.max_items - size))
                    size += batch[-1][2] - batch[-1][1]
            remaining = deadline - loop.time()
            if size >= self.max_items or remaining <= 0 or self._closing:
                break
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), remaining)
        self.metrics.queue_depth.set(self.waiting)
        return batch

    def _take(self, job: Job, most: int) -> Slice:
        """The job's next ``most`` items at most; a job fully handed out leaves the queue."""
        self._running.append(job)
        start = job.sent
        job.sent = min(len(job.items), start + most)
        if job.sent == len(job.items):
            self._pending.remove(job)
        return job, start, job.sent

    def _discard_dropped(self) -> None:
        for job in [job for job in self._pending if job.dropped]:
            self._pending.remove(job)

    def _fits(self, loop: asyncio.AbstractEventLoop, batch: list[Slice]) -> bool:
        assert self._deadline is not None
        if self._seconds_per_item is None:
            return loop.time() < self._deadline
        items = sum(stop - start for _, start, stop in batch)
        return loop.time() + self._seconds_per_item * items <= self._deadline

    def _refuse_unanswered(self, why: str) -> None:
        jobs = [job for job in (*self._running, *self._pending) if not job.future.done()]
        if jobs:
            logger.warning("shutting down: %d requests answered 503 (%s)", len(jobs), why)
        for job in jobs:
            job.answer(ShuttingDown(f"the server is shutting down and did not judge this request ({why})"))
        self._pending.clear()
        self.metrics.queue_depth.set(0)

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[Slice]) -> None:
        live = [(job, start, stop) for job, start, stop in batch if not job.dropped]
        if not live:
            self._running = []
            return
        items = [item for job, start, stop in live for item in job.items[start:stop]]
        kind = live[0][0].kind
        self.metrics.batch_items.observe(len(items))
        started = time.perf_counter()
        try:
            results = await loop.run_in_executor(self._executor, self._run, kind, items)
            if len(results) != len(items):
                raise RuntimeError(f"the judge returned {len(results)} results for {len(items)} items")
        except Exception as error:  # noqa: BLE001 (a judge failure fails this batch; the server goes on)
            logger.warning("a %s batch of %d items failed: %s: %s", kind, len(items), type(error).__name__, error)
            reason = f"the judge failed on this request's batch: {type(error).__name__}: {error}"
            for job, _, _ in live:
                job.answer(BatchFailed(reason))
            return
        finally:
            seconds = time.perf_counter() - started
            self._running = []
            self.metrics.batch_seconds.observe(seconds)
            self._seconds_per_item = seconds / len(items)
        position = 0
        for job, start, stop in live:
            job.results.extend(results[position : position + stop - start])
            position += stop - start
            if len(job.results) == len(job.items) and not job.future.done() and not job.dropped:
                job.future.set_result(job.results)
