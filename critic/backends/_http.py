"""One server's HTTP client for the server backends: JSON over httpx, bounded in every way.

:class:`HttpClient` posts JSON to one base URL and

- keeps at most ``max_concurrency`` requests in flight (per event loop; a request
  waiting to retry does not hold a place);
- gives each attempt ``timeout`` seconds in all (connecting, sending, waiting, reading);
- asks again, at most ``retries`` times, when the server is busy or unreachable:
  429, 502, 503, 504, a refused or dropped connection, a timeout. It waits
  ``backoff * 2**attempt`` seconds (at most ``max_backoff``, at least what a
  ``Retry-After`` header asks, also capped), times a random factor in [0.5, 1]
  so that many clients do not come back at the same moment (the loop and the
  wait are :mod:`critic.http`'s, shared with :class:`critic.client.RemoteJudge`);
- raises :class:`ServerError` (a :class:`~critic.errors.ModelError` whose message
  names the URL, the status or the transport error, the server's own message and
  the number of attempts) when a request fails for good. A 4xx other than 429 is
  not retried: asking again would get the same answer.

Sync callers (``Backend.run``) go through :meth:`HttpClient.call`, which runs a
coroutine on the client's own event loop in a daemon thread, so ``run`` works the
same inside or outside someone else's event loop. Async callers await the
methods in their own loop; each loop gets its own ``httpx.AsyncClient`` and
concurrency limit (httpx clients and asyncio semaphores belong to one loop).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from critic.errors import ModelError, Reason
from critic.http import BACKOFF_S, MAX_BACKOFF_S, Backoff, Retry, aretried, import_httpx

T = TypeVar("T")

RETRIED_STATUSES = frozenset({429, 502, 503, 504})
# Characters of a server's error body quoted in a message.
QUOTED_CHARS = 300


class ServerError(ModelError):
    """A request to a model server that failed for good: ``status`` (None: no answer) and the server's message."""

    def __init__(self, message: str, *, status: int | None = None, kind: Reason | None = None) -> None:
        super().__init__(message, kind=kind)
        self.status = status


@dataclass
class _Session:
    client: Any  # httpx.AsyncClient
    slots: asyncio.Semaphore


class HttpClient:
    """JSON requests to ``base_url`` with the limits in the module doc.

    Args:
        base_url: ``http://host:port`` (no trailing slash needed).
        api_key: sent as ``Authorization: Bearer <key>`` when given.
        timeout: seconds one attempt may take in all.
        retries: how many times a busy or unreachable server is asked again.
        max_concurrency: requests in flight at most (per event loop).
        backoff, max_backoff: the first wait before asking again, and the longest.
    """

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 600.0, retries: int = 3,
                 max_concurrency: int = 16, backoff: float = BACKOFF_S, max_backoff: float = MAX_BACKOFF_S) -> None:
        self.httpx = import_httpx()
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = timeout
        self.retries = retries
        self.max_concurrency = max_concurrency
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Session] = weakref.WeakKeyDictionary()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- requests ------------------------------------------------------------------------------

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        """``POST base_url + path`` with ``body`` as JSON; the answer's JSON, or :class:`ServerError`."""
        return await self.request("POST", path, body)

    async def get(self, path: str) -> Any:
        """``GET base_url + path``; the answer's JSON, or :class:`ServerError`."""
        return await self.request("GET", path)

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        session = self._session()
        url = self.base_url + path

        async def attempt() -> Any:
            async with session.slots:  # a request waiting to retry holds no place
                return await self._attempt(session.client, method, url, body)

        backoff = Backoff(self.backoff, self.max_backoff, jitter=True)
        outcome = await aretried(attempt, retries=self.retries, backoff=backoff)
        if isinstance(outcome, Retry):
            raise ServerError(f"{outcome.problem} ({self._attempts(self.retries + 1)}); check that the server at "
                              f"{self.base_url} is running and not overloaded, or raise --timeout "
                              "(ServerOptions.timeout; more attempts: ServerOptions.retries)", status=outcome.status)
        return outcome

    async def _attempt(self, client: Any, method: str, url: str, body: dict[str, Any] | None) -> Any:
        httpx = self.httpx
        try:
            response = await asyncio.wait_for(client.request(method, url, json=body), self.timeout)
        except (asyncio.TimeoutError, httpx.TimeoutException):
            return Retry(f"{method} {url} took longer than {self.timeout:g} s")
        except httpx.TransportError as error:
            return Retry(f"{method} {url} failed: {type(error).__name__}: {error or 'no answer'}")
        status = response.status_code
        if status in RETRIED_STATUSES:
            return Retry(f"{method} {url} answered {status}: {_quoted(response)}", status,
                         response.headers.get("retry-after"))
        if status != 200:
            raise ServerError(f"{method} {url} answered {status}: {_quoted(response)} (not asked again: the same "
                              "request would get the same answer)", status=status)
        try:
            return response.json()
        except ValueError:
            raise ServerError(f"{method} {url} answered 200 with a body that is not JSON: {_quoted(response)}",
                              status=status) from None

    def _attempts(self, count: int) -> str:
        return "1 attempt" if count == 1 else f"{count} attempts"

    # --- event loops -----------------------------------------------------------------------------

    def _session(self) -> _Session:
        """The running loop's httpx client and concurrency limit (made on first use in that loop)."""
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None:
            limits = self.httpx.Limits(max_connections=self.max_concurrency,
                                       max_keepalive_connections=self.max_concurrency)
            client = self.httpx.AsyncClient(headers=self._headers, timeout=self.timeout, limits=limits)
            session = _Session(client, asyncio.Semaphore(self.max_concurrency))
            self._sessions[loop] = session
        return session

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on this client's own loop (a daemon thread) and wait for it: for sync callers."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self._own_loop())
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def _own_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=f"critic-http {self.base_url}", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def close(self) -> None:
        """Close every loop's connections and stop the client's own loop (the client can be used again)."""
        for loop, session in list(self._sessions.items()):
            if loop.is_closed():
                continue
            closing = session.client.aclose()
            if loop is self._loop:
                asyncio.run_coroutine_threadsafe(closing, loop).result(timeout=10)
                continue
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                loop.create_task(closing)  # called from inside that loop: close without blocking it
            elif loop.is_running():
                asyncio.run_coroutine_threadsafe(closing, loop)
            else:
                closing.close()  # a loop that is not running: nothing can be awaited there any more
        self._sessions = weakref.WeakKeyDictionary()
        with self._lock:
            own, thread = self._loop, self._thread
            self._loop = self._thread = None
        if own is not None:
            own.call_soon_threadsafe(own.stop)
            if thread is not None:
                thread.join(timeout=10)
            own.close()

    def __getstate__(self) -> dict[str, Any]:
        """Picklable (Ray actors, worker processes): connections and loops are made again where it lands."""
        state = {**self.__dict__, "_sessions": None, "_loop": None, "_thread": None, "_lock": None}
        state.pop("httpx", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.httpx = import_httpx()
        self._sessions = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()


def _quoted(response: Any) -> str:
    """The server's own message: an OpenAI-style ``{"error": {"message"}}`` / ``{"message"}``, else the body's start."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data)
        message = error.get("message") if isinstance(error, dict) else error
        if message is None and isinstance(data.get("detail"), str):
            message = data["detail"]
        if message is not None:
            return " ".join(str(message).split())[:QUOTED_CHARS]
    return " ".join(response.text.split())[:QUOTED_CHARS] or "(empty body)"
