"""Position and length bias and calibration: how a judge leans, beyond whether it is right.

Pure functions over plain values, with the conventions of :mod:`critic.eval.metrics`:
a failed judgment is ``None`` and is left out (and counted); a rate with nothing to
count is ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from critic.eval.metrics import Rate, same_length
from critic.errors import InputError
from critic.types import Label


def leaning_accuracy(p_a: Sequence[float | None], gold: Sequence[Label]) -> Rate:
    """How often ``p_a`` leans towards the gold winner, over pairs with a gold winner where it leans at all.

    A judge whose orders disagree labels a pair a tie, but its averaged ``p_a``
    may still lean one way; this shows whether that lean carries signal (0.5:
    none; below 0.5: it points the wrong way). Failed pairs and ``p_a == 0.5``
    are left out.
    """
    same_length(p_a, gold)
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
    same_length(length_a, length_b, predictions, gold, p_a)
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
    same_length(p_a, gold)
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
