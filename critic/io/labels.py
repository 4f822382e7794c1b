"""The one label vocabulary: how A, B and tie may be written, in every input and every command.

``parse_label`` is the only reader of labels: ``critic filter``, ``critic eval``
(gold labels and other judges' predictions) and the row shapes all use it, so a
label means the same thing everywhere and an unknown one is refused with the
same reason everywhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from critic.errors import InputError, Reason
from critic.types import Label

_SPELLINGS: dict[str, Label] = {
    "a": "A", "1": "A", "response_a": "A", "response1": "A", "model_a": "A",
    "b": "B", "2": "B", "response_b": "B", "response2": "B", "model_b": "B",
    "tie": "tie", "0": "tie", "draw": "tie", "tie (bothbad)": "tie", "c": "tie",
}


# How a label written one way is written for the other response ("response1" -> "response2").
_OTHER_SPELLING = {"a": "b", "1": "2", "response_a": "response_b", "response1": "response2", "model_a": "model_b"}
_OTHER_SPELLING.update({value: key for key, value in _OTHER_SPELLING.items()})


ACCEPTED_LABELS = ("A, B or tie (also 1/2/0, a/b, response_a/response_b, response1/response2, model_a/model_b, "
                   "draw, 'tie (bothbad)' or c; case does not matter)")


def parse_label(value: Any, field: str = "label") -> Label:
    """The label ``value`` stands for; :class:`InputError` (kind ``UNKNOWN_LABEL``) when it is none of them.

    Accepted (case-insensitive, surrounding spaces ignored): ``A``/``B``/``tie``,
    the integers 1/2/0 (not booleans) and the strings "1"/"2"/"0", ``a``/``b``,
    ``response_a``/``response_b``, ``response1``/``response2``,
    ``model_a``/``model_b``, and ``draw``, ``tie (bothbad)``, ``c`` for a tie.
    ``both``, ``neither`` and ``none`` are not labels (does "none" mean "neither
    is better" or "no label"?): they are refused like any unknown value.
    """
    key = _key(value)
    label = _SPELLINGS.get(key) if key is not None else None
    if label is None:
        raise InputError(f"field '{field}' is {_shown(value)}; expected {ACCEPTED_LABELS}", kind=Reason.UNKNOWN_LABEL)
    return label


def label_or_none(value: Any) -> Label | None:
    """:func:`parse_label`, with ``None`` for a value it cannot read (another judge's failed prediction)."""
    try:
        return parse_label(value)
    except InputError:
        return None


def other_spelling(value: Any) -> Any:
    """The label for the other response, written the way ``value`` is ("response_a" -> "response_b", 1 -> 2).

    A tie, or a value that is not a label, is returned as it is.
    """
    key = _key(value)
    if key is None or key not in _OTHER_SPELLING:
        return value
    other = _OTHER_SPELLING[key]
    if isinstance(value, int):
        return int(other)
    return other.upper() if value.strip().isupper() else other


def majority_label(votes: Sequence[int]) -> Label:
    """PandaLM annotators' majority (1 -> A, 2 -> B, 0 -> tie); a three-way split is a tie."""
    top, count = Counter(votes).most_common(1)[0]
    if count * 2 <= len(votes):
        return "tie"
    return parse_label(top, "annotator")


def _key(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.strip().lower()
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
