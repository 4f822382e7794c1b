"""The seams between a judge and a model: ``Backend.run`` (a generative judge) and ``RewardScorer.score``.

The judge turns pairs into :class:`VerdictRequest` objects (already rendered
into chat messages) and reads :class:`BackendOutput` objects back; a reward
judge hands conversations to a :class:`RewardScorer` and reads one score (or
error) each. A backend never sees position swapping or merging, and the judge
never looks at which backend it holds.

Each seam has one required method. The async twins (``arun``, ``ascore``) and
``close()`` are optional: :class:`BackendBase` and :class:`ScorerBase` give the
defaults (the sync call in a worker thread; nothing to close), and
:func:`run_async`, :func:`score_async` and :func:`close_runner` give the same
defaults for a backend written against the one-method protocol alone, so
every backend works with every judge method.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from critic.errors import CriticError
from critic.options import DEFAULT_MAX_NEW_TOKENS
from critic.templates import JudgeTemplate, Message
from critic.types import Mode, Pair

if TYPE_CHECKING:
    from typing_extensions import Self

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
    (``"transformers"``, ``"fake"``), which judges record in their description,
    and have the async twin and ``close`` of :class:`AsyncBackend`.
    """

    def run(self, requests: Sequence[VerdictRequest]) -> list[BackendOutput]: ...


@runtime_checkable
class AsyncBackend(Backend, Protocol):
    """A backend with the async twin of ``run`` and a ``close`` for what it holds (engines, HTTP clients)."""

    async def arun(self, requests: Sequence[VerdictRequest]) -> list[BackendOutput]: ...

    def close(self) -> None: ...


@runtime_checkable
class RewardScorer(Protocol):
    """Anything that scores conversations, in order, one result each.

    A conversation that cannot be scored (longer than the model's context,
    say) gets its error in place of its score, so one row never costs a batch.
    """

    def score(self, conversations: Sequence[Sequence[Message]]) -> list[float | CriticError]: ...


@runtime_checkable
class AsyncRewardScorer(RewardScorer, Protocol):
    """A scorer with the async twin of ``score`` and a ``close``."""

    async def ascore(self, conversations: Sequence[Sequence[Message]]) -> list[float | CriticError]: ...

    def close(self) -> None: ...


class Closing:
    """``close()`` doing nothing, and the context manager that calls it: what a runner holds is released."""

    def close(self) -> None:
        """Release what the runner holds; nothing by default."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class BackendBase(Closing):
    """The defaults of :class:`AsyncBackend` for a backend that writes ``run`` only.

    ``arun`` runs ``run`` in a worker thread (the event loop stays free; two calls
    at once run at once, so the backend's memory pays for both); ``close`` does
    nothing; a backend is its own context manager.
    """

    def run(self, requests: Sequence[VerdictRequest]) -> list[BackendOutput]:
        raise NotImplementedError

    async def arun(self, requests: Sequence[VerdictRequest]) -> list[BackendOutput]:
        return await asyncio.to_thread(self.run, requests)


class ScorerBase(Closing):
    """The defaults of :class:`AsyncRewardScorer` for a scorer that writes ``score`` only (as :class:`BackendBase`)."""

    def score(self, conversations: Sequence[Sequence[Message]]) -> list[float | CriticError]:
        raise NotImplementedError

    async def ascore(self, conversations: Sequence[Sequence[Message]]) -> list[float | CriticError]:
        return await asyncio.to_thread(self.score, conversations)


async def run_async(backend: Backend, requests: Sequence[VerdictRequest]) -> list[BackendOutput]:
    """``backend.arun(requests)``; ``backend.run`` in a worker thread for a backend without the twin."""
    twin = getattr(backend, "arun", None)
    if twin is None:
        return await asyncio.to_thread(backend.run, requests)
    outputs: list[BackendOutput] = await twin(requests)
    return outputs


async def score_async(scorer: RewardScorer, conversations: Sequence[Sequence[Message]]) -> list[float | CriticError]:
    """``scorer.ascore(conversations)``; ``scorer.score`` in a worker thread for a scorer without the twin."""
    twin = getattr(scorer, "ascore", None)
    if twin is None:
        return await asyncio.to_thread(scorer.score, conversations)
    scores: list[float | CriticError] = await twin(conversations)
    return scores


def close_runner(runner: object) -> None:
    """``runner.close()`` when the backend or scorer has one (a backend written with ``run`` alone has none)."""
    close = getattr(runner, "close", None)
    if callable(close):
        close()


def backend_kind(runner: object) -> str:
    """What a backend or scorer says it runs on (its ``kind``), ``"custom"`` when it does not say."""
    kind = getattr(runner, "kind", None)
    return kind if isinstance(kind, str) and kind else "custom"
