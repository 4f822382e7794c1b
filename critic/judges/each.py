"""The one path that judges a list of items and puts each failure back in its place, and the one chunker.

Every caller that judges many things (``critic judge``/``score``/``filter``/``eval``,
``critic serve``, ``RemoteJudge``, the TRL and verl hooks, ``critic arena``) reads its
items first (a row that cannot be read becomes its :class:`~critic.errors.CriticError`),
then hands only the readable ones to the judge in one call, and gets back one result
per item, in order, with every error where its item was. That step is written here
once, for plain functions and for coroutines:

    >>> from critic.errors import InputError
    >>> from critic.judges.each import judged_in_place
    >>> judged_in_place(["a", InputError("bad row"), "c"], lambda items: [s.upper() for s in items])
    ['A', InputError('bad row'), 'C']

``isolate_failures=True`` is for long jobs: when the call fails as a whole (any
exception but an interrupt), the items are judged one by one, so only the guilty ones
fail and nothing of the chunk is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, TypeVar

from critic.errors import CriticError, ModelError, Reason

logger = logging.getLogger("critic")

Item = TypeVar("Item")
Result = TypeVar("Result")
Value = TypeVar("Value")

Run = Callable[[list[Item]], Sequence[Result | CriticError]]
AsyncRun = Callable[[list[Item]], Awaitable[Sequence[Result | CriticError]]]


def chunked(items: Iterable[Value], size: int) -> Iterator[list[Value]]:
    """``items`` in lists of at most ``size`` (the last may be shorter); lazy, so a stream stays a stream."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"a chunk size must be a whole number of at least 1, got {size!r}")
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def read_each(values: Iterable[Any], read: Callable[[Any], Item]) -> list[Item | CriticError]:
    """``read(value)`` for every value; a :class:`CriticError` raised (or given as the value) stays in its place."""
    items: list[Item | CriticError] = []
    for value in values:
        if isinstance(value, CriticError):
            items.append(value)
            continue
        try:
            items.append(read(value))
        except CriticError as error:
            items.append(error)
    return items


def judged_in_place(
    items: Sequence[Item | CriticError],
    run: Run[Item, Result],
    *,
    isolate_failures: bool = False,
) -> list[Result | CriticError]:
    """``run`` once over the items that are not errors; one result per item, each error where its item was.

    ``run`` must return one result (or :class:`CriticError`) per item it gets, in
    order; anything else is a :class:`ModelError`. With ``isolate_failures``, a call
    that raises is retried item by item (see the module docs).
    """
    todo = [index for index, item in enumerate(items) if not isinstance(item, CriticError)]
    valid: list[Item] = [items[index] for index in todo]  # type: ignore[misc]  # the errors are left out
    if not valid:
        return list(items)  # type: ignore[arg-type]  # every item is an error
    try:
        results = _checked(run(valid), len(valid))
    except Exception as error:  # noqa: BLE001 - with isolate_failures, the call is retried item by item
        if not isolate_failures:
            raise
        _log_whole_failure(error, len(valid))
        results = [_alone(run, item) for item in valid]
    return _placed(items, todo, results)


async def ajudged_in_place(
    items: Sequence[Item | CriticError],
    arun: AsyncRun[Item, Result],
    *,
    isolate_failures: bool = False,
) -> list[Result | CriticError]:
    """:func:`judged_in_place` for a coroutine ``arun``."""
    todo = [index for index, item in enumerate(items) if not isinstance(item, CriticError)]
    valid: list[Item] = [items[index] for index in todo]  # type: ignore[misc]
    if not valid:
        return list(items)  # type: ignore[arg-type]
    try:
        results = _checked(await arun(valid), len(valid))
    except Exception as error:  # noqa: BLE001
        if not isolate_failures:
            raise
        _log_whole_failure(error, len(valid))
        results = [await _aalone(arun, item) for item in valid]
    return _placed(items, todo, results)


def grouped(run: Run[Item, Result]) -> Callable[[list[Sequence[Item]]], list[list[Result | CriticError]]]:
    """``run`` for items that are groups (an input row holding several pairs): one call over all their members,
    the results handed back per group, each member's error in its place.

    Pass it to :func:`judged_in_place` so that rows of one pair and rows of
    several go through the same path: ``judged_in_place(groups, grouped(judge.compare_each))``.
    """

    def run_groups(groups: list[Sequence[Item]]) -> list[list[Result | CriticError]]:
        members = [member for group in groups for member in group]
        results = _checked(run(members), len(members)) if members else []
        regrouped, start = [], 0
        for group in groups:
            regrouped.append(results[start : start + len(group)])
            start += len(group)
        return regrouped

    return run_groups


def as_critic_error(error: BaseException) -> CriticError:
    """``error`` as a :class:`CriticError`: itself, or a :class:`ModelError` saying what unexpected thing happened.

    Text a tokenizer could not take (a ``UnicodeError``) keeps that kind; anything else
    unexpected is a model failure. The original is kept as ``__cause__``.
    """
    if isinstance(error, CriticError):
        return error
    kind = Reason.BAD_TEXT if isinstance(error, UnicodeError) else Reason.MODEL_FAILURE
    wrapped = ModelError(f"unexpected {type(error).__name__}: {error}", kind=kind)
    wrapped.__cause__ = error
    return wrapped


def _checked(results: Sequence[Result | CriticError], expected: int) -> list[Result | CriticError]:
    results = list(results)
    if len(results) != expected:
        raise ModelError(f"the judge returned {len(results)} results for {expected} items")
    return results


def _placed(
    items: Sequence[Item | CriticError], todo: Sequence[int], results: Sequence[Result | CriticError]
) -> list[Result | CriticError]:
    placed: list[Any] = list(items)
    for index, result in zip(todo, results, strict=True):
        placed[index] = result
    return placed


def _alone(run: Run[Item, Result], item: Item) -> Result | CriticError:
    try:
        return _checked(run([item]), 1)[0]
    except Exception as error:  # noqa: BLE001 - a bug or a crash on this item: it fails alone, with its reason
        return _failed_alone(error)


async def _aalone(arun: AsyncRun[Item, Result], item: Item) -> Result | CriticError:
    try:
        return _checked(await arun([item]), 1)[0]
    except Exception as error:  # noqa: BLE001
        return _failed_alone(error)


def _failed_alone(error: Exception) -> CriticError:
    if not isinstance(error, CriticError):
        logger.warning("the judge failed on one item: %s: %s", type(error).__name__, _one_line(str(error)))
        logger.debug("the judge's traceback", exc_info=error)
    return as_critic_error(error)


def _log_whole_failure(error: Exception, count: int) -> None:
    logger.warning("judging a chunk of %d items failed (%s); judging them one by one", count,
                   _one_line(str(error) or type(error).__name__))


def _one_line(text: str) -> str:
    return " ".join(text.split()).encode("utf-8", "backslashreplace").decode("utf-8")
