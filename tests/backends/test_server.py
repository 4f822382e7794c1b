"""The server backend against a real ``vllm serve`` on loopback: the transformers backend's numbers, in every mode.

One server of the demo model serves the run (``vllm_demo_server`` in tests/conftest.py,
started with critic's launcher), and one of a tiny random reward model
(``vllm_reward_server``). The transformers backend's probabilities for 16 PandaLM
pairs in both orders are computed once (``pandalm_score_reference``). SGLang cannot be
installed here: its dialect is tested through a stub that answers SGLang's ``/generate``
in SGLang's format by asking the same vLLM server. No timing is asserted.
"""

from __future__ import annotations

import math

import httpx
import pytest

from critic import Judge, LoadOptions, Pair, ServerOptions
from critic.backends._http import HttpClient
from critic.backends.base import VerdictRequest
from critic.backends.encoder import PromptEncoder
from critic.backends.reward import TransformersRewardScorer
from critic.backends.server import ServerBackend
from critic.backends.server_reward import ServerRewardScorer
from critic.errors import CriticError, InputError, ModelError, Reason
from critic.options import BatchLimits
from tests.backends.test_engine import requests_for
from tests.backends.test_vllm_reward import CONVERSATIONS
from tests.conftest import FIDELITY_PAIRS, TINY_REWARD_CONTEXT, pandalm_pairs
from tests.serve.support import serving

TOLERANCE = 1e-4
# The openai dialect's top k in the fallback test, and the requests it runs on: the demo model ranks the
# letters (2, 3), (1, 3), (1, 4) and (3, 4) among these, so some keep both letters in the top 3 and some do not.
SMALL_TOP_K = 3
TOP_K_REQUESTS = 12


def served(url: str, **options) -> LoadOptions:
    return LoadOptions(backend="server", server=ServerOptions(url, **options))


@pytest.fixture(scope="module")
def server_backend(vllm_demo_server, demo_folder):
    """The server backend on the demo model; its tokenizer from the converted folder (the GGUF's gives the same
    ids, test_prompt_ids_equal_the_transformers_backends, but takes ten seconds to read; test_server_commands.py
    loads it as ``--model demo``)."""
    backend = ServerBackend.from_pretrained(demo_folder, load=served(vllm_demo_server.base_url))
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def server_scores(server_backend, pandalm_score_reference):
    requests, _ = pandalm_score_reference
    outputs = server_backend.run(requests)
    assert all(output.error is None for output in outputs)
    return [output.letter_probs for output in outputs]


def largest_difference(left, right) -> float:
    assert len(left) == len(right)
    return max(abs(a[letter] - b[letter]) for a, b in zip(left, right, strict=True) for letter in a)


def test_the_server_is_found_once(server_backend, vllm_demo_server):
    info = server_backend.info
    assert info is not None and info.dialect == "vllm" and info.served_model == "demo"
    assert info.max_model_len == server_backend.encoder.max_length == 8192  # SmolLM2's context, from /v1/models
    assert server_backend.kind == "server"


def test_score_probabilities_equal_the_transformers_backends(pandalm_score_reference, server_scores):
    requests, reference = pandalm_score_reference
    assert len(requests) == 2 * FIDELITY_PAIRS
    assert largest_difference(server_scores, reference) <= TOLERANCE


def test_prompt_ids_equal_the_transformers_backends(server_backend, demo_backend, pandalm_score_reference):
    requests, _ = pandalm_score_reference
    for request in requests[:4] + requests_for(pandalm_pairs(2), mode="generate"):
        assert server_backend.prompt_ids(request) == demo_backend.prompt_ids(request)


def test_constrained_verdict_is_the_score_argmax(server_backend, pandalm_score_reference):
    requests, reference = pandalm_score_reference
    constrained = server_backend.run([VerdictRequest(r.pair, r.template, "constrained") for r in requests])
    assert [output.text for output in constrained] == [f"[[{max(p, key=p.get)}]]" for p in reference]


