"""Joining answers to questions: by question id, or by the question's text when a row has no id.

Nothing is dropped in silence and nothing is guessed. Per model, the join counts:

- ``answers``: the answers it uses (one per question);
- ``missing``: questions the model did not answer;
- ``duplicates``: a second answer to a question with the same text (used once);
- ``conflicting``: a question answered twice with different texts: neither is used, since
  picking one would be a guess;
- ``unknown``: answers to a question the questions file does not have;
- ``mismatched``: answers whose question text differs from the question's, or whose
  number of turns differs from the question's;
- ``unreadable``: rows of the model's files that could not be read at all.

Each of them (but the plain missing ones, which are counted) is listed in
:attr:`AnswerTable.problems` with where it came from and why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from critic.arena.answers import Answer, Question, RowProblem, prompt_key
from critic.errors import InputError, Reason

COUNTS = ("answers", "missing", "duplicates", "conflicting", "unknown", "mismatched", "unreadable")


@dataclass(frozen=True)
class ModelInput:
    """How one model's answers joined (see the module's description for each count)."""

    model: str
    answers: int = 0
    missing: int = 0
    duplicates: int = 0
    conflicting: int = 0
    unknown: int = 0
    mismatched: int = 0
    unreadable: int = 0

    def to_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTS}


@dataclass(frozen=True)
class AnswerTable:
    """The questions, each model's answer to each (``answers[model][question key]``), and how the join went."""

    questions: tuple[Question, ...]
    models: tuple[str, ...]
    answers: Mapping[str, Mapping[str, Answer]]
    inputs: Mapping[str, ModelInput]
    problems: tuple[RowProblem, ...] = field(default=())

    def answer(self, model: str, question: Question) -> Answer | None:
        return self.answers.get(model, {}).get(question.key)


def join_answers(answers: Sequence[Answer], *, questions: Sequence[Question] | None = None,
                 unreadable: Sequence[RowProblem] = ()) -> AnswerTable:
    """Join ``answers`` to ``questions`` (or, without a questions file, to the questions the answers carry)."""
    problems: list[RowProblem] = list(unreadable)
    known = list(questions) if questions is not None else _questions_from_answers(answers)
    if questions is not None:
        known = _unique_questions(known, problems)
    by_id = {q.id: q for q in known if q.id is not None}
    by_text: dict[str, Question] = {}
    for known_question in known:
        by_text.setdefault(known_question.text, known_question)
    counts: dict[str, Counter[str]] = {}
    chosen: dict[str, dict[str, Answer]] = {}
    conflicted: dict[str, set[str]] = {}
    for answer in answers:
        count = counts.setdefault(answer.model, Counter())
        taken = chosen.setdefault(answer.model, {})
        question: Question | None = by_id.get(answer.question_id) if answer.question_id is not None else None
        if question is None and answer.question_id is None and answer.prompt_turns:
            question = by_text.get(prompt_key(answer.prompt_turns))
        if question is None:
            count["unknown"] += 1
            asked = answer.question_id if answer.question_id is not None else _short(prompt_key(answer.prompt_turns))
            problems.append(RowProblem(answer.where, f"answers question {asked!r}, which is not among the questions",
                                       Reason.OTHER, answer.model, "answer to an unknown question"))
            continue
        reason = _mismatch(answer, question)
        if reason is not None:
            count["mismatched"] += 1
            problems.append(RowProblem(answer.where, reason, Reason.OTHER, answer.model, "mismatched answer"))
            continue
        if question.key in conflicted.setdefault(answer.model, set()):
            count["conflicting"] += 1
            problems.append(RowProblem(answer.where, f"another answer to question {_short(question.key)!r} with "
                                       "a different text: neither is used", Reason.OTHER, answer.model,
                                       "conflicting answers"))
            continue
        earlier = taken.get(question.key)
        if earlier is None:
            taken[question.key] = answer
        elif earlier.turns == answer.turns:
            count["duplicates"] += 1
            problems.append(RowProblem(answer.where, f"the same answer to question {_short(question.key)!r} again "
                                       f"(first at {earlier.where}): used once", Reason.OTHER, answer.model,
                                       "duplicate answer"))
        else:
            del taken[question.key]
            conflicted[answer.model].add(question.key)
            count["conflicting"] += 2
            for where in (earlier.where, answer.where):
                problems.append(RowProblem(where, f"two different answers to question {_short(question.key)!r} "
                                           f"({earlier.where} and {answer.where}): neither is used", Reason.OTHER,
                                           answer.model, "conflicting answers"))
    for problem in unreadable:
        if problem.model is not None:
            counts.setdefault(problem.model, Counter())["unreadable"] += 1
            chosen.setdefault(problem.model, {})
    models = tuple(chosen)
    inputs = {}
    for model in models:
        count = counts[model]
        answered = len(chosen[model])
        missing = len(known) - answered - len(conflicted.get(model, ()))
        inputs[model] = ModelInput(model, answers=answered, missing=missing,
                                   **{name: count[name] for name in COUNTS[2:]})
    return AnswerTable(tuple(known), models, chosen, inputs, tuple(problems))


def _questions_from_answers(answers: Sequence[Answer]) -> list[Question]:
    """Without a questions file: the questions the answers carry, in order of first appearance.

    Rows with an id come first (their id is the key); a row without one joins a question with the same text,
    or starts one keyed by its text.
    """
    questions: dict[str, Question] = {}
    for answer in answers:
        if answer.question_id is None or answer.question_id in questions:
            continue
        if not answer.prompt_turns:
            raise InputError(
                f"{answer.where}: the answer to question {answer.question_id!r} does not carry the question's text "
                f"({answer.shape} answers do not); pass the benchmark's questions file with --questions",
                kind=Reason.MISSING_FIELD)
        questions[answer.question_id] = Question(answer.question_id, answer.prompt_turns, id=answer.question_id,
                                                 category=answer.category)
    texts = {question.text for question in questions.values()}
    for answer in answers:
        if answer.question_id is None and answer.prompt_turns:
            text = prompt_key(answer.prompt_turns)
            if text not in texts:
                texts.add(text)
                questions[text] = Question(text, answer.prompt_turns, category=answer.category)
    return list(questions.values())


def _unique_questions(questions: Sequence[Question], problems: list[RowProblem]) -> list[Question]:
    seen: set[str] = set()
    unique = []
    for question in questions:
        if question.key in seen:
            problems.append(RowProblem("questions", f"question {_short(question.key)!r} appears twice in the "
                                       "questions file: the first is used", Reason.OTHER, what="duplicate question"))
            continue
        seen.add(question.key)
        unique.append(question)
    return unique


def _mismatch(answer: Answer, question: Question) -> str | None:
    if answer.prompt_turns and [t.strip() for t in answer.prompt_turns] != [t.strip() for t in question.turns]:
        return (f"the answer's question text differs from question {_short(question.key)!r}'s "
                f"({_short(prompt_key(answer.prompt_turns))!r})")
    if len(answer.turns) != len(question.turns):
        return (f"answers {len(answer.turns)} turn(s) of question {_short(question.key)!r}, which has "
                f"{len(question.turns)}")
    return None


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
