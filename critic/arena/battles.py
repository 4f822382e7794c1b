"""Battles: what every statistic of a leaderboard is computed from, whoever made the judgments.

A battle is one judged outcome between two models on one question: ``outcome`` is how
much ``model_a`` won, in [0, 1]. critic's own judgments give one battle per comparison
with ``outcome = p_a`` (the judge's probability, both orders averaged) and the judge's
label; Arena-Hard's judgment files give one battle per verdict entry (a strong verdict
three); AlpacaEval's annotations give ``preference - 1``; Chatbot-Arena battle files give
1, 0.5 or 0. A comparison that could not be judged is a :class:`Failure`, counted for
both models, never a tie.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from critic.types import Label


@dataclass(frozen=True)
class Battle:
    """One outcome between ``model_a`` and ``model_b`` on ``question`` (``outcome``: how much A won)."""

    question: str
    model_a: str
    model_b: str
    outcome: float
    label: Label  # "A": model_a won, "B": model_b won, "tie"
    category: str | None = None
    text_a: str | None = None  # the answers, when known (length control, style control, average length)
    text_b: str | None = None
    metadata_a: Mapping[str, Any] | None = None  # Arena-Hard's style metadata of each answer, when given
    metadata_b: Mapping[str, Any] | None = None
    consistent: bool | None = None  # the judge's health, when critic judged it
    orders: int = 0  # presentation orders judged
    first_shown_won: int = 0  # of those, how many the answer shown first won
    format_mass: float | None = None  # mean over the orders (score mode)

    def flipped(self) -> Battle:
        """The same battle seen from ``model_b``'s side."""
        label: Label = "B" if self.label == "A" else "A" if self.label == "B" else "tie"
        return replace(self, model_a=self.model_b, model_b=self.model_a, outcome=1.0 - self.outcome, label=label,
                       text_a=self.text_b, text_b=self.text_a, metadata_a=self.metadata_b, metadata_b=self.metadata_a)


@dataclass(frozen=True)
class Failure:
    """A comparison that has no result: which models, on which question, and why."""

    question: str
    model_a: str
    model_b: str
    reason: str
    kind: str
    category: str | None = None


def label_of(outcome: float) -> Label:
    """The label an outcome stands for when nothing else says (AlpacaEval's rounding: exactly 0.5 is a tie)."""
    preference = 1.0 + outcome
    return "tie" if preference == 1.5 else "A" if preference > 1.5 else "B"


def battle_from_judgment(record: Mapping[str, Any], *, text_a: str | None = None, text_b: str | None = None,
                         metadata_a: Mapping[str, Any] | None = None,
                         metadata_b: Mapping[str, Any] | None = None) -> Battle | Failure:
    """A battle from one line of critic's judgments.jsonl (a :class:`Failure` for a failed judgment)."""
    question = str(record["question"])
    if "error" in record:
        return Failure(question, record["model_a"], record["model_b"], str(record["error"]),
                       str(record.get("kind", "other")), record.get("category"))
    orders: Sequence[Mapping[str, Any]] = record.get("orders") or ()
    first_won = sum(1 for order in orders if order.get("verdict") == "A")
    masses = [float(order["format_mass"]) for order in orders if order.get("format_mass") is not None]
    return Battle(question, record["model_a"], record["model_b"], float(record["p_a"]), record["label"],
                  category=record.get("category"), text_a=text_a, text_b=text_b, metadata_a=metadata_a,
                  metadata_b=metadata_b, consistent=record.get("consistent"), orders=len(orders),
                  first_shown_won=first_won, format_mass=sum(masses) / len(masses) if masses else None)


def models_of(battles: Iterable[Battle | Failure]) -> list[str]:
    """The models in order of first appearance."""
    seen: dict[str, None] = {}
    for battle in battles:
        seen.setdefault(battle.model_a)
        seen.setdefault(battle.model_b)
    return list(seen)
