"""Models' answers and the questions they answer, read from the shapes evaluation tools write.

Every file is opened with the one reader (:func:`critic.io.source.open_source`: JSONL,
JSON arrays, Parquet, CSV, ``save_to_disk`` folders, cached hub datasets); each row is
recognised by its columns:

=================  ===============================================================  ==================
shape              columns                                                          written by
=================  ===============================================================  ==================
``arena-hard``     ``uid``, ``model``, ``messages`` (the assistant's content a      Arena-Hard-Auto
                   string or ``{"answer": ...}``), optional ``metadata``
``fastchat``       ``question_id``, ``model_id``, ``choices[0].turns`` (strings:    MT-Bench, Arena-Hard
                   MT-Bench; ``{"content": ...}``: Arena-Hard v0.1)                 v0.1
``alpaca-eval``    ``instruction``, ``output``, ``generator`` (``dataset``)         AlpacaEval
``plain``          ``id`` or ``prompt``, ``response``, ``model``                    anyone
=================  ===============================================================  ==================

A row without a model name takes its file's name (``answers/gpt-4.jsonl``: ``gpt-4``).
Questions files: Arena-Hard's (``uid``, ``prompt`` or ``turns``), MT-Bench's
(``question_id``, ``turns``, optional ``reference``), AlpacaEval's evaluation set
(``instruction``) or plain rows (``id``, ``prompt``, ``reference``). A row that is none of
these is a :class:`~critic.errors.InputError` with its file and row number: it is
reported, never skipped in silence.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critic.errors import CriticError, InputError, Reason
from critic.io.source import open_source

ANSWER_SHAPES = ("arena-hard", "fastchat", "alpaca-eval", "plain")


@dataclass(frozen=True)
class Question:
    """A question: the user's turns (one, or two for MT-Bench), a reference answer per turn, a category."""

    key: str  # what answers join on: the question's id, or its text when it has none
    turns: tuple[str, ...]
    id: str | None = None
    references: tuple[str, ...] = ()
    category: str | None = None

    @property
    def text(self) -> str:
        """The question as one text (its turns, one per paragraph): the join key of rows without an id."""
        return prompt_key(self.turns)


@dataclass(frozen=True)
class Answer:
    """One model's answer to one question, as read from one row (``where`` says which)."""

    model: str
    turns: tuple[str, ...]
    where: str
    question_id: str | None = None
    prompt_turns: tuple[str, ...] = ()  # the question as the row carries it (empty when it does not)
    category: str | None = None
    metadata: Mapping[str, Any] | None = None  # Arena-Hard's style metadata (token_len and markdown counts)
    shape: str = "plain"


@dataclass(frozen=True)
class RowProblem:
    """A row that could not be read as an answer or a question, with where and why."""

    where: str
    reason: str
    kind: Reason
    model: str | None = None
    what: str = ""  # a short name for counting ("duplicate answer"); the kind's when empty

    @property
    def counted_as(self) -> str:
        return self.what or self.kind.value


def prompt_key(turns: Sequence[str]) -> str:
    return "\n\n".join(turns)


def read_answers(paths: Sequence[str | Path], *, category_field: str | None = None, format: str | None = None,
                 split: str | None = None, limit: int | None = None) -> tuple[list[Answer], list[RowProblem]]:
    """Every answer row of every file, in order, and the rows that could not be read (with their reasons)."""
    answers: list[Answer] = []
    problems: list[RowProblem] = []
    for path in paths:
        for where, row in _rows(path, format=format, split=split, limit=limit):
            try:
                if isinstance(row, CriticError):
                    raise row
                answers.append(answer_from_row(row, where=where, default_model=_file_model(path),
                                               category_field=category_field))
            except CriticError as error:
                model = _row_model(row) or _file_model(path)
                problems.append(RowProblem(where, str(error), error.kind, model))
    return answers, problems


