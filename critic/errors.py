"""One exception hierarchy for everything critic raises on purpose.

Every message says what was wrong and what to do about it.
"""

from __future__ import annotations


class CriticError(Exception):
    """Base class of every error critic raises deliberately.

    ``pair_index`` is set when the error belongs to one pair of a batch.
    """

    pair_index: int | None = None


class InputError(CriticError, ValueError):
    """A pair, a file row or an argument is not usable as given."""


class TemplateError(CriticError):
    """A judge prompt template is missing, malformed or fails to render."""


class ModelError(CriticError):
    """A model or tokenizer could not be loaded or does not fit the judge."""


class VerdictError(CriticError):
    """A model's output could not be read as a verdict.

    ``text`` holds the offending output and ``reason`` a short cause
    (``"no verdict"``, ``"ambiguous"``, ``"tie not allowed"``).
    """

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
