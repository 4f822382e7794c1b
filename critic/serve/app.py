"""The ASGI app: ``create_app(judge, settings)``, a Starlette app over any critic judge.

Endpoints: ``POST /v1/compare``, ``POST /v1/score`` (reward judges), ``POST
/v1/rank``, ``POST /get_reward`` (OpenRLHF's remote reward model), ``GET
/health`` (no key needed), ``GET /v1/info``, ``GET /metrics``. Every judge call
goes through one :class:`~critic.serve.batcher.Batcher`; the judge is fixed at
start-up (its model, template and settings): nothing in a request chooses them.

A POST is read, then parsed into a compact request (pairs, conversations,
texts) before it waits for the judge: the body and its JSON are gone by then.
Every answer that is not a 200 is the JSON error shape (:func:`critic.wire.problem_object`,
with its message in the ``X-Critic-Error`` header too) and is counted in
``/metrics`` by endpoint and status, 404/405 and unexpected failures (500, logged
with their traceback) included; a client gone mid-request counts as 499.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from dataclasses import dataclass

from critic.errors import CriticError, MissingDependencyError
from critic.io.writers import dumps_row
from critic.judges.base import PairwiseJudge
from critic.serve import protocol
from critic.serve.batcher import Batcher, BatchFailed, QueueFull, ShuttingDown
from critic.serve.metrics import Metrics
from critic.serve.protocol import HTTPProblem
from critic.serve.rewards import get_reward
from critic.serve.settings import ServeSettings
from critic.wire import ERROR_HEADER, error_object, problem_header, result_object

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

logger = logging.getLogger("critic")

RETRY_AFTER_S = 1
SHUTDOWN_RETRY_AFTER_S = 2  # a stopping server: another one (or this one, restarted) takes the retry
UNKNOWN_ENDPOINT = "(other)"  # the /metrics label of a path the server does not serve (no label per path)
Disconnected = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Endpoint:
    """A POST endpoint: ``parse(json, service)`` makes the compact request, ``run(request, service, disconnected)``
    judges it and makes the answer."""

    parse: Callable[[Any, Service], Any]
    run: Callable[[Any, Service, Disconnected], Awaitable[dict[str, Any]]]


class Service:
    """The judge, its batcher and its metrics: what every endpoint shares."""

    def __init__(self, judge: PairwiseJudge, settings: ServeSettings) -> None:
        self.judge = judge
        self.settings = settings
        self.metrics = Metrics()
        self.reward = callable(getattr(judge, "score_each", None))
        self.description = judge.describe()
        self.batcher = Batcher(self._run, max_items=settings.max_batch_pairs,
                               max_wait_s=settings.max_wait_ms / 1000.0, max_queue=settings.max_queue,
                               metrics=self.metrics)

    def _run(self, kind: str, items: list[Any]) -> list[Any]:
        if kind == "score":
            return list(self.judge.score_each(items))  # type: ignore[attr-defined]
        return list(self.judge.compare_each(items))

    async def judged(self, kind: str, items: list[Any], disconnected: Callable[[], Awaitable[None]]) -> list[Any]:
        return await self.batcher.submit(kind, items, timeout_s=self.settings.request_timeout_s,
                                         disconnected=disconnected)

    def count(self, endpoint: str, results: list[Any]) -> None:
        failed = sum(isinstance(result, CriticError) for result in results)
        if failed:
            self.metrics.items.inc(failed, endpoint=endpoint, outcome="failed")
        if len(results) - failed:
            self.metrics.items.inc(len(results) - failed, endpoint=endpoint, outcome="ok")

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        self.batcher.start()
        logger.info("serving %s", self.description.summary())
        try:
            yield
        finally:
            await self.batcher.stop()  # uvicorn has let the requests in flight finish; the batcher drains


def create_app(judge: PairwiseJudge, settings: ServeSettings | None = None) -> Starlette:
    """A Starlette app serving ``judge`` (a generative ``Judge``, a ``RewardJudge``, or any PairwiseJudge).

    Run it with :func:`critic.serve.server.server` (uvicorn with critic's limits and shutdown).
    """
    settings = settings if settings is not None else ServeSettings()
    try:
        from starlette.applications import Starlette
        from starlette.exceptions import HTTPException
        from starlette.routing import Route
    except ImportError:
        raise MissingDependencyError("starlette", "serve", "critic serve") from None
    service = Service(judge, settings)

    def post(path: str, endpoint: Endpoint) -> Route:
        async def endpoint_function(request: Request) -> Response:
            return await _answer(request, service, path, endpoint)

        return Route(path, endpoint_function, methods=["POST"])

    def get(path: str, render: Callable[[Service], tuple[bytes, str]], *, auth: bool = True) -> Route:
        async def endpoint_function(request: Request) -> Response:
            from starlette.responses import Response

            try:
                if auth:
                    _authorize(request, settings)
            except HTTPProblem as problem:
                service.metrics.requests.inc(endpoint=path, outcome=str(problem.status))
                return _json(problem.body(), problem.status, problem.headers)
            service.metrics.requests.inc(endpoint=path, outcome="200")
            body, media_type = render(service)
            return Response(body, media_type=media_type)

        return Route(path, endpoint_function, methods=["GET"])

    routes = [
        post("/v1/compare", Endpoint(lambda data, s: protocol.parse_compare(data, s.settings), _compare)),
        post("/v1/score", Endpoint(_parse_score, _score)),
        post("/v1/rank", Endpoint(lambda data, s: protocol.parse_rank(data, s.settings), _rank)),
        post("/get_reward", Endpoint(lambda data, s: protocol.parse_get_reward(data, s.settings), get_reward)),
        get("/health", lambda _: (dumps_row({"status": "ok"}), "application/json"), auth=False),
        get("/v1/info", lambda s: (dumps_row(_info(s)), "application/json")),
        get("/metrics", lambda s: (s.metrics.render().encode(), "text/plain; version=0.0.4; charset=utf-8")),
    ]
    paths = {route.path for route in routes}

    async def refused_by_routing(request: Request, error: Exception) -> Response:
        """404 (no such path) and 405 (a path served with another method) in the JSON error shape."""
        assert isinstance(error, HTTPException)
        path = request.url.path if request.url.path in paths else UNKNOWN_ENDPOINT
        service.metrics.requests.inc(endpoint=path, outcome=str(error.status_code))
        message = (f"no endpoint {request.url.path}; this server serves {', '.join(sorted(paths))}"
                   if error.status_code == 404 else f"{request.method} is not allowed on {request.url.path}")
        return _json(HTTPProblem(error.status_code, message).body(), error.status_code, dict(error.headers or {}))

    async def failed(request: Request, error: Exception) -> Response:
        service.metrics.requests.inc(endpoint=request.url.path if request.url.path in paths else UNKNOWN_ENDPOINT,
                                     outcome="500")
        return _json(HTTPProblem(500, f"the server failed: {type(error).__name__}: {error}").body(), 500)

    app = Starlette(routes=routes, lifespan=service.lifespan,
                    exception_handlers={HTTPException: refused_by_routing, Exception: failed})
    app.state.service = service
    return app


async def _compare(request: protocol.CompareRequest, service: Service, disconnected: Disconnected) -> dict[str, Any]:
    results = await service.judged("compare", list(request.pairs), disconnected)
    service.count("/v1/compare", results)
    return {"results": [result_object(result, pair_id) for result, pair_id in zip(results, request.ids, strict=True)]}


def _parse_score(data: Any, service: Service) -> protocol.ScoreRequest:
    if not service.reward:
        raise HTTPProblem(400, f"this server runs a {service.description.kind} judge, which has no pointwise "
                               "score; /v1/score needs a reward model (critic serve --kind reward). Use /v1/compare "
                               "or /v1/rank")
    return protocol.parse_score(data, service.settings)


async def _score(request: protocol.ScoreRequest, service: Service, disconnected: Disconnected) -> dict[str, Any]:
    results = await service.judged("score", list(request.conversations), disconnected)
    service.count("/v1/score", results)
    return {"results": [{"error": error_object(result)} if isinstance(result, CriticError) else {"score": result}
                        for result in results]}


async def _rank(request: protocol.RankRequest, service: Service, disconnected: Disconnected) -> dict[str, Any]:
    from critic.judges.ranking import rank_results, ranking_pairs

    pairs, indices = ranking_pairs(request.prompt, request.responses, reference=request.reference,
                                   history=request.history)
    results = await service.judged("compare", pairs, disconnected)  # the batcher splits it into bounded calls
    service.count("/v1/rank", results)
    return rank_results(len(request.responses), indices, results).to_dict()


def _info(service: Service) -> dict[str, Any]:
    from critic import __version__

    endpoints = ["/v1/compare", "/v1/rank", "/get_reward"] + (["/v1/score"] if service.reward else [])
    return {"judge": service.description.to_dict(), "limits": service.settings.limits(), "endpoints": endpoints,
            "auth": service.settings.api_key is not None, "version": __version__}


async def _answer(request: Request, service: Service, path: str, endpoint: Endpoint) -> Response:
    from starlette.requests import ClientDisconnect

    started = time.perf_counter()
    status, headers = 200, {}
    try:
        _authorize(request, service.settings)
        # One expression: neither the body nor its JSON outlives the parse (a queued request holds pairs only).
        parsed = endpoint.parse(protocol.parse_json(await _body(request, service.settings.max_body_bytes)), service)
        payload = await endpoint.run(parsed, service, lambda: _disconnected(request))
    except HTTPProblem as problem:
        status, payload, headers = problem.status, problem.body(), problem.headers
    except ShuttingDown as error:
        status, headers = 503, {"Retry-After": str(SHUTDOWN_RETRY_AFTER_S)}
        payload = HTTPProblem(503, f"{error}; retry after {SHUTDOWN_RETRY_AFTER_S} s").body()
    except QueueFull as error:
        status, headers = 503, {"Retry-After": str(RETRY_AFTER_S)}
        payload = HTTPProblem(503, f"the server is busy ({error}); retry after {RETRY_AFTER_S} s").body()
    except TimeoutError as error:
        status, payload = 504, HTTPProblem(504, f"the judge did not answer in time ({error})").body()
    except BatchFailed as error:
        status, payload = 500, HTTPProblem(500, error.reason).body()
    except (ConnectionError, ClientDisconnect):
        # The client has gone (or the server cut a body too slow: the status it sent is in the scope).
        status, payload = int(request.scope.get("critic.answered", 499)), {}
    except CriticError as error:  # a bad argument found past parsing (e.g. a ranking with no responses)
        status, payload = 422, HTTPProblem(422, str(error)).body()
    except Exception as error:  # noqa: BLE001 - a bug: logged with its traceback, answered and counted
        logger.exception("%s failed", path)
        status, payload = 500, HTTPProblem(500, f"the server failed: {type(error).__name__}: {error}").body()
    service.metrics.requests.inc(endpoint=path, outcome=str(status))
    service.metrics.latency.observe(time.perf_counter() - started, endpoint=path)
    return _json(payload, status, headers)


def _authorize(request: Request, settings: ServeSettings) -> None:
    if settings.api_key is None:
        return
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    expected = settings.api_key.encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        raise HTTPProblem(401, "a valid 'Authorization: Bearer <key>' header is required",
                          headers={"WWW-Authenticate": "Bearer"})


async def _body(request: Request, limit: int) -> bytes:
    """The body, refused (413) by its Content-Length or, without one, as soon as it grows past ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPProblem(400, f"Content-Length '{declared}' is not a number")
        if int(declared) > limit:
            raise HTTPProblem(413, f"the body is {declared} bytes, over the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPProblem(413, f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _disconnected(request: Request) -> None:
    """Returns when the client goes away (the body has been read: the next message is the disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _json(payload: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    """A JSON response; an error's message goes in the X-Critic-Error header too (and so in the reason phrase)."""
    from starlette.responses import Response

    headers = dict(headers or {})
    problem = payload.get("error")
    if status >= 400 and isinstance(problem, dict) and "message" in problem:
        headers[ERROR_HEADER] = problem_header(str(problem["message"]), problem.get("field"))
    return Response(dumps_row(payload), status_code=status, headers=headers, media_type="application/json")
