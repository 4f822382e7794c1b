"""critic.eval.metrics: tables of hand-checked cases, and properties that must hold for any input."""

from __future__ import annotations

import importlib.util
import math
import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from critic.errors import InputError
from critic.eval.metrics import (
    accuracy,
    agreement_table,
    cohen_kappa,
    credit,
    group_accuracy,
    macro_f1,
)
from critic.eval.bias import (
    calibration,
    first_shown_win_rate,
    leaning_accuracy,
    length_bias,
    position_consistency,
)

labels = st.sampled_from(["A", "B", "tie"])
maybe_labels = st.one_of(st.none(), labels)


@pytest.mark.parametrize(
    ("prediction", "gold", "policy", "expected"),
    [
        ("A", "A", "strict", 1.0),
        ("B", "A", "strict", 0.0),
        ("tie", "A", "strict", 0.0),
        ("tie", "tie", "strict", 1.0),
        ("A", "tie", "strict", 0.0),
        ("tie", "A", "half", 0.5),
        ("B", "tie", "half", 0.5),
        ("B", "A", "half", 0.0),
        ("tie", "tie", "half", 1.0),
        # RewardBench's generative runner (scripts/run_generative.py): win 1, loss 0, tie or error 0.5
        ("A", "A", "rewardbench", 1.0),
        ("B", "A", "rewardbench", 0.0),
        ("tie", "A", "rewardbench", 0.5),
        (None, "A", "rewardbench", 0.5),
        (None, "A", "strict", 0.0),
        (None, "A", "half", 0.0),
    ],
)
def test_credit(prediction, gold, policy, expected):
    assert credit(prediction, gold, policy) == expected


@pytest.mark.parametrize(
    ("predictions", "gold", "policy", "decided_only", "n", "failed", "correct", "acc", "acc_judged"),
    [
        (["A", "B", "A", "B"], ["A", "B", "B", "B"], "strict", False, 4, 0, 3.0, 0.75, 0.75),
        # a failure is never half right: it counts in `failed` and as not correct in the headline
        (["A", None, "tie", "B"], ["A", "A", "A", "tie"], "strict", False, 4, 1, 1.0, 0.25, 1 / 3),
        (["A", None, "tie", "B"], ["A", "A", "A", "tie"], "half", False, 4, 1, 2.0, 0.5, 2 / 3),
        (["A", None, "tie", "B"], ["A", "A", "A", "tie"], "strict", True, 3, 1, 1.0, 1 / 3, 0.5),
        ([None, None], ["A", "B"], "half", False, 2, 2, 0.0, 0.0, None),
        ([], [], "strict", False, 0, 0, 0.0, None, None),
    ],
)
def test_accuracy_table(predictions, gold, policy, decided_only, n, failed, correct, acc, acc_judged):
    result = accuracy(predictions, gold, tie_policy=policy, decided_only=decided_only)
    assert (result.n, result.failed, result.correct) == (n, failed, correct)
    assert result.accuracy == (pytest.approx(acc) if acc is not None else None)
    assert result.accuracy_judged == (pytest.approx(acc_judged) if acc_judged is not None else None)


@pytest.mark.parametrize(
    ("predictions", "gold", "policy", "failed_as", "correct", "failed_credit", "acc", "acc_judged"),
    [
        # a failure read as a tie (PandaLM's convention) is a wrong tie against a winner under strict
        (["A", None, "tie", "B"], ["A", "A", "A", "tie"], "strict", "tie", 1.0, 0.0, 0.25, 1 / 3),
        (["A", None, "tie", "B"], ["A", "A", "A", "tie"], "half", "tie", 2.5, 0.5, 0.625, 2 / 3),
        (["A", None, "tie", "B"], ["A", "A", "A", "tie"], "rewardbench", "wrong", 2.5, 0.5, 0.625, 2 / 3),
        (["A", None, "tie", "B"], ["A", "A", "A", "tie"], "rewardbench", "tie", 2.5, 0.5, 0.625, 2 / 3),
        ([None], ["tie"], "strict", "tie", 1.0, 1.0, 1.0, None),  # read as a tie, it matches a gold tie
        ([None], ["tie"], "rewardbench", "wrong", 0.5, 0.5, 0.5, None),
        ([None, "A"], ["B", "A"], "strict", "wrong", 1.0, 0.0, 0.5, 1.0),
    ],
)
def test_accuracy_failure_policies(predictions, gold, policy, failed_as, correct, failed_credit, acc, acc_judged):
    result = accuracy(predictions, gold, tie_policy=policy, failed_as=failed_as)
    assert (result.correct, result.failed_credit, result.failed) == (correct, failed_credit, predictions.count(None))
    assert result.accuracy == pytest.approx(acc)
    assert result.accuracy_judged == (pytest.approx(acc_judged) if acc_judged is not None else None)
    assert result.to_dict()["failed_as"] == failed_as and result.to_dict()["tie_policy"] == policy


