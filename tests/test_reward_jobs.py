"""Reward judges in the jobs: `critic filter --judge reward` (margin policy, score columns, resume) and
`critic eval --reward-model` (both kinds side by side, agreement between them).

Scores come from ``FakeScorer``: exact, chosen by hand, no model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from critic import Judge, RewardJudge, cli
from critic.errors import InputError
from critic.eval.evaluate import evaluate, evaluate_side_by_side
from critic.eval.metrics import cohen_kappa
from critic.eval.pairs import LabelledPair
from critic.jobs.filejob import filter_file
from critic.jobs.items import filter_rows
from critic.jobs.policy import Policy, Verdict
from critic.testing import FakeBackend, FakeScorer
from critic.types import Pair

from .test_evaluation import fake_from_pretrained  # noqa: F401  (a fixture)
from .test_filtering import good_judge, outputs, read_jsonl, write_jsonl

FACTORY = "tests.test_reward_jobs:fake_reward_judge"
SCORES = {"great": 3.0, "poor": -1.0, "fine": 1.0, "okay": 0.5, "same": 0.25, "also same": 0.25}
# margins of (chosen, rejected): great/poor +4, fine/okay +0.5, same/also same 0, poor/great -4
KINDS = [("great", "poor"), ("fine", "okay"), ("same", "also same"), ("poor", "great")]


def fake_reward_judge(model: str, **options) -> RewardJudge:
    """The ``--judge-factory`` of these tests: a RewardJudge scoring responses from ``SCORES``."""
    assert set(options) <= {"device", "dtype", "batch_size", "max_length", "trust_remote_code"}  # reward options only
    return RewardJudge(FakeScorer.by_response(SCORES), model_name=model)


def reward_judge() -> RewardJudge:
    return fake_reward_judge("fake-rm", device=None, dtype=None, batch_size=16, trust_remote_code=False)


def rows(count: int) -> list[dict]:
    """The four margins in turn, and every fifth row without 'rejected' (a bad row)."""
    out = []
    for i in range(count):
        chosen, rejected = KINDS[i % 4]
        row = {"id": i, "prompt": f"q{i}", "chosen": chosen, "rejected": rejected}
        if i % 5 == 4:
            del row["rejected"]
        out.append(row)
    return out


# --------------------------------------------------------------------------- the policy


@pytest.mark.parametrize(("margin", "default", "min_1", "min_0", "relabel", "relabel_min_1"), [
    (4.0, "keep", "keep", "keep", "keep", "keep"),
    (0.5, "keep", "drop", "keep", "keep", "drop"),
    (0.0, "drop", "drop", "keep", "drop", "drop"),  # equal scores: dropped unless --min-margin 0
    (-0.5, "drop", "drop", "drop", "relabel", "drop"),
    (-1.0, "drop", "drop", "drop", "relabel", "relabel"),  # margin <= -M relabels
])
def test_margin_policy(margin, default, min_1, min_0, relabel, relabel_min_1):
    verdict = Verdict("A" if margin > 0 else "B" if margin < 0 else "tie", 0.5, None, 1.0 + margin, 1.0)
    reward = {"kind": "reward"}
    assert Policy().for_judge(reward).decide(verdict) == default
    assert Policy(min_margin=1.0).for_judge(reward).decide(verdict) == min_1
    assert Policy(min_margin=0.0).for_judge(reward).decide(verdict) == min_0
    assert Policy(relabel=True).for_judge(reward).decide(verdict) == relabel
    assert Policy(min_margin=1.0, relabel=True).for_judge(reward).decide(verdict) == relabel_min_1


def test_min_margin_needs_a_reward_judge_and_excludes_min_p():
    with pytest.raises(InputError, match="needs a reward judge"):
        Policy(min_margin=1.0).for_judge(good_judge().describe())
    with pytest.raises(InputError, match="not both"):
        Policy(min_p=0.6, min_margin=1.0)
    assert Policy().for_judge(good_judge().describe()).describe() == Policy().describe()  # generative: unchanged


# --------------------------------------------------------------------------- the cleaning job, Python API


def test_filter_rows_writes_the_scores_and_keeps_positive_margins():
    outcomes = list(filter_rows(rows(4), reward_judge()))
    assert [o.output for o in outcomes] == ["kept", "kept", "dropped", "dropped"]
    first = outcomes[0].record
    assert (first["critic_score_chosen"], first["critic_score_rejected"], first["critic_margin"]) == (3.0, -1.0, 4.0)
    assert first["critic_label"] == "chosen" and first["critic_consistent"] is None
    assert first["critic_p_chosen"] == pytest.approx(1 / (1 + 2.718281828459045 ** -4.0))
    assert outcomes[2].record["critic_label"] == "tie" and outcomes[2].record["critic_margin"] == 0.0


def test_relabel_swaps_the_rows_and_their_scores():
    outcomes = list(filter_rows(rows(4), reward_judge(), policy=Policy(relabel=True)))
    swapped = outcomes[3]
    assert swapped.output == "kept" and swapped.relabelled
    record = swapped.record
    assert (record["chosen"], record["rejected"]) == ("great", "poor")
    assert (record["critic_score_chosen"], record["critic_score_rejected"], record["critic_margin"]) == (3.0, -1.0, 4.0)
    assert record["critic_label"] == "chosen" and record["critic_relabelled"] is True


def test_filter_file_with_a_margin_counts_add_up_and_resume_is_byte_identical(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", rows(40))
    policy = Policy(min_margin=1.0)
    whole = filter_file(source, tmp_path / "whole", reward_judge(), policy=policy, chunk_size=6)
    counts = whole.counts
    assert (counts.rows_in, counts.kept, counts.dropped, counts.rejected) == (40, 8, 24, 8)
    assert counts.kept + counts.dropped + counts.rejected == counts.rows_in and counts.consistent == 0
    kept = read_jsonl(tmp_path / "whole" / "kept.jsonl")
    assert {row["critic_margin"] for row in kept} == {4.0}
    assert all(row["critic_consistent"] is None for row in kept)
    summary = json.loads((tmp_path / "whole" / "summary.json").read_text(encoding="utf-8"))
    assert summary["judge"]["kind"] == "reward"
    assert summary["policy"] == {"name": "margin", "min_p": None, "relabel": False, "min_margin": 1.0,
                                 "rule": "keep when score(chosen) - score(rejected) >= 1"}
    assert all("missing" in row["reason"] for row in read_jsonl(tmp_path / "whole" / "rejected.jsonl"))

    sample = filter_file(source, tmp_path / "out", reward_judge(), policy=policy, chunk_size=6, limit=15)
    assert sample.counts.rows_in == 15 and not sample.complete
    with pytest.raises(InputError, match="different settings"):  # the margin is part of the job
        filter_file(source, tmp_path / "out", reward_judge(), policy=Policy(), chunk_size=6, resume=True)
    rest = filter_file(source, tmp_path / "out", reward_judge(), policy=policy, chunk_size=6, resume=True)
    assert rest.complete and rest.counts.to_dict() == counts.to_dict()
    assert outputs(tmp_path / "out") == outputs(tmp_path / "whole")


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
    assert run_filter(source, tmp_path / "whole") == 0
    assert "reward model" in capsys.readouterr().out
    default = json.loads((tmp_path / "whole" / "summary.json").read_text(encoding="utf-8"))["counts"]
    assert (default["kept"], default["dropped"], default["rejected"]) == (12, 12, 6)  # margins 4 and 0.5 kept

    assert run_filter(source, tmp_path / "margin", "--min-margin", "1") == 0
    kept = read_jsonl(tmp_path / "margin" / "kept.jsonl")
    assert len(kept) == 6 and all(row["critic_margin"] >= 1 for row in kept)
    assert {"critic_score_chosen", "critic_score_rejected", "critic_margin"} <= set(kept[0])

    assert run_filter(source, tmp_path / "part", "--min-margin", "1", "--limit", "10") == 0
    assert run_filter(source, tmp_path / "part", "--min-margin", "1", "--resume") == 0
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
    assert main.judge["kind"] != "reward" and reward.judge["kind"] == "reward"
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


def test_cli_eval_with_a_reward_model(tmp_path, fake_from_pretrained, monkeypatch, capsys):  # noqa: F811
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
    assert seen["model"] == "rm" and seen["batch_size"] == 16
    main = json.loads((out / "report.json").read_text(encoding="utf-8"))
    reward = json.loads((out / "reward" / "report.json").read_text(encoding="utf-8"))
    assert reward["judge"]["kind"] == "reward" and reward["overall"]["accuracy"]["accuracy"] == 0.75
    assert main["other_judges"][0]["name"] == "reward"
    assert any({a["first"], a["second"]} == {"judge", "reward"} and a["kappa"] is not None for a in main["agreement"])
