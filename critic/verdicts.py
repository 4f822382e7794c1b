"""Reading a verdict token out of a judge model's generated text.

A verdict token is ``[[X]]`` where X is A, B or (for ties) C, in any case,
with optional whitespace inside the brackets: ``[[ b ]]``. Nothing else is a
verdict: ``[A]``, ``[[AB]]``, ``[[A]``, a bare letter. Text that holds no
readable verdict raises :class:`VerdictError`; it is never guessed.
"""

from __future__ import annotations

import re
from typing import Literal

from critic.errors import VerdictError

Letter = Literal["A", "B", "C"]

# Lookarounds keep "[[[A]]]" or "[[A]]]" from counting: a verdict token stands alone.
VERDICT_PATTERN = re.compile(r"(?<!\[)\[\[[ \t]*([ABCabc])[ \t]*\]\](?!\])")


def find_verdicts(text: str) -> list[Letter]:
    """Every verdict token in ``text``, in order, as upper-case letters."""
    return [match.upper() for match in VERDICT_PATTERN.findall(text)]  # type: ignore[misc]


def parse_verdict(text: str, *, allow_tie: bool = False, strict: bool = False) -> Letter:
    """Return the verdict letter ``"A"``, ``"B"`` or (with ``allow_tie``) ``"C"``.

    Lenient (default): the last verdict token wins, because explanations often
    quote the format before the real verdict. Strict: every verdict token must
    name the same letter.

    Raises:
        VerdictError: no verdict token, conflicting tokens in strict mode, or a
            tie (``[[C]]``) where ties are not allowed.
    """
    letters = find_verdicts(text)
    if not letters:
        raise VerdictError(
            "no verdict",
            text,
            "expected a verdict token such as [[A]] or [[B]]",
        )
    if strict and len(set(letters)) > 1:
        named = ", ".join(f"[[{letter}]]" for letter in dict.fromkeys(letters))
        raise VerdictError("ambiguous", text, f"strict mode found conflicting verdicts {named}")
    verdict = letters[-1]
    if verdict == "C" and not allow_tie:
        raise VerdictError(
            "tie not allowed",
            text,
            "[[C]] (a tie) was given but this template allows only [[A]] or [[B]]",
        )
    return verdict
