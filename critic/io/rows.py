"""Row shapes: one input row -> a pair in the row's own order, and what the row says is better.

(a) ``prompt``, ``chosen``, ``rejected`` as strings.
(b) ``chosen`` and ``rejected`` as message lists ending in the assistant answer.
(c) ``prompt``, ``response_a``, ``response_b`` with an optional ``label`` (read by
    :func:`critic.io.labels.parse_label`).
(pandalm) PandaLM's native rows: ``instruction`` (+ ``input``), ``response1``,
    ``response2`` and three annotators' votes.
(llmbar) LLMBar; (hh) HH-RLHF transcripts; (mt-bench) MT-Bench human judgments
    (see :mod:`critic.io.formats`); (best-of) RewardBench 2, one chosen answer and a
    list of rejected ones: :func:`read_pairs` gives one pair per rejected answer
    (``critic eval``), :func:`read_pair` (``filter``, ``judge``) refuses more than one.

Labelled shapes read ``label``, else a ``winner`` column (logged once, as is
"assuming response_a is chosen" without either); :func:`detect` says what a row
is read as. :func:`read_pair` reads any shape the same way for every command;
:func:`prepare_row` (``critic filter``), :func:`pair_from_row` (``critic judge``)
and :func:`critic.eval.pairs.load_labelled_pairs` (``critic eval``) apply their
own policy on top (a tie is a rejection in ``filter`` and a gold label in
``eval``). :func:`conversation_from_row` reads the conversation that
``critic score`` scores. Column names are remapped with :class:`Columns`.
Every refusal is an :class:`InputError` with a :class:`~critic.errors.Reason` kind.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from critic.errors import InputError, Reason
from critic.io.formats import (
    check_not_serialized,
    hh_pair,
    history_of,
    is_mt_bench_row,
    is_transcript,
    mt_bench_pair,
    optional_string,
    prompt_and_history,
    required,
    required_string,
    shared_conversation,
    type_name,
)
from critic.io.formats import arena_pair
from critic.io.labels import (
    ONE_HOT_COLUMNS,
    flipped_label,
    majority_label,
    one_hot_label,
    parse_label,
    sign_for,
)
from critic.io.readers import RowError
from critic.io.shapes import (
    CHOSEN_SHAPES,
    DEFAULT_COLUMNS,
    HELPSTEER2,
    LLMBAR,
    ONE_HOT_LABEL,
    WINNER_COLUMN,
    Candidate,
    Columns,
    Detected,
    RowPair,
)
from critic.types import Label, Message, Pair, check_conversation, check_text, conversation

logger = logging.getLogger("critic")


PANDALM_FIELDS = ("instruction", "input", "response1", "response2", "annotator1", "annotator2", "annotator3")


BOOLEAN_TEXT_FIELD = "booleans_read_as_text"  # where a PandaLM row records the answers it read from booleans


_warned_booleans = False


def read_pair(row: Any, columns: Columns | None = None) -> RowPair:
    """Read one input row as a :class:`RowPair`, or raise :class:`InputError` (with its kind) saying why not.

    ``columns`` names the fields (``None``: the default names).

    PandaLM stores a few answers as JSON booleans (``true``): they are read as
    their text (``"True"``), recorded in the row's ``booleans_read_as_text``
    field, and logged once.
    """
    if isinstance(row, RowError):
        raise row
    if not isinstance(row, Mapping):
        raise InputError(f"a row must be a JSON object, got {type_name(row)}", kind=Reason.NOT_AN_OBJECT)
    if is_pandalm_row(row):
        return _pandalm_pair(row)
    c = columns or DEFAULT_COLUMNS
    if c.chosen in row or c.rejected in row:
        pairs = _best_of_pairs(row, c)
        if pairs is None:
            return _chosen_rejected_pair(row, c)
        if len(pairs) > 1:
            raise InputError(f"the row holds {len(pairs)} pairs (RewardBench 2 shape: each chosen answer against "
                             "each rejected one); read it with read_pairs", kind=Reason.WRONG_TYPE)
        return pairs[0]
    if c.response_a in row or c.response_b in row:
        return _labelled_pair(row, c, "ab")
    if HELPSTEER2["response_a"] in row and HELPSTEER2["response_b"] in row:
        defaults = {name: value for name, value in HELPSTEER2.items()
                    if getattr(c, name) == getattr(DEFAULT_COLUMNS, name)}  # the user's own names win
        return _labelled_pair(row, dataclasses.replace(c, **defaults), "helpsteer2")
    if is_mt_bench_row(row):
        return _labelled_pair(row, c, "mt-bench")
    if LLMBAR["response_a"] in row and LLMBAR["response_b"] in row:
        return _labelled_pair(row, dataclasses.replace(c, **LLMBAR), "llmbar")
    present = ", ".join(sorted(map(str, row))[:12]) or "none"
    raise InputError(
        f"no known row shape (expected '{c.chosen}'/'{c.rejected}', '{c.response_a}'/'{c.response_b}', "
        f"PandaLM, LLMBar, HH-RLHF or MT-Bench fields; present: {present})",
        kind=Reason.UNKNOWN_SHAPE,
    )


def read_pairs(row: Any, columns: Columns | None = None) -> tuple[RowPair, ...]:
    """Every pair a row holds: one, or (RewardBench 2) one per rejected answer, each with the chosen one first."""
    if isinstance(row, Mapping) and not is_pandalm_row(row):
        c = columns or DEFAULT_COLUMNS
        if c.chosen in row or c.rejected in row:
            pairs = _best_of_pairs(row, c)
            if pairs is not None:
                return pairs
    return (read_pair(row, columns),)


def detect(row: Any, columns: Columns | None = None) -> Detected:
    """What :func:`read_pairs` reads ``row`` as (the command line prints it for the first row)."""
    read = read_pairs(row, columns)[0]
    sign = None if read.label_column in (None, ONE_HOT_LABEL) else sign_for(read.label_column, read.columns.label_sign)
    return Detected(read.shape, read.label_column, sign)


def _labelled_pair(row: Mapping[str, Any], c: Columns, shape: str) -> RowPair:
    label_column = _label_column(row, c)
    fields = (c.response_a, c.response_b)
    if shape == "mt-bench":
        pair, fields = mt_bench_pair(row), ("conversation_a", "conversation_b")
    else:
        values = [required(row, name) for name in (c.prompt, c.response_a, c.response_b)]
        arena = arena_pair(values, (c.prompt, c.response_a, c.response_b), history_of(row, c))
        if arena is not None:
            pair, shape = arena, "arena"
        else:
            prompt, a, b = (required_string(row, name) for name in (c.prompt, c.response_a, c.response_b))
            pair = Pair(prompt, a, b, reference=optional_string(row, c.reference), history=history_of(row, c))
    if label_column not in (None, c.label, ONE_HOT_LABEL):
        _log_once(logging.INFO, "reading labels from column '%s' (there is no '%s' column)", label_column, c.label)
    return RowPair(pair, shape, dict(row), c, label_column, fields)


def _label_column(row: Mapping[str, Any], c: Columns) -> str | None:
    """Where a labelled row's label is: the label column, Arena's one-hot columns, a ``winner`` column, or nowhere.

    The one-hot triple is always read together (naming one of its columns with
    ``--label-field`` reads all three): one column alone cannot tell a B win
    from a tie. A label column the user named must be in every row.
    """
    one_hot = all(name in row for name in ONE_HOT_COLUMNS)
    if c.label in ONE_HOT_COLUMNS:
        if not one_hot:
            missing = ", ".join(name for name in ONE_HOT_COLUMNS if name not in row)
            raise InputError(f"label column '{c.label}' is one of Arena's one-hot columns, which are read together; "
                             f"this row lacks {missing}", kind=Reason.MISSING_FIELD)
        return ONE_HOT_LABEL
    if c.label in row:
        return c.label
    if c.label != DEFAULT_COLUMNS.label:
        required(row, c.label)  # the column the user named is missing from this row: say so, never guess
    if one_hot:
        return ONE_HOT_LABEL
    return WINNER_COLUMN if WINNER_COLUMN in row else None


_logged: set[str] = set()


def _log_once(level: int, message: str, *args: Any) -> None:
    text = message % args
    if text not in _logged:
        _logged.add(text)
        logger.log(level, "%s", text)


def row_label(read: RowPair) -> Label | None:
    """What the row says is better, as a label of ``read.pair``.

    Chosen/rejected rows: ``"A"`` (the chosen answer is first). Labelled rows:
    their label, ``None`` when there is none. PandaLM rows: the annotators'
    majority (a tie when there is none).
    """
    if read.shape == "pandalm":
        return majority_label(_votes(read.row))
    if read.shape in CHOSEN_SHAPES:
        return "A"
    if read.label_column is None:
        return None
    if read.label_column == ONE_HOT_LABEL:
        return one_hot_label(read.row)
    value = read.row.get(read.label_column)
    if value is None:
        return None
    return parse_label(value, read.label_column, sign=sign_for(read.label_column, read.columns.label_sign))


def prepare_row(row: Any, columns: Columns | None = None) -> Candidate:
    """Turn one input row into a :class:`Candidate` for ``critic filter``, or raise :class:`InputError` saying why not.

    A tie (a label such as ``tie``, or PandaLM annotators without a majority) is
    refused with kind ``NO_PREFERENCE``: a preference pair needs a winner.
    """
    reads = read_pairs(row, columns)
    read = reads[0]
    if read.shape == "best-of":  # RewardBench 2: the chosen answer(s) against each rejected one, chosen first
        first, second = read.answer_fields
        return Candidate(read.pair, read.row, read.shape, ("swap", first, second),
                         more=tuple(r.pair for r in reads[1:]), answers=tuple(r.answers or (0, 0) for r in reads))
    label = row_label(read)
    if read.shape == "pandalm":
        return _pandalm_candidate(read, label)
    first, second = read.answer_fields
    if read.shape in CHOSEN_SHAPES:
        return Candidate(read.pair, read.row, read.shape, ("swap", first, second))
    if label is None:
        _log_once(logging.WARNING, "no '%s' or '%s' column: assuming response_a is chosen", read.columns.label,
                  WINNER_COLUMN)
        return Candidate(read.pair, read.row, read.shape, ("swap", first, second))
    column = read.label_column or read.columns.label
    if column == ONE_HOT_LABEL:
        value: Any = ", ".join(f"{name}={read.row[name]}" for name in ONE_HOT_COLUMNS)
        relabel: tuple[str, str, Any] = ("swap", ONE_HOT_COLUMNS[0], ONE_HOT_COLUMNS[1])
    else:
        value = read.row[column]
        relabel = ("set", column, flipped_label(value, sign_for(column, read.columns.label_sign)))
    if label == "tie":
        raise InputError(f"tie: label {value!r} prefers neither response", kind=Reason.NO_PREFERENCE)
    pair = read.pair if label == "A" else read.pair.swapped()
    return Candidate(pair, read.row, read.shape, relabel)


def pair_from_row(row: Any, columns: Columns | None = None) -> Pair:
    """The pair a row shows, in its own order (chosen/rejected rows: chosen as A); a row of several pairs is an error.

    A label in the row is not read: judging needs none.
    """
    return read_pair(row, columns).pair


def pairs_from_row(row: Any, columns: Columns | None = None) -> tuple[tuple[Pair, tuple[int, int] | None], ...]:
    """Every pair a row shows, for ``critic judge``: one, or (RewardBench 2) each chosen answer against each
    rejected one, with its (chosen index, rejected index)."""
    return tuple((read.pair, read.answers) for read in read_pairs(row, columns))


def conversation_from_row(row: Any, columns: Columns | None = None) -> tuple[Message, ...]:
    """The conversation a reward model scores: the ``messages`` list, or history + prompt + ``response``."""
    if isinstance(row, RowError):
        raise row
    if not isinstance(row, Mapping):
        raise InputError(f"a row must be a JSON object, got {type_name(row)}", kind=Reason.NOT_AN_OBJECT)
    c = columns or DEFAULT_COLUMNS
    if row.get(c.messages) is not None:
        return check_conversation(row[c.messages], f"field '{c.messages}'")
    missing = [name for name in (c.prompt, c.response) if row.get(name) is None]
    if missing:
        present = ", ".join(sorted(map(str, row))) or "none"
        raise InputError(f"a row needs a '{c.messages}' list or both '{c.prompt}' and '{c.response}'; "
                         f"missing or null: {', '.join(missing)} (present: {present})", kind=Reason.MISSING_FIELD)
    prompt, response = (check_text(required_string(row, name), f"field '{name}'") for name in (c.prompt, c.response))
    return conversation(prompt, response, history_of(row, c))


def is_pandalm_row(row: Mapping[str, Any]) -> bool:
    """Whether ``row`` is one of PandaLM's native rows (instruction, response1/2, annotator votes)."""
    return "instruction" in row and "response1" in row and "response2" in row and "annotator1" in row


