"""The commands on ``--backend server``: judge, filter (local and on Ray), eval, arena, score, serve.

Each runs in front of the run's real ``vllm serve`` (tests/conftest.py). What the
server backend computes is held to the transformers backend in test_server.py; here
the commands must give exactly what the same backend gives in Python.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from critic import Judge, LoadOptions, RewardJudge, ServerOptions, cli
from critic.options import BatchLimits
from tests.cli.conftest import EXAMPLE, read_jsonl
from tests.conftest import TINY_REWARD_CONTEXT

TOLERANCE = 1e-4
ROOT = Path(__file__).resolve().parents[2]
RAY_SECONDS = 300  # bound on one `critic filter --engine ray` (Ray's start-up and two actors' tokenizer loads)


@pytest.fixture(scope="module")
def server_judge(vllm_demo_server, demo_folder):
    """The judge the commands should match: the server backend in Python (the demo's tokenizer from its folder)."""
    load = LoadOptions(backend="server", server=ServerOptions(vllm_demo_server.base_url))
    with Judge.from_pretrained(demo_folder, load=load) as judge:
        yield judge


def test_judge_command_over_the_server(tmp_path, vllm_demo_server, server_judge, capsys):
    out = tmp_path / "labels.jsonl"
    code = cli.main(["judge", str(EXAMPLE), "-o", str(out), "--model", "demo", "--backend", "server",
                     "--base-url", vllm_demo_server.base_url, "--max-concurrency", "4", "--timeout", "120"])
    assert code == 0
    assert "critic: loading demo (generative, server backend) ..." in capsys.readouterr().err
    rows = read_jsonl(EXAMPLE)
    expected = server_judge.compare_batch([{k: row[k] for k in ("prompt", "response_a", "response_b")} for row in rows])
    records = read_jsonl(out)
    assert [record["id"] for record in records] == [row["id"] for row in rows]
    assert [record["p_a"] for record in records] == pytest.approx([p.p_a for p in expected], abs=TOLERANCE)


def test_filter_command_over_the_server(tmp_path, vllm_demo_server, server_judge, demo_folder):
    from tests.jobs.support import generated_lines

    source = generated_lines(tmp_path / "in.jsonl", 6)
    out = tmp_path / "out"
    code = cli.main(["filter", str(source), "-o", str(out), "--model", "demo", "--tokenizer", demo_folder,
                     "--backend", "server", "--base-url", vllm_demo_server.base_url, "--quiet"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"]["rows_in"] == 6 and summary["judge"]["backend"] == "server"
    judged = [row for name in ("kept", "dropped") for row in read_jsonl(out / f"{name}.jsonl")]
    expected = {row["id"]: server_judge.compare(row["prompt"], row["chosen"], row["rejected"]).p_a for row in judged}
    assert {row["id"]: row["critic_p_chosen"] for row in judged} == pytest.approx(expected, abs=TOLERANCE)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="the Ray engine needs ray[data]")
def test_filter_on_ray_actors_over_the_server(tmp_path, vllm_demo_server, server_judge):
    """Each Ray actor builds its own server backend from the options (in its own process: a subprocess run, so
    its local Ray instance stops with it)."""
    from tests.jobs.support import generated_lines

    source = generated_lines(tmp_path / "in.jsonl", 6)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"}
    done = subprocess.run([sys.executable, "-m", "critic", "filter", str(source), "-o", str(out), "--model", "demo",
                           "--backend", "server", "--base-url", vllm_demo_server.base_url, "--engine", "ray",
                           "--ray-actors", "2", "--chunk-size", "3", "--quiet"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=RAY_SECONDS)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"]["rows_in"] == 6 and summary["judge"]["backend"] == "server"
    judged = [row for name in ("kept", "dropped") for row in read_jsonl(out / f"{name}.jsonl")]
    assert len(judged) == 6
    expected = {row["id"]: server_judge.compare(row["prompt"], row["chosen"], row["rejected"]).p_a for row in judged}
    assert {row["id"]: row["critic_p_chosen"] for row in judged} == pytest.approx(expected, abs=TOLERANCE)


def test_eval_command_over_the_server(tmp_path, vllm_demo_server, server_judge):
    rows = [{"id": n, "prompt": f"What is {n} + {n}?", "chosen": f"{2 * n}.", "rejected": f"{2 * n + 1}."}
            for n in range(4)]
    source = tmp_path / "labelled.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    out = tmp_path / "report"
    code = cli.main(["eval", str(source), "-o", str(out), "--model", "demo", "--backend", "server",
                     "--base-url", vllm_demo_server.base_url, "--quiet", "--no-figure"])
    assert code == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["judge"]["backend"] == "server" and report["overall"]["n"] == 4
    judged = {int(record["key"]): record for record in read_jsonl(out / "pairs.jsonl")}
    assert all(record["error"] is None for record in judged.values())
    # eval puts chosen as response A, or B where it flipped the pair (so gold is not always A)
    expected = {}
    for row in rows:
        first, second = row["chosen"], row["rejected"]
        if judged[row["id"]]["flipped"]:
            first, second = second, first
        expected[row["id"]] = server_judge.compare(row["prompt"], first, second).p_a
    assert {key: record["p_a"] for key, record in judged.items()} == pytest.approx(expected, abs=TOLERANCE)


def test_arena_command_over_the_server(tmp_path, vllm_demo_server, server_judge):
    answers = sorted((ROOT / "examples" / "arena").glob("*.jsonl"))
    out = tmp_path / "arena"
    code = cli.main(["arena", *map(str, answers), "--baseline", "terse", "-o", str(out), "--model", "demo",
                     "--backend", "server", "--base-url", vllm_demo_server.base_url, "--max-comparisons", "4",
                     "--bootstrap", "10", "--quiet"])
    assert code == 0
    rows = {name.stem: {row["id"]: row for row in read_jsonl(name)} for name in answers}
    judgments = read_jsonl(out / "judgments.jsonl")
    assert len(judgments) == 4
    for judgment in judgments:
        a, b = rows[judgment["model_a"]][judgment["question"]], rows[judgment["model_b"]][judgment["question"]]
        expected = server_judge.compare(a["prompt"], a["response"], b["response"]).p_a
        assert judgment["p_a"] == pytest.approx(expected, abs=TOLERANCE)


def test_score_command_over_a_reward_server(tmp_path, vllm_reward_server, tiny_reward_folder):
    conversation = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "m", "messages": conversation}) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code = cli.main(["score", str(source), "-o", str(out), "--model", str(tiny_reward_folder), "--backend",
                     "server", "--base-url", vllm_reward_server.base_url, "--max-length", str(TINY_REWARD_CONTEXT),
                     "--quiet"])
    assert code == 0
    local = RewardJudge.from_pretrained(str(tiny_reward_folder), load=LoadOptions(device="cpu"),
                                        limits=BatchLimits(max_length=TINY_REWARD_CONTEXT))
    assert read_jsonl(out)[0]["reward"] == pytest.approx(local.score([conversation])[0], abs=TOLERANCE)


def test_critic_serve_is_a_gateway_in_front_of_vllm_serve(vllm_demo_server, server_judge, demo_folder):
    from tests.cli.test_serve import start_server

    process, url, _ = start_server("--model", "demo", "--tokenizer", demo_folder, "--backend", "server",
                                "--base-url", vllm_demo_server.base_url)
    pairs = [{"id": n, "prompt": f"What is {n} + {n}?", "response_a": f"{2 * n}.", "response_b": f"{2 * n + 1}."}
             for n in range(3)]
    try:
        info = httpx.get(f"{url}/v1/info", timeout=30).json()
        answer = httpx.post(f"{url}/v1/compare", json={"pairs": pairs}, timeout=300).json()
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert info["judge"]["backend"] == "server"
    expected = server_judge.compare_batch([{k: v for k, v in pair.items() if k != "id"} for pair in pairs])
    assert [result["id"] for result in answer["results"]] == [0, 1, 2]
    assert [result["p_a"] for result in answer["results"]] == pytest.approx([p.p_a for p in expected], abs=TOLERANCE)
