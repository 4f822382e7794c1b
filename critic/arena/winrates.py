"""Win rates of one model over its battles, as AlpacaEval computes them, and the judge's health on them.

From the model's side of each battle (``outcome``: how much it won; ``label``: who won):

- ``wins``, ``ties``, ``losses``: the labels; ``win_rate`` = (wins + ties / 2) / battles. This is
  AlpacaEval's ``get_winrate`` on preferences 2 / 1.5 / 1 (its ``n_wins``, ``n_draws``,
  ``n_wins_base`` and ``win_rate``).
- ``soft_win_rate``: the mean outcome, with ``soft_win_rate_se`` its standard error (sample
  standard deviation over the square root of n): AlpacaEval's weighted ``win_rate`` and
  ``standard_error`` on preferences ``1 + outcome`` (AlpacaEval's preference is P(model better)
  plus one). Against a baseline this is the arena's score.
- ``discrete_win_rate``: each outcome rounded to a win (> 0.5), a draw (exactly 0.5) or a loss,
  then (wins + draws / 2) / battles: AlpacaEval's ``discrete_win_rate``.

All rates are in percent, as both peers report them. Health (critic's own judgments only):
``consistency`` (share of battles whose two orders agreed), ``first_shown_wins`` (share of
presentation orders won by the answer shown first: 50% for a judge without position bias),
``format_mass`` (mean probability the judge put on verdict letters at all) and ``failed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from critic.arena.battles import Battle, Failure


@dataclass(frozen=True)
class WinRates:
    """One model's win rates and its judge's health over a set of battles (rates in percent)."""

    battles: int
    wins: int
    ties: int
    losses: int
    win_rate: float | None
    soft_win_rate: float | None
    soft_win_rate_se: float | None
    discrete_win_rate: float | None
    failed: int = 0
    consistency: float | None = None
    first_shown_wins: float | None = None
    format_mass: float | None = None
    mean_length: float | None = None  # characters of the model's answers, when known


def win_rates(model: str, battles: Sequence[Battle], failures: Sequence[Failure] = ()) -> WinRates:
    """``model``'s :class:`WinRates` over the battles it fought (each seen from its side)."""
    own = [battle if battle.model_a == model else battle.flipped()
           for battle in battles if model in (battle.model_a, battle.model_b)]
    failed = sum(1 for failure in failures if model in (failure.model_a, failure.model_b))
    n = len(own)
    wins = sum(1 for battle in own if battle.label == "A")
    ties = sum(1 for battle in own if battle.label == "tie")
    outcomes = [battle.outcome for battle in own]
    discrete = [1.0 if 1.0 + value > 1.5 else 0.5 if 1.0 + value == 1.5 else 0.0 for value in outcomes]
    judged = [battle for battle in own if battle.consistent is not None]
    orders = sum(battle.orders for battle in own)
    masses = [battle.format_mass for battle in own if battle.format_mass is not None]
    lengths = [len(battle.text_a) for battle in own if battle.text_a is not None]
    return WinRates(
        battles=n, wins=wins, ties=ties, losses=n - wins - ties,
        win_rate=_percent((wins + ties / 2) / n) if n else None,
        soft_win_rate=_percent(math.fsum(outcomes) / n) if n else None,
        soft_win_rate_se=_percent(standard_error(outcomes)),
        discrete_win_rate=_percent(math.fsum(discrete) / n) if n else None,
        failed=failed,
        consistency=_percent(sum(1 for battle in judged if battle.consistent) / len(judged)) if judged else None,
        first_shown_wins=_percent(sum(battle.first_shown_won for battle in own) / orders) if orders else None,
        format_mass=math.fsum(masses) / len(masses) if masses else None,
        mean_length=math.fsum(lengths) / len(lengths) if lengths else None,
    )


def standard_error(values: Sequence[float]) -> float | None:
    """The standard error of the mean (sample standard deviation, n - 1, over sqrt(n)), as pandas' ``sem``."""
    n = len(values)
    if n < 2:
        return None
    mean = math.fsum(values) / n
    return math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (n - 1)) / math.sqrt(n)


def _percent(value: float | None) -> float | None:
    return None if value is None else 100.0 * value