def pandalm_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """PandaLM's three-annotator row as prompt/chosen/rejected, by the annotators' majority.

    ``input`` (when not empty) belongs to the prompt, after the instruction. The
    other fields (``idx``, ``motivation_app``, ``cmp_key``, ...) are kept, and
    ``annotators`` and ``chosen_from`` record where the label came from. A row
    whose annotators have no majority for one response raises ``InputError``
    (kind ``NO_PREFERENCE``, "tie: ...").
    """
    read = _pandalm_pair(row)
    return _pandalm_candidate(read, row_label(read)).row


def _pandalm_pair(row: Mapping[str, Any]) -> RowPair:
    instruction = required_string(row, "instruction")
    extra = optional_string(row, "input")
    read = dict(row)
    as_text = [name for name in ("response1", "response2") if isinstance(row.get(name), bool)]
    for name in as_text:
        read[name] = str(row[name])
    if as_text:
        read[BOOLEAN_TEXT_FIELD] = as_text
        _warn_booleans(row, as_text)
    first, second = (required_string(read, name) for name in ("response1", "response2"))
    prompt = instruction + (f"\n\n{extra}" if extra else "")
    return RowPair(Pair(prompt, first, second), "pandalm", read, DEFAULT_COLUMNS, None, ("response1", "response2"))


