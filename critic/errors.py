"""One exception hierarchy for everything critic raises on purpose.

Every message says what was wrong and what to do about it.
"""

from __future__ import annotations

from enum import Enum


class Reason(str, Enum):
    """What kind of problem an error reports: set where the error is raised, counted in job summaries."""

    UNREADABLE_ROW = "unreadable row"  # invalid JSON or UTF-8, a CSV record of the wrong width
    NOT_AN_OBJECT = "row is not an object"
    UNKNOWN_SHAPE = "no known row shape"
    MISSING_FIELD = "missing field"
    WRONG_TYPE = "wrong field type"
    NO_PREFERENCE = "no preference (tie)"
    UNKNOWN_LABEL = "unknown label"
    BAD_MESSAGES = "malformed conversation"
    BAD_TEXT = "text the tokenizer cannot take"
    TOO_LONG = "too long for the model"
    UNREADABLE_VERDICT = "unreadable verdict"
    MODEL_FAILURE = "model failure"
    BAD_ARGUMENT = "bad argument"
    OTHER = "other"


class CriticError(Exception):
    """Base class of every error critic raises deliberately.

    ``pair_index`` is set when the error belongs to one pair of a batch; ``kind``
    says what sort of problem it is (a :class:`Reason`), set where it is raised.
    """

    pair_index: int | None = None
    kind: Reason = Reason.OTHER

    def __init__(self, *args: object, kind: Reason | None = None) -> None:
        super().__init__(*args)
        if kind is not None:
            self.kind = kind


class InputError(CriticError, ValueError):
    """A pair, a file row or an argument is not usable as given."""

    kind = Reason.BAD_ARGUMENT


class TemplateError(CriticError):
    """A judge prompt template is missing, malformed or fails to render."""


class ModelError(CriticError):
    """A model or tokenizer could not be loaded or does not fit the judge."""

    kind = Reason.MODEL_FAILURE


class VerdictError(CriticError):
    """A model's output could not be read as a verdict.

    ``text`` holds the offending output and ``reason`` a short cause
    (``"no verdict"``, ``"ambiguous"``, ``"tie not allowed"``).
    """

    kind = Reason.UNREADABLE_VERDICT

    def __init__(self, reason: str, text: str, detail: str = "") -> None:
        self.reason = reason
        self.text = text
        shown = shorten(text)
        message = f"{reason}: {detail} in output {shown!r}" if detail else f"{reason} in output {shown!r}"
        super().__init__(message)


class MissingDependencyError(CriticError, ImportError):
    """An optional dependency is needed for the requested feature."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the optional package '{package}'. "
            f"Install it with: pip install 'critic[{extra}]'"
        )


def shorten(text: str, limit: int = 200) -> str:
    """Keep the start and the end of a long text, where verdicts usually sit."""
    if len(text) <= limit:
        return text
    half = max((limit - 5) // 2, 1)  # limits under 7 cannot hold both ends; keep one character of each
    return f"{text[:half]} ... {text[-half:]}"
