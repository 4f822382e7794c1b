"""Bradley-Terry ranking of a group of responses: exact on consistent judgments, bounded, honest about failures."""

from __future__ import annotations

import math

import pytest

from critic import Judge, RewardJudge
from critic.errors import CriticError, InputError
from critic.judges.ranking import REFERENCE, Ranking, rank, rank_results, ranking_pairs
from critic.testing import FakeBackend, FakeScorer
from critic.types import OrderJudgment, Preference


def preference(p_a: float, consistent: bool | None = True) -> Preference:
    order = OrderJudgment("ab", "A" if p_a >= 0.5 else "B", p_a, 1 - p_a)
    return Preference("A" if p_a > 0.5 else "B", p_a, consistent, (order, order))


def test_all_pairs_recovers_the_strengths_that_generated_consistent_judgments():
    strengths = [4.0, 2.0, 1.0, 0.5]
    pairs, indices = ranking_pairs("q", ["a", "b", "c", "d"])
    assert indices == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)] and pairs[3].response_a == "b"
    results = [preference(strengths[i] / (strengths[i] + strengths[j])) for i, j in indices]
    ranking = rank_results(4, indices, results, prior=0.0, tolerance=1e-12, max_iterations=10_000)
    centre = sum(math.log(s) for s in strengths) / 4
    assert ranking.converged and ranking.against == "all pairs"
    for score, strength in zip(ranking.scores, strengths, strict=True):
        assert score == pytest.approx(math.log(strength) - centre, abs=1e-6)
    assert (ranking.comparisons, ranking.orders, ranking.failed, ranking.consistency) == (6, 12, 0, 1.0)


def test_against_a_reference_a_score_is_the_logit_of_beating_it():
    pairs, indices = ranking_pairs("q", ["a", "b"], reference="ref")
    assert indices == [(0, REFERENCE), (1, REFERENCE)] and pairs[1].response_b == "ref"
    ranking = rank_results(2, indices, [preference(0.8), preference(0.25)], prior=0.0, tolerance=1e-12)
    assert ranking.scores == pytest.approx((math.log(4), math.log(1 / 3)), abs=1e-6)
    assert ranking.against == "reference"


def test_the_prior_keeps_a_clean_sweep_finite_and_the_iteration_is_bounded():
    _, indices = ranking_pairs("q", ["a", "b", "c"])
    ranking = rank_results(3, indices, [preference(1.0), preference(1.0), preference(1.0)])
    assert all(math.isfinite(score) for score in ranking.scores)
    assert ranking.scores[0] > ranking.scores[1] > ranking.scores[2]
    bounded = rank_results(3, indices, [preference(0.9), preference(0.7), preference(0.6)], max_iterations=1)
    assert bounded.iterations == 1 and not bounded.converged


def test_failed_pairs_are_counted_and_a_response_never_judged_has_no_score():
    _, indices = ranking_pairs("q", ["a", "b"], reference="ref")
    ranking = rank_results(2, indices, [preference(0.6, consistent=False), CriticError("too long")])
    assert ranking.scores[1] is None and ranking.scores[0] is not None
    assert (ranking.comparisons, ranking.failed, ranking.errors, ranking.consistency) == (1, 1, ("too long",), 0.0)
    assert Ranking.to_dict(ranking)["scores"] == [ranking.scores[0], None]


def test_rank_in_process_with_a_generative_judge_and_a_reward_judge():
    judge = Judge(FakeBackend.prefer(lambda text: "good" in text))
    ranking = rank(judge, "q", ["good", "bad", "good too"])
    assert ranking.comparisons == 3 and ranking.orders == 6
    assert ranking.scores[0] == pytest.approx(ranking.scores[2]) and ranking.scores[0] > ranking.scores[1]
    assert ranking.consistency == pytest.approx(2 / 3)  # the judge's own flag: its 0.5/0.5 pair is not consistent
    scorer = RewardJudge(FakeScorer.by_response({"good": 2.0, "bad": -1.0}))
    by_reward = rank(scorer, "q", ["bad", "good"])
    assert by_reward.consistency is None and by_reward.scores[1] > by_reward.scores[0] and by_reward.orders == 1


def test_too_few_responses_is_an_input_error():
    with pytest.raises(InputError, match="at least 2 responses"):
        ranking_pairs("q", ["only one"])
    with pytest.raises(InputError, match="at least 1 response"):
        ranking_pairs("q", [], reference="ref")
