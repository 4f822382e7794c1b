"""Cleaning a ``datasets.Dataset`` in memory: judge columns, kept/dropped/rejected splits, the same kinds."""

from __future__ import annotations

import pytest

from critic.errors import InputError
from critic.io.shapes import Columns
from critic.jobs.datasets import filter_dataset, judge_columns
from critic.jobs.policy import Policy
from critic.testing import FakeScorer
from critic.types import Preference

from .support import good_judge

datasets = pytest.importorskip("datasets")


def test_filter_dataset_splits_a_dataset_and_counts_add_up():
    rows = [{"prompt": "q1", "chosen": "good", "rejected": "bad"},
            {"prompt": "q2", "chosen": "bad", "rejected": "good"},
            {"prompt": None, "chosen": "good", "rejected": "bad"},
            {"prompt": "q4", "chosen": "meh", "rejected": "meh"}]
    result = filter_dataset(datasets.Dataset.from_list(rows), good_judge(), policy=Policy(relabel=True), batch_size=2,
                            desc=None)
    assert result.kept["prompt"] == ["q1", "q2"]
    assert result.kept["chosen"] == ["good", "good"] and result.kept["critic_relabelled"] == [False, True]
    assert result.kept["critic_p_chosen"] == pytest.approx([0.9, 0.9])
    assert result.dropped["prompt"] == ["q4"] and result.dropped["critic_label"] == ["tie"]
    assert result.rejected["critic_reason"] == ["field 'prompt' is null"]
    assert result.rejected["critic_reason_kind"] == ["missing field"]
    assert result.rejected["critic_reason_stage"] == ["input"]
    assert "critic_label" not in result.rejected.column_names
    assert not {"critic_reason", "critic_reason_kind", "critic_status"} & set(result.kept.column_names)
    counts = result.summary["counts"]
    assert [counts[key] for key in ("rows_in", "kept", "dropped", "rejected", "relabelled")] == [4, 2, 1, 1, 1]
    assert counts["rejected_by_reason"] == {"missing field": 1}
    assert counts["reason_examples"] == {"missing field": "field 'prompt' is null"}
    assert result.summary["judge"] == good_judge().describe().to_dict()


def test_filter_dataset_counts_the_judges_failures_apart_and_reads_reward_scores():
    class Picky:
        def __init__(self) -> None:
            self.judge = good_judge()

        def describe(self):
            return self.judge.describe()

        def compare_each(self, pairs):
            return [RuntimeError("out of memory") if pair.prompt == "poison" else result
                    for pair, result in zip(pairs, self.judge.compare_each(pairs), strict=True)]

    rows = [{"prompt": "poison", "chosen": "good", "rejected": "bad"},
            {"prompt": "q", "chosen": "good", "rejected": "bad"}]
    result = filter_dataset(datasets.Dataset.from_list(rows), Picky(), desc=None)
    assert result.rejected["critic_reason_stage"] == ["judge"]
    assert result.rejected["critic_reason"] == ["judge: unexpected RuntimeError: out of memory"]
    counts = result.summary["counts"]
    assert counts["judged"] == 2 and counts["rejected_by_reason"] == {"judge: model failure": 1}

    from critic import RewardJudge

    reward = RewardJudge(FakeScorer.by_response({"good": 2.0, "bad": -1.0}), model_name="fake-rm")
    scored = filter_dataset(datasets.Dataset.from_list(rows), reward, desc=None)
    assert scored.kept["critic_margin"] == [3.0, 3.0] and scored.summary["judge"]["kind"] == "reward"


def test_judge_columns_works_with_dataset_map_batched():
    dataset = datasets.Dataset.from_list([
        {"question": "q", "good_one": "good", "bad_one": "bad"},
        {"question": "q", "good_one": "bad", "bad_one": "good"},
        {"question": "q", "good_one": "good"},  # (Arrow cannot even hold a lone surrogate)
    ])
    mapped = dataset.map(judge_columns(good_judge(), columns=Columns(prompt="question", chosen="good_one",
                                                                     rejected="bad_one")),
                         batched=True, new_fingerprint="test-judge-columns")
    assert mapped["critic_status"] == ["kept", "dropped", "rejected"]
    assert mapped["critic_label"] == ["chosen", "rejected", None]
    assert mapped["critic_consistent"] == [True, True, None]
    assert mapped["critic_reason_kind"] == [None, None, "missing field"]


def test_filter_dataset_takes_a_dataset_only():
    with pytest.raises(InputError, match="takes a datasets.Dataset"):
        filter_dataset(datasets.DatasetDict({"train": datasets.Dataset.from_list([{"a": 1}])}), good_judge())
    assert Preference  # the judge's result type, used by the fakes above