def _pandalm_candidate(read: RowPair, label: Label | None) -> Candidate:
    if label not in ("A", "B"):
        raise InputError("tie: annotators have no majority preference", kind=Reason.NO_PREFERENCE)
    winner = 1 if label == "A" else 2
    row = read.row
    converted = {key: value for key, value in row.items() if key not in PANDALM_FIELDS and key != BOOLEAN_TEXT_FIELD}
    converted.update(prompt=read.pair.prompt, chosen=row[f"response{winner}"], rejected=row[f"response{3 - winner}"],
                     chosen_from=f"response{winner}", annotators=_votes(row))
    if BOOLEAN_TEXT_FIELD in row:
        converted[BOOLEAN_TEXT_FIELD] = row[BOOLEAN_TEXT_FIELD]
    pair = read.pair if label == "A" else read.pair.swapped()
    return Candidate(pair, converted, "pandalm", ("swap", "chosen", "rejected"))


def _votes(row: Mapping[str, Any]) -> list[int]:
    votes = []
    for index in (1, 2, 3):
        vote = required(row, f"annotator{index}")
        if isinstance(vote, bool) or vote not in (0, 1, 2):
            raise InputError(f"field 'annotator{index}' must be 0, 1 or 2 (0 is a tie), got {vote!r}",
                             kind=Reason.UNKNOWN_LABEL)
        votes.append(int(vote))
    return votes


