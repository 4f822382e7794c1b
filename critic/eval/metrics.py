"""How good, and how biased, is a judge? Pure functions over plain values.

Conventions shared by every function here:

- A label is ``"A"`` (response_a is better), ``"B"`` or ``"tie"``; a *failed*
  judgment (an unreadable verdict, a ``"garbage"`` answer, a missing
  prediction) is ``None``.
- A failed judgment never earns credit, and never a silent 0.5. Every result
  counts failures in its own field. Accuracy keeps them in its headline
  denominator, as not correct (the convention behind PandaLM's published
  accuracies); every other rate leaves them out and says how many it left out.
- Ties follow a stated :data:`TiePolicy` (see :func:`credit`).
- A rate with nothing to count is ``None``, never 0 or 0.5.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal, get_args

from critic.errors import InputError
from critic.types import Label

TiePolicy = Literal["strict", "half"]
TIE_POLICIES: tuple[TiePolicy, ...] = get_args(TiePolicy)
LABELS: tuple[Label, ...] = ("A", "B", "tie")

__all__ = [
    "LABELS",
    "TIE_POLICIES",
    "Accuracy",
    "Agreement",
    "Calibration",
    "CalibrationBin",
    "LengthBias",
    "Rate",
    "TiePolicy",
    "accuracy",
    "agreement_table",
    "calibration",
    "cohen_kappa",
    "credit",
    "first_shown_win_rate",
    "leaning_accuracy",
    "length_bias",
    "position_consistency",
]


@dataclass(frozen=True)
class Rate:
    """``hits`` out of ``n``; ``value`` is ``None`` when ``n`` is 0."""

    hits: float
    n: int

    @property
    def value(self) -> float | None:
        return self.hits / self.n if self.n else None

    def to_dict(self) -> dict[str, float | int | None]:
        return {"value": self.value, "hits": self.hits, "n": self.n}


# --------------------------------------------------------------------------- accuracy


def credit(prediction: Label, gold: Label, tie_policy: TiePolicy = "strict") -> float:
    """Credit for one judged pair.

    ``"strict"``: 1 for the same label, else 0 (a gold tie is matched only by a
    predicted tie). ``"half"``: also 0.5 when exactly one of the two is a tie
    (RewardBench's convention for a judge whose two orders disagree).
    """
    if prediction == gold:
        return 1.0
    if tie_policy == "half" and "tie" in (prediction, gold):
        return 0.5
    return 0.0


@dataclass(frozen=True)
class Accuracy:
    """Agreement with the gold labels under a stated tie policy.

    ``accuracy`` divides by every pair in scope, failures included (they count
    as not correct); ``accuracy_judged`` divides by the pairs actually judged.
    """

    tie_policy: TiePolicy
    n: int
    failed: int
    correct: float

    @property
    def judged(self) -> int:
        return self.n - self.failed

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n else None

    @property
    def accuracy_judged(self) -> float | None:
        return self.correct / self.judged if self.judged else None

    def to_dict(self) -> dict[str, object]:
        return {"tie_policy": self.tie_policy, "n": self.n, "failed": self.failed, "judged": self.judged,
                "correct": self.correct, "accuracy": self.accuracy, "accuracy_judged": self.accuracy_judged}


def accuracy(
    predictions: Sequence[Label | None],
    gold: Sequence[Label],
    *,
    tie_policy: TiePolicy = "strict",
    decided_only: bool = False,
) -> Accuracy:
    """Accuracy of ``predictions`` against ``gold``; ``decided_only`` keeps pairs whose gold label has a winner."""
    _same_length(predictions, gold)
    if tie_policy not in TIE_POLICIES:
        raise InputError(f"unknown tie policy '{tie_policy}'; choose one of {', '.join(TIE_POLICIES)}")
    n = failed = 0
    correct = 0.0
    for prediction, truth in zip(predictions, gold, strict=True):
        if decided_only and truth == "tie":
            continue
        n += 1
        if prediction is None:
            failed += 1
        else:
            correct += credit(prediction, truth, tie_policy)
    return Accuracy(tie_policy, n, failed, correct)


def leaning_accuracy(p_a: Sequence[float | None], gold: Sequence[Label]) -> Rate:
    """How often ``p_a`` leans towards the gold winner, over pairs with a gold winner where it leans at all.

    A judge whose orders disagree labels a pair a tie, but its averaged ``p_a``
    may still lean one way; this shows whether that lean carries signal (0.5:
    none; below 0.5: it points the wrong way). Failed pairs and ``p_a == 0.5``
    are left out.
    """
    _same_length(p_a, gold)
    leaning = [(p > 0.5) == (truth == "A") for p, truth in zip(p_a, gold, strict=True)
               if p is not None and p != 0.5 and truth != "tie"]
    return Rate(sum(leaning), len(leaning))


# --------------------------------------------------------------------------- position bias


def position_consistency(outcomes: Sequence[Sequence[Label]]) -> Rate:
    """Share of pairs whose two presentation orders reached the same outcome.

    ``outcomes[i]`` holds pair i's per-order outcomes in terms of the original
    responses (``OrderJudgment.outcome``). Only pairs judged in exactly two
    orders count; a failed or single-order pair has nothing to compare.
    """
    both = [pair for pair in outcomes if len(pair) == 2]
    return Rate(sum(1 for first, second in both if first == second), len(both))


def first_shown_win_rate(shown_verdicts: Sequence[Sequence[str]]) -> Rate:
    """How often the response shown first wins, among order judgments that chose one.

    ``shown_verdicts[i]`` holds pair i's verdict letters *as shown* (``"A"`` =
    the first-shown response won, ``"B"``, ``"C"`` = tie), one per order. Only
    pairs judged in both orders count: there each response was shown first
    once, so the gold labels cannot leak into the rate, and an unbiased judge
    scores 0.5. Tie verdicts are left out of the denominator.
    """
    letters = [letter for pair in shown_verdicts if len(pair) == 2 for letter in pair if letter in ("A", "B")]
    return Rate(sum(1 for letter in letters if letter == "A"), len(letters))


# --------------------------------------------------------------------------- length bias


@dataclass(frozen=True)
class LengthBias:
    """How often the longer response wins, by the judge and by the gold labels.

    ``judge_longer_wins``: over pairs of unequal length where the judge chose a
    winner. ``gold_longer_wins``: over pairs of unequal length whose gold label
    has a winner. ``mean_p_longer``: the judge's mean probability that the
    longer response is better, over judged pairs of unequal length (useful when
    most labels are ties). ``excess`` > 0 means the judge favours length more
    than the labels do.
    """

    judge_longer_wins: Rate
    gold_longer_wins: Rate
    mean_p_longer: float | None
    equal_length: int

    @property
    def excess(self) -> float | None:
        judge, gold = self.judge_longer_wins.value, self.gold_longer_wins.value
        return None if judge is None or gold is None else judge - gold

    def to_dict(self) -> dict[str, object]:
        return {"judge_longer_wins": self.judge_longer_wins.to_dict(),
                "gold_longer_wins": self.gold_longer_wins.to_dict(),
                "mean_p_longer": self.mean_p_longer, "equal_length": self.equal_length, "excess": self.excess}


def length_bias(
    length_a: Sequence[int],
    length_b: Sequence[int],
    predictions: Sequence[Label | None],
    gold: Sequence[Label],
    p_a: Sequence[float | None],
) -> LengthBias:
    """Length bias from response lengths (any unit: characters, tokens), labels and ``p_a``."""
    _same_length(length_a, length_b, predictions, gold, p_a)
    judge_hits = judge_n = gold_hits = gold_n = equal = 0
    p_longer: list[float] = []
    for la, lb, prediction, truth, p in zip(length_a, length_b, predictions, gold, p_a, strict=True):
        if la == lb:
            equal += 1
            continue
        longer: Label = "A" if la > lb else "B"
        if prediction in ("A", "B"):
            judge_n += 1
            judge_hits += prediction == longer
        if truth in ("A", "B"):
            gold_n += 1
            gold_hits += truth == longer
        if p is not None:
            p_longer.append(p if longer == "A" else 1.0 - p)
    mean = sum(p_longer) / len(p_longer) if p_longer else None
    return LengthBias(Rate(judge_hits, judge_n), Rate(gold_hits, gold_n), mean, equal)


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class CalibrationBin:
    """Pairs whose ``p_a`` fell in [lower, upper) (the last bin includes 1.0)."""

    lower: float
    upper: float
    n: int
    mean_p: float | None
    observed: float | None  # share of these pairs where response_a is in fact better

    def to_dict(self) -> dict[str, object]:
        return {"lower": self.lower, "upper": self.upper, "n": self.n, "mean_p": self.mean_p, "observed": self.observed}


@dataclass(frozen=True)
class Calibration:
    """Reliability table of ``p_a`` against the gold winner, its ECE and Brier score.

    Pairs with a gold tie have no winner to be calibrated against and failed
    pairs have no ``p_a``: both are left out and counted in ``excluded``.
    ECE = sum over bins of (bin share of pairs) * |observed - mean_p|.
    """

    bins: tuple[CalibrationBin, ...]
    n: int
    excluded: int
    ece: float | None
    brier: float | None

    def to_dict(self) -> dict[str, object]:
        return {"n": self.n, "excluded": self.excluded, "ece": self.ece, "brier": self.brier,
                "bins": [b.to_dict() for b in self.bins]}


def calibration(p_a: Sequence[float | None], gold: Sequence[Label], *, bins: int = 10) -> Calibration:
    """Equal-width reliability bins of ``p_a`` over [0, 1]; the outcome is ``gold == "A"``."""
    _same_length(p_a, gold)
    if bins < 1:
        raise InputError("calibration needs at least one bin")
    members, excluded = _binned(p_a, gold, bins)
    table: list[CalibrationBin] = []
    n = sum(len(m) for m in members)
    ece = 0.0
    squared = 0.0
    for index, member in enumerate(members):
        lower, upper = index / bins, (index + 1) / bins
        if not member:
            table.append(CalibrationBin(lower, upper, 0, None, None))
            continue
        mean_p = sum(p for p, _ in member) / len(member)
        observed = sum(y for _, y in member) / len(member)
        ece += len(member) / n * abs(observed - mean_p)
        squared += sum((p - y) ** 2 for p, y in member)
        table.append(CalibrationBin(lower, upper, len(member), mean_p, observed))
    return Calibration(tuple(table), n, excluded, ece if n else None, squared / n if n else None)


def _binned(p_a: Sequence[float | None], gold: Sequence[Label], bins: int) -> tuple[list[list[tuple[float, int]]], int]:
    """``(p_a, 1 if A is better else 0)`` per bin, and how many pairs were left out (failed, or a gold tie)."""
    members: list[list[tuple[float, int]]] = [[] for _ in range(bins)]
    excluded = 0
    for p, truth in zip(p_a, gold, strict=True):
        if p is None or truth == "tie" or not math.isfinite(p):
            excluded += 1
            continue
        if not 0.0 <= p <= 1.0:
            raise InputError(f"p_a must lie in [0, 1], got {p}")
        members[min(int(p * bins), bins - 1)].append((p, int(truth == "A")))
    return members, excluded


# --------------------------------------------------------------------------- agreement


@dataclass(frozen=True)
class Agreement:
    """Cohen's kappa between two raters over the pairs both of them labelled.

    ``missing`` counts pairs where either rater failed. ``kappa`` is ``None``
    when it is undefined: no shared pairs, or both raters used one and the same
    label throughout (chance agreement is then 1).
    """

    first: str
    second: str
    n: int
    missing: int
    observed: float | None
    expected: float | None
    kappa: float | None

    def to_dict(self) -> dict[str, object]:
        return {"first": self.first, "second": self.second, "n": self.n, "missing": self.missing,
                "observed": self.observed, "expected": self.expected, "kappa": self.kappa}


def cohen_kappa(
    first: Sequence[Label | None], second: Sequence[Label | None], *, names: tuple[str, str] = ("first", "second")
) -> Agreement:
    """Cohen's kappa, (p_o - p_e) / (1 - p_e), over the labels A, B and tie."""
    _same_length(first, second)
    both = [(x, y) for x, y in zip(first, second, strict=True) if x is not None and y is not None]
    n, missing = len(both), len(first) - len(both)
    if not n:
        return Agreement(*names, 0, missing, None, None, None)
    observed = sum(1 for x, y in both if x == y) / n
    left, right = Counter(x for x, _ in both), Counter(y for _, y in both)
    expected = sum(left[label] * right[label] for label in left) / (n * n)
    kappa = None if math.isclose(expected, 1.0) else (observed - expected) / (1.0 - expected)
    return Agreement(*names, n, missing, observed, expected, kappa)


def agreement_table(columns: Mapping[str, Sequence[Label | None]]) -> tuple[Agreement, ...]:
    """Cohen's kappa for every pair of raters (columns of labels aligned by pair)."""
    return tuple(cohen_kappa(columns[a], columns[b], names=(a, b)) for a, b in combinations(columns, 2))


def _same_length(*sequences: Sequence[object]) -> None:
    lengths = {len(sequence) for sequence in sequences}
    if len(lengths) > 1:
        raise InputError(f"metric inputs must have one value per pair; got lengths {sorted(lengths)}")
