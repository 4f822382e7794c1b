"""The seam between the judge and a model: one method, ``run``.

The judge turns pairs into :class:`VerdictRequest` objects (already rendered
into chat messages) and reads :class:`BackendOutput` objects back. A backend
never sees position swapping or merging, and the judge never looks at which
backend it holds.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from critic.errors import CriticError
from critic.options import DEFAULT_MAX_NEW_TOKENS
from critic.templates import JudgeTemplate, Message
from critic.types import Mode, Pair

# Every built-in template opens its verdict with this; score and constrained
# modes prefill it so the model only has to choose the letter.
VERDICT_OPENING = "[["


@dataclass(frozen=True)
class VerdictRequest:
    """One prompt to judge, in one presentation order.

    ``pair`` is the pair as shown to the model (already swapped for the second
    order) and ``template`` renders it; ``messages`` is the rendered judge
    prompt. A backend that must shorten a pair to fit its context builds
    ``request.with_pair(shorter)`` and never needs to know the template.
    ``prefill`` is assistant text that precedes the verdict (an explanation
    the model already wrote).
    """

    pair: Pair
    template: JudgeTemplate
    mode: Mode
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    prefill: str = ""

    @functools.cached_property
    def messages(self) -> tuple[Message, ...]:
        return tuple(self.template.render(self.pair))

    @property
    def verdicts(self) -> tuple[str, ...]:
        return self.template.verdicts

    def with_pair(self, pair: Pair) -> VerdictRequest:
        return dataclasses.replace(self, pair=pair)


@dataclass(frozen=True)
class BackendOutput:
    """What the model produced for one request.

    ``text`` is what the assistant wrote after ``prefill``: the free generation
    in ``generate`` mode, the verdict token (``"[[A]]"``) in ``constrained``
    mode, ``None`` in ``score`` mode. ``letter_probs`` (score mode) maps each
    verdict letter to its probability as the next token after ``[[``, over the
    full vocabulary, so the values need not sum to one. ``error`` reports a
    request the backend could not judge (a prompt longer than the model's
    context, say): the judge gives that pair the error and goes on.
    """

    text: str | None = None
    letter_probs: Mapping[str, float] | None = None
    error: CriticError | None = None


@runtime_checkable
class Backend(Protocol):
    """Anything that can answer verdict requests, in order, one output each.

    A backend may also name what it runs on in a ``kind`` string
    (``"transformers"``, ``"fake"``), which judges record in their description.
    """

    def run(self, requests: Sequence[VerdictRequest]) -> list[BackendOutput]: ...


def backend_kind(runner: object) -> str:
    """What a backend or scorer says it runs on (its ``kind``), ``"custom"`` when it does not say."""
    kind = getattr(runner, "kind", None)
    return kind if isinstance(kind, str) and kind else "custom"