def test_accuracy_rejects_unknown_policy_and_misaligned_inputs():
    with pytest.raises(InputError, match="tie policy"):
        accuracy(["A"], ["A"], tie_policy="lenient")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="failure policy"):
        accuracy(["A"], ["A"], failed_as="half")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="one value per pair"):
        accuracy(["A", "B"], ["A"])


@settings(deadline=None)  # a shared CI machine can be slow; no timing here
@given(st.lists(st.tuples(maybe_labels, labels), max_size=60))
def test_accuracy_counts_add_up(rows):
    predictions, gold = [p for p, _ in rows], [g for _, g in rows]
    strict = accuracy(predictions, gold)
    half = accuracy(predictions, gold, tie_policy="half")
    decided = accuracy(predictions, gold, decided_only=True)
    assert strict.n == len(rows) and strict.failed == predictions.count(None)
    assert strict.judged + strict.failed == strict.n
    assert 0 <= strict.correct <= strict.judged
    assert strict.correct <= half.correct <= strict.correct + 0.5 * strict.judged
    assert decided.n == sum(1 for g in gold if g != "tie")
    exact = sum(1 for p, g in rows if p == g)
    assert strict.correct == exact


# Hand-checked: per label, precision = tp / predicted, recall = tp / gold, F1 = 2tp / (predicted + gold),
# each 0 when its denominator is 0 (scikit-learn's zero_division=0); macro-F1 is their plain mean.
@pytest.mark.parametrize(
    ("predictions", "gold", "labels", "failed_as", "per_label", "macro"),
    [
        (["A", "B", "B", "B", "tie", "A"], ["A", "A", "B", "B", "tie", "tie"], ("A", "B", "tie"), "wrong",
         [(0.5, 0.5, 0.5), (2 / 3, 1.0, 0.8), (1.0, 0.5, 2 / 3)], (0.5 + 0.8 + 2 / 3) / 3),
        (["A", None, None], ["A", "B", "tie"], ("A", "B", "tie"), "wrong",
         [(1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)], 1 / 3),
        (["A", None, None], ["A", "B", "tie"], ("A", "B", "tie"), "tie",
         [(1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (0.5, 1.0, 2 / 3)], 5 / 9),
        # a label named but used by neither side scores 0, as scikit-learn scores it with labels=...
        (["A", "B"], ["A", "B"], ("A", "B", "tie"), "wrong", [(1.0, 1.0, 1.0)] * 2 + [(0.0, 0.0, 0.0)], 2 / 3),
        (["A", "B"], ["A", "B"], ("A", "B"), "wrong", [(1.0, 1.0, 1.0)] * 2, 1.0),
        (["B", "B"], ["A", "A"], ("A", "B"), "wrong", [(0.0, 0.0, 0.0)] * 2, 0.0),
        ([], [], ("A", "B", "tie"), "wrong", [(0.0, 0.0, 0.0)] * 3, None),
    ],
)
def test_macro_f1_table(predictions, gold, labels, failed_as, per_label, macro):
    result = macro_f1(predictions, gold, labels=labels, failed_as=failed_as)
    flat = [value for c in result.classes for value in (c.precision, c.recall, c.f1)]
    assert flat == pytest.approx([value for scores in per_label for value in scores])
    assert result.macro_f1 == (pytest.approx(macro) if macro is not None else None)
    assert [c.support for c in result.classes] == [gold.count(label) for label in labels]
    assert result.failed == predictions.count(None) and result.to_dict()["macro_f1"] == result.macro_f1


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn is not installed")
@settings(deadline=None)
@given(st.lists(st.tuples(maybe_labels, labels), min_size=1, max_size=40), st.sampled_from(["wrong", "tie"]))
def test_macro_f1_equals_scikit_learn(rows, failed_as):
    from sklearn import metrics
    predictions, gold = [p for p, _ in rows], [g for _, g in rows]
    read = [("tie" if failed_as == "tie" else "failed") if p is None else p for p in predictions]
    expected = metrics.f1_score(gold, read, labels=["A", "B", "tie"], average="macro", zero_division=0)
    precision = metrics.precision_score(gold, read, labels=["A", "B", "tie"], average=None, zero_division=0)
    result = macro_f1(predictions, gold, failed_as=failed_as)
    assert result.macro_f1 == pytest.approx(expected)
    assert [c.precision for c in result.classes] == pytest.approx(list(precision))


@pytest.mark.parametrize(
    ("predictions", "gold", "groups", "several", "expected"),
    [
        # g1: chosen wins both; g2: a failed pair, the row's chance 1/3; the lone pair lost -> 1 + 1/3 of 3 rows
        (["A", "A", "B", None, "A"], ["A", "A", "A", "A", "B"], ["g1", "g1", "g2", "g2", None], None,
         (3, 1 + 1 / 3, 1, 2, 5)),
        # a tie at the top with one other answer: 1/2; with two: 1/3; a loss anywhere: 0
        (["tie", "A", "A"], ["A", "A", "A"], ["g"] * 3, None, (1, 1 / 2, 0, 1, 3)),
        (["tie", "B", "tie"], ["A", "B", "A"], ["g"] * 3, None, (1, 1 / 3, 0, 1, 3)),  # flipped pair: B is chosen
        (["tie", "A", "A"], ["A", "B", "A"], ["g"] * 3, None, (1, 0, 0, 1, 3)),
        (["A", None, "A"], ["A", "A", "A"], ["g"] * 3, None, (1, 0.25, 1, 1, 3)),  # RewardBench 2's 0.25
        ([None], ["A"], [None], None, (1, 0.5, 1, 0, 1)),  # a lone failed pair: RewardBench's 0.5
        (["tie"], ["tie"], [None], None, (1, 1, 0, 0, 1)),  # a gold tie matched
        # a Ties row (several correct answers): every correct answer must beat every incorrect one
        (["A", "A", "tie", "A"], ["A"] * 4, ["t"] * 4, [True] * 4, (1, 0, 0, 1, 4)),
        (["A", "B", "A", "B"], ["A", "B", "A", "B"], ["t"] * 4, [True] * 4, (1, 1, 0, 1, 4)),
        (["A", "B"], ["A", "B"], [None, None], None, (2, 2, 0, 0, 2)),  # no groups: pairs are rows
    ],
)
def test_group_accuracy_follows_rewardbench_2s_row_rule(predictions, gold, groups, several, expected):
    result = group_accuracy(predictions, gold, groups, all_must_win=several)
    assert (result.n, result.failed, result.grouped, result.pairs) == (expected[0], *expected[2:])
    assert result.correct == pytest.approx(expected[1])
    assert result.accuracy == pytest.approx(expected[1] / expected[0])


@pytest.mark.parametrize(
    ("outcomes", "hits", "n"),
    [
        ([("A", "A"), ("A", "B"), ("tie", "tie")], 2, 3),
        ([("A",), (), ("B", "B")], 1, 1),  # single-order and failed pairs have nothing to compare
        ([], 0, 0),
    ],
)
def test_position_consistency(outcomes, hits, n):
    rate = position_consistency(outcomes)
    assert (rate.hits, rate.n) == (hits, n)
    assert rate.value == (hits / n if n else None)


@pytest.mark.parametrize(
    ("shown", "hits", "n"),
    [
        ([("A", "A"), ("A", "A")], 4, 4),  # pure first-position bias
        ([("A", "B"), ("B", "A")], 2, 4),  # consistent judge: each order's winner is shown first once
        ([("A", "C"), ("B", "B")], 1, 3),  # tie verdicts leave the denominator
        ([("A",), ("A", "B")], 1, 2),  # single-order pairs would let the labels leak in: not counted
    ],
)
def test_first_shown_win_rate(shown, hits, n):
    rate = first_shown_win_rate(shown)
    assert (rate.hits, rate.n) == (hits, n)


def test_length_bias_table():
    # pairs: A longer, B longer, equal length, A longer
    result = length_bias([10, 2, 5, 9], [3, 8, 5, 1], ["A", "A", "B", "tie"], ["A", "B", "A", "B"],
                         [0.9, 0.6, 0.5, None])
    assert (result.judge_longer_wins.hits, result.judge_longer_wins.n) == (1, 2)
    assert (result.gold_longer_wins.hits, result.gold_longer_wins.n) == (2, 3)
    assert result.equal_length == 1
    assert result.mean_p_longer == pytest.approx((0.9 + 0.4) / 2)
    assert result.excess == pytest.approx(0.5 - 2 / 3)


def test_length_bias_of_a_length_loving_judge():
    length_a, length_b = [50, 10, 30, 5], [10, 50, 5, 30]
    gold = ["B", "A", "B", "A"]  # the labels always prefer the shorter answer
    judge = ["A", "B", "A", "B"]  # the judge always prefers the longer one
    result = length_bias(length_a, length_b, judge, gold, [1.0, 0.0, 1.0, 0.0])
    assert result.judge_longer_wins.value == 1.0 and result.gold_longer_wins.value == 0.0
    assert result.excess == 1.0 and result.mean_p_longer == 1.0


def test_calibration_of_perfectly_calibrated_data_is_small():
    rng = random.Random(0)
    p = [rng.random() for _ in range(20000)]
    gold = ["A" if rng.random() < value else "B" for value in p]
    result = calibration(p, gold)
    assert result.n == 20000 and result.excluded == 0
    assert result.ece < 0.02
    for b in result.bins:
        assert b.lower <= b.mean_p < b.upper
        assert abs(b.observed - b.mean_p) < 0.05


def test_calibration_of_confidently_wrong_data_is_large():
    result = calibration([0.95, 0.05, 0.95, 0.05], ["B", "A", "B", "A"])
    assert result.ece == pytest.approx(0.95)
    assert result.brier == pytest.approx(0.95**2)


def test_calibration_table_and_exclusions():
    result = calibration([0.0, 0.25, 1.0, None, 0.7], ["B", "A", "A", "A", "tie"], bins=4)
    assert result.n == 3 and result.excluded == 2  # a failed pair and a gold tie
    assert [b.n for b in result.bins] == [1, 1, 0, 1]  # 1.0 falls in the last bin
    assert result.bins[1].observed == 1.0 and result.bins[1].mean_p == 0.25
    assert result.ece == pytest.approx((0 + 0.75 + 0) / 3)
    with pytest.raises(InputError):
        calibration([1.5], ["A"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.floats(0, 1)), labels), max_size=80), st.integers(1, 20))
