"""The server backend when the server misbehaves: busy, slow, gone, or failing one request.

Stub servers (tests/backends/conftest.py) on loopback answer in vLLM's recorded
shapes; the tiny in-process tokenizer builds the ids. Every wait is bounded:
retries are few and their backoff is a few milliseconds.
"""

from __future__ import annotations

import asyncio

import pytest

from critic import Judge, Pair
from critic.backends._http import HttpClient, ServerError
from critic.backends.encoder import PromptEncoder
from critic.backends.server import ServerBackend
from critic.backends.vllm_serve import free_port
from critic.errors import CriticError, InputError, ModelError
from critic.options import LoadOptions, ServerOptions
from tests.backends.conftest import STUB_CONTEXT, STUB_MODEL, STUB_PROBS

pytest.importorskip("httpx", reason="the server backend needs httpx (pip install 'critic[serve]')")
pytest.importorskip("starlette", reason="the stub servers need starlette (pip install 'critic[serve]')")

RETRIES = 2
PAIRS = [Pair(f"Question {n}?", f"answer {n} one", f"answer {n} two") for n in range(4)]


def backend_for(url: str, tokenizer, *, retries: int = RETRIES, timeout: float = 5.0, concurrency: int = 4,
                dialect: str = "vllm") -> ServerBackend:
    client = HttpClient(url, retries=retries, timeout=timeout, max_concurrency=concurrency, backoff=0.005,
                        max_backoff=0.02)
    return ServerBackend(PromptEncoder(tokenizer), client, dialect=dialect, name="tiny")


def test_a_healthy_stub_is_read_in_both_orders(stub_server, tiny_tokenizer):
    url, script = stub_server()
    with backend_for(url, tiny_tokenizer) as backend:
        preferences = Judge(backend).compare_each(PAIRS)
    assert backend.info is not None and backend.info.served_model == STUB_MODEL
    assert backend.encoder.max_length == STUB_CONTEXT  # the server's context caps the encoder
    for preference in preferences:
        assert not isinstance(preference, CriticError)
        assert [order.p_a for order in preference.orders] == pytest.approx([2 / 3, 1 / 3])
        assert preference.orders[0].format_mass == pytest.approx(sum(STUB_PROBS))
    # Both orders of a pair travel in one request.
    assert len(script.seen) == len(PAIRS) and all(len(prompts) == 2 for prompts in script.seen)


def test_a_busy_server_is_asked_again_until_it_answers(stub_server, tiny_tokenizer):
    url, script = stub_server(fail_first=RETRIES, retry_after="0")
    with backend_for(url, tiny_tokenizer, concurrency=1) as backend:
        preferences = Judge(backend).compare_each(PAIRS[:1])
    assert not isinstance(preferences[0], CriticError)
    assert len(script.seen) == RETRIES + 1


@pytest.mark.parametrize("status", [503, 429])
def test_a_server_busy_for_good_fails_each_pair_with_the_reason(stub_server, tiny_tokenizer, status):
    url, script = stub_server(fail_first=10**6, status=status)
    with backend_for(url, tiny_tokenizer) as backend:
        preferences = Judge(backend).compare_each(PAIRS[:2])
    assert all(isinstance(p, ModelError) for p in preferences)
    message = str(preferences[0])
    assert f"answered {status}: stub says {status}" in message and f"{RETRIES + 1} attempts" in message
    assert len(script.seen) == 2 * (RETRIES + 1)  # bounded: each family asked retries + 1 times, no more


def test_a_slow_server_times_out_each_attempt_then_fails(stub_server, tiny_tokenizer):
    url, script = stub_server(delay_s=2.0)
    with backend_for(url, tiny_tokenizer, timeout=0.2, retries=1) as backend:
        preferences = Judge(backend).compare_each(PAIRS[:1])
    assert isinstance(preferences[0], ModelError)
    assert "took longer than 0.2 s" in str(preferences[0]) and "2 attempts" in str(preferences[0])
    assert len(script.seen) == 2


def test_a_refused_connection_is_retried_then_fails_at_connect():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client = HttpClient(url, retries=RETRIES, timeout=2.0, backoff=0.005, max_backoff=0.02)
    with pytest.raises(ServerError, match=rf"ConnectError.*{RETRIES + 1} attempts.*is running"):
        client.call(client.get("/v1/models"))
    client.close()


