"""``RemoteJudge``: a judge served by ``critic serve``, with the same API as a local one.

``compare``, ``compare_batch``, ``compare_each`` and ``describe`` behave as on
:class:`critic.Judge`; each call is ``POST /v1/compare`` (split into requests
of the server's ``max_pairs_per_request``). A busy or stopping server (503,
honouring ``Retry-After``) or a refused or dropped connection is retried with
bounded exponential backoff (``retries`` times), so a server restarted in the
meantime gets the work. A request refused for one pair's contents (413 naming
the pair: a text over the server's limit; 422 naming the pair) costs only that
pair: it fails with the reason (an :class:`~critic.errors.InputError`, kind
``too long for the model`` for a size problem) and the rest of the chunk is
sent again; a body over the server's size limit is split in halves. Any other
refusal is raised as the :class:`~critic.errors.CriticError` it describes. A
pair that failed on the server comes back as the error subclass and kind it
failed with. ``acompare_each`` is the same call as a coroutine (for async
reward functions).

The wire format is :mod:`critic.wire`, shared with the server.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

from critic.errors import CriticError, InputError, ModelError, Reason
from critic.http import BACKOFF_S, MAX_BACKOFF_S, Backoff, Retry, aretried, import_httpx, retried
from critic.judges.base import BaseJudge, PairLike, as_pair, with_pair_index
from critic.judges.description import JudgeDescription
from critic.judges.each import ajudged_in_place, chunked, judged_in_place, read_each
from critic.types import Pair, Preference
from critic.wire import API_KEY_ENV, pair_object, read_problem, read_results

DEFAULT_TIMEOUT_S = 600.0
DEFAULT_RETRIES = 5
RETRIED_STATUSES = frozenset({503})
FEATURE = "critic.client.RemoteJudge"  # what needs httpx, for the install hint
PAIR_FIELD = re.compile(r"pairs\[(\d+)\](?:\.(.+))?")


class Refused(InputError):
    """The server refused a request for its size (413) or contents (422); ``field`` names what, if it said."""

    def __init__(self, message: str, *, status: int, field: str | None, detail: str,
                 kind: Reason | None = None) -> None:
        super().__init__(message, kind=kind)
        self.status = status
        self.field = field
        self.detail = detail  # the server's own words


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
        return self._judged_parts(pairs, self._max_pairs())

    def _judged_parts(self, pairs: Sequence[Pair], size: int) -> list[Preference | CriticError]:
        return [result for part in chunked(pairs, size) for result in self._judged_chunk(part)]

    def _judged_chunk(self, chunk: list[Pair]) -> list[Preference | CriticError]:
        try:
            answer = self._request("POST", "/v1/compare", {"pairs": [pair_object(pair) for pair in chunk]})
        except Refused as refused:
            items, size = retry_plan(chunk, refused)
            return judged_in_place(items, lambda rest: self._judged_parts(rest, size))
        return read_results(answer, len(chunk))

    async def acompare_each(self, pairs: Iterable[PairLike]) -> list[Preference | CriticError]:
        """:meth:`compare_each` as a coroutine, over ``httpx.AsyncClient`` (no thread held while waiting)."""
        httpx = import_httpx(FEATURE)
        checked = read_each(enumerate(pairs), lambda numbered: as_pair(numbered[1], numbered[0]))
        async with httpx.AsyncClient(timeout=self.timeout, headers=self._headers()) as client:
            if self._info is None:
                self._info = await self._arequest(client, "GET", "/v1/info")
            size = self._max_pairs()
            results = await ajudged_in_place(checked, lambda valid: self._ajudged_parts(client, valid, size))
        return [with_pair_index(result, index) if isinstance(result, CriticError) else result
                for index, result in enumerate(results)]

    async def _ajudged_parts(self, client: Any, pairs: Sequence[Pair], size: int) -> list[Preference | CriticError]:
        return [result for part in chunked(pairs, size) for result in await self._ajudged_chunk(client, part)]

    async def _ajudged_chunk(self, client: Any, chunk: list[Pair]) -> list[Preference | CriticError]:
        try:
            answer = await self._arequest(client, "POST", "/v1/compare", {"pairs": [pair_object(p) for p in chunk]})
        except Refused as refused:
            items, size = retry_plan(chunk, refused)
            return await ajudged_in_place(items, lambda rest: self._ajudged_parts(client, rest, size))
        return read_results(answer, len(chunk))

    def _max_pairs(self) -> int:
        return int(self.info().get("limits", {}).get("max_pairs_per_request", 64))

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        httpx = import_httpx(FEATURE)
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, headers=self._headers())
        url = self.url + path

        def attempt() -> Any:
            try:
                return _retry_if_busy(self._client.request(method, url, json=body))
            except httpx.TransportError as error:
                return Retry(f"{method} {url} failed: {error}", cause=error)

        return self._answer(retried(attempt, retries=self.retries, backoff=_backoff()), url)

    async def _arequest(self, client: Any, method: str, path: str, body: dict[str, Any] | None = None
                        ) -> dict[str, Any]:
        httpx = import_httpx(FEATURE)
        url = self.url + path

        async def attempt() -> Any:
            try:
                return _retry_if_busy(await client.request(method, url, json=body))
            except httpx.TransportError as error:
                return Retry(f"{method} {url} failed: {error}", cause=error)

        return self._answer(await aretried(attempt, retries=self.retries, backoff=_backoff()), url)

    def _answer(self, outcome: Any, url: str) -> dict[str, Any]:
        """The answer's JSON, or the error the last try earned: the server unreachable, or its refusal."""
        if isinstance(outcome, Retry):
            if isinstance(outcome.cause, Exception):
                raise self._unreachable(outcome.cause) from None
            outcome = outcome.cause  # still busy: its last answer says why
        return _checked(outcome, url)

    def _unreachable(self, error: Exception) -> ModelError:
        return ModelError(f"cannot reach the judge server at {self.url} after {self.retries + 1} tries: {error}; is "
                          "`critic serve` running there?")