def test_greedy_generation_equals_the_transformers_backends(server_backend, pandalm_generate_reference):
    requests, texts = pandalm_generate_reference
    ours = server_backend.run(requests)
    assert all(output.error is None and output.text for output in ours)
    assert [output.text for output in ours] == texts


def test_every_special_token_spelling_is_plain_text_on_the_server(server_backend, demo_backend):
    tokenizer = server_backend.encoder.tokenizer
    spellings = "".join(tokenizer.all_special_tokens + list(tokenizer.added_tokens_encoder))
    pair = Pair("Say it.", f"Here: {spellings} [[A]]", "No.")
    requests = requests_for([pair])
    assert [server_backend.prompt_ids(r) for r in requests] == [demo_backend.prompt_ids(r) for r in requests]
    ours = server_backend.run(requests)  # the server echoes the ids it read; a difference would fail the prompt
    assert all(output.error is None for output in ours)
    theirs = demo_backend.run(requests)
    assert largest_difference([o.letter_probs for o in ours], [o.letter_probs for o in theirs]) <= TOLERANCE


def test_a_prompt_over_the_limit_fails_alone_before_it_is_sent(server_backend, pandalm_score_reference,
                                                              server_scores):
    requests, _ = pandalm_score_reference
    lengths = [len(server_backend.prompt_ids(request)) for request in requests[:6]]
    limit = sorted(lengths)[3]  # some prompts fit, some do not
    short = ServerBackend(PromptEncoder(server_backend.encoder.tokenizer, max_length=limit), server_backend.client)
    outputs = short.run(requests[:6])
    for length, output, expected in zip(lengths, outputs, server_scores[:6], strict=True):
        if length > limit:
            assert output.error is not None and output.error.kind is Reason.TOO_LONG
        else:
            assert output.error is None and largest_difference([output.letter_probs], [expected]) <= TOLERANCE


def test_top_k_fallback_is_exact_where_the_letters_are_listed_and_fails_where_not(
        vllm_demo_server, server_backend, pandalm_score_reference):
    requests, reference = (part[:TOP_K_REQUESTS] for part in pandalm_score_reference)
    url = vllm_demo_server.base_url
    fallback = ServerBackend(server_backend.encoder, HttpClient(url), dialect="openai", top_k=SMALL_TOP_K)
    outputs = fallback.run(requests)
    fallback.close()
    letters = server_backend.encoder.letter_ids(("A", "B"))
    listed = []
    for request in requests:  # what the server lists in its top k, asked directly
        body = {"prompt": server_backend.prompt_ids(request), "max_tokens": 1, "temperature": 0,
                "logprobs": SMALL_TOP_K, "return_tokens_as_token_ids": True}
        top = httpx.post(f"{url}/v1/completions", json=body, timeout=60).json()["choices"][0]["logprobs"]
        listed.append(all(f"token_id:{letter}" in top["top_logprobs"][0] for letter in letters))
    assert any(listed) and not all(listed), "pick SMALL_TOP_K so that both cases occur"
    for output, expected, both_listed in zip(outputs, reference, listed, strict=True):
        if both_listed:
            assert output.error is None and largest_difference([output.letter_probs], [expected]) <= TOLERANCE
        else:
            assert isinstance(output.error, ModelError) and "not among the server's top" in str(output.error)


def test_the_judge_loads_the_server_backend_by_name(vllm_demo_server, server_backend, demo_folder):
    pairs = pandalm_pairs(2)
    with Judge.from_pretrained(demo_folder, load=served(vllm_demo_server.base_url, max_concurrency=2)) as judge:
        assert judge.describe().backend == "server"
        preferences = judge.compare_batch(pairs)
    direct = Judge(server_backend).compare_batch(pairs)
    assert [p.p_a for p in preferences] == pytest.approx([p.p_a for p in direct], abs=TOLERANCE)


# --- SGLang's native dialect, through a stub in front of the same vLLM server ------------------------


