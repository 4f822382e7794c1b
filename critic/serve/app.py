"""The ASGI app: ``create_app(judge, settings)``, a Starlette app over any critic judge.

Endpoints: ``POST /v1/compare``, ``POST /v1/score`` (reward judges), ``POST
/v1/rank``, ``POST /get_reward`` (OpenRLHF's remote reward model), ``GET
/health`` (no key needed), ``GET /v1/info``, ``GET /metrics``. Every judge call
goes through one :class:`~critic.serve.batcher.Batcher`; the judge is fixed at
start-up (its model, template and settings): nothing in a request chooses them.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from critic.errors import CriticError, MissingDependencyError
from critic.io.writers import dumps_row
from critic.judges.base import PairwiseJudge
from critic.serve import protocol
from critic.serve.batcher import Batcher, BatchFailed, QueueFull
from critic.serve.metrics import Metrics
from critic.serve.protocol import HTTPProblem
from critic.serve.rewards import get_reward
from critic.serve.settings import ServeSettings

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

logger = logging.getLogger("critic")

RETRY_AFTER_S = 1
Handler = Callable[[Any, "Service", Callable[[], Awaitable[None]]], Awaitable[dict[str, Any]]]


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
    """A Starlette app serving ``judge`` (a generative ``Judge``, a ``RewardJudge``, or any PairwiseJudge)."""
    settings = settings if settings is not None else ServeSettings()
    try:
        from starlette.applications import Starlette
        from starlette.routing import Route
    except ImportError:
        raise MissingDependencyError("starlette", "serve", "critic serve") from None
    service = Service(judge, settings)

    def post(endpoint: str, handler: Handler) -> Route:
        async def endpoint_function(request: Request) -> Response:
            return await _answer(request, service, endpoint, handler)

        return Route(endpoint, endpoint_function, methods=["POST"])

    def get(endpoint: str, render: Callable[[Service], tuple[bytes, str]], *, auth: bool = True) -> Route:
        async def endpoint_function(request: Request) -> Response:
            from starlette.responses import Response

            try:
                if auth:
                    _authorize(request, settings)
            except HTTPProblem as problem:
                service.metrics.requests.inc(endpoint=endpoint, outcome=str(problem.status))
                return _json(problem.body(), problem.status, problem.headers)
            service.metrics.requests.inc(endpoint=endpoint, outcome="200")
            body, media_type = render(service)
            return Response(body, media_type=media_type)

        return Route(endpoint, endpoint_function, methods=["GET"])

    routes = [
        post("/v1/compare", _compare),
        post("/v1/score", _score),
        post("/v1/rank", _rank),
        post("/get_reward", get_reward),
        get("/health", lambda _: (dumps_row({"status": "ok"}), "application/json"), auth=False),
        get("/v1/info", lambda s: (dumps_row(_info(s)), "application/json")),
        get("/metrics", lambda s: (s.metrics.render().encode(), "text/plain; version=0.0.4; charset=utf-8")),
    ]
    app = Starlette(routes=routes, lifespan=service.lifespan)
    app.state.service = service
    return app


async def _compare(data: Any, service: Service, disconnected: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    request = protocol.parse_compare(data, service.settings)
    results = await service.judged("compare", list(request.pairs), disconnected)
    service.count("/v1/compare", results)
    return {"results": [protocol.result_object(result, pair_id)
                        for result, pair_id in zip(results, request.ids, strict=True)]}


async def _score(data: Any, service: Service, disconnected: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    if not service.reward:
        raise HTTPProblem(400, f"this server runs a {service.description.kind} judge, which has no pointwise "
                               "score; /v1/score needs a reward model (critic serve --kind reward). Use /v1/compare "
                               "or /v1/rank")
    request = protocol.parse_score(data, service.settings)
    results = await service.judged("score", list(request.conversations), disconnected)
    service.count("/v1/score", results)
    return {"results": [{"error": protocol.error_object(result)} if isinstance(result, CriticError)
                        else {"score": result} for result in results]}


async def _rank(data: Any, service: Service, disconnected: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    from critic.judges.ranking import rank_results, ranking_pairs

    request = protocol.parse_rank(data, service.settings)
    pairs, indices = ranking_pairs(request.prompt, request.responses, reference=request.reference,
                                   history=request.history)
    results = await service.judged("compare", pairs, disconnected)
    service.count("/v1/rank", results)
    return rank_results(len(request.responses), indices, results).to_dict()


def _info(service: Service) -> dict[str, Any]:
    from critic import __version__

    endpoints = ["/v1/compare", "/v1/rank", "/get_reward"] + (["/v1/score"] if service.reward else [])
    return {"judge": service.description.to_dict(), "limits": service.settings.limits(), "endpoints": endpoints,
            "auth": service.settings.api_key is not None, "version": __version__}


async def _answer(request: Request, service: Service, endpoint: str, handler: Handler) -> Response:
    started = time.perf_counter()
    status, headers = 200, {}
    try:
        _authorize(request, service.settings)
        data = protocol.parse_json(await _body(request, service.settings.max_body_bytes))
        payload = await handler(data, service, lambda: _disconnected(request))
    except HTTPProblem as problem:
        status, payload, headers = problem.status, problem.body(), problem.headers
    except QueueFull as error:
        status, headers = 503, {"Retry-After": str(RETRY_AFTER_S)}
        payload = HTTPProblem(503, f"the server is busy ({error}); retry after {RETRY_AFTER_S} s").body()
    except TimeoutError as error:
        status, payload = 504, HTTPProblem(504, f"the judge did not answer in time ({error})").body()
    except BatchFailed as error:
        status, payload = 500, HTTPProblem(500, error.reason).body()
    except ConnectionError:
        status, payload = 499, {}  # the client has gone: nobody reads this
    except CriticError as error:  # a bad argument found past parsing (e.g. a ranking with no responses)
        status, payload = 422, HTTPProblem(422, str(error)).body()
    service.metrics.requests.inc(endpoint=endpoint, outcome=str(status))
    service.metrics.latency.observe(time.perf_counter() - started, endpoint=endpoint)
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
    from starlette.responses import Response

    return Response(dumps_row(payload), status_code=status, headers=headers, media_type="application/json")
