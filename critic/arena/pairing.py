"""Who meets whom: every model against a baseline, or every pair of models (round robin), on shared questions.

A comparison is one turn of one question between two models' answers. ``model_a`` is
shown as response A, ``model_b`` as response B, and the judge judges both orders itself;
against a baseline, ``model_a`` is the model and ``model_b`` the baseline, so ``p_a`` is
P(the model's answer is better). An MT-Bench question has two turns: two comparisons, the
second showing each model its own first turn (the multi-turn template's layout).

``max_comparisons`` caps the total for round robin (or baseline) runs: the budget is
shared evenly among the model pairs (the remainder going to pairs picked by the seed),
and each pair's questions are a seeded shuffle of the questions both answered, taken
from the front. The shuffle depends only on the seed and the two models' names, so a
larger budget, or one more model, keeps the comparisons judged before.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from critic.arena.answers import Answer, Question
from critic.arena.join import AnswerTable
from critic.errors import InputError
from critic.types import Message, Pair


@dataclass(frozen=True)
class Comparison:
    """One turn of one question: ``model_a``'s answer (shown as A) against ``model_b``'s (shown as B)."""

    question: Question
    turn: int  # 0 for the first (or only) turn
    model_a: str
    model_b: str
    answer_a: Answer
    answer_b: Answer
    category: str | None = None

    def pair(self) -> Pair:
        """The pair the judge sees; from the second turn on, each answer with its own earlier turns."""
        question, turn = self.question, self.turn
        reference = question.references[turn] if question.references else None
        return Pair(question.turns[turn], self.answer_a.turns[turn], self.answer_b.turns[turn], reference=reference,
                    history_a=_history(question.turns, self.answer_a.turns, turn),
                    history_b=_history(question.turns, self.answer_b.turns, turn),
                    reference_history=_history(question.turns, question.references, turn) if reference else ())

    def describe(self) -> dict[str, object]:
        """Which comparison this is, for judgments.jsonl."""
        return {"question": self.question.key, "turn": self.turn + 1, "model_a": self.model_a,
                "model_b": self.model_b, "category": self.category}


def schedule(table: AnswerTable, *, baseline: str | None = None, models: Sequence[str] | None = None,
             max_comparisons: int | None = None, seed: int = 0) -> list[Comparison]:
    """The comparisons to judge, in a fixed order (pair by pair, question by question, turn by turn)."""
    chosen = list(models) if models is not None else list(table.models)
    if baseline is not None and baseline not in chosen:
        raise InputError(f"the baseline '{baseline}' has no answers; models: {', '.join(chosen) or 'none'}")
    if len(chosen) < 2:
        raise InputError(f"an arena needs at least two models with answers, got {len(chosen)}: "
                         f"{', '.join(chosen) or 'none'}")
    if baseline is not None:
        pairs = [(model, baseline) for model in chosen if model != baseline]
    else:
        pairs = list(combinations(chosen, 2))
    shared = {pair: [q for q in table.questions if table.answer(pair[0], q) and table.answer(pair[1], q)]
              for pair in pairs}
    if max_comparisons is not None:
        shared = _within_budget(shared, max_comparisons, seed)
    comparisons = []
    for (model_a, model_b), questions in shared.items():
        for question in questions:
            answer_a, answer_b = table.answer(model_a, question), table.answer(model_b, question)
            assert answer_a is not None and answer_b is not None  # shared questions only
            category = question.category or answer_a.category or answer_b.category
            comparisons += [Comparison(question, turn, model_a, model_b, answer_a, answer_b, category)
                            for turn in range(len(question.turns))]
    return comparisons


def _within_budget(shared: dict[tuple[str, str], list[Question]], budget: int,
                   seed: int) -> dict[tuple[str, str], list[Question]]:
    if budget < 1:
        raise InputError(f"--max-comparisons must be at least 1, got {budget}")
    pairs = list(shared)
    share, extra = divmod(budget, len(pairs))
    lucky = set(random.Random(f"{seed}:pairs:{len(pairs)}").sample(range(len(pairs)), extra))
    kept = {}
    for index, pair in enumerate(pairs):
        allowance = share + (1 if index in lucky else 0)
        order = list(shared[pair])
        random.Random(f"{seed}:{pair[0]}:{pair[1]}").shuffle(order)
        taken: list[Question] = []
        used = 0
        for question in order:
            if used + len(question.turns) > allowance:
                break
            taken.append(question)
            used += len(question.turns)
        position = {question.key: index for index, question in enumerate(shared[pair])}
        kept[pair] = sorted(taken, key=lambda question: position[question.key])
    return kept


def _history(questions: Sequence[str], answers: Sequence[str], turn: int) -> tuple[Message, ...]:
    history: list[Message] = []
    for earlier in range(turn):
        history += [{"role": "user", "content": questions[earlier]},
                    {"role": "assistant", "content": answers[earlier]}]
    return tuple(history)
