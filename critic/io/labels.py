"""The one label vocabulary: what A, B and tie may be written as, in every input.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from critic.types import Label

if TYPE_CHECKING:
    pass

logger = logging.getLogger("critic")


# Each loader returns a label or None; None = the value says nothing usable ("garbage").
_A = {"1", "a", "response_a", "model_a", "response1"}


_B = {"2", "b", "response_b", "model_b", "response2"}


_TIE = {"0", "tie", "c", "tie (bothbad)", "both", "neither", "draw"}


def normalize_label(value: Any) -> Label | None:
    """A label from a loose value: 1/"A"/"response_a" -> A, 2/"B" -> B, 0/"Tie"/"C" -> tie, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return None
    key = value.strip().lower()
    return "A" if key in _A else "B" if key in _B else "tie" if key in _TIE else None


def majority_label(votes: Sequence[int]) -> Label:
    """PandaLM annotators' majority (1 -> A, 2 -> B, 0 -> tie); a three-way split is a tie."""
    top, count = Counter(votes).most_common(1)[0]
    if count * 2 <= len(votes):
        return "tie"
    return normalize_label(top) or "tie"
