"""Every script in examples/ runs as written (the demo model is loaded once per test session)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from critic import Judge
from tests.conftest import shared_path

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))
# Arguments that keep an example offline and short; an example not listed runs with none.
ARGUMENTS = {"evaluate_pandalm.py": ["--limit", "6", "--output-dir", "eval-out"], "skywork_reward.py": ["--tiny"]}
NEEDS = {"rl_reward.py": ("trl", "datasets"), "evaluate_pandalm.py": ("matplotlib",)}


@pytest.fixture
def demo_judge(monkeypatch, demo_backend):
    """Judge.from_pretrained("demo") reuses the session's demo model instead of loading it again."""

    def from_pretrained(model="demo", *, load=None, limits=None, share_prefix=True, **options):
        # Loading options (load, limits, share_prefix) shape only the load, which the session has done already.
        assert model == "demo", "examples run with the demo model"
        return Judge(demo_backend, model_name=model, **options)

    monkeypatch.setattr(Judge, "from_pretrained", staticmethod(from_pretrained))


def test_the_examples_are_there():
    assert {"quickstart.py", "evaluate_pandalm.py", "rl_reward.py"} <= {p.name for p in EXAMPLES}


@pytest.mark.model
@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, demo_judge, tmp_path, monkeypatch, capsys):
    for module in NEEDS.get(script.name, ()):
        pytest.importorskip(module)
    if script.name in ("evaluate_pandalm.py", "pandalm_reference_judges.py"):
        shared_path("data", "pandalm", "testset-v1.json")
    monkeypatch.chdir(tmp_path)  # examples write under out/ or their --output-dir, relative to here
    monkeypatch.setattr(sys, "argv", [str(script), *ARGUMENTS.get(script.name, [])])
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exit:
        assert exit.code in (0, None), f"{script.name} exited with {exit.code}"
    out = capsys.readouterr().out
    assert out.strip(), f"{script.name} printed nothing"
    if script.name == "evaluate_pandalm.py":
        assert (tmp_path / "eval-out" / "report.png").exists()
        assert "| overall | 6 |" in out and "gpt-3.5-turbo" in out
    if script.name == "pandalm_reference_judges.py":  # the figures (rounded) in docs/evaluating-judges.md
        assert "| gpt-3.5-turbo | 25 | 69.77% | 71.07% | 52.74% | 57.55% |" in out
        assert "| pandalm-7b | 0 | 66.77% | 66.77% | 57.43% | 57.43% |" in out
    if script.name == "rl_reward.py":
        assert "one GRPO step done" in out
