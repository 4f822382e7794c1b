"""--engine ray for an arena: a pool of Ray actors judges the same comparisons to the same bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from critic import cli

from .fakes import FACTORY, write_answers

ray = pytest.importorskip("ray", reason="the Ray engine needs ray (pip install 'critic[ray]')")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ray_actors_judge_the_same_bytes_as_the_local_judge(tmp_path):
    if ray.is_initialized():
        ray.shutdown()
    env = {"PYTHONPATH": str(ROOT), "TORCHDYNAMO_DISABLE": "1", "HF_HUB_OFFLINE": "1"}
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env},
             object_store_memory=200 * 1024 * 1024, _system_config={"worker_niceness": 0})
    try:
        answers = write_answers(tmp_path / "answers", ("careful", "terse", "padded"), questions=9)
        common = [*map(str, answers), "--judge-factory", FACTORY, "--model", "fast", "--chunk-size", "8",
                  "--bootstrap", "10", "--no-figure", "--quiet"]
        assert cli.main(["arena", *common, "-o", str(tmp_path / "local")]) == 0
        assert cli.main(["arena", *common, "-o", str(tmp_path / "ray"), "--engine", "ray", "--ray-actors", "2"]) == 0
        for name in ("judgments.jsonl", "leaderboard.json", "leaderboard.csv", "report.md"):
            assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
        assert (tmp_path / "ray" / "judgments.jsonl").read_text().count("\n") == 27
    finally:
        ray.shutdown()
