"""The reward judge: margins to preferences, errors in place, pointwise scores. Scores come from ``FakeScorer``."""

from __future__ import annotations

import json
import logging
import math

import pytest

from critic import InputError, ModelError, Pair
from critic.errors import Reason
from critic.judges import JudgeDescription, PairwiseJudge, RewardJudge
from critic.judges.reward import preference_from_scores
from critic.options import BatchLimits
from critic.testing import FakeScorer

LONE_SURROGATE = json.loads('"broken \\ud800 text"')  # valid JSON, invalid Unicode


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_reward_judge_is_a_pairwise_judge():
    judge = RewardJudge(FakeScorer.scripted([]), model_name="rm", tie_margin=0.5)
    assert isinstance(judge, PairwiseJudge)
    assert judge.describe() == JudgeDescription(kind="reward", model="rm", backend="fake", tie_margin=0.5)
    assert judge.describe().to_dict() == {"kind": "reward", "model": "rm", "backend": "fake", "tie_margin": 0.5}


@pytest.mark.parametrize(
    ("score_a", "score_b", "tie_margin", "label", "verdict"),
    [
        (2.0, -1.0, 0.0, "A", "A"),
        (-1.0, 2.0, 0.0, "B", "B"),
        (1.5, 1.5, 0.0, "tie", "C"),  # with the default margin only equal scores tie
        (1.0, 0.9999, 0.0, "A", "A"),
        (1.4, 1.0, 0.5, "tie", "C"),
        (1.0, 1.5, 0.5, "tie", "C"),  # |margin| == tie_margin is a tie
        (1.6, 1.0, 0.5, "A", "A"),
        (12.625, -15.25, 0.0, "A", "A"),
    ],
)
def test_margin_maps_to_label_and_sigmoid(score_a, score_b, tie_margin, label, verdict):
    judge = RewardJudge(FakeScorer.scripted([score_a, score_b]), tie_margin=tie_margin)
    preference = judge.compare("q", "a", "b")
    assert preference.label == label
    assert preference.p_a == pytest.approx(sigmoid(score_a - score_b))
    assert preference.consistent is None  # each response scored alone: no order to disagree with
    (order,) = preference.orders
    assert (order.order, order.verdict, order.score_a, order.score_b) == ("ab", verdict, score_a, score_b)
    assert order.p_a == preference.p_a and order.p_b == pytest.approx(1 - preference.p_a)


def test_huge_margins_do_not_overflow():
    assert preference_from_scores(1000.0, -1000.0).p_a == 1.0
    assert preference_from_scores(-1000.0, 1000.0).p_a == 0.0


def test_to_dict_carries_the_scores_and_is_json():
    record = preference_from_scores(2.0, -1.0).to_dict()
    assert record["consistent"] is None
    assert record["orders"] == [
        {"order": "ab", "verdict": "A", "p_a": pytest.approx(sigmoid(3.0)), "p_b": pytest.approx(1 - sigmoid(3.0)),
         "p_tie": 0.0, "forced": False, "score_a": 2.0, "score_b": -1.0}
    ]
    json.dumps(record)


def test_each_response_is_scored_alone_as_a_conversation():
    scorer = FakeScorer.by_response({"good": 1.0, "bad": -1.0})
    judge = RewardJudge(scorer)
    history = ({"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"})
    pairs = [Pair("q1", "good", "bad", history=history), {"prompt": "q2", "response_a": "bad", "response_b": "good"}]
    results = judge.compare_batch(pairs)
    assert [r.label for r in results] == ["A", "B"]
    assert scorer.calls[0] == (*history, {"role": "user", "content": "q1"}, {"role": "assistant", "content": "good"})
    assert scorer.calls[1][-1] == {"role": "assistant", "content": "bad"}
    assert scorer.calls[2:] == [
        ({"role": "user", "content": "q2"}, {"role": "assistant", "content": "bad"}),
        ({"role": "user", "content": "q2"}, {"role": "assistant", "content": "good"}),
    ]


