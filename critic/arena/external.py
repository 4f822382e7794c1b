"""Judgments made elsewhere, as battles: Arena-Hard judgment files, AlpacaEval annotations, Chatbot-Arena battles.

``critic arena --from-judgments FILE...`` reads them (any format the input layer reads) and
builds the leaderboard without loading a model. Each row is recognised by its columns:

- **Arena-Hard** (``games``: two games, each with a ``score`` such as ``A>>B``; ``uid`` or
  ``question_id``; ``model``; ``baseline`` in v2 files, ``--baseline`` for older ones): game 1
  shows the baseline as A, game 2 the model as A. As ``show_result.py`` (``load_judgments``)
  scores them: a verdict for the model is 1, a tie 0.5, against it 0, and a strong verdict
  (``>>``, ``<<``) counts ``weight`` times (3). A judgment whose game has no score is a failure.
- **AlpacaEval** annotations (``preference`` in [1, 2], ``generator_1`` the baseline,
  ``generator_2`` the model, ``output_1``/``output_2``): the outcome is ``preference - 1``; the
  old ``0`` means a draw; a missing preference is a failure.
- **Chatbot-Arena** battles (``model_a``, ``model_b``, ``winner``: ``model_a``, ``model_b``,
  ``tie`` or ``tie (bothbad)``, in critic's one label vocabulary; ``question_id`` optional).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from critic.arena.answers import RowProblem
from critic.arena.battles import Battle, Failure, label_of
from critic.errors import CriticError, InputError, Reason
from critic.io.labels import parse_label
from critic.io.source import open_source

STRONG_WEIGHT = 3  # Arena-Hard's weight of a strong verdict (show_result.py, load_judgments(weight=3))
ARENA_HARD_SCORES = {"A>B": 1.0, "A>>B": 1.0, "A=B": 0.5, "A<<B": 0.0, "A<B": 0.0,
                     "B>A": 0.0, "B>>A": 0.0, "B=A": 0.5, "B<<A": 1.0, "B<A": 1.0}  # P(A won), per verdict
STRONG = frozenset({"A>>B", "A<<B", "B>>A", "B<<A"})
ARENA_WINNER = {"A": 1.0, "B": 0.0, "tie": 0.5}


def read_judgment_files(paths: Sequence[str | Path], *, baseline: str | None = None,
                        category_field: str | None = None, weight: int = STRONG_WEIGHT,
                        format: str | None = None) -> tuple[list[Battle], list[Failure], list[RowProblem], set[str]]:
    """Battles, failed judgments, unreadable rows, and the baselines the files name (Arena-Hard's ``baseline``,
    AlpacaEval's ``generator_1``), from judgment files of the shapes above."""
    battles: list[Battle] = []
    failures: list[Failure] = []
    problems: list[RowProblem] = []
    named: set[str] = set()
    for path in paths:
        name = Path(str(path)).name
        for number, row in open_source(path, format=format).rows():
            where = f"{name}:{number}"
            try:
                if isinstance(row, CriticError):
                    raise row
                read = judgment_from_row(row, where=where, baseline=baseline, category_field=category_field,
                                         weight=weight)
            except CriticError as error:
                problems.append(RowProblem(where, str(error), error.kind))
                continue
            battles += [item for item in read if isinstance(item, Battle)]
            failures += [item for item in read if isinstance(item, Failure)]
            if isinstance(row, Mapping) and ("games" in row or "preference" in row):
                named.update(item.model_b for item in read)
    return battles, failures, problems, named


def judgment_from_row(row: Any, *, where: str = "", baseline: str | None = None, category_field: str | None = None,
                      weight: int = STRONG_WEIGHT) -> list[Battle | Failure]:
    """The battles (or the failure) one judgment row stands for."""
    if not isinstance(row, Mapping):
        raise InputError(f"a judgment row must be an object, got {type(row).__name__}", kind=Reason.NOT_AN_OBJECT)
    category = str(row[category_field]) if category_field and row.get(category_field) is not None else None
    if "games" in row:
        return _arena_hard(row, baseline, category, weight)
    if "preference" in row:
        return [_alpaca_eval(row, category)]
    if "winner" in row and "model_a" in row and "model_b" in row:
        question = str(row["question_id"]) if row.get("question_id") is not None else where
        label = parse_label(row["winner"], "winner")
        return [Battle(question, _name(row, "model_a"), _name(row, "model_b"), ARENA_WINNER[label], label,
                       category=category)]
    present = ", ".join(sorted(map(str, row))) or "none"
    raise InputError(f"not a judgment row (columns: {present}); expected Arena-Hard judgments (games), AlpacaEval "
                     "annotations (preference) or Chatbot-Arena battles (model_a, model_b, winner)",
                     kind=Reason.UNKNOWN_SHAPE)


def _arena_hard(row: Mapping[str, Any], baseline: str | None, category: str | None,
                weight: int) -> list[Battle | Failure]:
    question_id = row.get("uid", row.get("question_id"))
    if question_id is None:
        raise InputError("an Arena-Hard judgment needs uid or question_id", kind=Reason.MISSING_FIELD)
    model = _name(row, "model")
    against = row.get("baseline") if row.get("baseline") is not None else baseline
    if not isinstance(against, str) or not against:
        raise InputError("this Arena-Hard judgment does not name its baseline (files before v2 do not); pass "
                         "--baseline (Arena-Hard v0.1: gpt-4-0314)", kind=Reason.MISSING_FIELD)
    category = category if category is not None else (str(row["category"]) if row.get("category") else None)
    games = row["games"]
    question = str(question_id)
    verdicts = [game.get("score") if isinstance(game, Mapping) else None
                for game in (games if isinstance(games, Sequence) and not isinstance(games, str) else [])]
    if len(verdicts) != 2 or any(verdict is None for verdict in verdicts):
        return [Failure(question, model, against, "a game has no verdict (Arena-Hard counts it a null judgment)",
                        Reason.UNREADABLE_VERDICT.value, category)]
    unknown = [verdict for verdict in verdicts if verdict not in ARENA_HARD_SCORES]
    if unknown:
        return [Failure(question, model, against, f"unknown verdict {unknown[0]!r}; expected one of "
                        f"{', '.join(ARENA_HARD_SCORES)}", Reason.UNREADABLE_VERDICT.value, category)]
    first, second = str(verdicts[0]), str(verdicts[1])
    # Game 2 shows the model as A: its verdict scores the model directly; game 1 shows it as B.
    scores = [ARENA_HARD_SCORES[second]] * (weight if second in STRONG else 1)
    scores += [1.0 - ARENA_HARD_SCORES[first]] * (weight if first in STRONG else 1)
    return [Battle(question, model, against, score, label_of(score), category=category) for score in scores]


def _alpaca_eval(row: Mapping[str, Any], category: str | None) -> Battle | Failure:
    model, against = _name(row, "generator_2"), _name(row, "generator_1")
    question = str(row.get("instruction", ""))
    value = row.get("preference")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Failure(question, model, against, "no preference (the annotator gave none)",
                       Reason.UNREADABLE_VERDICT.value, category)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"preference must be a number in [1, 2], got {value!r}", kind=Reason.WRONG_TYPE)
    preference = 1.5 if value == 0 else float(value)  # AlpacaEval's old encoding of a draw
    if not 1.0 <= preference <= 2.0:
        return Failure(question, model, against, f"preference {value!r} is not in [1, 2]",
                       Reason.UNREADABLE_VERDICT.value, category)
    outcome = preference - 1.0
    text_a, text_b = row.get("output_2"), row.get("output_1")
    return Battle(question, model, against, outcome, label_of(outcome), category=category,
                  text_a=text_a if isinstance(text_a, str) else None,
                  text_b=text_b if isinstance(text_b, str) else None)


def _name(row: Mapping[str, Any], field: str) -> str:
    value = row.get(field)
    if not isinstance(value, str) or not value:
        raise InputError(f"field '{field}' must name a model, got {value!r}", kind=Reason.MISSING_FIELD)
    return value
