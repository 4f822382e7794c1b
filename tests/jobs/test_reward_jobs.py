"""Reward judges in the cleaning job: margin policy, score columns, counts, resume (scores from FakeScorer)."""

from __future__ import annotations

import json

import pytest

from critic import RewardJudge
from critic.errors import InputError
from critic.jobs.filejob import filter_file
from critic.jobs.items import filter_rows
from critic.jobs.policy import Policy
from critic.judges import JudgeDescription
from critic.testing import FakeScorer

from .support import SCORES, outputs, read_jsonl, write_jsonl
from .support import reward_rows as rows



def reward_judge(model: str = "fake-rm") -> RewardJudge:
    return RewardJudge(FakeScorer.by_response(SCORES), model_name=model)




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


def test_min_margin_with_a_generative_judge_fails_before_any_output(tmp_path):
    from .support import good_judge

    source = write_jsonl(tmp_path / "in.jsonl", rows(3))
    with pytest.raises(InputError, match="min_margin .* needs a reward judge"):
        filter_file(source, tmp_path / "out", good_judge(), policy=Policy(min_margin=1.0))
    assert not (tmp_path / "out").exists()


def test_filter_file_with_a_margin_counts_add_up_and_resume_is_byte_identical(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", rows(40))
    policy = Policy(min_margin=1.0)
    whole = filter_file(source, tmp_path / "whole", reward_judge(), policy=policy, chunk_size=6)
    counts = whole.counts
    assert (counts.rows_in, counts.kept, counts.dropped, counts.rejected) == (40, 8, 24, 8)
    assert counts.kept + counts.dropped + counts.rejected == counts.rows_in and counts.consistent == 0
    assert counts.reasons == {"missing field": 8}
    kept = read_jsonl(tmp_path / "whole" / "kept.jsonl")
    assert {row["critic_margin"] for row in kept} == {4.0}
    assert all(row["critic_consistent"] is None for row in kept)
    summary = json.loads((tmp_path / "whole" / "summary.json").read_text(encoding="utf-8"))
    assert summary["judge"]["kind"] == "reward" and whole.judge.kind == "reward"
    assert JudgeDescription.from_dict(summary["judge"]) == reward_judge().describe()
    assert summary["policy"] == {"name": "margin", "min_p": None, "relabel": False, "min_margin": 1.0,
                                 "rule": "keep when score(chosen) - score(rejected) >= 1"}
    assert all(row["kind"] == "missing field" for row in read_jsonl(tmp_path / "whole" / "rejected.jsonl"))

    sample = filter_file(source, tmp_path / "out", reward_judge(), policy=policy, chunk_size=6, limit=15)
    assert sample.counts.rows_in == 15 and not sample.complete
    with pytest.raises(InputError, match="different settings"):  # the margin is part of the job
        filter_file(source, tmp_path / "out", reward_judge(), policy=Policy(), chunk_size=6, resume=True)
    with pytest.raises(InputError, match="different settings \\(judge"):  # so is the reward model
        filter_file(source, tmp_path / "out", reward_judge("other-rm"), policy=policy, chunk_size=6, resume=True)
    rest = filter_file(source, tmp_path / "out", reward_judge(), policy=policy, chunk_size=6, resume=True)
    assert rest.complete and rest.counts.to_dict() == counts.to_dict()
    assert outputs(tmp_path / "out") == outputs(tmp_path / "whole")
