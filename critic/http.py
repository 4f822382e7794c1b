"""Asking an HTTP server again, written once for every critic HTTP client.

Both clients (the server backends' :class:`critic.backends._http.HttpClient`
and :class:`critic.client.RemoteJudge`) repeat a request the same way: an
attempt gives the answer, or a :class:`Retry` saying what went wrong; while
tries are left :func:`retried` (sync) or :func:`aretried` (async) waits as
:class:`Backoff` says and tries again; once they are spent it hands back the
last :class:`Retry`, and the client words the failure its own way. Which
answers are worth repeating (statuses, transport errors) is the client's
choice. This module imports nothing of critic but its errors, so either client
may use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from critic.errors import MissingDependencyError

logger = logging.getLogger("critic")

Answer = TypeVar("Answer")

BACKOFF_S = 0.5  # the first wait; doubled each retry, at most MAX_BACKOFF_S
MAX_BACKOFF_S = 8.0


def import_httpx(feature: str = "the server backend") -> Any:
    """The ``httpx`` module, or :class:`MissingDependencyError` with the install hint."""
    try:
        import httpx
    except ImportError:
        raise MissingDependencyError("httpx", "serve", feature) from None
    return httpx


@dataclass(frozen=True)
class Retry:
    """An attempt worth repeating: what went wrong, the status (None: no answer), the server's Retry-After.

    ``cause`` is what the client needs to word the failure once the tries are
    spent (the last response, or the transport error).
    """

    problem: str
    status: int | None = None
    retry_after: str | None = None
    cause: Any = None


@dataclass(frozen=True)
class Backoff:
    """How long to wait before asking again.

    ``first * 2**attempt`` seconds, at most ``longest``; at least what a
    ``Retry-After`` header asks (in seconds; an HTTP date leaves the
    exponential wait), also capped at ``longest``. With ``jitter`` the wait is
    then multiplied by a random factor in [0.5, 1], so that many clients do not
    come back at the same moment.
    """

    first: float = BACKOFF_S
    longest: float = MAX_BACKOFF_S
    jitter: bool = True

    def wait(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait after the failed try number ``attempt`` (0 for the first)."""
        wait = min(self.first * 2**attempt, self.longest)
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                wait = max(wait, min(float(retry_after), self.longest))
        return wait * random.uniform(0.5, 1.0) if self.jitter else wait

    def next_wait(self, attempt: int, outcome: object, retries: int) -> float | None:
        """The wait before the next try, or None when there is none: ``outcome`` answered, or no tries are left."""
        if not isinstance(outcome, Retry) or attempt == retries:
            return None
        wait = self.wait(attempt, outcome.retry_after)
        logger.debug("%s; asking again in %.2f s", outcome.problem, wait)
        return wait


def retried(attempt: Callable[[], Answer | Retry], *, retries: int, backoff: Backoff) -> Answer | Retry:
    """``attempt()``, tried again up to ``retries`` times while it gives a :class:`Retry`; its last outcome."""
    for number in range(retries + 1):
        outcome = attempt()
        wait = backoff.next_wait(number, outcome, retries)
        if wait is None:
            return outcome
        time.sleep(wait)
    raise AssertionError("unreachable")  # the last try returns


async def aretried(
    attempt: Callable[[], Awaitable[Answer | Retry]], *, retries: int, backoff: Backoff
) -> Answer | Retry:
    """:func:`retried` for a coroutine: the event loop stays free while it waits."""
    for number in range(retries + 1):
        outcome = await attempt()
        wait = backoff.next_wait(number, outcome, retries)
        if wait is None:
            return outcome
        await asyncio.sleep(wait)
    raise AssertionError("unreachable")  # the last try returns
