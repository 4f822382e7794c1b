"""What every judge shares: compare / compare_batch / compare_each, their async twins, close, over its own step.

A judge of any kind (a generative critic, a reward model) subclasses
:class:`BaseJudge` and writes only ``_judge_pairs`` (checked pairs in, one
preference or error each out) and ``describe``; a judge whose model can be
awaited also writes ``_ajudge_pairs`` (the default runs ``_judge_pairs`` in a
worker thread), and one that holds a model writes ``close``. Coercing dicts to
pairs, raising or keeping errors in place, and naming the pair an error belongs
to happen here, once, for the sync and the async methods alike. A judge is a
context manager: ``with Judge.from_pretrained("demo") as judge:`` closes its
backend (a vLLM engine, an HTTP client) at the end.

A judge whose step makes several calls to its model (a generative judge forcing
the verdicts an explanation left out) writes the step once as a generator that
yields each batch it needs answered and receives the answers; :func:`drive`
and :func:`adrive` answer it with the sync and the async call.
"""

from __future__ import annotations

import asyncio
import sys
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from critic.errors import CriticError, InputError, ModelError
from critic.judges.description import JudgeDescription
from critic.judges.each import ajudged_in_place, judged_in_place, read_each
from critic.types import Pair, Preference

if TYPE_CHECKING:
    from typing_extensions import Self

Batch = TypeVar("Batch")
Answer = TypeVar("Answer")
Outcome = TypeVar("Outcome")
# A judging step written once: it yields the batches it needs answered and returns its outcome.
Steps = Generator[Batch, Answer, Outcome]

PairLike = Pair | Mapping[str, Any]


@runtime_checkable
class PairwiseJudge(Protocol):
    """What jobs (cleaning, evaluation) need from a judge of either kind."""

    def compare_each(self, pairs: Iterable[PairLike]) -> list[Preference | CriticError]: ...

    def describe(self) -> JudgeDescription: ...


