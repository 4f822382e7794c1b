"""Policies: which judged rows a job keeps, drops or relabels, for generative and reward judges."""

from __future__ import annotations

import pytest

from critic.errors import CriticError, InputError
from critic.jobs.policy import Policy, Verdict
from critic.judges import JudgeDescription

from .support import good_judge

REWARD = JudgeDescription(kind="reward", model="rm")


@pytest.mark.parametrize("verdict, default, min_p_06, relabel, relabel_min_p_06", [
    (Verdict("A", 0.9, True), "keep", "keep", "keep", "keep"),
    (Verdict("B", 0.1, True), "drop", "drop", "relabel", "relabel"),
    (Verdict("A", 0.55, False), "drop", "drop", "drop", "drop"),
    (Verdict("A", 0.65, False), "drop", "keep", "drop", "keep"),
    (Verdict("tie", 0.5, True), "drop", "drop", "drop", "drop"),
    (Verdict("A", 0.9, None), "drop", "keep", "drop", "keep"),
])
def test_policies(verdict, default, min_p_06, relabel, relabel_min_p_06):
    assert Policy().decide(verdict) == default
    assert Policy(min_p=0.6).decide(verdict) == min_p_06
    assert Policy(relabel=True).decide(verdict) == relabel
    assert Policy(min_p=0.6, relabel=True).decide(verdict) == relabel_min_p_06
    with pytest.raises(InputError):
        Policy(min_p=1.5)


@pytest.mark.parametrize(("margin", "default", "min_1", "min_0", "relabel", "relabel_min_1"), [
    (4.0, "keep", "keep", "keep", "keep", "keep"),
    (0.5, "keep", "drop", "keep", "keep", "drop"),
    (0.0, "drop", "drop", "keep", "drop", "drop"),  # equal scores: dropped unless --min-margin 0
    (-0.5, "drop", "drop", "drop", "relabel", "drop"),
    (-1.0, "drop", "drop", "drop", "relabel", "relabel"),  # margin <= -M relabels
])
def test_margin_policy(margin, default, min_1, min_0, relabel, relabel_min_1):
    verdict = Verdict("A" if margin > 0 else "B" if margin < 0 else "tie", 0.5, None, 1.0 + margin, 1.0)
    assert Policy().for_judge(REWARD).decide(verdict) == default
    assert Policy(min_margin=1.0).for_judge(REWARD).decide(verdict) == min_1
    assert Policy(min_margin=0.0).for_judge(REWARD).decide(verdict) == min_0
    assert Policy(relabel=True).for_judge(REWARD).decide(verdict) == relabel
    assert Policy(min_margin=1.0, relabel=True).for_judge(REWARD).decide(verdict) == relabel_min_1


def test_a_reward_policy_with_min_p_reads_the_probability_and_without_scores_fails():
    verdict = Verdict("A", 0.7, None, 0.2, 1.0)  # a negative margin, but P(chosen) = 0.7
    assert Policy(min_p=0.6).for_judge(REWARD).decide(verdict) == "keep"
    with pytest.raises(CriticError, match="needs the judge's two scores"):
        Policy().for_judge(REWARD).decide(Verdict("A", 0.7, None))


def test_min_margin_needs_a_reward_judge_and_excludes_min_p():
    description = good_judge().describe()
    assert isinstance(description, JudgeDescription) and description.kind == "generative"
    with pytest.raises(InputError, match="needs a reward judge.*'generative'"):
        Policy(min_margin=1.0).for_judge(description)
    with pytest.raises(InputError, match="not both"):
        Policy(min_p=0.6, min_margin=1.0)
    with pytest.raises(InputError, match="finite"):
        Policy(min_margin=float("nan"))
    assert Policy().for_judge(description).describe() == Policy().describe()  # generative: unchanged
    assert Policy().for_judge(REWARD).reward and Policy().for_judge(REWARD).name == "margin"


def test_verdict_swapped_reads_the_other_response_as_chosen():
    verdict = Verdict("A", 0.8, True, 2.0, -1.0)
    assert verdict.margin == 3.0
    swapped = verdict.swapped()
    assert (swapped.label, swapped.p_chosen, swapped.margin) == ("B", pytest.approx(0.2), -3.0)
    assert Verdict("tie", 0.5, True).swapped().label == "tie" and Verdict("A", 0.5, True).margin is None


@pytest.mark.parametrize(("labels", "ps", "consistent", "label", "p", "keep"), [
    (("A", "A", "A"), (0.9, 0.7, 0.8), (True, True, True), "A", 0.7, "keep"),  # every pair won: the weakest is 0.7
    (("A", "tie", "A"), (0.9, 0.5, 0.8), (True, False, True), "tie", 0.5, "drop"),
    (("A", "B", "A"), (0.9, 0.2, 0.8), (True, True, True), "B", 0.2, "relabel"),  # items.decide drops it
    (("A", "A"), (0.9, 0.8), (True, None), "A", 0.8, "drop"),  # one order judged: not consistent
])
def test_a_row_of_several_pairs_is_read_by_its_weakest_pair(labels, ps, consistent, label, p, keep):
    verdicts = [Verdict(*values) for values in zip(labels, ps, consistent, strict=True)]
    combined = Verdict.combined(verdicts)
    assert (combined.label, combined.p_chosen, combined.pairs) == (label, p, tuple(verdicts))
    assert Policy(relabel=True).decide(combined) == keep
    assert (Policy(min_p=0.75).decide(combined) == "keep") == (p >= 0.75)
    assert Verdict.combined(verdicts[:1]) is verdicts[0]


def test_a_reward_row_of_several_pairs_is_read_by_its_smallest_margin():
    verdicts = [Verdict("A", 0.9, None, 2.0, -1.0), Verdict("A", 0.6, None, 2.0, 1.5),
                Verdict("B", 0.4, None, 2.0, 2.5)]
    combined = Verdict.combined(verdicts)
    assert (combined.label, combined.margin, combined.score_rejected) == ("B", -0.5, 2.5)
    assert Policy(reward=True).decide(combined) == "drop"
    assert Policy(reward=True, min_margin=-1.0).decide(combined) == "keep"
