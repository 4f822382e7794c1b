"""``RemoteJudge``: a judge served by ``critic serve``, with the same API as a local one.

``compare``, ``compare_batch``, ``compare_each`` and ``describe`` behave as on
:class:`critic.Judge`; each call is ``POST /v1/compare`` (split into requests
of the server's ``max_pairs_per_request``). A busy server (503) or a refused
connection is retried with bounded exponential backoff (``retries`` times,
honouring ``Retry-After``); any other refusal is raised as the
:class:`~critic.errors.CriticError` it describes. A pair that failed on the
server comes back as the error subclass and kind it failed with.
``acompare_each`` is the same call as a coroutine (for async reward functions).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

from critic.errors import CriticError, InputError, MissingDependencyError, ModelError
from critic.judges.base import BaseJudge, PairLike, as_pair, with_pair_index
from critic.judges.description import JudgeDescription
from critic.judges.each import ajudged_in_place, chunked, read_each
from critic.serve.protocol import rebuild_error
from critic.serve.settings import API_KEY_ENV
from critic.types import OrderJudgment, Pair, Preference

DEFAULT_TIMEOUT_S = 600.0
DEFAULT_RETRIES = 5
BACKOFF_S = 0.5  # first wait; doubled each retry, at most MAX_BACKOFF_S
MAX_BACKOFF_S = 8.0
RETRIED_STATUSES = frozenset({503})


class RemoteJudge(BaseJudge):
    """A pairwise judge behind ``critic serve`` at ``url`` (e.g. ``http://127.0.0.1:8000``).

    Args:
        url: the server's address.
        api_key: sent as ``Authorization: Bearer <key>``; default ``CRITIC_API_KEY`` from the environment.
        timeout: seconds for one HTTP request.
        retries: how many times a 503 or a connection error is retried (0: never).
    """

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 retries: int = DEFAULT_RETRIES) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InputError(f"the judge URL must start with http:// or https://, got {url!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InputError(f"retries must be a whole number >= 0, got {retries!r}")
        self.url = url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
        self.timeout = timeout
        self.retries = retries
        self._info: dict[str, Any] | None = None
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:  # picklable for Ray actors: the HTTP client is made again
        return {**self.__dict__, "_client": None}

    def describe(self) -> JudgeDescription:
        """The served judge's description (``GET /v1/info``)."""
        return JudgeDescription.from_dict(self.info()["judge"])

    def info(self) -> dict[str, Any]:
        """``GET /v1/info``: the judge's description and the server's limits (fetched once)."""
        if self._info is None:
            self._info = self._request("GET", "/v1/info")
        return self._info

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _judge_pairs(self, pairs: Sequence[Pair]) -> list[Preference | CriticError]:
        results: list[Preference | CriticError] = []
        for chunk in chunked(pairs, self._max_pairs()):
            answer = self._request("POST", "/v1/compare", {"pairs": [pair_object(pair) for pair in chunk]})
            results.extend(read_results(answer, len(chunk)))
        return results

    async def acompare_each(self, pairs: Iterable[PairLike]) -> list[Preference | CriticError]:
        """:meth:`compare_each` as a coroutine, over ``httpx.AsyncClient`` (no thread held while waiting)."""
        httpx = _httpx()
        checked = read_each(enumerate(pairs), lambda numbered: as_pair(numbered[1], numbered[0]))
        async with httpx.AsyncClient(timeout=self.timeout, headers=self._headers()) as client:

            async def judged(valid: list[Pair]) -> list[Preference | CriticError]:
                results: list[Preference | CriticError] = []
                for chunk in chunked(valid, self._max_pairs()):
                    answer = await self._arequest(client, "/v1/compare", {"pairs": [pair_object(p) for p in chunk]})
                    results.extend(read_results(answer, len(chunk)))
                return results

            results = await ajudged_in_place(checked, judged)
        return [with_pair_index(result, index) if isinstance(result, CriticError) else result
                for index, result in enumerate(results)]

    def _max_pairs(self) -> int:
        return int(self.info().get("limits", {}).get("max_pairs_per_request", 64))

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        httpx = _httpx()
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, headers=self._headers())
        for attempt in range(self.retries + 1):
            try:
                response = self._client.request(method, self.url + path, json=body)
            except httpx.TransportError as error:
                if attempt == self.retries:
                    raise ModelError(f"cannot reach the judge server at {self.url}: {error}; is `critic serve` "
                                     "running there?") from None
                time.sleep(_backoff(attempt, None))
                continue
            if response.status_code in RETRIED_STATUSES and attempt < self.retries:
                time.sleep(_backoff(attempt, response.headers.get("retry-after")))
                continue
            return _checked(response, self.url + path)
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _arequest(self, client: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
        httpx = _httpx()
        for attempt in range(self.retries + 1):
            try:
                response = await client.post(self.url + path, json=body)
            except httpx.TransportError as error:
                if attempt == self.retries:
                    raise ModelError(f"cannot reach the judge server at {self.url}: {error}") from None
                await asyncio.sleep(_backoff(attempt, None))
                continue
            if response.status_code in RETRIED_STATUSES and attempt < self.retries:
                await asyncio.sleep(_backoff(attempt, response.headers.get("retry-after")))
                continue
            return _checked(response, self.url + path)
        raise AssertionError("unreachable")


def pair_object(pair: Pair) -> dict[str, Any]:
    """A pair as ``/v1/compare`` reads it (empty fields left out)."""
    data: dict[str, Any] = {"prompt": pair.prompt, "response_a": pair.response_a, "response_b": pair.response_b}
    if pair.reference is not None:
        data["reference"] = pair.reference
    for name in ("history", "history_a", "history_b", "reference_history"):
        if getattr(pair, name):
            data[name] = [dict(message) for message in getattr(pair, name)]
    return data


def read_results(answer: dict[str, Any], expected: int) -> list[Preference | CriticError]:
    """``/v1/compare``'s results as preferences and errors (the error's class and kind as on the server)."""
    results = answer.get("results")
    if not isinstance(results, list) or len(results) != expected:
        got = len(results) if isinstance(results, list) else "no"
        raise ModelError(f"the judge server returned {got} results for {expected} pairs")
    return [rebuild_error(item["error"]) if "error" in item else preference_from_dict(item) for item in results]


def preference_from_dict(data: dict[str, Any]) -> Preference:
    """The :class:`Preference` that :meth:`Preference.to_dict` wrote."""
    orders = tuple(OrderJudgment(**order) for order in data["orders"])
    return Preference(data["label"], float(data["p_a"]), data["consistent"], orders)


def _checked(response: Any, where: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code == 200 and isinstance(data, dict):
        return data
    problem = data.get("error", {}) if isinstance(data, dict) else {}
    message = problem.get("message", response.text[:200]) if isinstance(problem, dict) else str(problem)
    field = f" (field {problem['field']})" if isinstance(problem, dict) and "field" in problem else ""
    text = f"the judge server refused {where} with {response.status_code}: {message}{field}"
    if 400 <= response.status_code < 500:
        raise InputError(text)
    raise ModelError(text)


def _backoff(attempt: int, retry_after: str | None) -> float:
    wait = min(BACKOFF_S * 2**attempt, MAX_BACKOFF_S)
    if retry_after is not None and retry_after.isdigit():
        wait = min(max(wait, float(retry_after)), MAX_BACKOFF_S)
    return wait


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise MissingDependencyError("httpx", "serve", "critic.client.RemoteJudge") from None
    return httpx
