"""How good, and how biased, is a judge? Pure functions over plain values.

Conventions shared by every function here:

- A label is ``"A"`` (response_a is better), ``"B"`` or ``"tie"``; a *failed*
  judgment (an unreadable verdict, a ``"garbage"`` answer, a missing
  prediction) is ``None``.
- A failed judgment is scored by a stated policy, never silently. Every result
  counts failures in its own field. Accuracy keeps them in its headline
  denominator; :data:`FailedAs` says how: ``"wrong"`` (the default: not
  correct) or ``"tie"`` (read as a predicted tie, PandaLM's convention: its
  parser maps an unreadable answer to a tie). Under the ``"rewardbench"`` tie
  policy a failure earns 0.5, as in RewardBench's generative runner. Every
  other rate leaves failures out and says how many it left out.
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

TiePolicy = Literal["strict", "half", "rewardbench"]
TIE_POLICIES: tuple[TiePolicy, ...] = get_args(TiePolicy)
FailedAs = Literal["wrong", "tie"]
FAILED_AS: tuple[FailedAs, ...] = get_args(FailedAs)
LABELS: tuple[Label, ...] = ("A", "B", "tie")

__all__ = [
    "FAILED_AS",
    "LABELS",
    "TIE_POLICIES",
    "Accuracy",
    "Agreement",
    "ClassScore",
    "F1",
    "FailedAs",
    "GroupAccuracy",
    "Outcome",
    "Rate",
    "TiePolicy",
    "accuracy",
    "agreement_table",
    "best_of_credit",
    "cohen_kappa",
    "credit",
    "group_accuracy",
    "macro_f1",
    "outcome",
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


def credit(prediction: Label | None, gold: Label, tie_policy: TiePolicy = "strict") -> float:
    """Credit for one judged pair (``prediction`` is ``None`` for a failed judgment).

    ``"strict"``: 1 for the same label, else 0 (a gold tie is matched only by a
    predicted tie); a failure 0. ``"half"``: also 0.5 when exactly one of the
    two is a tie; a failure 0. ``"rewardbench"``: as ``"half"``, and a failure
    earns 0.5, as RewardBench's generative runner scores a pair
    (``scripts/run_generative.py``: the chosen answer wins 1, loses 0, a tie or
    an unparseable answer 0.5).
    """
    if prediction is None:
        return 0.5 if tie_policy == "rewardbench" else 0.0
    if prediction == gold:
        return 1.0
    if tie_policy in ("half", "rewardbench") and "tie" in (prediction, gold):
        return 0.5
    return 0.0


@dataclass(frozen=True)
class Accuracy:
    """Agreement with the gold labels under a stated tie policy and failure policy.

    ``accuracy`` divides by every pair in scope, failures included (scored as
    ``failed_as`` and ``tie_policy`` say: see :func:`accuracy`);
    ``accuracy_judged`` divides the credit of the pairs actually judged by
    their number. ``failed_credit`` is the part of ``correct`` that failures earned.
    """

    tie_policy: TiePolicy
    n: int
    failed: int
    correct: float
    failed_as: FailedAs = "wrong"
    failed_credit: float = 0.0

    @property
    def judged(self) -> int:
        return self.n - self.failed

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n else None

    @property
    def accuracy_judged(self) -> float | None:
        return (self.correct - self.failed_credit) / self.judged if self.judged else None

    def to_dict(self) -> dict[str, object]:
        return {"tie_policy": self.tie_policy, "failed_as": self.failed_as, "n": self.n, "failed": self.failed,
                "judged": self.judged, "correct": self.correct, "failed_credit": self.failed_credit,
                "accuracy": self.accuracy, "accuracy_judged": self.accuracy_judged}


def accuracy(
    predictions: Sequence[Label | None],
    gold: Sequence[Label],
    *,
    tie_policy: TiePolicy = "strict",
    failed_as: FailedAs = "wrong",
    decided_only: bool = False,
) -> Accuracy:
    """Accuracy of ``predictions`` against ``gold``; ``decided_only`` keeps pairs whose gold label has a winner.

    A failed prediction (``None``) is scored as :func:`credit` scores ``None``
    (0, or 0.5 under ``"rewardbench"``) when ``failed_as="wrong"``, and as a
    predicted ``"tie"`` when ``failed_as="tie"``; it is counted in ``failed`` either way.
    """
    same_length(predictions, gold)
    _check_policies(tie_policy, failed_as)
    n = failed = 0
    correct = failed_credit = 0.0
    for prediction, truth in zip(predictions, gold, strict=True):
        if decided_only and truth == "tie":
            continue
        n += 1
        if prediction is None:
            failed += 1
            earned = credit("tie" if failed_as == "tie" else None, truth, tie_policy)
            failed_credit += earned
            correct += earned
        else:
            correct += credit(prediction, truth, tie_policy)
    return Accuracy(tie_policy, n, failed, correct, failed_as, failed_credit)


def _check_policies(tie_policy: str, failed_as: str) -> None:
    if tie_policy not in TIE_POLICIES:
        raise InputError(f"unknown tie policy '{tie_policy}'; choose one of {', '.join(TIE_POLICIES)}")
    if failed_as not in FAILED_AS:
        raise InputError(f"unknown failure policy '{failed_as}'; choose one of {', '.join(FAILED_AS)}")


# --------------------------------------------------------------------------- macro-F1


@dataclass(frozen=True)
class ClassScore:
    """Precision, recall and F1 of one label (0 where undefined, as scikit-learn's ``zero_division=0``)."""

    label: Label
    precision: float
    recall: float
    f1: float
    support: int  # pairs with this gold label
    predicted: int  # pairs predicted as this label

    def to_dict(self) -> dict[str, object]:
        return {"label": self.label, "precision": self.precision, "recall": self.recall, "f1": self.f1,
                "support": self.support, "predicted": self.predicted}


@dataclass(frozen=True)
class F1:
    """Macro-F1: the unweighted mean of the per-label F1 over ``labels``.

    Equal to scikit-learn's ``f1_score(gold, predictions, labels=labels,
    average="macro", zero_division=0)``, with a failure read as a predicted tie
    (``failed_as="tie"``) or as a prediction of no label at all (``"wrong"``:
    a false negative of its gold label, a false positive of none).
    """

    labels: tuple[Label, ...]
    classes: tuple[ClassScore, ...]
    n: int
    failed: int
    failed_as: FailedAs

    @property
    def macro_f1(self) -> float | None:
        return sum(c.f1 for c in self.classes) / len(self.classes) if self.n and self.classes else None

    def to_dict(self) -> dict[str, object]:
        return {"macro_f1": self.macro_f1, "labels": list(self.labels), "n": self.n, "failed": self.failed,
                "failed_as": self.failed_as, "classes": [c.to_dict() for c in self.classes]}


def macro_f1(
    predictions: Sequence[Label | None],
    gold: Sequence[Label],
    *,
    labels: Sequence[Label] = LABELS,
    failed_as: FailedAs = "wrong",
) -> F1:
    """Per-label precision/recall/F1 and their macro mean over ``labels`` (see :class:`F1`)."""
    same_length(predictions, gold)
    _check_policies("strict", failed_as)
    read = [("tie" if failed_as == "tie" else None) if p is None else p for p in predictions]
    hits = Counter(p for p, t in zip(read, gold, strict=True) if p == t)
    predicted, support = Counter(read), Counter(gold)
    classes = [_class_score(label, hits[label], predicted[label], support[label]) for label in labels]
    return F1(tuple(labels), tuple(classes), len(gold), sum(1 for p in predictions if p is None), failed_as)


def _class_score(label: Label, tp: int, predicted: int, support: int) -> ClassScore:
    """Precision tp/predicted, recall tp/support, F1 2tp/(predicted + support) = 2tp/(2tp + fp + fn); 0 if undefined."""
    precision = tp / predicted if predicted else 0.0
    recall = tp / support if support else 0.0
    f1 = 2 * tp / (predicted + support) if predicted + support else 0.0
    return ClassScore(label, precision, recall, f1, support, predicted)


# --------------------------------------------------------------------------- groups


Outcome = Literal["win", "tie", "loss"]  # a pair of a best-of row, for the chosen answer (None: failed)


def outcome(prediction: Label | None, gold: Label) -> Outcome | None:
    """How the gold winner fared in one judged pair: ``"win"``, ``"tie"``, ``"loss"`` (``None``: the pair failed).

    A gold tie (no winner) is a ``"win"`` when the judge also said tie, else a ``"loss"``.
    """
    if prediction is None:
        return None
    if gold == "tie":
        return "win" if prediction == "tie" else "loss"
    return "win" if prediction == gold else "tie" if prediction == "tie" else "loss"


def best_of_credit(outcomes: Sequence[Outcome | None]) -> float:
    """RewardBench 2's credit for a row: its chosen answer against each rejected one (``outcomes``, one per pair).

    As ``reroll_and_score_dataset`` (``rewardbench/utils.py``) scores a row: 1
    when the chosen answer is alone at the top, ``1/k`` when it ties at the top
    with ``k - 1`` others, 0 when another answer is above it. A failed pair
    means the row's judgment failed: the chance credit ``1/n`` for its ``n``
    answers, RewardBench 2's 0.25 for its four (``scripts/run_generative_v2.py``,
    "effectively a tie"), RewardBench's 0.5 for a lone pair.
    """
    if any(o is None for o in outcomes):
        return 1.0 / (len(outcomes) + 1)
    if "loss" in outcomes:
        return 0.0
    return 1.0 / (1 + sum(1 for o in outcomes if o == "tie"))


@dataclass(frozen=True)
class GroupAccuracy:
    """Accuracy over rows, where a row is a group of pairs (RewardBench 2) or a pair without a group.

    A best-of row earns :func:`best_of_credit` (1, ``1/k`` for a tie at the top,
    0, or the chance credit when a pair failed); a row of RewardBench 2's
    ``Ties`` subset (one or several correct answers) earns 1 only when every
    correct answer beats every incorrect one (the accuracy part of its Ties
    score), else 0. ``failed`` counts rows with at least one failed pair.
    """

    n: int
    correct: float
    failed: int
    grouped: int  # items that are groups (the rest are single pairs)
    pairs: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n else None

    def to_dict(self) -> dict[str, object]:
        return {"items": self.n, "correct": self.correct, "failed": self.failed, "groups": self.grouped,
                "pairs": self.pairs, "accuracy": self.accuracy}


def group_accuracy(
    predictions: Sequence[Label | None],
    gold: Sequence[Label],
    groups: Sequence[str | None],
    *,
    all_must_win: Sequence[bool] | None = None,
) -> GroupAccuracy:
    """:class:`GroupAccuracy` of pairs labelled with their ``groups`` (``None``: a pair of its own).

    ``all_must_win`` marks the pairs of rows scored by RewardBench 2's Ties
    accuracy: correct only when the correct answer(s) beat every incorrect one.
    """
    marks = all_must_win if all_must_win is not None else [False] * len(gold)
    same_length(predictions, gold, groups, marks)
    items: dict[tuple[str, str], list[tuple[Outcome | None, bool]]] = {}
    for index, (prediction, truth, group, mark) in enumerate(zip(predictions, gold, groups, marks, strict=True)):
        key = ("pair", str(index)) if group is None else ("group", group)
        items.setdefault(key, []).append((outcome(prediction, truth), mark))
    correct, failed = 0.0, 0
    for members in items.values():
        outcomes = [o for o, _ in members]
        if any(mark for _, mark in members):
            correct += all(o == "win" for o in outcomes)
        else:
            correct += best_of_credit(outcomes)
        failed += any(o is None for o in outcomes)
    grouped = sum(1 for kind, _ in items if kind == "group")
    return GroupAccuracy(len(items), correct, failed, grouped, len(gold))


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
    same_length(first, second)
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


def same_length(*sequences: Sequence[object]) -> None:
    lengths = {len(sequence) for sequence in sequences}
    if len(lengths) > 1:
        raise InputError(f"metric inputs must have one value per pair; got lengths {sorted(lengths)}")