def test_a_server_unreachable_from_the_start_fails_each_pair_with_the_reason(tiny_tokenizer):
    backend = backend_for(f"http://127.0.0.1:{free_port()}", tiny_tokenizer)  # connects on first use
    preferences = Judge(backend).compare_each(PAIRS[:2])
    backend.close()
    assert all(isinstance(p, ModelError) and "ConnectError" in str(p) for p in preferences)


def test_a_server_gone_after_connecting_fails_every_pair_not_the_call(stub_server, tiny_tokenizer):
    url, _ = stub_server()
    backend = backend_for(url, tiny_tokenizer)
    backend.connect()
    gone = f"http://127.0.0.1:{free_port()}"
    backend.client.base_url = gone  # the server is gone: the same client now reaches nothing
    preferences = Judge(backend).compare_each(PAIRS[:2])
    backend.close()
    assert all(isinstance(p, ModelError) and "ConnectError" in str(p) for p in preferences)


def test_one_failing_request_fails_only_its_pair(stub_server, tiny_tokenizer):
    def is_pair_two(prompts):
        return any("answer 2 one" in tiny_tokenizer.decode(ids) for ids in prompts)

    url, _ = stub_server(fail_always_if=is_pair_two, status=500)
    with backend_for(url, tiny_tokenizer) as backend:
        preferences = Judge(backend).compare_each(PAIRS)
    failed = [index for index, p in enumerate(preferences) if isinstance(p, CriticError)]
    assert failed == [2]
    assert "answered 500: stub says 500 (not asked again" in str(preferences[2])


def test_a_refusal_is_not_retried(stub_server, tiny_tokenizer):
    url, script = stub_server(fail_first=10**6, status=400)
    with backend_for(url, tiny_tokenizer) as backend:
        preferences = Judge(backend).compare_each(PAIRS[:1])
    assert isinstance(preferences[0], ModelError) and len(script.seen) == 1


def test_requests_in_flight_stay_under_the_limit(stub_server, tiny_tokenizer):
    url, _ = stub_server(delay_s=0.05)
    in_flight, most = 0, 0
    backend = backend_for(url, tiny_tokenizer, concurrency=2)
    original = backend.client._attempt

    async def counted(*args, **kwargs):
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            return await original(*args, **kwargs)
        finally:
            in_flight -= 1

    backend.client._attempt = counted  # type: ignore[method-assign]
    many = [Pair(f"Q{n}?", f"a{n}", f"b{n}") for n in range(8)]
    results = Judge(backend).compare_each(many)
    backend.close()
    assert all(not isinstance(r, CriticError) for r in results)
    assert most == 2


def test_async_judging_leaves_the_event_loop_free(stub_server, tiny_tokenizer):
    url, _ = stub_server(delay_s=0.2)
    backend = backend_for(url, tiny_tokenizer)
    judge = Judge(backend)

    async def main():
        ticks = 0
        judging = asyncio.ensure_future(judge.acompare_each(PAIRS[:2]))
        while not judging.done():
            ticks += 1
            await asyncio.sleep(0.01)
        return ticks, judging.result()

    ticks, results = asyncio.run(main())
    backend.close()
    assert all(not isinstance(r, CriticError) for r in results)
    assert ticks >= 5  # the loop kept running while the server took 0.2 s per request


def test_the_server_must_serve_the_named_model(stub_server, tiny_tokenizer):
    url, _ = stub_server()
    backend = ServerBackend(PromptEncoder(tiny_tokenizer), HttpClient(url, retries=0), served_model="other",
                            dialect="vllm")
    with pytest.raises(InputError, match=f"serves no model named 'other'.*{STUB_MODEL}"):
        backend.connect()
    backend.close()


def test_from_pretrained_needs_the_server_address():
    with pytest.raises(InputError, match="--base-url"):
        ServerBackend.from_pretrained("demo", load=LoadOptions())


def test_the_api_key_is_sent_as_a_bearer_token(stub_server, tiny_tokenizer, monkeypatch):
    from critic.backends.server import http_client

    monkeypatch.setenv("STUB_KEY", "s3cret")
    client = http_client(ServerOptions("http://127.0.0.1:1", api_key_env="STUB_KEY"))
    assert client._headers == {"Authorization": "Bearer s3cret"}
    assert "s3cret" not in repr(ServerOptions("http://127.0.0.1:1", api_key_env="STUB_KEY"))
