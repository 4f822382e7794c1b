"""`--engine ray`: the same job on a local Ray cluster of two CPU actors gives the same rows as the local engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from critic import cli

from .test_filter_cli import FACTORY, demo_judge_factory, generated, outputs, pandalm_slice, read_jsonl  # noqa: F401

ray = pytest.importorskip("ray", reason="the Ray engine needs ray[data] (pip install 'critic[ray]')")
ROOT = Path(__file__).resolve().parents[1]
RAY_SLICE = (614, 86, 140, 157)  # two short pairs (one per actor), a tie and a boolean response (rejected)


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance; more logical CPUs than the actors take, so the read task always gets one."""
    if ray.is_initialized():
        ray.shutdown()
    env = {"PYTHONPATH": str(ROOT), "TORCHDYNAMO_DISABLE": "1", "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    # worker_niceness=0: Ray's default (nice 15) starves the actors on a busy machine (10x slower model loads)
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env},
             object_store_memory=200 * 1024 * 1024, _system_config={"worker_niceness": 0})
    yield
    ray.shutdown()


def test_ray_engine_writes_the_same_bytes_as_the_local_engine(tmp_path, local_ray, capsys):
    source = generated(tmp_path / "in.jsonl", 300)  # includes unreadable lines
    common = ["--judge-factory", FACTORY, "--model", "fast", "--chunk-size", "40", "--quiet"]
    assert cli.main(["filter", str(source), "--output-dir", str(tmp_path / "local"), *common]) == 0
    assert cli.main(["filter", str(source), "--output-dir", str(tmp_path / "ray"), *common,
                     "--engine", "ray", "--ray-actors", "2"]) == 0
    assert "[ray engine]" in capsys.readouterr().out
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local")
    summaries = [json.loads((tmp_path / name / "summary.json").read_text()) for name in ("local", "ray")]
    assert summaries[0]["counts"] == summaries[1]["counts"] and summaries[1]["engine"] == "ray"


def test_a_job_interrupted_on_the_local_engine_resumes_on_ray(tmp_path, local_ray):
    source = generated(tmp_path / "in.jsonl", 120)
    common = ["--judge-factory", FACTORY, "--chunk-size", "20", "--quiet"]
    assert cli.main(["filter", str(source), "--output-dir", str(tmp_path / "whole"), "--model", "fast", *common]) == 0
    # "interrupt:2" stops after two chunks; it describes itself as the same judge as "fast"
    assert cli.main(["filter", str(source), "--output-dir", str(tmp_path / "out"), "--model", "interrupt:2",
                     *common]) == 130
    assert cli.main(["filter", str(source), "--output-dir", str(tmp_path / "out"), "--model", "fast", *common,
                     "--resume", "--engine", "ray"]) == 0
    assert outputs(tmp_path / "out") == outputs(tmp_path / "whole")


@pytest.mark.model
def test_ray_engine_with_the_demo_model_keeps_and_drops_the_same_pandalm_rows(tmp_path, local_ray,
                                                                               demo_judge_factory):  # noqa: F811
    """Each of the two actors loads the demo model itself; the local run reuses the session's."""
    source = pandalm_slice(tmp_path / "pandalm.json", RAY_SLICE)
    common = ["--model", "demo", "--chunk-size", "1", "--quiet"]
    assert cli.main(["filter", str(source), "--output-dir", str(tmp_path / "local"), *common]) == 0
    assert cli.main(["filter", str(source), "--output-dir", str(tmp_path / "ray"), *common,
                     "--engine", "ray", "--ray-actors", "2"]) == 0
    for name in ("kept", "dropped", "rejected"):
        local, distributed = (read_jsonl(tmp_path / run / f"{name}.jsonl") for run in ("local", "ray"))
        def ids(rows):
            return [row.get("idx", row.get("row")) for row in rows]

        assert ids(distributed) == ids(local)
        for mine, theirs in zip(distributed, local, strict=True):
            assert {k: v for k, v in mine.items() if k != "critic_p_chosen"} == \
                   {k: v for k, v in theirs.items() if k != "critic_p_chosen"}
            if "critic_p_chosen" in theirs:
                assert mine["critic_p_chosen"] == pytest.approx(theirs["critic_p_chosen"], abs=1e-4)
    counts = json.loads((tmp_path / "ray" / "summary.json").read_text())["counts"]
    assert counts["rows_in"] == 4 and counts["rejected"] == 2 and counts["judged"] == 2