def read_questions(path: str | Path, *, category_field: str | None = None, format: str | None = None,
                   split: str | None = None) -> tuple[list[Question], list[RowProblem]]:
    """The questions of a questions file, in order, and its rows that could not be read."""
    questions: list[Question] = []
    problems: list[RowProblem] = []
    for where, row in _rows(path, format=format, split=split):
        try:
            if isinstance(row, CriticError):
                raise row
            questions.append(question_from_row(row, category_field=category_field))
        except CriticError as error:
            problems.append(RowProblem(where, str(error), error.kind))
    return questions, problems


def answer_from_row(row: Any, *, where: str = "", default_model: str | None = None,
                    category_field: str | None = None) -> Answer:
    """One answer row of any shape in the module's table."""
    if not isinstance(row, Mapping):
        raise InputError(f"an answer row must be an object, got {type(row).__name__}", kind=Reason.NOT_AN_OBJECT)
    category = _category(row, category_field)
    if "messages" in row and ("uid" in row or "question_id" in row):
        prompts, turns = _conversation(row["messages"])
        return Answer(_model(row, ("model", "model_id"), default_model), turns, where,
                      question_id=_id(row, ("uid", "question_id")), prompt_turns=prompts, category=category,
                      metadata=_metadata(row.get("metadata")), shape="arena-hard")
    if "choices" in row and "question_id" in row:
        return Answer(_model(row, ("model_id", "model"), default_model), _choice_turns(row["choices"]), where,
                      question_id=_id(row, ("question_id",)), category=category, shape="fastchat")
    if "instruction" in row and "output" in row:
        return Answer(_model(row, ("generator", "model"), default_model), (_text(row, "output"),), where,
                      prompt_turns=(_text(row, "instruction"),), category=category, shape="alpaca-eval")
    if "response" in row and ("id" in row or "prompt" in row or "question_id" in row):
        prompt = (_text(row, "prompt"),) if row.get("prompt") is not None else ()
        return Answer(_model(row, ("model", "generator", "model_id"), default_model), (_text(row, "response"),),
                      where, question_id=_id(row, ("id", "question_id")), prompt_turns=prompt, category=category)
    present = ", ".join(sorted(map(str, row))) or "none"
    raise InputError(
        f"not an answer row (columns: {present}); expected Arena-Hard answers (uid, model, messages), MT-Bench or "
        "Arena-Hard v0.1 answers (question_id, model_id, choices), AlpacaEval outputs (instruction, output, "
        "generator) or plain rows (id or prompt, response, model)", kind=Reason.UNKNOWN_SHAPE)


def question_from_row(row: Any, *, category_field: str | None = None) -> Question:
    """One questions-file row of any shape in the module's table."""
    if not isinstance(row, Mapping):
        raise InputError(f"a question row must be an object, got {type(row).__name__}", kind=Reason.NOT_AN_OBJECT)
    category = _category(row, category_field)
    question_id = _id(row, ("uid", "question_id", "id"))
    if "turns" in row:
        turns = _turn_texts(row["turns"], "turns")
    elif "prompt" in row:
        turns = (_text(row, "prompt"),)
    elif "instruction" in row:
        turns = (_text(row, "instruction"),)
    else:
        present = ", ".join(sorted(map(str, row))) or "none"
        raise InputError(f"not a question row (columns: {present}); expected turns, prompt or instruction, with "
                         "uid, question_id or id", kind=Reason.UNKNOWN_SHAPE)
    references: tuple[str, ...] = ()
    if row.get("reference") is not None:
        value = row["reference"]
        references = (_checked_text(value, "reference"),) if isinstance(value, str) else _turn_texts(value, "reference")
    if references and len(references) != len(turns):
        raise InputError(f"the question has {len(turns)} turns but {len(references)} references; give one reference "
                         "per turn", kind=Reason.WRONG_TYPE)
    key = question_id if question_id is not None else prompt_key(turns)
    return Question(key, turns, id=question_id, references=references, category=category)


def _rows(path: str | Path, *, format: str | None, split: str | None,
          limit: int | None = None) -> Iterator[tuple[str, Any]]:
    source = open_source(path, format=format, split=split, limit=limit)
    name = Path(str(path)).name
    for number, row in source.rows():
        yield f"{name}:{number}", row


