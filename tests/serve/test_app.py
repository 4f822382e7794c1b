"""The app over real HTTP on 127.0.0.1, on fake judges: every endpoint, its refusals and its faults."""

from __future__ import annotations

import gc
import json
import socket
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from critic.serve import ServeSettings, create_app
from critic.serve.metrics import SIZE_BUCKETS
from critic.types import Pair

from .fakes import Gate, reward_judge, text_judge
from .support import serving, wait_until

KEY = "s3cret-key"
PAIR = {"prompt": "What is 2+2?", "response_a": "4", "response_b": "5"}
POLL_S = 10.0


@pytest.fixture(scope="module")
def server():
    with serving(create_app(text_judge(), ServeSettings(api_key=KEY, max_pairs_per_request=8, max_text_chars=1000,
                                                        max_body_bytes=20_000))) as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client:
        yield client


def test_compare_gives_the_judge_output_fields_per_pair_and_an_error_object_for_a_failed_pair(client):
    pairs = [dict(PAIR, id="a"), dict(PAIR, response_b="TOO LONG"), dict(PAIR, response_a="5", response_b="4")]
    response = client.post("/v1/compare", json={"pairs": pairs})
    assert response.status_code == 200
    first, failed, third = response.json()["results"]
    expected = text_judge().compare_each([Pair(**PAIR), Pair("What is 2+2?", "5", "4")])
    assert first == {"id": "a", **expected[0].to_dict()}
    assert third == expected[1].to_dict()
    assert failed == {"error": {"type": "CriticError", "kind": "too_long",
                                "message": "prompt of 99999 tokens is over the limit"}}


def test_rank_and_get_reward_on_a_generative_judge(client):
    ranked = client.post("/v1/rank", json={"prompt": "q", "responses": ["x", "y", "z"]}).json()
    assert ranked["comparisons"] == 3 and ranked["orders"] == 6 and len(ranked["scores"]) == 3
    assert ranked["against"] == "all pairs" and abs(sum(ranked["scores"])) < 1e-9
    against = client.post("/v1/rank", json={"prompt": "q", "responses": ["x", "y"], "reference": "r"}).json()
    assert against["comparisons"] == 2 and against["against"] == "reference"
    # OpenRLHF's client: {"query": prompt + response, "prompts", "labels"}; the reward is P(response beats label)
    body = {"query": ["<|user|>Q<|assistant|>good answer", "<|user|>Q<|assistant|>TOO LONG"],
            "prompts": ["<|user|>Q<|assistant|>", "<|user|>Q<|assistant|>"], "labels": ["reference", "reference"]}
    answer = client.post("/get_reward", json=body).json()
    expected = text_judge().compare("<|user|>Q<|assistant|>", "good answer", "reference").p_a
    assert answer == {"rewards": [expected, 0.0], "scores": [expected, 0.0],
                      "extra_logs": {"critic_failed": [0.0, 1.0]}}
    # A query that does not hold its prompt fails alone: no guess at where the response starts.
    lost = client.post("/get_reward", json={**body, "prompts": ["<|user|>Other<|assistant|>", body["prompts"][1]]})
    assert lost.json()["extra_logs"]["critic_failed"] == [1.0, 1.0] and lost.json()["rewards"] == [0.0, 0.0]
    unlabelled = client.post("/get_reward", json={**body, "labels": ["", "reference"]})
    assert unlabelled.status_code == 422 and unlabelled.json()["error"]["field"] == "labels[0]"
    score = client.post("/v1/score", json={"conversations": []})
    assert score.status_code == 400 and "--kind reward" in score.json()["error"]["message"]