def test_calibration_properties(rows, bins):
    p, gold = [x for x, _ in rows], [g for _, g in rows]
    result = calibration(p, gold, bins=bins)
    assert len(result.bins) == bins
    assert sum(b.n for b in result.bins) + result.excluded == len(rows)
    assert result.n == sum(1 for x, g in rows if x is not None and g != "tie")
    if result.n:
        assert 0.0 <= result.ece <= 1.0 + 1e-9
        assert 0.0 <= result.brier <= 1.0 + 1e-9
    else:
        assert result.ece is None


def test_kappa_textbook_example():
    # 50 items: both "A" 20, A/B 5, B/A 10, both "B" 15 -> p_o 0.7, p_e 0.5, kappa 0.4
    first = ["A"] * 20 + ["A"] * 5 + ["B"] * 10 + ["B"] * 15
    second = ["A"] * 20 + ["B"] * 5 + ["A"] * 10 + ["B"] * 15
    result = cohen_kappa(first, second)
    assert result.observed == pytest.approx(0.7)
    assert result.expected == pytest.approx(0.5)
    assert result.kappa == pytest.approx(0.4)


def test_kappa_leaves_out_failures_and_is_undefined_without_variation():
    result = cohen_kappa(["A", None, "B", "A"], ["A", "B", None, "B"])
    assert (result.n, result.missing) == (2, 2)
    assert cohen_kappa(["A", "A"], ["A", "A"]).kappa is None  # chance agreement is 1: undefined
    assert cohen_kappa([None], ["A"]).kappa is None


