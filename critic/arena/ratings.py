"""Bradley-Terry ratings over battles, their Elo-like scale, and bootstrap intervals over questions.

The ratings are :func:`critic.judges.ranking.fit_bradley_terry` on every battle (outcome:
how much ``model_a`` won), anchored at the baseline when there is one (its score 0),
otherwise centred (the scores average 0). ``bt`` is the natural-log strength; ``elo`` is
Chatbot Arena's scale, ``400 * bt / ln(10) + 1000`` (SCALE 400, BASE 10, INIT_RATING 1000:
``compute_mle_elo``'s logistic regression on +/-ln(10) columns, with a battle file's tie as
half a win each way, is the same likelihood); ``bt_win_rate`` is the win probability
against the baseline (or an average model) the ratings imply.

Intervals come from a bootstrap over questions: each round draws as many questions as
there are, with replacement (a seeded numpy generator), keeps every battle of a drawn
question as often as it was drawn, and recomputes the statistic; the interval is the 5%
and 95% quantiles of the rounds (Arena-Hard's choice). Separability is the share of model
pairs whose intervals do not overlap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from critic.arena.battles import Battle
from critic.judges.ranking import fit_bradley_terry

ELO_SCALE = 400.0
ELO_BASE = 10.0
ELO_INIT = 1000.0
QUANTILES = (0.05, 0.95)


@dataclass(frozen=True)
class Ratings:
    """Bradley-Terry scores per model (``None`` for one in no battle) and style coefficients, if any."""

    bt: dict[str, float | None]
    coefficients: tuple[float, ...]
    converged: bool
    anchor: str | None

    def elo(self, model: str) -> float | None:
        value = self.bt.get(model)
        return None if value is None else ELO_SCALE * value / math.log(ELO_BASE) + ELO_INIT

    def win_rate(self, model: str) -> float | None:
        """P(model beats the anchor, or an average model), in percent."""
        value = self.bt.get(model)
        return None if value is None else 100.0 * sigmoid(value)


def fit_ratings(models: Sequence[str], battles: Sequence[Battle], *, anchor: str | None = None,
                weights: Sequence[float] | None = None,
                features: Sequence[Sequence[float]] | None = None) -> Ratings:
    """Bradley-Terry ratings of ``models`` from ``battles`` (optionally weighted, optionally with style columns)."""
    index = {model: position for position, model in enumerate(models)}
    fit = fit_bradley_terry(len(models), [index[b.model_a] for b in battles], [index[b.model_b] for b in battles],
                            [b.outcome for b in battles], weights=weights, features=features,
                            anchor=index[anchor] if anchor is not None else None)
    return Ratings(dict(zip(models, fit.scores, strict=True)), fit.coefficients, fit.converged, anchor)


def question_weights(battles: Sequence[Battle], rounds: int, seed: int) -> list[Any]:
    """For each bootstrap round, each battle's weight: how often its question was drawn (numpy arrays)."""
    import numpy as np

    questions: dict[str, int] = {}
    position = np.array([questions.setdefault(battle.question, len(questions)) for battle in battles], dtype=np.int64)
    generator = np.random.default_rng(seed)
    draws = []
    for _ in range(rounds):
        counts = np.bincount(generator.integers(0, len(questions), size=len(questions)), minlength=len(questions))
        draws.append(counts[position].astype(np.float64))
    return draws


def bootstrap(statistic: Callable[[Any], dict[str, float | None]], draws: Sequence[Any],
              models: Sequence[str]) -> dict[str, tuple[float, float] | None]:
    """The 5%-95% interval of ``statistic(weights)`` per model over the rounds' battle weights."""
    import numpy as np

    values: dict[str, list[float]] = {model: [] for model in models}
    for weights in draws:
        for model, value in statistic(weights).items():
            if value is not None and model in values:
                values[model].append(value)
    intervals: dict[str, tuple[float, float] | None] = {}
    for model, samples in values.items():
        if samples:
            low, high = np.quantile(np.asarray(samples), QUANTILES)
            intervals[model] = (float(low), float(high))
        else:
            intervals[model] = None
    return intervals


def mean_outcomes(models: Sequence[str], battles: Sequence[Battle], weights: Any = None) -> dict[str, float | None]:
    """Each model's weighted mean outcome over its battles as ``model_a`` (its soft win rate), in percent."""
    totals = {model: [0.0, 0.0] for model in models}
    for position, battle in enumerate(battles):
        weight = 1.0 if weights is None else float(weights[position])
        if battle.model_a in totals:
            totals[battle.model_a][0] += weight * battle.outcome
            totals[battle.model_a][1] += weight
    return {model: (100.0 * total / count if count else None) for model, (total, count) in totals.items()}


def separability(intervals: dict[str, tuple[float, float] | None]) -> float | None:
    """The share of model pairs whose intervals do not overlap (``None`` with fewer than two intervals)."""
    known = [interval for interval in intervals.values() if interval is not None]
    pairs = list(combinations(known, 2))
    if not pairs:
        return None
    apart = sum(1 for (low_a, high_a), (low_b, high_b) in pairs if high_a < low_b or high_b < low_a)
    return 100.0 * apart / len(pairs)


def sigmoid(x: float) -> float:
    """The logistic function, without overflow for large |x|."""
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