def retry_plan(chunk: list[Pair], refused: Refused) -> tuple[list[Pair | CriticError], int]:
    """After the server refused ``chunk`` for its size or contents: what to send again, and in parts of what size.

    A refusal that names one pair (``pairs[i]...``) makes that pair's error, in its place; the
    others go again together. A body over the server's limit names no pair: the chunk is sent
    again in halves, down to one pair, whose refusal is then its own error. Any other refusal
    (one the request as a whole earned) is raised again.
    """
    named = PAIR_FIELD.fullmatch(refused.field or "")
    if named is not None and int(named.group(1)) < len(chunk):
        items: list[Pair | CriticError] = list(chunk)
        items[int(named.group(1))] = _pair_error(refused, named.group(2))
        return items, len(chunk)
    if refused.status == 413 and refused.field in (None, "pairs"):
        if len(chunk) == 1:
            return [_pair_error(refused, None)], 1
        return list(chunk), (len(chunk) + 1) // 2
    raise refused


def _pair_error(refused: Refused, part: str | None) -> InputError:
    where = f"its {part}" if part else "it"
    kind = Reason.TOO_LONG if refused.status == 413 else refused.kind
    return InputError(f"the judge server refused {where} ({refused.status}): {refused.detail}", kind=kind)


def _checked(response: Any, where: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code == 200 and isinstance(data, dict):
        return data
    message, field, kind = read_problem(data)
    message = message if message is not None else response.text[:200]
    shown = f" (field {field})" if field is not None else ""
    text = f"the judge server refused {where} with {response.status_code}: {message}{shown}"
    if response.status_code in (413, 422):
        raise Refused(text, status=response.status_code, field=field, detail=message, kind=kind)
    if 400 <= response.status_code < 500:
        raise InputError(text)
    raise ModelError(text)


def _retry_if_busy(response: Any) -> Any:
    """``response``, or a :class:`Retry` holding it when the server is busy or stopping (503)."""
    if response.status_code in RETRIED_STATUSES:
        return Retry(f"the judge server answered {response.status_code}", response.status_code,
                     response.headers.get("retry-after"), cause=response)
    return response


def _backoff() -> Backoff:
    # Read at each request, so that the module's BACKOFF_S and MAX_BACKOFF_S can be changed (tests make them short).
    return Backoff(BACKOFF_S, MAX_BACKOFF_S, jitter=False)