def _warn_booleans(row: Mapping[str, Any], names: Sequence[str]) -> None:
    global _warned_booleans
    if not _warned_booleans:
        _warned_booleans = True
        logger.warning("row %s: %s is a JSON boolean, read as its text (%r); such rows are marked '%s'",
                       row.get("idx", row.get("id", "?")), " and ".join(names), str(row[names[0]]),
                       BOOLEAN_TEXT_FIELD)


def _chosen_rejected_pair(row: Mapping[str, Any], c: Columns) -> RowPair:
    chosen, rejected = required(row, c.chosen), required(row, c.rejected)
    reference = optional_string(row, c.reference)
    lists = isinstance(chosen, list), isinstance(rejected, list)
    if lists == (True, True):
        prompt, history = shared_conversation(row, c, chosen, rejected)
        pair = Pair(prompt, chosen[-1]["content"], rejected[-1]["content"], reference=reference, history=history)
        return RowPair(pair, "messages", dict(row), c)
    if any(lists):
        raise InputError(f"fields '{c.chosen}' and '{c.rejected}' must both be strings or both message lists, "
                         f"got {type_name(chosen)} and {type_name(rejected)}", kind=Reason.WRONG_TYPE)
    for name, value in ((c.chosen, chosen), (c.rejected, rejected)):
        if not isinstance(value, str):
            raise InputError(f"field '{name}' must be a string or a message list, got {type_name(value)}",
                             kind=Reason.WRONG_TYPE)
        check_not_serialized(value, name)
    if c.prompt not in row and is_transcript(chosen):
        return RowPair(hh_pair(chosen, rejected, (c.chosen, c.rejected), reference), "hh", dict(row), c,
                       None, (c.chosen, c.rejected))
    prompt, history = prompt_and_history(row, c)
    pair = Pair(prompt, chosen, rejected, reference=reference, history=history)
    return RowPair(pair, "pairs", dict(row), c, None, (c.chosen, c.rejected))


