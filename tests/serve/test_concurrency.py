"""64 concurrent clients, each with its own slice of the PandaLM test pairs: every answer is the in-process one.

On the fake judge (many pairs) and on the demo model (one pair per client, the shortest PandaLM pairs, so the
test stays short on two CPU cores; on vLLM when it is installed); one server per module, on 127.0.0.1.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from critic import Judge, Pair
from critic.wire import pair_object
from critic.serve import ServeSettings, create_app

from ..conftest import pandalm_pairs, shared_path, uses_demo_model
from .fakes import text_judge
from .support import serving

CLIENTS = 64
TOLERANCE = 1e-4


def shortest_pandalm_pairs(count):
    """The ``count`` shortest PandaLM test pairs (rows with a non-string response left out), shortest first."""
    rows = json.loads(shared_path("data", "pandalm", "testset-v1.json").read_text(encoding="utf-8"))
    pairs = [Pair(row["instruction"] + (f"\n\n{row['input']}" if row["input"] else ""), row["response1"],
                  row["response2"]) for row in rows
             if all(isinstance(row[key], str) for key in ("instruction", "input", "response1", "response2"))]
    return sorted(pairs, key=lambda pair: len(pair.prompt + pair.response_a + pair.response_b))[:count]


def slices(pairs, per_client):
    return [list(range(start, start + per_client)) for start in range(0, CLIENTS * per_client, per_client)]


def send_all(url, pairs, per_client):
    """Each of 64 clients posts its own slice (ids = the pairs' global indices) on its own connection."""

    def client(indices):
        with httpx.Client(base_url=url, timeout=600) as http:
            body = {"pairs": [dict(pair_object(pairs[i]), id=i) for i in indices]}
            response = http.post("/v1/compare", json=body)
            assert response.status_code == 200, response.text
            return indices, response.json()["results"]

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(client, slices(pairs, per_client)))


def check_against_in_process(answers, expected):
    seen = []
    for indices, results in answers:
        assert [result["id"] for result in results] == indices  # its own pairs, in order, none lost or added
        for index, result in zip(indices, results, strict=True):
            seen.append(index)
            assert "error" not in result, result
            assert result["label"] == expected[index].label
            assert abs(result["p_a"] - expected[index].p_a) <= TOLERANCE
            for order, want in zip(result["orders"], expected[index].orders, strict=True):
                assert abs(order["p_a"] - want.p_a) <= TOLERANCE
    assert sorted(seen) == list(range(len(expected)))  # each pair answered exactly once


def test_64_clients_on_the_fake_judge_each_get_exactly_the_in_process_results():
    pairs = pandalm_pairs(CLIENTS * 2)
    app = create_app(text_judge(), ServeSettings(max_batch_pairs=32))
    with serving(app) as url:
        answers = send_all(url, pairs, 2)
    check_against_in_process(answers, text_judge().compare_each(pairs))
    batches = app.state.service.metrics.batch_items
    assert batches.count() < CLIENTS  # requests were merged into shared judge calls


@pytest.fixture(scope="module")
def demo_server(request):
    """The demo model served on the vLLM backend when it is installed (the run's one engine, and the
    faster one here), else on the transformers backend."""
    import importlib.util

    name = "demo_vllm_backend" if importlib.util.find_spec("vllm") is not None else "demo_backend"
    judge = Judge(request.getfixturevalue(name), model_name="demo")
    with serving(create_app(judge, ServeSettings())) as url:
        yield url, judge


@uses_demo_model
def test_64_clients_on_the_demo_model_each_get_exactly_the_in_process_results(demo_server):
    url, judge = demo_server
    pairs = shortest_pandalm_pairs(CLIENTS)
    answers = send_all(url, pairs, 1)
    check_against_in_process(answers, judge.compare_each(pairs))
