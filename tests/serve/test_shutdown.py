"""Shutdown with more accepted work than its budget: every request answered 200 or a JSON 503, and the clients
(RemoteJudge, the async remote reward) get every result from the server that comes back. Servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import critic.client
from critic.client import RemoteJudge
from critic.integrations.trl import AsyncRemoteJudgeReward, JudgeReward
from critic.serve import ServeSettings, create_app
from critic.types import Pair

from .fakes import Gate, HeldAfter, slow_judge, text_judge
from .support import Served, wait_until

POLL_S = 20.0
PAIR = {"prompt": "What is 2+2?", "response_a": "4", "response_b": "5"}



def post(url: str) -> tuple[object, object, str | None]:
    """One request: (status, JSON body, Retry-After), or the exception's name if the connection was dropped."""
    try:
        response = httpx.post(f"{url}/v1/compare", json={"pairs": [PAIR]}, timeout=60)
    except httpx.HTTPError as error:
        return type(error).__name__, None, None
    return response.status_code, response.json(), response.headers.get("retry-after")


def test_a_shutdown_with_more_queued_work_than_its_budget_answers_every_request_200_or_a_json_503():
    gate = Gate()
    app = create_app(slow_judge(0.2, gate), ServeSettings(max_batch_pairs=1, shutdown_timeout_s=1.0))
    service = app.state.service
    served = Served(app)
    with ThreadPoolExecutor(24) as pool:
        sent = [pool.submit(post, served.url) for _ in range(24)]
        wait_until(lambda: service.batcher.waiting == 23, "every request is accepted")  # 1 held, 23 waiting
        gate.open.set()  # about 4.8 s of work
        served.stop()  # as SIGTERM: 1 s to judge what fits
        answers = [future.result() for future in sent]
    statuses = Counter(status for status, _, _ in answers)
    assert set(statuses) == {200, 503}, statuses  # none 500, none dropped
    for status, body, retry_after in answers:
        if status == 503:
            assert body["error"]["status"] == 503 and "shutting down" in body["error"]["message"]
            assert retry_after is not None and int(retry_after) >= 1
        else:
            assert body["results"][0]["label"] in ("A", "B", "tie")
    assert service.metrics.requests.value(endpoint="/v1/compare", outcome="503") == statuses[503]
    assert service.metrics.requests.value(endpoint="/v1/compare", outcome="500") == 0


@pytest.fixture
def quick_backoff(monkeypatch):
    monkeypatch.setattr(critic.client, "BACKOFF_S", 0.01)
    monkeypatch.setattr(critic.client, "MAX_BACKOFF_S", 0.1)


PAIRS = [Pair(f"question {i}", f"answer {i}", f"other answer {i}") for i in range(12)]


def restarted_mid_job(job):
    """Run ``job(url)`` in a thread against a server that answers 2 requests of 2 pairs, is shut down (budget 0)
    while the third is judged, and comes back on the same port; the job's result and the first server's service."""
    gate = HeldAfter(8)  # 2 requests of 2 pairs, 2 orders each
    first = create_app(text_judge(gate), ServeSettings(max_pairs_per_request=2, shutdown_timeout_s=0.0))
    served = Served(first)
    try:
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(job, served.url)
            assert gate.entered.wait(POLL_S), "the third request never reached the judge"
            served.stop()  # the request being judged is answered 503 at once; the client retries
            again = Served(create_app(text_judge(), ServeSettings(max_pairs_per_request=2)), port=served.port)
            try:
                return running.result(timeout=60), first.state.service
            finally:
                again.stop()
    finally:
        gate.open.set()  # let the first server's abandoned judge call end


def test_remote_judge_gets_every_result_across_a_shutdown_and_restart(quick_backoff):
    results, first = restarted_mid_job(lambda url: RemoteJudge(url, retries=40).compare_each(PAIRS))
    assert results == text_judge().compare_each(PAIRS)
    assert first.metrics.requests.value(endpoint="/v1/compare", outcome="503") == 1  # the one it retried
    assert first.metrics.requests.value(endpoint="/v1/compare", outcome="200") == 2


def test_the_async_remote_reward_gets_every_reward_across_a_shutdown_and_restart(quick_backoff):
    prompts = [pair.prompt for pair in PAIRS]
    completions = [pair.response_a for pair in PAIRS]
    references = [pair.response_b for pair in PAIRS]

    def rewards(url):
        return asyncio.run(AsyncRemoteJudgeReward(RemoteJudge(url, retries=40))(prompts, completions,
                                                                                 reference=references))

    got, first = restarted_mid_job(rewards)
    assert got == JudgeReward(text_judge())(prompts, completions, reference=references)
    assert first.metrics.requests.value(endpoint="/v1/compare", outcome="503") == 1


def test_a_request_arriving_when_the_server_stops_is_answered_503_not_dropped():
    """Its connection is open and its headers half sent when the shutdown begins: it is read and answered."""
    app = create_app(text_judge(), ServeSettings(shutdown_timeout_s=0.0))
    served = Served(app)
    body = b'{"pairs": [{"prompt": "q", "response_a": "a", "response_b": "b"}]}'
    with socket.create_connection(("127.0.0.1", served.port), timeout=20) as sock:
        sock.sendall(b"POST /v1/compare HTTP/1.1\r\nHost: x\r\n")
        wait_until(lambda: len(served.server.server_state.connections) == 1, "the connection is taken")
        stopping = threading.Thread(target=served.stop)
        stopping.start()
        wait_until(lambda: all(getattr(c, "last_request", False) or c.transport.is_closing()
                               for c in list(served.server.server_state.connections)), "the shutdown reaches it")
        sock.sendall(b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        stopping.join(30)
    assert received.startswith(b"HTTP/1.1 503 ")
    assert b'"message": "the server is shutting down' in received and b"retry-after: 2" in received
