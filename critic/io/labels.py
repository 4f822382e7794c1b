"""The one label vocabulary: how A, B and tie may be written, in every input and every command.

``parse_label`` is the only reader of labels: ``critic filter``, ``critic eval``
(gold labels and other judges' predictions) and the row shapes all use it, so a
label means the same thing everywhere and an unknown one is refused with the
same reason everywhere.

Numbers are read under two rules, never by a guess:

- **Vocabulary numbers**: 1 / 2 / 0 (A / B / tie), also written ``1.0`` /
  ``2.0`` / ``0.0`` (a float column, as pandas exports it) or as those strings.
  Any other number (``-2``, ``3``, ``1.5``) is refused, and the message names
  ``--label-sign``.
- **Signed strengths** (``-3`` .. ``3``, as HelpSteer2's ``preference_strength``):
  read only under a :data:`LabelSign`, ``"negative-is-a"`` (a negative number
  means the first answer is better, 0 a tie, a positive number the second) or
  ``"negative-is-b"``. The columns of :data:`SIGNED_COLUMNS` carry their
  dataset's own rule; any other column needs the rule said (``--label-sign``).

Arena's one-hot columns (``winner_model_a``, ``winner_model_b``,
``winner_tie``) are read together by :func:`one_hot_label`: exactly one of them
must be set.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

from critic.errors import InputError, Reason
from critic.types import Label

LabelSign = Literal["negative-is-a", "negative-is-b"]
LABEL_SIGNS: tuple[LabelSign, ...] = get_args(LabelSign)

# Columns whose dataset says what a signed strength means: HelpSteer2's preference split (preference_strength) and
# HelpSteer3 (overall_preference), both -3 (response 1 much better) .. 3 (response 2 much better), 0 about the same.
SIGNED_COLUMNS: dict[str, LabelSign] = {"preference_strength": "negative-is-a", "overall_preference": "negative-is-a"}

ONE_HOT_COLUMNS = ("winner_model_a", "winner_model_b", "winner_tie")  # Arena (arena-human-preference-55k)

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


def parse_label(value: Any, field: str = "label", *, sign: LabelSign | None = None) -> Label:
    """The label ``value`` stands for; :class:`InputError` (kind ``UNKNOWN_LABEL``) when it is none of them.

    Accepted (case-insensitive, surrounding spaces ignored): ``A``/``B``/``tie``,
    the numbers 1/2/0 (not booleans; also ``1.0``/``2.0``/``0.0``) and the
    strings "1"/"2"/"0" ("1.0"/"2.0"/"0.0"), ``a``/``b``,
    ``response_a``/``response_b``, ``response1``/``response2``,
    ``model_a``/``model_b``, and ``draw``, ``tie (bothbad)``, ``c`` for a tie.
    ``both``, ``neither`` and ``none`` are not labels (does "none" mean "neither
    is better" or "no label"?): they are refused like any unknown value.

    With a ``sign`` every number is a signed strength (see the module docs):
    ``"negative-is-a"`` reads -2 as A, 0 as a tie and 3 as B.
    """
    number = _number(value)
    if sign is not None and number is not None:
        if sign not in LABEL_SIGNS:
            raise InputError(f"unknown label sign {sign!r}; choose one of {', '.join(LABEL_SIGNS)}")
        if number == 0:
            return "tie"
        return "A" if (number < 0) == (sign == "negative-is-a") else "B"
    key = _key(value)
    label = _SPELLINGS.get(key) if key is not None else None
    if label is None:
        hint = ""
        if number is not None:
            hint = (f"; {_shown(value)} is not 1, 2 or 0: if the column holds signed strengths (-3..3), say what "
                    "the sign means with --label-sign negative-is-a (negative: the first answer is better) or "
                    "negative-is-b")
        raise InputError(f"field '{field}' is {_shown(value)}; expected {ACCEPTED_LABELS}{hint}",
                         kind=Reason.UNKNOWN_LABEL)
    return label


def sign_for(column: str | None, sign: LabelSign | None) -> LabelSign | None:
    """The sign rule a label column is read under: the one given, else its dataset's own (:data:`SIGNED_COLUMNS`)."""
    return sign if sign is not None else SIGNED_COLUMNS.get(column or "")


def negated(value: Any) -> Any:
    """A signed strength for the other answer as the first (-2 -> 2, "3" -> "-3"), in the value's own type."""
    if isinstance(value, str):
        number = _number(value)
        if number is None:
            return value
        flipped = -number
        return str(int(flipped)) if float(flipped).is_integer() and "." not in value else str(float(flipped))
    return -value if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def flipped_label(value: Any, sign: LabelSign | None = None) -> Any:
    """The label ``value`` written for the other answer as the first: a signed strength negated under a
    ``sign``, else :func:`other_spelling`."""
    if sign is not None and _number(value) is not None:
        return negated(value)
    return other_spelling(value)


def one_hot_label(row: Mapping[str, Any], names: Sequence[str] = ONE_HOT_COLUMNS) -> Label:
    """Arena's one-hot label: A, B or tie by which of the three columns is 1 (exactly one must be).

    Each column may hold 1/0, "1"/"0", 1.0/0.0 or true/false. None or several
    set, or a value that is not one of those, is an :class:`InputError` (kind
    ``UNKNOWN_LABEL``).
    """
    flags = []
    for name in names:
        if name not in row:
            raise InputError(f"the one-hot label needs all of {', '.join(names)}; missing field '{name}'",
                             kind=Reason.MISSING_FIELD)
        flags.append(_flag(row[name], name))
    shown = ", ".join(f"{name}={row[name]!r}" for name in names)
    if sum(flags) != 1:
        what = "none of them is set" if not any(flags) else "several are set"
        raise InputError(f"the one-hot label columns say nothing clear ({shown}): {what}, and exactly one must be",
                         kind=Reason.UNKNOWN_LABEL)
    labels: tuple[Label, ...] = ("A", "B", "tie")
    return labels[flags.index(True)]


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    number = _number(value)
    if number not in (0, 1):
        raise InputError(f"field '{name}' is {_shown(value)}; a one-hot label column holds 1 or 0",
                         kind=Reason.UNKNOWN_LABEL)
    return number == 1


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
    if isinstance(value, float):
        return float(other)
    if _number(value) is not None:  # "1.0" -> "2.0", "1" -> "2"
        return str(float(other)) if "." in value else other
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
    number = _number(value)
    if number is not None:
        return str(int(number)) if number in (0, 1, 2) else None
    if isinstance(value, str):
        return value.strip().lower()
    return None


def _number(value: Any) -> float | None:
    """A label written as a number (an int, a float, or a string such as "2" or "-1.0"); else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) if abs(value) < 2**53 else None  # a bigger integer is no label (and no float)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) and value.strip().lower() not in {"nan", "inf", "infinity"} else None
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
