"""Row shapes: one input row -> a :class:`Candidate` (a judge-ready pair plus its row), or a reason.

(a) ``prompt``, ``chosen``, ``rejected`` as strings.
(b) ``chosen`` and ``rejected`` as message lists ending in the assistant answer.
(c) ``prompt``, ``response_a``, ``response_b`` with an optional ``label``.
(pandalm) PandaLM's native rows, converted to (a) by the annotators' majority.

Column names are remapped with :class:`Columns`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from critic.errors import InputError
from critic.io.readers import RowError
from critic.types import Message, Pair, check_messages


@dataclass(frozen=True)
class Columns:
    """Which input columns hold what (``--prompt-field`` and friends)."""

    prompt: str = "prompt"
    chosen: str = "chosen"
    rejected: str = "rejected"
    response_a: str = "response_a"
    response_b: str = "response_b"
    label: str = "label"
    reference: str = "reference"
    history: str = "history"

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


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


_LABELS_A = {"a": "b", "response_a": "response_b", "model_a": "model_b"}


_LABELS_B = {value: key for key, value in _LABELS_A.items()}


_TIE_LABELS = {"tie", "c", "tie (bothbad)", "both", "neither", "none"}


_PANDALM_FIELDS = {"instruction", "input", "response1", "response2", "annotator1", "annotator2", "annotator3"}


def prepare_row(row: Any, columns: Columns = Columns()) -> Candidate:
    """Turn one input row into a :class:`Candidate`, or raise :class:`InputError` saying why not (one line)."""
    if isinstance(row, RowError):
        raise row
    if not isinstance(row, Mapping):
        raise InputError(f"a row must be a JSON object, got {_type_name(row)}")
    if "instruction" in row and "response1" in row and "response2" in row and "annotator1" in row:
        row, columns = pandalm_row(row), Columns()
    c = columns
    reference = _optional_string(row, c.reference)
    if c.chosen in row or c.rejected in row:
        chosen, rejected = _required(row, c.chosen), _required(row, c.rejected)
        lists = isinstance(chosen, list), isinstance(rejected, list)
        if lists == (True, True):
            prompt, history = _conversation(row, c, chosen, rejected)
            pair = _pair(prompt, chosen[-1]["content"], rejected[-1]["content"], reference, history)
            return Candidate(pair, dict(row), "messages", ("swap", c.chosen, c.rejected))
        if any(lists):
            raise InputError(f"fields '{c.chosen}' and '{c.rejected}' must both be strings or both message lists, "
                             f"got {_type_name(chosen)} and {_type_name(rejected)}")
        for name, value in ((c.chosen, chosen), (c.rejected, rejected)):
            if not isinstance(value, str):
                raise InputError(f"field '{name}' must be a string or a message list, got {_type_name(value)}")
        prompt = _required(row, c.prompt)
        if not isinstance(prompt, str):
            raise InputError(f"field '{c.prompt}' must be a string, got {_type_name(prompt)}")
        pair = _pair(prompt, chosen, rejected, reference, _history(row, c))
        return Candidate(pair, dict(row), "pairs", ("swap", c.chosen, c.rejected))
    if c.response_a in row or c.response_b in row:
        values = {}
        for name in (c.prompt, c.response_a, c.response_b):
            value = _required(row, name)
            if not isinstance(value, str):
                raise InputError(f"field '{name}' must be a string, got {_type_name(value)}")
            values[name] = value
        prompt, a, b = values[c.prompt], values[c.response_a], values[c.response_b]
        label = row.get(c.label)
        earlier = _history(row, c)
        if label is None:
            return Candidate(_pair(prompt, a, b, reference, earlier), dict(row), "ab",
                             ("swap", c.response_a, c.response_b))
        if not isinstance(label, str):
            raise InputError(f"field '{c.label}' must be a string such as 'A' or 'B', "
                             f"got {_type_name(label)} {label!r}")
        key = label.strip().lower()
        if key in _TIE_LABELS:
            raise InputError(f"tie: label {label!r} prefers neither response")
        if key in _LABELS_A:
            return Candidate(_pair(prompt, a, b, reference, earlier), dict(row), "ab",
                             ("set", c.label, _same_case(label, _LABELS_A[key])))
        if key in _LABELS_B:
            return Candidate(_pair(prompt, b, a, reference, earlier), dict(row), "ab",
                             ("set", c.label, _same_case(label, _LABELS_B[key])))
        raise InputError(f"field '{c.label}' is {label!r}; "
                         "expected A, B, response_a, response_b, model_a, model_b or tie")
    present = ", ".join(sorted(map(str, row))[:12]) or "none"
    raise InputError(
        f"no known row shape (expected '{c.chosen}'/'{c.rejected}', '{c.response_a}'/'{c.response_b}' "
        f"or PandaLM fields; present: {present})"
    )


def pandalm_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """PandaLM's three-annotator row as prompt/chosen/rejected, by the annotators' majority.

    ``input`` (when not empty) belongs to the prompt, after the instruction. The
    other fields (``idx``, ``motivation_app``, ``cmp_key``, ...) are kept, and
    ``annotators`` and ``chosen_from`` record where the label came from. A row
    whose annotators have no majority for one response raises ``InputError``
    ("tie: ...").
    """
    for name in ("instruction", "response1", "response2"):
        value = _required(row, name)
        if not isinstance(value, str):
            raise InputError(f"field '{name}' must be a string, got {_type_name(value)}")
    extra = row.get("input")
    if extra is not None and not isinstance(extra, str):
        raise InputError(f"field 'input' must be a string, got {_type_name(extra)}")
    votes = []
    for index in (1, 2, 3):
        vote = _required(row, f"annotator{index}")
        if isinstance(vote, bool) or vote not in (0, 1, 2):
            raise InputError(f"field 'annotator{index}' must be 0, 1 or 2 (0 is a tie), got {vote!r}")
        votes.append(int(vote))
    if votes.count(1) >= 2:
        winner = 1
    elif votes.count(2) >= 2:
        winner = 2
    else:
        raise InputError("tie: annotators have no majority preference")
    loser = 3 - winner
    converted = {key: value for key, value in row.items() if key not in _PANDALM_FIELDS}
    converted["prompt"] = row["instruction"] + (f"\n\n{extra}" if extra else "")
    converted["chosen"] = row[f"response{winner}"]
    converted["rejected"] = row[f"response{loser}"]
    converted["chosen_from"] = f"response{winner}"
    converted["annotators"] = votes
    return converted


def _required(row: Mapping[str, Any], name: str) -> Any:
    if name not in row:
        present = ", ".join(sorted(map(str, row))[:12]) or "none"
        raise InputError(f"missing field '{name}' (present: {present})")
    value = row[name]
    if value is None:
        raise InputError(f"field '{name}' is null")
    return value


def _optional_string(row: Mapping[str, Any], name: str) -> str | None:
    value = row.get(name)
    if value is not None and not isinstance(value, str):
        raise InputError(f"field '{name}' must be a string or null, got {_type_name(value)}")
    return value


def _history(row: Mapping[str, Any], c: Columns) -> tuple[Message, ...]:
    value = row.get(c.history)
    return () if value is None else check_messages(value, f"field '{c.history}'")


def _conversation(row: Mapping[str, Any], c: Columns, chosen: list, rejected: list) -> tuple[str, list[Message]]:
    checked_chosen = check_messages(chosen, f"field '{c.chosen}'")
    checked_rejected = check_messages(rejected, f"field '{c.rejected}'")
    for name, messages in ((c.chosen, checked_chosen), (c.rejected, checked_rejected)):
        if not messages or messages[-1]["role"] != "assistant":
            raise InputError(f"field '{name}' must end with an assistant message (the answer)")
    shared, other = list(checked_chosen[:-1]), list(checked_rejected[:-1])
    if shared != other:
        at = next((i for i, (x, y) in enumerate(zip(shared, other, strict=False)) if x != y),
                  min(len(shared), len(other)))
        raise InputError(
            f"fields '{c.chosen}' and '{c.rejected}' do not share the conversation before the answer "
            f"(they differ at message {at})"
        )
    if not shared:
        prompt = row.get(c.prompt)
        if isinstance(prompt, str):
            return prompt, []
        if isinstance(prompt, list):
            shared = list(check_messages(prompt, f"field '{c.prompt}'"))
        else:
            raise InputError(
                f"fields '{c.chosen}' and '{c.rejected}' hold only the answer and there is no '{c.prompt}' "
                "string or message list to give the question"
            )
    if shared[-1]["role"] != "user":
        raise InputError(f"the conversation before the answer must end with a user message, not {shared[-1]['role']!r}")
    return shared[-1]["content"], shared[:-1]


def _pair(prompt: str, a: str, b: str, reference: str | None, history: Sequence[Message]) -> Pair:
    return Pair(prompt, a, b, reference=reference, history=tuple(history))


def _same_case(original: str, replacement: str) -> str:
    return replacement.upper() if original.strip().isupper() else replacement


def _type_name(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)