@settings(deadline=None)  # a shared CI machine can be slow; no timing here
@given(st.lists(labels, min_size=1, max_size=50))
def test_kappa_of_identical_raters_is_one(column):
    assume(len(set(column)) > 1)
    assert cohen_kappa(column, list(column)).kappa == pytest.approx(1.0)


@settings(deadline=None)  # a shared CI machine can be slow; no timing here
@given(st.lists(st.tuples(maybe_labels, maybe_labels), max_size=50))
def test_kappa_is_symmetric_and_bounded(rows):
    x, y = [a for a, _ in rows], [b for _, b in rows]
    forward, backward = cohen_kappa(x, y), cohen_kappa(y, x)
    assert forward.n + forward.missing == len(rows)
    if forward.kappa is None:
        assert backward.kappa is None
    else:
        assert forward.kappa == pytest.approx(backward.kappa)
        assert -1.0 - 1e-9 <= forward.kappa <= 1.0 + 1e-9


def test_kappa_of_opposite_binary_raters_is_minus_one():
    assert cohen_kappa(["A", "B"] * 5, ["B", "A"] * 5).kappa == pytest.approx(-1.0)


def test_agreement_table_has_every_pair_of_raters():
    table = agreement_table({"gold": ["A", "B"], "judge": ["A", "A"], "other": ["B", "B"]})
    assert [(a.first, a.second) for a in table] == [("gold", "judge"), ("gold", "other"), ("judge", "other")]
    assert not any(a.kappa is not None and math.isnan(a.kappa) for a in table)


@pytest.mark.parametrize(
    ("p_a", "gold", "hits", "n"),
    [
        ([0.51, 0.49, 0.7, 0.2], ["A", "A", "B", "B"], 2, 4),
        ([0.5, None, 0.9, 0.9], ["A", "A", "tie", "A"], 1, 1),  # no lean, failed, gold tie: left out
    ],
)
def test_leaning_accuracy(p_a, gold, hits, n):
    rate = leaning_accuracy(p_a, gold)
    assert (rate.hits, rate.n) == (hits, n)
