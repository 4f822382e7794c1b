"""The retry loop and backoff both HTTP clients share (critic.http)."""

from __future__ import annotations

import asyncio

import pytest

from critic.http import Backoff, Retry, aretried, retried


def test_the_wait_doubles_up_to_the_cap_and_honours_retry_after_within_it():
    backoff = Backoff(0.5, 8.0, jitter=False)
    assert [backoff.wait(attempt) for attempt in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert backoff.wait(0, "3") == 3.0
    assert backoff.wait(0, "60") == 8.0  # capped
    assert backoff.wait(2, "1") == 2.0  # never shorter than the exponential wait
    assert backoff.wait(1, "Wed, 21 Oct 2015 07:28:00 GMT") == 1.0  # an HTTP date: the exponential wait stands


def test_jitter_shortens_the_wait_by_at_most_half():
    waits = [Backoff(1.0, 8.0, jitter=True).wait(2) for _ in range(200)]
    assert all(2.0 <= wait <= 4.0 for wait in waits) and len(set(waits)) > 1


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_attempt_is_repeated_until_it_answers_or_the_tries_are_spent(kind):
    backoff = Backoff(0.001, 0.002, jitter=False)

    def run(outcomes):
        tries = []

        def attempt():
            tries.append(1)
            return outcomes[len(tries) - 1]

        async def aattempt():
            return attempt()

        if kind == "sync":
            return retried(attempt, retries=2, backoff=backoff), len(tries)
        return asyncio.run(aretried(aattempt, retries=2, backoff=backoff)), len(tries)

    busy = Retry("busy", 503)
    assert run([busy, busy, "answer"]) == ("answer", 3)
    assert run(["answer"]) == ("answer", 1)
    assert run([busy, busy, busy, "never asked"]) == (busy, 3)
