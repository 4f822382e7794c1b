"""What a cleaning job keeps: a judge's verdict on (chosen, rejected) and the rule that reads it.

The judge sees each pair as ``(prompt, response_a=chosen, response_b=rejected)``, so
its ``p_a`` is P(chosen is better). Generative judges: keep when the judge prefers
chosen in both orders (default) or when P(chosen) >= ``min_p``. Reward judges read
the margin ``score_chosen - score_rejected``: keep when > 0 (default) or >= ``min_margin``.
``relabel`` swaps chosen and rejected where the judge confirms the rejected one.

A row holding several pairs (RewardBench 2: one chosen answer, or several in its
``Ties`` subset, against each rejected one) is judged pair by pair and read as
one :meth:`Verdict.combined`: the chosen side must win every pair, so the rule
reads the weakest pair. Such a row is never relabelled (which rejected answer
would become the chosen one?): where the rule would relabel, it is dropped.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any, Literal

from critic.errors import CriticError, InputError
from critic.judges import JudgeDescription

logger = logging.getLogger("critic")


_LABEL_NAMES = {"A": "chosen", "B": "rejected", "tie": "tie"}


SCORE_COLUMNS = ("critic_score_chosen", "critic_score_rejected", "critic_margin")


@dataclass(frozen=True)
class Verdict:
    """What a policy reads from a judgment, in terms of the row's claim.

    ``label`` is ``"A"`` when the judge prefers ``chosen``, ``"B"`` for
    ``rejected``, ``"tie"``; ``p_chosen`` is P(chosen is better); ``consistent``
    says whether both presentation orders agreed (``None``: one order judged).
    ``score_chosen``/``score_rejected`` are a reward judge's two scores (``None``
    for a generative judge).
    """

    label: str
    p_chosen: float
    consistent: bool | None
    score_chosen: float | None = None
    score_rejected: float | None = None
    pairs: tuple[Verdict, ...] = ()  # a row of several pairs: each pair's verdict (see combined)

    @classmethod
    def combined(cls, verdicts: Sequence[Verdict]) -> Verdict:
        """One verdict for a row of several pairs, chosen first in each: the chosen side must win them all.

        ``label``: ``"A"`` when every pair is A, ``"B"`` when any pair is B,
        else ``"tie"``; ``consistent``: every pair consistent (``None`` when a
        pair was judged in one order); ``p_chosen`` and the scores: the weakest
        pair's (lowest margin for a reward judge, else lowest P(chosen)).
        ``pairs`` keeps every pair's verdict.
        """
        if len(verdicts) == 1:
            return verdicts[0]
        labels = {v.label for v in verdicts}
        label = "A" if labels == {"A"} else "B" if "B" in labels else "tie"
        consistent = None if any(v.consistent is None for v in verdicts) else all(v.consistent for v in verdicts)
        weakest = min(verdicts, key=lambda v: v.p_chosen if v.margin is None else v.margin)
        return cls(label, weakest.p_chosen, consistent, weakest.score_chosen, weakest.score_rejected,
                   tuple(verdicts))

    @property
    def margin(self) -> float | None:
        """``score_chosen - score_rejected``; ``None`` without scores."""
        if self.score_chosen is None or self.score_rejected is None:
            return None
        return self.score_chosen - self.score_rejected

    @classmethod
    def from_preference(cls, preference: Any) -> Verdict:
        orders = tuple(preference.orders)
        score_a = getattr(orders[0], "score_a", None) if len(orders) == 1 else None
        score_b = getattr(orders[0], "score_b", None) if len(orders) == 1 else None
        return cls(str(preference.label), float(preference.p_a), preference.consistent,
                   None if score_a is None else float(score_a), None if score_b is None else float(score_b))

    def swapped(self) -> Verdict:
        """The same judgment read for the other response as ``chosen``."""
        label = {"A": "B", "B": "A"}.get(self.label, self.label)
        return Verdict(label, 1.0 - self.p_chosen, self.consistent, self.score_rejected, self.score_chosen)


@dataclass(frozen=True)
class Policy:
    """Which judged rows to keep (see the module docs).

    ``reward`` says the judge is a reward model (set by :meth:`for_judge`): the
    default rule is then ``margin > 0``, or ``margin >= min_margin``.
    """

    min_p: float | None = None
    relabel: bool = False
    min_margin: float | None = None
    reward: bool = False

    def __post_init__(self) -> None:
        if self.min_p is not None and not 0.0 <= self.min_p <= 1.0:
            raise InputError(f"min_p must be between 0 and 1, got {self.min_p}")
        if self.min_margin is not None:
            if not math.isfinite(self.min_margin):
                raise InputError(f"min_margin must be a finite number, got {self.min_margin}")
            if self.min_p is not None:
                raise InputError("choose either min_p or min_margin, not both")

    def for_judge(self, description: JudgeDescription) -> Policy:
        """This policy for the judge that ``describe()`` returned ``description`` (checks ``min_margin``)."""
        reward = description.kind == "reward"
        if self.min_margin is not None and not reward:
            raise InputError(f"min_margin (--min-margin) needs a reward judge (--judge reward); this judge is "
                             f"{description.kind!r}: use min_p (--min-p) instead")
        return dataclasses.replace(self, reward=reward)

    @property
    def name(self) -> str:
        if self.min_p is not None:
            return "min-p"
        return "margin" if self.reward else "consistent"

    def describe(self) -> dict[str, Any]:
        if self.min_p is not None:
            rule = f"keep when P(chosen is better) >= {self.min_p:g}"
        elif self.reward:
            rule = ("keep when score(chosen) - score(rejected) > 0" if self.min_margin is None
                    else f"keep when score(chosen) - score(rejected) >= {self.min_margin:g}")
        else:
            rule = "keep when the judge prefers chosen in both orders"
        if self.relabel:
            rule += "; swap chosen and rejected where the judge confirms rejected the same way"
        described: dict[str, Any] = {"name": self.name, "min_p": self.min_p, "relabel": self.relabel, "rule": rule}
        if self.reward:  # generative jobs keep the description (and so the checkpoints) they always had
            described["min_margin"] = self.min_margin
        return described

    def decide(self, verdict: Verdict) -> Literal["keep", "relabel", "drop"]:
        if self.min_p is not None:
            return self._by_probability(verdict.p_chosen, self.min_p)
        if self.reward:
            return self._by_margin(verdict.margin)
        if verdict.consistent and verdict.label == "A":
            return "keep"
        if self.relabel and verdict.consistent and verdict.label == "B":
            return "relabel"
        return "drop"

    def _by_probability(self, p_chosen: float, min_p: float) -> Literal["keep", "relabel", "drop"]:
        if p_chosen >= min_p:
            return "keep"
        if self.relabel and 1.0 - p_chosen >= min_p:
            return "relabel"
        return "drop"

    def _by_margin(self, margin: float | None) -> Literal["keep", "relabel", "drop"]:
        if margin is None:
            raise CriticError("a reward policy needs the judge's two scores; this judgment has none")
        if self._wins(margin):
            return "keep"
        if self.relabel and self._wins(-margin):
            return "relabel"
        return "drop"

    def _wins(self, margin: float) -> bool:
        return margin > 0 if self.min_margin is None else margin >= self.min_margin


DEFAULT_POLICY = Policy()