def test_health_needs_no_key_and_every_other_endpoint_does(server):
    assert httpx.get(f"{server}/health").json() == {"status": "ok"}
    for method, path in (("GET", "/v1/info"), ("GET", "/metrics"), ("POST", "/v1/compare"), ("POST", "/v1/rank"),
                         ("POST", "/get_reward"), ("POST", "/v1/score")):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            response = httpx.request(method, server + path, json={"pairs": [PAIR]}, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("body", "status", "field"), [
    (b"{not json", 400, None),
    (b"[1, 2]", 422, None),
    (b'{"pairs": {"prompt": "q"}}', 422, "pairs"),
    (b'{"pairs": [{"prompt": "q", "response_a": "a"}]}', 422, "pairs[0].response_b"),
    (b'{"pairs": [{"prompt": 3, "response_a": "a", "response_b": "b"}]}', 422, "pairs[0].prompt"),
    (b'{"pairs": [{"prompt": "q", "response_a": "a", "response_b": "b", "history": [{"role": "x"}]}]}', 422,
     "pairs[0].history"),
    (json.dumps({"pairs": [PAIR], "template": "{{ 'A' }}"}).encode(), 422, "template"),
    (json.dumps({"pairs": [PAIR] * 9}).encode(), 413, "pairs"),
    (json.dumps({"pairs": [dict(PAIR, response_a="x" * 1001)]}).encode(), 413, "pairs[0].response_a"),
    (json.dumps({"pairs": [PAIR] * 8, "padding": "x" * 20_000}).encode(), 413, None),
    # numbers Python will not read, nesting deeper than its parser goes: 400, never a 500
    (b'{"pairs": [{"prompt": "q", "response_a": "a", "response_b": "b", "id": ' + b"7" * 4301 + b"}]}", 400, None),
    (b'{"pairs": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, None),
    (b'{"pairs": [{"prompt": "q", "response_a": "a", "response_b": "b", "id": NaN}]}', 400, None),
    (b'{"pairs": [{"prompt": "q", "response_a": "a", "response_b": "b", "id": -Infinity}]}', 400, None),
    (b'{"pairs": [{"prompt": "q", "response_a": "a", "response_b": "b", "id": 1e999}]}', 400, None),
    # a field the endpoint does not know is refused, not ignored
    (json.dumps({"pairs": [PAIR], "backend": "vllm"}).encode(), 422, "backend"),
    (json.dumps({"pairs": [PAIR], "max_length": 10}).encode(), 422, "max_length"),
    (json.dumps({"pairs": [dict(PAIR, temperature=0)]}).encode(), 422, "pairs[0].temperature"),
    (json.dumps({"pairs": [dict(PAIR, id={"nested": [1, 2]})]}).encode(), 422, "pairs[0].id"),
    (json.dumps({"pairs": [dict(PAIR, history=[{"role": "user", "content": "hi", "name": "x"},
                                               {"role": "assistant", "content": "hello"}])]}).encode(),
     422, "pairs[0].history[0].name"),
])
def test_bad_requests_get_4xx_with_the_field_and_reason_never_a_500(client, body, status, field):
    response = client.post("/v1/compare", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    problem = json.loads(response.text, parse_constant=lambda name: pytest.fail(f"{name} in the answer"))["error"]
    assert problem["status"] == status and problem["message"] and problem.get("field") == field
    assert response.headers["x-critic-error"] == (f"{field}: " if field else "") + problem["message"][:300] or \
        response.headers["x-critic-error"].endswith("...")
    assert "Traceback" not in response.text


def test_unknown_fields_are_refused_on_every_endpoint_naming_the_field(client):
    for path, body, field in (("/v1/rank", {"prompt": "q", "responses": ["a", "b"], "temperature": 1}, "temperature"),
                              ("/get_reward", {"query": ["q"], "prompts": ["q"], "labels": ["r"], "metadata": 1},
                               "metadata")):
        response = client.post(path, json=body)
        assert response.status_code == 422 and response.json()["error"]["field"] == field
        assert f"unknown field '{field}'" in response.json()["error"]["message"]


def test_404_and_405_are_json_and_counted(client):
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and missing.json()["error"]["message"].startswith("no endpoint /nowhere")
    wrong = client.get("/v1/compare")
    assert wrong.status_code == 405 and wrong.json()["error"]["message"] == "GET is not allowed on /v1/compare"
    assert wrong.headers["allow"] == "POST"
    metrics = client.get("/metrics").text
    assert 'critic_requests_total{endpoint="(other)",outcome="404"} 1' in metrics
    assert 'critic_requests_total{endpoint="/v1/compare",outcome="405"} 1' in metrics


def test_an_unexpected_failure_is_a_json_500_logged_with_its_traceback_and_counted(caplog):
    judge = text_judge()
    judge.compare_each = lambda pairs: ["not a preference" for _ in pairs]  # type: ignore[method-assign]
    app = create_app(judge)
    with serving(app) as url:
        response = httpx.post(f"{url}/v1/compare", json={"pairs": [PAIR]}, timeout=30)
    assert response.status_code == 500
    assert response.json()["error"]["message"] == ("the server failed: AttributeError: 'str' object has no "
                                                   "attribute 'to_dict'")
    assert app.state.service.metrics.requests.value(endpoint="/v1/compare", outcome="500") == 1
    assert any(record.exc_info for record in caplog.records if record.name == "critic")


def test_a_client_gone_mid_body_is_counted_as_499(server):
    port = int(server.rsplit(":", 1)[1])
    body = json.dumps({"pairs": [PAIR]}).encode()
    before = httpx.get(f"{server}/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    with socket.create_connection(("127.0.0.1", port), timeout=10) as gone:
        gone.sendall(b"POST /v1/compare HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d"
                     b"\r\n\r\n%s" % (KEY.encode(), len(body) + 50, body))
    assert 'outcome="499"' not in before

    def counted():
        text = httpx.get(f"{server}/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
        return 'critic_requests_total{endpoint="/v1/compare",outcome="499"} 1' in text

    wait_until(counted, "the disconnect is counted")


def test_a_queued_request_holds_its_parsed_pairs_not_its_body():
    """While it waits for the judge, nothing of the request's JSON is alive: only its Pair objects."""
    gate = Gate()
    app = create_app(text_judge(gate), ServeSettings(max_batch_pairs=1))
    service = app.state.service
    marker = "a prompt no other object holds 7f3a"
    with serving(app) as url, ThreadPoolExecutor(2) as pool:
        running = pool.submit(httpx.post, f"{url}/v1/compare", json={"pairs": [PAIR]}, timeout=30)
        assert gate.entered.wait(POLL_S)
        body = json.dumps({"pairs": [dict(PAIR, prompt=marker)] * 3}).encode()  # the test keeps no dict of it
        queued = pool.submit(httpx.post, f"{url}/v1/compare", content=body, timeout=30)
        wait_until(lambda: service.batcher.waiting == 1, "the second request waits")
        gc.collect()
        # (a dict of strings only is not tracked by the collector; the list of pairs that holds it is)
        holders = [obj for obj in gc.get_objects() if isinstance(obj, list)
                   and any(isinstance(item, dict) and item.get("prompt") == marker for item in obj)]
        waiting = [job for job in service.batcher._pending]
        gate.open.set()
        assert running.result().status_code == queued.result().status_code == 200
    assert holders == []
    assert [type(item).__name__ for item in waiting[0].items] == ["Pair"] * 3


def test_a_rank_of_many_responses_is_judged_in_calls_of_at_most_max_batch_pairs():
    app = create_app(text_judge(), ServeSettings(max_batch_pairs=16))
    with serving(app) as url:
        ranked = httpx.post(f"{url}/v1/rank", json={"prompt": "q", "responses": [f"answer {i}" for i in range(32)]},
                            timeout=120).json()
    assert ranked["comparisons"] == 496 and ranked["failed"] == 0
    calls = app.state.service.metrics.batch_items
    assert calls.count() == 31  # 496 pairs in calls of 16, not one call of 496
    assert calls._series[()][SIZE_BUCKETS.index(16)] == 31  # every call held at most 16 pairs


def test_a_body_too_big_is_refused_while_it_streams_without_a_content_length(server):
    def chunks():
        for _ in range(40):
            yield b" " * 1000

    response = httpx.post(f"{server}/v1/compare", content=chunks(), headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 413


def test_info_and_metrics(client):
    info = client.get("/v1/info").json()
    assert info["judge"] == text_judge().describe().to_dict()
    assert info["limits"]["max_pairs_per_request"] == 8 and info["auth"] is True
    client.post("/v1/compare", json={"pairs": [PAIR]})
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'critic_requests_total{endpoint="/v1/compare",outcome="200"}' in text
    assert 'critic_items_total{endpoint="/v1/compare",outcome="failed"}' in text
    assert "critic_queue_depth 0" in text and 'critic_batch_items_bucket{le="+Inf"}' in text
    assert 'critic_request_seconds_count{endpoint="/v1/compare"}' in text


def test_a_reward_judge_scores_conversations_and_serves_get_reward_directly():
    with serving(create_app(reward_judge())) as url:
        conversation = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "twelve chars"}]
        scored = httpx.post(f"{url}/v1/score", json={"conversations": [conversation]}).json()
        assert scored == {"results": [{"score": 1.2}]}
        bad = httpx.post(f"{url}/v1/score", json={"conversations": [conversation[:1]]})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "conversations[0]"
        reward = httpx.post(f"{url}/get_reward", json={"query": ["Qabc"], "prompts": ["Q"], "labels": [None]}).json()
        assert reward["rewards"] == [0.3]  # the response after the prompt, scored alone
        assert httpx.get(f"{url}/v1/info").json()["endpoints"][-1] == "/v1/score"


def test_a_judge_exception_fails_its_batch_with_500_and_the_server_goes_on(client):
    response = client.post("/v1/compare", json={"pairs": [dict(PAIR, prompt="BOOM")]})
    assert response.status_code == 500
    assert "RuntimeError: the backend crashed" in response.json()["error"]["message"]
    assert client.post("/v1/compare", json={"pairs": [PAIR]}).status_code == 200



def test_a_full_queue_answers_503_with_retry_after_and_the_waiting_requests_complete():
    gate = Gate()
    app = create_app(text_judge(gate), ServeSettings(max_queue=1, max_batch_pairs=1))
    service = app.state.service
    with serving(app) as url, ThreadPoolExecutor(2) as pool:
        running = pool.submit(httpx.post, f"{url}/v1/compare", json={"pairs": [PAIR]}, timeout=30)
        assert gate.entered.wait(POLL_S)
        waiting = pool.submit(httpx.post, f"{url}/v1/compare", json={"pairs": [PAIR]}, timeout=30)
        wait_until(lambda: service.batcher.waiting == 1, "the second request waits")
        refused = httpx.post(f"{url}/v1/compare", json={"pairs": [PAIR]}, timeout=30)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        gate.open.set()
        assert running.result().status_code == waiting.result().status_code == 200


def test_a_request_past_its_timeout_gets_504_and_costs_nobody_else():
    gate = Gate()
    with serving(create_app(text_judge(gate), ServeSettings(request_timeout_s=0.2))) as url:
        response = httpx.post(f"{url}/v1/compare", json={"pairs": [PAIR]}, timeout=30)
        assert response.status_code == 504
        gate.open.set()
        assert httpx.post(f"{url}/v1/compare", json={"pairs": [PAIR]}, timeout=30).status_code == 200


def test_a_client_killed_mid_request_is_dropped_and_the_server_keeps_serving_others():
    gate = Gate()
    judge = text_judge(gate)
    app = create_app(judge, ServeSettings(max_batch_pairs=1))
    service = app.state.service
    with serving(app) as url, ThreadPoolExecutor(1) as pool:
        running = pool.submit(httpx.post, f"{url}/v1/compare", json={"pairs": [PAIR]}, timeout=30)
        assert gate.entered.wait(POLL_S)
        body = json.dumps({"pairs": [dict(PAIR, prompt="from the killed client")]}).encode()
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as killed:
            killed.sendall(b"POST /v1/compare HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            wait_until(lambda: service.batcher.waiting == 1, "the killed client's request waits")
        wait_until(lambda: service.batcher.waiting == 0, "the server drops the killed client's request")
        gate.open.set()
        assert running.result().status_code == 200
        assert httpx.post(f"{url}/v1/compare", json={"pairs": [PAIR]}, timeout=30).status_code == 200
    assert all(call.pair.prompt != "from the killed client" for call in judge.backend.calls)
    assert service.metrics.requests.value(endpoint="/v1/compare", outcome="499") == 1