def _file_model(path: str | Path) -> str:
    name = Path(str(path)).name
    for suffix in (".jsonl", ".json", ".parquet", ".csv", ".ndjson", ".tsv", ".pq"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _row_model(row: Any) -> str | None:
    if isinstance(row, Mapping):
        for field in ("model", "generator", "model_id"):
            if isinstance(row.get(field), str) and row[field]:
                return str(row[field])
    return None


def _model(row: Mapping[str, Any], fields: Sequence[str], default: str | None) -> str:
    for field in fields:
        value = row.get(field)
        if value is not None:
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"field '{field}' must name the model, got {value!r}", kind=Reason.WRONG_TYPE)
            return value
    if default is None:
        raise InputError(f"no model name (none of {', '.join(fields)})", kind=Reason.MISSING_FIELD)
    return default


def _id(row: Mapping[str, Any], fields: Sequence[str]) -> str | None:
    for field in fields:
        value = row.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise InputError(f"field '{field}' must be a string or a whole number, got {type(value).__name__}",
                             kind=Reason.WRONG_TYPE)
        return str(value)
    return None


def _category(row: Mapping[str, Any], field: str | None) -> str | None:
    if field is None or row.get(field) is None:
        return None
    return str(row[field])


def _text(row: Mapping[str, Any], field: str) -> str:
    if row.get(field) is None:
        raise InputError(f"field '{field}' is missing or null", kind=Reason.MISSING_FIELD)
    return _checked_text(row[field], field)


def _checked_text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string, got {type(value).__name__}", kind=Reason.WRONG_TYPE)
    return value


def _turn_texts(turns: Any, what: str) -> tuple[str, ...]:
    """A list of turns: strings (MT-Bench) or objects with ``content`` (Arena-Hard v0.1)."""
    if not isinstance(turns, Sequence) or isinstance(turns, str) or not turns:
        raise InputError(f"{what} must be a non-empty list of turns", kind=Reason.WRONG_TYPE)
    texts = []
    for index, turn in enumerate(turns):
        if isinstance(turn, Mapping):
            turn = turn.get("content")
        texts.append(_checked_text(turn, f"{what}[{index}]"))
    return tuple(texts)


def _choice_turns(choices: Any) -> tuple[str, ...]:
    if not isinstance(choices, Sequence) or isinstance(choices, str) or not choices:
        raise InputError("choices must be a non-empty list", kind=Reason.WRONG_TYPE)
    first = choices[0]
    if not isinstance(first, Mapping) or "turns" not in first:
        raise InputError("choices[0] must be an object with turns", kind=Reason.MISSING_FIELD)
    return _turn_texts(first["turns"], "choices[0].turns")


def _conversation(messages: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The user's turns and the assistant's, from an Arena-Hard ``messages`` list (system messages aside)."""
    if not isinstance(messages, Sequence) or isinstance(messages, str):
        raise InputError("messages must be a list", kind=Reason.BAD_MESSAGES)
    prompts: list[str] = []
    answers: list[str] = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InputError(f"messages[{index}] must be an object", kind=Reason.BAD_MESSAGES)
        role, content = message.get("role"), message.get("content")
        if isinstance(content, Mapping):  # Arena-Hard v2: {"answer": ..., "reasoning": ...}
            content = content.get("answer")
        if role == "system":
            continue
        expected = "user" if len(prompts) == len(answers) else "assistant"
        if role != expected:
            raise InputError(f"messages[{index}] has role {role!r} where {expected!r} was expected",
                             kind=Reason.BAD_MESSAGES)
        (prompts if role == "user" else answers).append(_checked_text(content, f"messages[{index}] content"))
    if not answers or len(prompts) != len(answers):
        raise InputError("messages must alternate user and assistant and end with the assistant's answer",
                         kind=Reason.BAD_MESSAGES)
    return tuple(prompts), tuple(answers)


def _metadata(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None