class BaseJudge(ABC):
    """compare, compare_batch and compare_each for a judge that implements ``_judge_pairs``."""

    @abstractmethod
    def describe(self) -> JudgeDescription:
        """What this judge is, for reports, summaries and checkpoints."""

    @abstractmethod
    def _judge_pairs(self, pairs: Sequence[Pair]) -> list[Preference | CriticError]:
        """One result per pair, in order: a preference, or the error that pair met."""

    def compare(self, prompt: str, response_a: str, response_b: str, *, reference: str | None = None) -> Preference:
        """Judge one pair: is ``response_a`` or ``response_b`` the better answer to ``prompt``?"""
        return self.compare_batch([Pair(prompt, response_a, response_b, reference)])[0]

    def compare_batch(self, pairs: Iterable[PairLike]) -> list[Preference]:
        """Judge many pairs at once (batched on the model); results keep the input order.

        Every pair is checked before anything reaches the model; then the first
        error met is raised (it names the pair's index).
        """
        checked = [as_pair(pair, index) for index, pair in enumerate(pairs)]
        return _raised_first(self._judged(checked))

    def compare_each(self, pairs: Iterable[PairLike]) -> list[Preference | CriticError]:
        """Like :meth:`compare_batch`, but a pair that fails yields its error in place.

        For long jobs: a malformed pair or an unreadable verdict costs one pair, not the batch.
        """
        return _indexed(judged_in_place(_read_pairs(pairs), self._judged))

    async def acompare(
        self, prompt: str, response_a: str, response_b: str, *, reference: str | None = None
    ) -> Preference:
        """:meth:`compare` as a coroutine."""
        return (await self.acompare_batch([Pair(prompt, response_a, response_b, reference)]))[0]

    async def acompare_batch(self, pairs: Iterable[PairLike]) -> list[Preference]:
        """:meth:`compare_batch` as a coroutine."""
        checked = [as_pair(pair, index) for index, pair in enumerate(pairs)]
        return _raised_first(await self._ajudged(checked))

    async def acompare_each(self, pairs: Iterable[PairLike]) -> list[Preference | CriticError]:
        """:meth:`compare_each` as a coroutine: the event loop stays free while the model judges."""
        return _indexed(await ajudged_in_place(_read_pairs(pairs), self._ajudged))

    def close(self) -> None:  # noqa: B027 - optional: a judge that holds nothing has nothing to close
        """Release what the judge holds (its backend's engine or HTTP client); nothing by default."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def _ajudge_pairs(self, pairs: Sequence[Pair]) -> list[Preference | CriticError]:
        """:meth:`_judge_pairs` as a coroutine; by default the sync step in a worker thread."""
        return await asyncio.to_thread(self._judge_pairs, pairs)

    def _judged(self, pairs: Sequence[Pair]) -> list[Preference | CriticError]:
        return _checked_count(self._judge_pairs(pairs), pairs) if pairs else []

    async def _ajudged(self, pairs: Sequence[Pair]) -> list[Preference | CriticError]:
        return _checked_count(await self._ajudge_pairs(pairs), pairs) if pairs else []


def drive(steps: Steps[Batch, Answer, Outcome], call: Callable[[Batch], Answer]) -> Outcome:
    """Answer each batch ``steps`` yields with ``call(batch)``; what ``steps`` returns."""
    try:
        batch = next(steps)
        while True:
            batch = steps.send(call(batch))
    except StopIteration as done:
        outcome: Outcome = done.value
        return outcome


async def adrive(steps: Steps[Batch, Answer, Outcome], call: Callable[[Batch], Awaitable[Answer]]) -> Outcome:
    """:func:`drive` with a coroutine ``call``."""
    try:
        batch = next(steps)
        while True:
            batch = steps.send(await call(batch))
    except StopIteration as done:
        outcome: Outcome = done.value
        return outcome


def _read_pairs(pairs: Iterable[PairLike]) -> list[Pair | CriticError]:
    return read_each(enumerate(pairs), lambda numbered: as_pair(numbered[1], numbered[0]))


def _indexed(results: Sequence[Preference | CriticError]) -> list[Preference | CriticError]:
    return [with_pair_index(result, index) if isinstance(result, CriticError) else result
            for index, result in enumerate(results)]


def _raised_first(results: Sequence[Preference | CriticError]) -> list[Preference]:
    preferences: list[Preference] = []
    for index, result in enumerate(results):
        if isinstance(result, CriticError):
            raise with_pair_index(result, index)
        preferences.append(result)
    return preferences


def _checked_count(results: list[Preference | CriticError], pairs: Sequence[Pair]) -> list[Preference | CriticError]:
    if len(results) != len(pairs):
        raise ModelError(f"the judge produced {len(results)} results for {len(pairs)} pairs")
    return results


def as_pair(pair: PairLike, index: int) -> Pair:
    """``pair`` as a :class:`Pair`; a mapping that is not one raises InputError led by ``pair {index}:``."""
    if isinstance(pair, Pair):
        return pair
    try:
        return Pair.from_mapping(pair)
    except InputError as error:
        raise with_pair_index(InputError(f"pair {index}: {error}", kind=error.kind), index) from error


def with_pair_index(error: CriticError, index: int) -> CriticError:
    """``error``, marked as belonging to pair ``index`` of the batch."""
    if error.pair_index == index:
        return error
    error.pair_index = index
    if sys.version_info >= (3, 11):  # notes show in tracebacks without changing the message
        error.add_note(f"while judging pair {index}")
    return error


def prefixed(error: CriticError, prefix: str) -> CriticError:
    """The same kind of error, its message led by where it happened."""
    try:
        renamed = type(error)(f"{prefix}: {error}")
    except TypeError:  # an error class with another constructor
        renamed = CriticError(f"{prefix}: {error}")
    renamed.kind = error.kind
    renamed.__cause__ = error
    return renamed