def test_a_failed_response_costs_its_pair_only():
    too_long = InputError("the conversation is 9000 tokens, longer than the model's context of 8192 tokens")
    judge = RewardJudge(FakeScorer.scripted([1.0, 0.0, 1.0, too_long, float("nan"), 0.0]))
    results = judge.compare_each([Pair("q", "a", "b")] * 3)
    assert results[0].label == "A"
    assert isinstance(results[1], InputError) and str(results[1]).startswith("response_b: the conversation is 9000")
    assert results[1].pair_index == 1
    assert isinstance(results[2], ModelError)
    assert str(results[2]).startswith("response_a: ") and "not a finite score" in str(results[2])
    with pytest.raises(InputError, match="response_b"):
        RewardJudge(FakeScorer.scripted([1.0, too_long])).compare_batch([Pair("q", "a", "b")])


def test_score_is_pointwise_and_names_the_failing_row():
    conversations = [
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}],
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "bad"}],
    ]
    judge = RewardJudge(FakeScorer.by_response({"good": 3.0, "bad": -2.0}))
    assert judge.score(conversations) == [3.0, -2.0]
    unfinished = [{"role": "user", "content": "no answer yet"}]
    results = judge.score_each([conversations[0], unfinished])
    assert results[0] == 3.0 and isinstance(results[1], InputError)
    with pytest.raises(InputError, match=r"^conversation 1: .*must end with an assistant message"):
        judge.score([conversations[0], unfinished])
    with pytest.raises(InputError, match=r"conversation 0: .*role 'robot'"):
        judge.score([[{"role": "robot", "content": "x"}]])


def test_score_count_mismatch_is_a_model_error():
    class Broken:
        def score(self, conversations):
            return [0.0]

    with pytest.raises(ModelError, match="returned 1 scores for 2 conversations"):
        RewardJudge(Broken()).compare_each([Pair("q", "a", "b")])


def test_references_are_ignored_with_one_warning(caplog):
    judge = RewardJudge(FakeScorer.by_response({}))
    with caplog.at_level(logging.WARNING, logger="critic"):
        judge.compare("q", "a", "b", reference="r")
        judge.compare("q", "a", "b", reference="r")
    assert caplog.text.count("read no reference") == 1


def test_negative_tie_margin_is_refused():
    with pytest.raises(InputError, match="tie_margin"):
        RewardJudge(FakeScorer.by_response({}), tie_margin=-1.0)


def test_truncation_is_refused_before_anything_loads():
    with pytest.raises(InputError, match="overflow='truncate'.*reward model"):
        RewardJudge.from_pretrained("/no/such/reward/model", limits=BatchLimits(overflow="truncate"))
    with pytest.raises(InputError, match="tie_margin"):
        RewardJudge.from_pretrained("/no/such/reward/model", tie_margin=-1.0)


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param({"prompt": LONE_SURROGATE}, id="prompt"),
        pytest.param({"response_a": LONE_SURROGATE}, id="response_a"),
        pytest.param({"response_b": LONE_SURROGATE}, id="response_b"),
        pytest.param({"reference": LONE_SURROGATE}, id="reference"),
        pytest.param({"history": [{"role": "user", "content": LONE_SURROGATE}, {"role": "assistant", "content": "x"}]},
                     id="history"),
    ],
)
def test_a_lone_surrogate_fails_its_pair_and_the_neighbours_are_judged(broken):
    field = next(iter(broken))
    good = {"prompt": "q", "response_a": "good", "response_b": "bad"}
    scorer = FakeScorer.by_response({"good": 1.0, "bad": -1.0})
    results = RewardJudge(scorer).compare_each([good, {**good, **broken}, good])
    assert results[0].label == results[2].label == "A"
    error = results[1]
    assert isinstance(error, InputError) and error.kind is Reason.BAD_TEXT and error.pair_index == 1
    assert f"'{field}'" in str(error) and "unpaired UTF-16 surrogate" in str(error)
    assert len(scorer.calls) == 4  # only the good pairs reached the scorer


def test_a_lone_surrogate_in_a_conversation_fails_that_conversation_only():
    answer = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}]
    broken = [{"role": "user", "content": "q"}, {"role": "assistant", "content": LONE_SURROGATE}]
    scorer = FakeScorer.by_response({"good": 2.0})
    results = RewardJudge(scorer).score_each([answer, broken, answer])
    assert results[0] == results[2] == 2.0
    assert isinstance(results[1], InputError) and results[1].kind is Reason.BAD_TEXT
    assert "conversation[1] content" in str(results[1]) and "surrogate" in str(results[1])
    assert len(scorer.calls) == 2
