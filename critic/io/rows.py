"""Row shapes: one input row -> a pair in the row's own order, and what the row says is better.

(a) ``prompt``, ``chosen``, ``rejected`` as strings.
(b) ``chosen`` and ``rejected`` as message lists ending in the assistant answer.
(c) ``prompt``, ``response_a``, ``response_b`` with an optional ``label`` (read by
    :func:`critic.io.labels.parse_label`).
(pandalm) PandaLM's native rows: ``instruction`` (+ ``input``), ``response1``,
    ``response2`` and three annotators' votes.

:func:`read_pair` reads any of them the same way for every command;
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
from dataclasses import dataclass
from typing import Any

from critic.errors import InputError, Reason
from critic.io.labels import majority_label, other_spelling, parse_label
from critic.io.readers import RowError
from critic.types import Label, Message, Pair, check_conversation, check_messages, check_text, conversation

logger = logging.getLogger("critic")


@dataclass(frozen=True)
class Columns:
    """Which input columns hold what (``--prompt-field`` and friends).

    ``messages`` and ``response`` are read by :func:`conversation_from_row`
    (rows scored by a reward model).
    """

    prompt: str = "prompt"
    chosen: str = "chosen"
    rejected: str = "rejected"
    response_a: str = "response_a"
    response_b: str = "response_b"
    label: str = "label"
    reference: str = "reference"
    history: str = "history"
    messages: str = "messages"
    response: str = "response"

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


DEFAULT_COLUMNS = Columns()


@dataclass(frozen=True)
class RowPair:
    """A row read as a pair, in the row's own order, before any policy.

    ``pair.response_a`` is the row's first answer (``chosen``, ``response_a`` or
    ``response1``). ``row`` is the row as read (PandaLM's boolean answers as their
    text, see :func:`read_pair`); ``columns`` the names it was read with
    (PandaLM's own for PandaLM rows).
    """

    pair: Pair
    shape: str  # "pairs", "messages", "ab" or "pandalm"
    row: dict[str, Any]
    columns: Columns


@dataclass(frozen=True)
class Candidate:
    """A row ready for the judge.

    ``pair`` shows the claimed better answer as ``response_a`` (the judge's
    ``p_a`` is then P(chosen is better)). ``row`` is what the outputs carry (the
    row as it came in, or PandaLM's row converted to chosen/rejected).
    ``relabel`` says how to swap the claim: ``("swap", key1, key2)`` exchanges
    two columns, ``("set", key, value)`` rewrites a label.
    """

    pair: Pair
    row: dict[str, Any]
    shape: str
    relabel: tuple[str, str, Any]

    def relabelled(self) -> dict[str, Any]:
        """The output row with chosen and rejected exchanged."""
        row = dict(self.row)
        action, key, other = self.relabel
        if action == "swap":
            row[key], row[other] = row[other], row[key]
        else:
            row[key] = other
        return row


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
        raise InputError(f"a row must be a JSON object, got {_type_name(row)}", kind=Reason.NOT_AN_OBJECT)
    if is_pandalm_row(row):
        return _pandalm_pair(row)
    c = columns or DEFAULT_COLUMNS
    if c.chosen in row or c.rejected in row:
        return _chosen_rejected_pair(row, c)
    if c.response_a in row or c.response_b in row:
        prompt, a, b = (_required_string(row, name) for name in (c.prompt, c.response_a, c.response_b))
        pair = Pair(prompt, a, b, reference=_optional_string(row, c.reference), history=_history(row, c))
        return RowPair(pair, "ab", dict(row), c)
    present = ", ".join(sorted(map(str, row))[:12]) or "none"
    raise InputError(
        f"no known row shape (expected '{c.chosen}'/'{c.rejected}', '{c.response_a}'/'{c.response_b}' "
        f"or PandaLM fields; present: {present})",
        kind=Reason.UNKNOWN_SHAPE,
    )


def row_label(read: RowPair) -> Label | None:
    """What the row says is better, as a label of ``read.pair``.

    Chosen/rejected rows: ``"A"`` (the chosen answer is first). Labelled rows:
    their label, ``None`` when there is none. PandaLM rows: the annotators'
    majority (a tie when there is none).
    """
    if read.shape == "pandalm":
        return majority_label(_votes(read.row))
    if read.shape != "ab":
        return "A"
    value = read.row.get(read.columns.label)
    return None if value is None else parse_label(value, read.columns.label)


def prepare_row(row: Any, columns: Columns | None = None) -> Candidate:
    """Turn one input row into a :class:`Candidate` for ``critic filter``, or raise :class:`InputError` saying why not.

    A tie (a label such as ``tie``, or PandaLM annotators without a majority) is
    refused with kind ``NO_PREFERENCE``: a preference pair needs a winner.
    """
    read = read_pair(row, columns)
    label = row_label(read)
    c = read.columns
    if read.shape == "pandalm":
        return _pandalm_candidate(read, label)
    if read.shape != "ab":
        return Candidate(read.pair, read.row, read.shape, ("swap", c.chosen, c.rejected))
    if label is None:
        return Candidate(read.pair, read.row, "ab", ("swap", c.response_a, c.response_b))
    value = read.row[c.label]
    if label == "tie":
        raise InputError(f"tie: label {value!r} prefers neither response", kind=Reason.NO_PREFERENCE)
    pair = read.pair if label == "A" else read.pair.swapped()
    return Candidate(pair, read.row, "ab", ("set", c.label, other_spelling(value)))


def pair_from_row(row: Any, columns: Columns | None = None) -> Pair:
    """The pair a row shows, in its own order, for ``critic judge`` (chosen/rejected rows: chosen as A).

    A label in the row is not read: judging needs none.
    """
    return read_pair(row, columns).pair


def conversation_from_row(row: Any, columns: Columns | None = None) -> tuple[Message, ...]:
    """The conversation a reward model scores: the ``messages`` list, or history + prompt + ``response``."""
    if isinstance(row, RowError):
        raise row
    if not isinstance(row, Mapping):
        raise InputError(f"a row must be a JSON object, got {_type_name(row)}", kind=Reason.NOT_AN_OBJECT)
    c = columns or DEFAULT_COLUMNS
    if row.get(c.messages) is not None:
        return check_conversation(row[c.messages], f"field '{c.messages}'")
    missing = [name for name in (c.prompt, c.response) if row.get(name) is None]
    if missing:
        present = ", ".join(sorted(map(str, row))) or "none"
        raise InputError(f"a row needs a '{c.messages}' list or both '{c.prompt}' and '{c.response}'; "
                         f"missing or null: {', '.join(missing)} (present: {present})", kind=Reason.MISSING_FIELD)
    prompt, response = (check_text(_required_string(row, name), f"field '{name}'") for name in (c.prompt, c.response))
    return conversation(prompt, response, _history(row, c))


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
    instruction = _required_string(row, "instruction")
    extra = _optional_string(row, "input")
    read = dict(row)
    as_text = [name for name in ("response1", "response2") if isinstance(row.get(name), bool)]
    for name in as_text:
        read[name] = str(row[name])
    if as_text:
        read[BOOLEAN_TEXT_FIELD] = as_text
        _warn_booleans(row, as_text)
    first, second = (_required_string(read, name) for name in ("response1", "response2"))
    prompt = instruction + (f"\n\n{extra}" if extra else "")
    return RowPair(Pair(prompt, first, second), "pandalm", read, DEFAULT_COLUMNS)


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
        vote = _required(row, f"annotator{index}")
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
    chosen, rejected = _required(row, c.chosen), _required(row, c.rejected)
    reference = _optional_string(row, c.reference)
    lists = isinstance(chosen, list), isinstance(rejected, list)
    if lists == (True, True):
        prompt, history = _conversation(row, c, chosen, rejected)
        pair = Pair(prompt, chosen[-1]["content"], rejected[-1]["content"], reference=reference, history=history)
        return RowPair(pair, "messages", dict(row), c)
    if any(lists):
        raise InputError(f"fields '{c.chosen}' and '{c.rejected}' must both be strings or both message lists, "
                         f"got {_type_name(chosen)} and {_type_name(rejected)}", kind=Reason.WRONG_TYPE)
    for name, value in ((c.chosen, chosen), (c.rejected, rejected)):
        if not isinstance(value, str):
            raise InputError(f"field '{name}' must be a string or a message list, got {_type_name(value)}",
                             kind=Reason.WRONG_TYPE)
    prompt = _required_string(row, c.prompt)
    pair = Pair(prompt, chosen, rejected, reference=reference, history=_history(row, c))
    return RowPair(pair, "pairs", dict(row), c)


def _required(row: Mapping[str, Any], name: str) -> Any:
    if name not in row:
        present = ", ".join(sorted(map(str, row))[:12]) or "none"
        raise InputError(f"missing field '{name}' (present: {present})", kind=Reason.MISSING_FIELD)
    value = row[name]
    if value is None:
        raise InputError(f"field '{name}' is null", kind=Reason.MISSING_FIELD)
    return value


def _required_string(row: Mapping[str, Any], name: str) -> str:
    value = _required(row, name)
    if not isinstance(value, str):
        raise InputError(f"field '{name}' must be a string, got {_type_name(value)}", kind=Reason.WRONG_TYPE)
    return value


def _optional_string(row: Mapping[str, Any], name: str) -> str | None:
    value = row.get(name)
    if value is not None and not isinstance(value, str):
        raise InputError(f"field '{name}' must be a string or null, got {_type_name(value)}", kind=Reason.WRONG_TYPE)
    return value


def _history(row: Mapping[str, Any], c: Columns) -> tuple[Message, ...]:
    value = row.get(c.history)
    return () if value is None else check_messages(value, f"field '{c.history}'")


def _conversation(row: Mapping[str, Any], c: Columns, chosen: list, rejected: list) -> tuple[str, tuple[Message, ...]]:
    checked_chosen = check_messages(chosen, f"field '{c.chosen}'")
    checked_rejected = check_messages(rejected, f"field '{c.rejected}'")
    for name, messages in ((c.chosen, checked_chosen), (c.rejected, checked_rejected)):
        if not messages or messages[-1]["role"] != "assistant":
            raise InputError(f"field '{name}' must end with an assistant message (the answer)",
                             kind=Reason.BAD_MESSAGES)
    shared, other = list(checked_chosen[:-1]), list(checked_rejected[:-1])
    if shared != other:
        at = next((i for i, (x, y) in enumerate(zip(shared, other, strict=False)) if x != y),
                  min(len(shared), len(other)))
        raise InputError(
            f"fields '{c.chosen}' and '{c.rejected}' do not share the conversation before the answer "
            f"(they differ at message {at})",
            kind=Reason.BAD_MESSAGES,
        )
    if not shared:
        prompt = row.get(c.prompt)
        if isinstance(prompt, str):
            return prompt, ()
        if not isinstance(prompt, list):
            raise InputError(
                f"fields '{c.chosen}' and '{c.rejected}' hold only the answer and there is no '{c.prompt}' "
                "string or message list to give the question",
                kind=Reason.MISSING_FIELD,
            )
        shared = list(check_messages(prompt, f"field '{c.prompt}'"))
    if not shared or shared[-1]["role"] != "user":
        last = repr(shared[-1]["role"]) if shared else "nothing"
        raise InputError(f"the conversation before the answer must end with a user message, not {last}",
                         kind=Reason.BAD_MESSAGES)
    return shared[-1]["content"], tuple(shared[:-1])


def _type_name(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)