def sglang_stub(vllm_url: str, seen: list[dict]):
    """Answers SGLang's ``/generate`` in SGLang's format (see test_server_wire.py) by asking vLLM."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def model_info(request: Request) -> JSONResponse:
        return JSONResponse({"model_path": "demo", "is_generation": True})

    async def generate(request: Request) -> JSONResponse:
        body = await request.json()
        seen.append(body)
        params = body["sampling_params"]
        asked = {"prompt": body["input_ids"], "max_tokens": params["max_new_tokens"], "temperature": 0,
                 "return_token_ids": True, "return_tokens_as_token_ids": True,
                 "stop_token_ids": params.get("stop_token_ids", [])}
        listed = body.get("token_ids_logprob")
        if listed:
            asked.update(logprobs=0, logprob_token_ids=listed[0])
        async with httpx.AsyncClient(timeout=120) as client:
            answer = (await client.post(f"{vllm_url}/v1/completions", json=asked)).json()
        outputs = []
        for choice in sorted(answer["choices"], key=lambda c: c["index"]):
            meta = {"finish_reason": {"type": choice["finish_reason"]}, "completion_tokens": len(choice["token_ids"])}
            if listed:
                top = choice["logprobs"]["top_logprobs"][0]
                meta["output_token_ids_logprobs"] = [[[top[f"token_id:{t}"], t, None] for t in listed[0]]]
            outputs.append({"text": choice["text"], "output_ids": choice["token_ids"], "meta_info": meta})
        return JSONResponse(outputs)

    return Starlette(routes=[Route("/get_model_info", model_info), Route("/generate", generate, methods=["POST"])])


def test_sglang_dialect_gives_the_same_numbers_and_text(vllm_demo_server, pandalm_score_reference,
                                                        pandalm_generate_reference, demo_folder):
    requests, reference = pandalm_score_reference
    generate, texts = pandalm_generate_reference
    seen: list[dict] = []
    with serving(sglang_stub(vllm_demo_server.base_url, seen)) as url:
        backend = ServerBackend.from_pretrained(demo_folder, load=served(url))  # detected: SGLang's info, no /v1/models
        assert backend.info is not None and backend.info.dialect == "sglang"
        scores = backend.run(requests[:8])
        generated = backend.run(generate[:2])
        backend.close()
    assert largest_difference([o.letter_probs for o in scores], reference[:8]) <= TOLERANCE
    assert [o.text for o in generated] == texts[:2]
    assert all("input_ids" in body and "text" not in body for body in seen)  # ids only, never text


# --- reward models over /classify -------------------------------------------------------------------


def test_reward_scores_equal_the_transformers_scorers(vllm_reward_server, tiny_reward_folder):
    limits = BatchLimits(max_length=TINY_REWARD_CONTEXT)
    local = TransformersRewardScorer.from_pretrained(str(tiny_reward_folder), load=LoadOptions(device="cpu"),
                                                     limits=limits)
    remote = ServerRewardScorer.from_pretrained(str(tiny_reward_folder), load=served(vllm_reward_server.base_url),
                                                limits=limits)
    assert remote.served_model == "tiny-reward" and remote.encoder.max_length == TINY_REWARD_CONTEXT
    theirs, ours = local.score(CONVERSATIONS), remote.score(CONVERSATIONS)
    remote.close()
    for mine, reference in zip(ours, theirs, strict=True):
        if isinstance(reference, CriticError):  # too long, untokenisable text: the same error, before sending
            assert type(mine) is type(reference) and str(mine) == str(reference)
        else:
            assert not isinstance(mine, CriticError) and math.isclose(mine, reference, abs_tol=TOLERANCE)
    assert sum(isinstance(score, CriticError) for score in theirs) == 2


def test_a_reward_scorer_refuses_a_dialect_without_a_reward_endpoint(tiny_reward_folder):
    with pytest.raises(InputError, match="scored through vLLM's /classify"):
        ServerRewardScorer.from_pretrained(str(tiny_reward_folder),
                                           load=served("http://127.0.0.1:1", dialect="sglang"))
