"""The leaderboard: every model's score with its interval, win rates, ratings, controls and judge health.

``score`` is a win rate in percent against a reference, with a bootstrap interval
(``ci_low``, ``ci_high``):

- when every battle is against the baseline (``--baseline``; AlpacaEval, Arena-Hard and
  MT-Bench style), the model's mean outcome against it: its soft win rate, which is
  AlpacaEval's weighted win rate and Arena-Hard's mean battle score (the baseline's own
  row is 50);
- otherwise (round robin, battle files), the Bradley-Terry win probability against the
  baseline, or against an average model when there is none. Against a baseline alone the
  two are the same number: a model whose only opponent is the baseline has
  ``sigmoid(bt) = mean outcome``.

See :mod:`critic.arena.winrates`, :mod:`critic.arena.ratings` and :mod:`critic.arena.style`
for each figure's definition.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from critic.arena.battles import Battle, Failure, models_of
from critic.arena.join import ModelInput
from critic.arena.ratings import bootstrap, fit_ratings, mean_outcomes, question_weights, separability
from critic.arena.style import STYLE_FEATURES, length_controlled, style_features
from critic.arena.winrates import win_rates


@dataclass(frozen=True)
class ModelEntry:
    """One model's row (rates in percent; ``None`` where a figure does not apply or has no data)."""

    model: str
    rank: int
    score: float | None
    ci_low: float | None
    ci_high: float | None
    wins: int
    ties: int
    losses: int
    battles: int
    failed: int
    win_rate: float | None
    soft_win_rate: float | None
    soft_win_rate_se: float | None
    discrete_win_rate: float | None
    lc_win_rate: float | None
    bt: float | None
    elo: float | None
    bt_win_rate: float | None
    style_score: float | None
    style_ci_low: float | None
    style_ci_high: float | None
    mean_length: float | None
    consistency: float | None
    first_shown_wins: float | None
    format_mass: float | None
    baseline: bool = False
    answers: Mapping[str, int] | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["answers"] = dict(self.answers) if self.answers is not None else None
        data["notes"] = list(self.notes)
        return data


@dataclass(frozen=True)
class Board:
    """One leaderboard: all battles, or one category's."""

    category: str | None
    entries: tuple[ModelEntry, ...]
    separability: float | None
    against: str  # "baseline" (every battle against it) or "bradley-terry"
    style: Mapping[str, float] | None = None  # the style coefficients, when style control ran
    style_length_unit: str | None = None
    win_matrix: Mapping[str, Mapping[str, float | None]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"category": self.category, "against": self.against, "separability": self.separability,
                "style_coefficients": dict(self.style) if self.style is not None else None,
                "style_length_unit": self.style_length_unit,
                "win_matrix": {row: dict(values) for row, values in self.win_matrix.items()}
                if self.win_matrix is not None else None,
                "models": [entry.to_dict() for entry in self.entries]}


@dataclass(frozen=True)
class Leaderboard:
    """What ``critic arena`` computes: the settings it ran with, the overall board and one per category."""

    settings: Mapping[str, Any]
    overall: Board
    categories: tuple[Board, ...] = field(default=())

    @property
    def models(self) -> tuple[ModelEntry, ...]:
        return self.overall.entries

    def entry(self, model: str) -> ModelEntry:
        return next(entry for entry in self.overall.entries if entry.model == model)

    def to_dict(self) -> dict[str, Any]:
        overall = self.overall.to_dict()
        return {"settings": dict(self.settings), "models": overall.pop("models"), **overall,
                "categories": {board.category: board.to_dict() for board in self.categories}}


