"""The batcher alone: concurrent jobs merged into bounded calls, each job its own results, faults contained."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from critic.serve.batcher import Batcher, BatchFailed, QueueFull, ShuttingDown


class Recorder:
    """A judge stand-in: records each call's (kind, items) and answers item * 10; items < 0 raise."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[int]]] = []
        self.threads: set[str] = set()

    def __call__(self, kind: str, items: list[int]) -> list[int]:
        self.calls.append((kind, list(items)))
        self.threads.add(threading.current_thread().name)
        if any(item < 0 for item in items):
            raise ValueError("negative item")
        return [item * 10 for item in items]


def held_recorder() -> tuple[threading.Event, Recorder, Callable[[str, list[int]], list[int]]]:
    """A recorder whose calls wait for the gate (an Event) before answering."""
    gate, recorder = threading.Event(), Recorder()

    def held(kind, items):
        gate.wait(10)
        return recorder(kind, items)

    return gate, recorder, held


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def test_concurrent_jobs_share_calls_of_at_most_max_items_and_each_gets_its_own_results_in_order():
    recorder = Recorder()

    async def main():
        batcher = Batcher(recorder, max_items=8, max_wait_s=0.05, max_queue=100)
        batcher.start()
        jobs = [list(range(start, start + 3)) for start in range(0, 60, 3)]
        results = await asyncio.gather(*(batcher.submit("compare", job, timeout_s=10) for job in jobs))
        await batcher.stop()
        return jobs, results

    jobs, results = run(main())
    assert results == [[item * 10 for item in job] for job in jobs]
    assert all(len(items) <= 8 for _, items in recorder.calls)
    assert len(recorder.calls) < len(jobs)  # merged
    assert sorted(item for _, items in recorder.calls for item in items) == list(range(60))  # none lost or twice
    assert len(recorder.threads) == 1 and threading.current_thread().name not in recorder.threads


def test_kinds_are_never_mixed_in_one_call_and_a_failing_batch_fails_only_its_own_jobs():
    recorder = Recorder()

    async def main():
        batcher = Batcher(recorder, max_items=100, max_wait_s=0.05, max_queue=100)
        batcher.start()
        outcomes = await asyncio.gather(
            batcher.submit("compare", [1, 2], timeout_s=10),
            batcher.submit("score", [-1], timeout_s=10),
            batcher.submit("compare", [3], timeout_s=10),
            return_exceptions=True,
        )
        after = await batcher.submit("score", [4], timeout_s=10)
        await batcher.stop()
        return outcomes, after

    (first, failed, third), after = run(main())
    assert first == [10, 20] and third == [30] and after == [40]
    assert isinstance(failed, BatchFailed) and "ValueError: negative item" in failed.reason
    assert {kind for kind, _ in recorder.calls} == {"compare", "score"}
    assert ("compare", [1, 2, 3]) in recorder.calls


def test_past_max_queue_a_job_is_refused_and_stop_finishes_the_accepted_ones():
    gate = threading.Event()

    def slow(kind, items):
        gate.wait(10)
        return items

    async def main():
        batcher = Batcher(slow, max_items=1, max_wait_s=0.0, max_queue=1)
        batcher.start()
        running = asyncio.ensure_future(batcher.submit("compare", [1], timeout_s=10))
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(batcher.submit("compare", [2], timeout_s=10))
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull):
            await batcher.submit("compare", [3], timeout_s=10)
        stopping = asyncio.ensure_future(batcher.stop())
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull):  # shutting down: nothing new
            await batcher.submit("compare", [4], timeout_s=10)
        gate.set()
        await stopping
        return await running, await waiting

    assert run(main()) == ([1], [2])


def test_a_job_bigger_than_max_items_is_judged_over_several_calls_in_order():
    recorder = Recorder()

    async def main():
        batcher = Batcher(recorder, max_items=4, max_wait_s=0.0, max_queue=10)
        batcher.start()
        result = await batcher.submit("compare", list(range(10)), timeout_s=10)
        await batcher.stop()
        return result

    assert run(main()) == [item * 10 for item in range(10)]
    assert recorder.calls == [("compare", [0, 1, 2, 3]), ("compare", [4, 5, 6, 7]), ("compare", [8, 9])]


def test_a_job_whose_time_is_up_has_none_of_its_waiting_items_judged():
    """It timed out while its first call ran: that call cannot be interrupted, but nothing more of it is judged."""
    gate, recorder, held = held_recorder()

    async def main():
        batcher = Batcher(held, max_items=2, max_wait_s=0.0, max_queue=10)
        batcher.start()
        with pytest.raises(TimeoutError):
            await batcher.submit("compare", list(range(10)), timeout_s=0.2)
        gate.set()
        after = await batcher.submit("compare", [99], timeout_s=10)
        await batcher.stop()
        return after

    assert run(main()) == [990]
    assert recorder.calls == [("compare", [0, 1]), ("compare", [99])]


def test_drain_judges_what_fits_its_budget_and_refuses_the_rest():
    gate, recorder, held = held_recorder()

    async def main():
        batcher = Batcher(held, max_items=1, max_wait_s=0.0, max_queue=10)
        batcher.start()
        running = asyncio.ensure_future(batcher.submit("compare", [1], timeout_s=10))
        await asyncio.sleep(0.05)
        waiting = [asyncio.ensure_future(batcher.submit("compare", [item], timeout_s=10)) for item in (2, 3)]
        await asyncio.sleep(0.05)
        batcher.drain(0.0)  # no time at all: the running call's job and the waiting ones are refused now
        with pytest.raises(ShuttingDown):
            await batcher.submit("compare", [4], timeout_s=10)
        outcomes = await asyncio.gather(running, *waiting, return_exceptions=True)
        gate.set()
        await batcher.stop()
        return outcomes

    outcomes = run(main())
    assert all(isinstance(outcome, ShuttingDown) for outcome in outcomes), outcomes
    assert [items for _, items in recorder.calls] in ([], [[1]])  # only the call already running, if it ended


def test_drain_with_time_enough_judges_everything_accepted():
    recorder = Recorder()

    async def main():
        batcher = Batcher(recorder, max_items=1, max_wait_s=0.0, max_queue=10)
        batcher.start()
        jobs = [asyncio.ensure_future(batcher.submit("compare", [item], timeout_s=10)) for item in range(5)]
        await asyncio.sleep(0)
        batcher.drain(30.0)
        results = await asyncio.gather(*jobs)
        await batcher.stop()
        return results

    assert run(main()) == [[0], [10], [20], [30], [40]]
