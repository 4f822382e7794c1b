"""What every judge shares: compare / compare_batch / compare_each over its own judging step.

A judge of any kind (a generative critic, a reward model) subclasses
:class:`BaseJudge` and writes only ``_judge_pairs`` (checked pairs in, one
preference or error each out) and ``describe``. Coercing dicts to pairs,
raising or keeping errors in place, and naming the pair an error belongs to
happen here, once.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from critic.errors import CriticError, InputError, ModelError
from critic.judges.description import JudgeDescription
from critic.judges.each import judged_in_place, read_each
from critic.types import Pair, Preference

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
        preferences: list[Preference] = []
        for index, result in enumerate(self._judged(checked)):
            if isinstance(result, CriticError):
                raise with_pair_index(result, index)
            preferences.append(result)
        return preferences

    def compare_each(self, pairs: Iterable[PairLike]) -> list[Preference | CriticError]:
        """Like :meth:`compare_batch`, but a pair that fails yields its error in place.

        For long jobs: a malformed pair or an unreadable verdict costs one pair, not the batch.
        """
        checked = read_each(enumerate(pairs), lambda numbered: as_pair(numbered[1], numbered[0]))
        results = judged_in_place(checked, self._judged)
        return [with_pair_index(result, index) if isinstance(result, CriticError) else result
                for index, result in enumerate(results)]

    def _judged(self, pairs: Sequence[Pair]) -> list[Preference | CriticError]:
        if not pairs:
            return []
        results = self._judge_pairs(pairs)
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
