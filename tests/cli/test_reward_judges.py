"""Reward judges through the commands: `critic filter --judge reward` and `critic eval --reward-model`
(both kinds side by side, agreement between them). The job logic is tested on the library API in
tests/jobs/test_reward_jobs.py; these tests wait to move to tests/cli and tests/eval.

Scores come from ``FakeScorer``: exact, chosen by hand, no model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from critic import Judge, RewardJudge, cli
from critic.eval.evaluate import evaluate, evaluate_side_by_side
from critic.eval.metrics import (
    cohen_kappa,
)
from critic.eval.pairs import LabelledPair
from critic.testing import FakeBackend, FakeScorer
from critic.types import Pair

from ..jobs.support import SCORES, outputs, read_jsonl, write_jsonl
from ..jobs.support import reward_rows as rows

FACTORY = "tests.cli.test_reward_judges:fake_reward_judge"


def fake_reward_judge(model: str, **options) -> RewardJudge:
    """The ``--judge-factory`` of these tests: a RewardJudge scoring responses from ``SCORES``."""
    assert set(options) <= {"load", "limits"}  # reward options only: no template, mode or swap
    return RewardJudge(FakeScorer.by_response(SCORES), model_name=model)




# --------------------------------------------------------------------------- the cleaning job, CLI


def run_filter(source: Path, out: Path, *extra: str) -> int:
    return cli.main(["filter", str(source), "-o", str(out), "--judge", "reward", "--model", "rm",
                     "--judge-factory", FACTORY, "--quiet", "--chunk-size", "7", *extra])


def test_cli_filter_reward_refuses_overflow_truncate(tmp_path, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", rows(2))
    assert run_filter(source, tmp_path / "out", "--overflow", "truncate") == 2
    assert "Drop --overflow with --judge reward" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_filter_reward_margin_columns_and_resume(tmp_path, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", rows(30))
    assert run_filter(source, tmp_path / "whole") == 1  # six rows lack 'rejected': rejected, exit 1
    assert "reward model" in capsys.readouterr().out
    default = json.loads((tmp_path / "whole" / "summary.json").read_text(encoding="utf-8"))["counts"]
    assert (default["kept"], default["dropped"], default["rejected"]) == (12, 12, 6)  # margins 4 and 0.5 kept

    assert run_filter(source, tmp_path / "margin", "--min-margin", "1") == 1
    kept = read_jsonl(tmp_path / "margin" / "kept.jsonl")
    assert len(kept) == 6 and all(row["critic_margin"] >= 1 for row in kept)
    assert {"critic_score_chosen", "critic_score_rejected", "critic_margin"} <= set(kept[0])

    assert run_filter(source, tmp_path / "part", "--min-margin", "1", "--limit", "10") == 1
    assert run_filter(source, tmp_path / "part", "--min-margin", "1", "--resume") == 1
    assert outputs(tmp_path / "part") == outputs(tmp_path / "margin")


def test_cli_min_margin_with_a_generative_judge_is_a_usage_error(tmp_path, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", rows(3))
    code = cli.main(["filter", str(source), "-o", str(tmp_path / "out"), "--model", "demo", "--min-margin", "1"])
    assert code == 2
    assert "--min-margin" in capsys.readouterr().err and not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- evaluation


def labelled_pairs() -> list[LabelledPair]:
    """Eight pairs, gold always the 'good' answer; the reward model gets pairs 1 and 2 wrong."""
    out = []
    for i in range(8):
        good, bad = f"good {i}", f"bad {i}"
        pair = Pair(f"q{i}", good, bad) if i % 2 == 0 else Pair(f"q{i}", bad, good)
        out.append(LabelledPair(str(i), pair, "A" if i % 2 == 0 else "B", flipped=i == 3))
    return out


def eval_reward_judge() -> RewardJudge:
    return RewardJudge(FakeScorer.by_response({f"good {i}": -1.0 if i in (1, 2) else 1.0 for i in range(8)}),
                       model_name="fake-rm")


def test_side_by_side_reports_both_judges_and_their_agreement():
    generative = Judge(FakeBackend.prefer(lambda text: text.startswith("good")), model_name="fake-critic")
    reports = evaluate_side_by_side({"generative": generative, "reward": eval_reward_judge()}, labelled_pairs())
    main, reward = reports["generative"], reports["reward"]
    assert main.judge.kind != "reward" and reward.judge.kind == "reward"
    assert main.overall.accuracy.accuracy == 1.0 and reward.overall.accuracy.accuracy == 0.75
    assert [o.name for o in main.other_judges] == ["reward"] and main.other_judges[0].accuracy.accuracy == 0.75
    assert [o.name for o in reward.other_judges] == ["generative"]
    expected = cohen_kappa([r.prediction for r in main.records], [r.prediction for r in reward.records]).kappa
    assert expected is not None and 0 < expected < 1
    kappas = {(a.first, a.second): a.kappa for a in main.agreement}
    assert kappas[("judge", "reward")] == pytest.approx(expected)
    assert {(a.first, a.second): a.kappa for a in reward.agreement}[("judge", "generative")] == pytest.approx(expected)
    # a reward judge alone goes through the plain entry point too
    assert evaluate(eval_reward_judge(), labelled_pairs()).overall.accuracy.accuracy == 0.75


def test_cli_eval_with_a_reward_model(tmp_path, fake_judge, monkeypatch, capsys):
    seen = {}

    def from_pretrained(model, **options):
        seen.update(options, model=model)
        return eval_reward_judge()

    monkeypatch.setattr(RewardJudge, "from_pretrained", staticmethod(from_pretrained))
    source = tmp_path / "set.jsonl"
    write_jsonl(source, [{"id": p.key, "prompt": p.pair.prompt, "response_a": p.pair.response_a,
                          "response_b": p.pair.response_b, "label": p.label} for p in labelled_pairs()])
    out = tmp_path / "report"
    code = cli.main(["eval", str(source), "--model", "fake", "--reward-model", "rm", "-o", str(out), "--quiet",
                     "--no-figure"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "## generative judge" in printed and "## reward judge" in printed
    assert seen["model"] == "rm" and seen["limits"].max_batch_size == 16
    main = json.loads((out / "report.json").read_text(encoding="utf-8"))
    reward = json.loads((out / "reward" / "report.json").read_text(encoding="utf-8"))
    assert reward["judge"]["kind"] == "reward" and reward["overall"]["accuracy"]["accuracy"] == 0.75
    assert main["other_judges"][0]["name"] == "reward"
    assert any({a["first"], a["second"]} == {"judge", "reward"} and a["kappa"] is not None for a in main["agreement"])