def build_board(battles: Sequence[Battle], failures: Sequence[Failure] = (), *, models: Sequence[str] | None = None,
                baseline: str | None = None, rounds: int = 100, seed: int = 0,
                inputs: Mapping[str, ModelInput] | None = None, category: str | None = None) -> Board:
    """One :class:`Board` from battles (see the module's description for what ``score`` is)."""
    names = list(models) if models is not None else models_of([*battles, *failures])
    if baseline is not None and baseline not in names:
        names.append(baseline)
    against_baseline = baseline is not None and bool(battles) and all(
        baseline in (b.model_a, b.model_b) for b in battles)
    if against_baseline:  # the model as A, the baseline as B
        battles = [b.flipped() if b.model_a == baseline else b for b in battles]
    ratings = fit_ratings(names, battles, anchor=baseline)
    draws = question_weights(battles, rounds, seed) if battles and rounds else []
    if against_baseline:
        scores = mean_outcomes(names, battles)
        intervals = bootstrap(lambda weights: mean_outcomes(names, battles, weights), draws, names)
    else:
        scores = {model: ratings.win_rate(model) for model in names}
        intervals = bootstrap(lambda weights: _bt_win_rates(names, battles, baseline, weights), draws, names)
    style = style_features(battles)
    style_scores: dict[str, float | None] = {}
    style_intervals: dict[str, tuple[float, float] | None] = {}
    coefficients = None
    if style is not None:
        columns, unit = style
        fitted = fit_ratings(names, battles, anchor=baseline, features=columns)
        style_scores = {model: fitted.win_rate(model) for model in names}
        coefficients = dict(zip(STYLE_FEATURES, fitted.coefficients, strict=True))
        style_intervals = bootstrap(lambda weights: _bt_win_rates(names, battles, baseline, weights, columns), draws,
                                    names)
    entries = []
    for model in names:
        rates = win_rates(model, battles, failures)
        notes = [] if ratings.converged else ["the Bradley-Terry fit did not converge: a model that wins (or loses) "
                                              "every battle has no finite rating"]
        lc = None
        if baseline is not None and model != baseline:
            lc = length_controlled([b if b.model_a == model else b.flipped() for b in battles
                                    if {b.model_a, b.model_b} == {model, baseline}])
            if lc is not None and not lc.converged:
                notes.append("the length-controlled fit did not converge (the model won or lost every battle)")
        interval, style_interval = intervals.get(model), style_intervals.get(model)
        entries.append(ModelEntry(
            model=model, rank=0, score=scores.get(model), ci_low=interval[0] if interval else None,
            ci_high=interval[1] if interval else None, wins=rates.wins, ties=rates.ties, losses=rates.losses,
            battles=rates.battles, failed=rates.failed, win_rate=rates.win_rate, soft_win_rate=rates.soft_win_rate,
            soft_win_rate_se=rates.soft_win_rate_se, discrete_win_rate=rates.discrete_win_rate,
            lc_win_rate=lc.win_rate if lc is not None else None, bt=ratings.bt.get(model), elo=ratings.elo(model),
            bt_win_rate=ratings.win_rate(model), style_score=style_scores.get(model),
            style_ci_low=style_interval[0] if style_interval else None,
            style_ci_high=style_interval[1] if style_interval else None, mean_length=rates.mean_length,
            consistency=rates.consistency, first_shown_wins=rates.first_shown_wins, format_mass=rates.format_mass,
            baseline=model == baseline, answers=inputs[model].to_dict() if inputs and model in inputs else None,
            notes=tuple(notes)))
    if against_baseline:
        with_lc = any(entry.lc_win_rate is not None for entry in entries)
        entries = [_baseline_row(entry, len(battles), with_lc) if entry.baseline else entry for entry in entries]
    ranked = sorted(entries, key=lambda entry: (-(entry.score if entry.score is not None else -math.inf), entry.model))
    ranked = [replace(entry, rank=position) for position, entry in enumerate(ranked, start=1)]
    matrix = None if against_baseline else win_matrix(names, battles)
    apart = separability({e.model: _pair(e.ci_low, e.ci_high) for e in ranked
                          if not (against_baseline and e.baseline)})  # the baseline's 50 is no estimate
    return Board(category, tuple(ranked), apart,
                 "baseline" if against_baseline else "bradley-terry", coefficients,
                 style[1] if style is not None else None, matrix)


def win_matrix(models: Sequence[str], battles: Sequence[Battle]) -> dict[str, dict[str, float | None]]:
    """Row model's mean outcome against the column model, in percent (``None`` where they never met)."""
    totals: dict[tuple[str, str], list[float]] = {}
    for battle in battles:
        for seen in (battle, battle.flipped()):
            entry = totals.setdefault((seen.model_a, seen.model_b), [0.0, 0.0])
            entry[0] += seen.outcome
            entry[1] += 1.0
    return {row: {column: (100.0 * totals[(row, column)][0] / totals[(row, column)][1]
                           if (row, column) in totals else None) for column in models if column != row}
            for row in models}


def _bt_win_rates(models: Sequence[str], battles: Sequence[Battle], anchor: str | None, weights: Any,
                  features: Sequence[Sequence[float]] | None = None) -> dict[str, float | None]:
    ratings = fit_ratings(models, battles, anchor=anchor, weights=weights, features=features)
    return {model: ratings.win_rate(model) for model in models}


def _baseline_row(entry: ModelEntry, battles: int, with_lc: bool) -> ModelEntry:
    """The baseline against itself: 50 by definition (as Arena-Hard shows it); its rates belong to the others."""
    return replace(entry, score=50.0, ci_low=50.0, ci_high=50.0, wins=0, ties=0, losses=0, battles=battles,
                   win_rate=None, soft_win_rate=None, soft_win_rate_se=None, discrete_win_rate=None,
                   lc_win_rate=50.0 if with_lc else None, style_score=50.0 if entry.style_score is not None else None,
                   style_ci_low=None, style_ci_high=None)


def _pair(low: float | None, high: float | None) -> tuple[float, float] | None:
    return None if low is None or high is None else (low, high)
