"""What every judge shares: the async twins give the sync methods' results, and a judge closes its backend."""

from __future__ import annotations

import asyncio
import threading

import pytest

from critic import InputError, Judge, Pair, RewardJudge, VerdictError
from critic.backends.base import AsyncBackend, Backend, BackendBase
from critic.testing import FakeBackend, FakeScorer, letter_output

PAIRS = [Pair("q1", "good answer", "bad"), {"prompt": "q2"}, Pair("q3", "bad", "good answer")]
CONVERSATIONS = [[{"role": "user", "content": "q"}, {"role": "assistant", "content": "good answer"}],
                 [{"role": "assistant"}], [{"role": "user", "content": "q"}, {"role": "assistant", "content": "x"}]]


def prefers_good() -> FakeBackend:
    return FakeBackend.prefer(lambda text: "good" in text)


def same(results, others) -> bool:
    """Equal results, errors compared by type, message and pair index."""
    def key(item):
        return (type(item).__name__, str(item), item.pair_index) if isinstance(item, Exception) else item
    return [key(item) for item in results] == [key(item) for item in others]


def test_acompare_each_is_compare_each_as_a_coroutine():
    judge = Judge(prefers_good())
    results = asyncio.run(judge.acompare_each(PAIRS))
    assert same(results, judge.compare_each(PAIRS))
    assert isinstance(results[1], InputError) and results[1].pair_index == 1
    assert [r.label for r in (results[0], results[2])] == ["A", "B"]


def test_acompare_and_acompare_batch_raise_as_their_twins_do():
    judge = Judge(prefers_good())
    assert asyncio.run(judge.acompare("q", "bad", "good answer")).label == "B"
    with pytest.raises(InputError, match="pair 1") as raised:
        asyncio.run(judge.acompare_batch(PAIRS))
    assert raised.value.pair_index == 1


def test_the_default_async_twin_runs_the_sync_call_in_a_worker_thread():
    threads = []

    class Recording(BackendBase):
        def run(self, requests):
            threads.append(threading.current_thread())
            return [letter_output(0.5) for _ in requests]

    assert isinstance(Recording(), AsyncBackend)
    asyncio.run(Judge(Recording()).acompare_each(PAIRS[:1]))
    assert threads and threads[0] is not threading.main_thread()


def test_a_backend_with_run_alone_works_with_every_judge_method():
    class RunOnly:  # a user's backend written against the one-method protocol, no base class
        def run(self, requests):
            return [letter_output(0.8 if "good" in r.pair.response_a else 0.2) for r in requests]

    backend = RunOnly()
    assert isinstance(backend, Backend) and not isinstance(backend, AsyncBackend)
    with Judge(backend) as judge:  # nothing to close: no error
        assert same(asyncio.run(judge.acompare_each(PAIRS)), judge.compare_each(PAIRS))


def test_a_native_async_backend_is_awaited_not_run():
    class Native(BackendBase):
        kind = "native"

        def run(self, requests):
            raise AssertionError("the async path must not call run")

        async def arun(self, requests):
            await asyncio.sleep(0)
            return [letter_output(0.9) for _ in requests]

    async def both():
        judge = Judge(Native())
        return await asyncio.gather(judge.acompare_each(PAIRS), judge.acompare_each(PAIRS[::-1]))

    forward, backward = asyncio.run(both())
    assert same(forward, backward[::-1])
    assert forward[0].label == "tie" and forward[0].consistent is False  # pure position bias cancels out


def test_the_forced_verdict_step_is_the_same_in_async():
    def scripted():
        explanation = "Assistant A is more detailed."  # no verdict: the constrained step forces one
        return FakeBackend.scripted([explanation, "[[B]]", "[[A]]"])  # ab, ba, then the forced ab

    sync_judge = Judge(scripted(), template="mt-bench", mode="generate")
    async_judge = Judge(scripted(), template="mt-bench", mode="generate")
    expected = sync_judge.compare_each([PAIRS[0]])
    results = asyncio.run(async_judge.acompare_each([PAIRS[0]]))
    assert same(results, expected) and results[0].orders[0].forced
    assert [request.mode for request in async_judge.backend.calls] == ["generate", "generate", "constrained"]


def test_an_unreadable_verdict_fails_its_pair_in_async_too():
    judge = Judge(FakeBackend.scripted(["no verdict here", "[[A]]"]), mode="generate")
    (result,) = asyncio.run(judge.acompare_each([PAIRS[0]]))
    assert isinstance(result, VerdictError) and result.pair_index == 0


def test_a_judge_closes_its_backend_and_its_scorer():
    closed = []

    class Closing(BackendBase):
        def run(self, requests):
            return [letter_output(0.5) for _ in requests]

        def close(self):
            closed.append("backend")

    class ClosingScorer(FakeScorer):
        def close(self):
            closed.append("scorer")

    with Judge(Closing()) as judge:
        judge.compare("q", "a", "b")
    with RewardJudge(ClosingScorer(lambda messages: 0.0)) as reward:
        reward.compare("q", "a", "b")
    assert closed == ["backend", "scorer"]


def test_reward_judges_async_twins_equal_the_sync_methods():
    judge = RewardJudge(FakeScorer.by_response({"good answer": 2.0, "bad": -1.0}))
    assert same(asyncio.run(judge.acompare_each(PAIRS)), judge.compare_each(PAIRS))
    assert same(asyncio.run(judge.ascore_each(CONVERSATIONS)), judge.score_each(CONVERSATIONS))
    assert asyncio.run(judge.ascore([CONVERSATIONS[0]])) == judge.score([CONVERSATIONS[0]]) == [2.0]
    with pytest.raises(InputError, match="conversation 1"):
        asyncio.run(judge.ascore(CONVERSATIONS))


def test_the_sync_path_never_needs_an_event_loop():
    async def inside_a_running_loop():
        return Judge(prefers_good()).compare_each(PAIRS[:1])  # e.g. called from an async server's thread

    assert asyncio.run(inside_a_running_loop())[0].label == "A"