def _best_of_pairs(row: Mapping[str, Any], c: Columns) -> tuple[RowPair, ...] | None:
    """RewardBench 2's rows (``rejected`` a list of answer strings): one pair per (chosen, rejected) answer; else None.

    ``chosen`` is one answer (a string or a list of one) or, in its ``Ties``
    subset, a list of several correct answers: every chosen answer is paired
    with every rejected one, chosen first. ``RowPair.answers`` holds each
    pair's (chosen index, rejected index). A list of one rejected answer is
    this shape only beside a chosen string (two one-string lists stay what they
    always were: malformed message lists).
    """
    rejected, chosen = row.get(c.rejected), row.get(c.chosen)
    if not isinstance(rejected, list) or not rejected or not all(isinstance(r, str) for r in rejected):
        return None
    if len(rejected) == 1 and not isinstance(chosen, str):  # ["a"] against ["b"]: read (and refused) as messages
        return None
    chosen = required(row, c.chosen)
    answers = [chosen] if isinstance(chosen, str) else chosen
    if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
        what = "an empty list" if answers == [] else type_name(chosen)
        raise InputError(f"field '{c.chosen}' must be an answer or a list of answers (strings) beside a list of "
                         f"rejected answers, got {what}", kind=Reason.WRONG_TYPE)
    for index, text in enumerate(answers):
        check_not_serialized(text, c.chosen if isinstance(chosen, str) else f"{c.chosen}[{index}]")
    for index, text in enumerate(rejected):
        check_not_serialized(text, f"{c.rejected}[{index}]")
    prompt, history = prompt_and_history(row, c)
    reference = optional_string(row, c.reference)
    kept = dict(row)
    return tuple(RowPair(Pair(prompt, good, bad, reference=reference, history=history), "best-of", kept, c, None,
                         (c.chosen, c.rejected), (i, j))
                 for i, good in enumerate(answers) for j, bad in enumerate(rejected))
