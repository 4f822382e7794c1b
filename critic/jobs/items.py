"""Rows as work items: read, prepared, judged and decided (kept, dropped or rejected with a reason).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from critic.errors import CriticError
from critic.io.readers import RowError
from critic.io.rows import Candidate, Columns, prepare_row
from critic.jobs.policy import _LABEL_NAMES, SCORE_COLUMNS, Policy, Verdict

logger = logging.getLogger("critic")


DEFAULT_COLUMNS = Columns()
DEFAULT_CHUNK_SIZE = 64


@dataclass(frozen=True)
class Item:
    """One input row on its way through a job: a candidate for the judge, or the reason it was rejected."""

    number: int
    candidate: Candidate | None
    reason: str | None = None
    raw: Any = None


def prepare_item(number: int, row: Any, columns: Columns) -> Item:
    """An :class:`Item` for a row read from an input (a :class:`RowError` or an unusable row is rejected)."""
    try:
        return Item(number, prepare_row(row, columns))
    except CriticError as error:
        raw = error.raw if isinstance(error, RowError) else row
        return Item(number, None, _one_line(str(error)), raw)


def judge_items(judge: Any, items: Sequence[Item]) -> list[Verdict | str | None]:
    """The judge's verdict for each item (``None`` for rejected items, a reason string where the judge failed).

    A pair the judge cannot judge (too long, unreadable verdict) gets its error
    in place from ``compare_each``. When ``compare_each`` fails as a whole with a
    :class:`CriticError`, the pairs are judged one by one so that only the
    guilty ones are rejected.
    """
    positions = [index for index, item in enumerate(items) if item.candidate is not None]
    pairs = [items[index].candidate.pair for index in positions]  # type: ignore[union-attr]
    results: list[Verdict | str | None] = [None] * len(items)
    if not pairs:
        return results
    try:
        judged = list(judge.compare_each(pairs))
        if len(judged) != len(pairs):
            raise CriticError(f"the judge returned {len(judged)} results for {len(pairs)} pairs")
    except CriticError as error:
        logger.warning("judging a chunk of %d pairs failed (%s); judging them one by one", len(pairs), error)
        judged = []
        for pair in pairs:
            try:
                judged.extend(judge.compare_each([pair]))
            except CriticError as single:
                judged.append(single)
    for index, result in zip(positions, judged, strict=True):
        if isinstance(result, BaseException):
            results[index] = "judge: " + _one_line(str(result) or type(result).__name__)
        else:
            results[index] = Verdict.from_preference(result)
    return results


@dataclass(frozen=True)
class Outcome:
    """Where a row goes (``kept``, ``dropped``, ``rejected``) and the record written there."""

    output: str
    record: dict[str, Any]
    relabelled: bool = False
    judged: bool = False
    consistent: bool = False


def decide(item: Item, result: Verdict | str | None, policy: Policy) -> Outcome:
    """Apply ``policy`` to one judged item."""
    if item.candidate is None or not isinstance(result, Verdict):
        reason = item.reason if item.candidate is None else str(result)
        raw = item.raw if item.candidate is None else item.candidate.row
        return Outcome("rejected", {"row": item.number, "reason": reason, "input": raw}, judged=isinstance(result, str))
    action = policy.decide(result)
    row = item.candidate.row
    if action == "relabel":
        row = item.candidate.relabelled()
        result = result.swapped()
    record = dict(row)
    record["critic_label"] = _LABEL_NAMES.get(result.label, result.label)
    record["critic_p_chosen"] = result.p_chosen
    record["critic_consistent"] = result.consistent
    if result.margin is not None:
        record.update(zip(SCORE_COLUMNS, (result.score_chosen, result.score_rejected, result.margin), strict=True))
    if policy.relabel:
        record["critic_relabelled"] = action == "relabel"
    return Outcome("dropped" if action == "drop" else "kept", record, relabelled=action == "relabel",
                   judged=True, consistent=bool(result.consistent))


def iter_items(rows: Iterable[tuple[int, Any]], columns: Columns) -> Iterator[Item]:
    for number, row in rows:
        yield prepare_item(number, row, columns)


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def filter_rows(
    rows: Iterable[tuple[int, Any]] | Iterable[Any],
    judge: Any,
    *,
    columns: Columns = DEFAULT_COLUMNS,
    policy: Policy = Policy(),
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Iterator[Outcome]:
    """Stream :class:`Outcome` objects for rows in memory (dicts, or ``(number, row)`` tuples), in order.

    No files, no checkpoints: for pipelines that handle their own I/O. Plain
    dicts are numbered from 1.
    """
    policy = policy.for_judge(judge.describe())
    numbered = (row if isinstance(row, tuple) and len(row) == 2 and isinstance(row[0], int) else (index, row)
                for index, row in enumerate(rows, start=1))
    for chunk in chunked(iter_items(numbered, columns), chunk_size):
        for item, result in zip(chunk, judge_items(judge, chunk), strict=True):
            yield decide(item, result, policy)


def reason_kind(reason: str) -> str:
    """A short class of a rejection reason, for the summary (``"missing field 'prompt'"``, ``"not valid JSON"``)."""
    if reason.startswith("judge: "):
        return "judge: " + reason_kind(reason[len("judge: "):]).split(": ")[0]
    kind = reason.split(" (")[0].split("; ")[0]
    kind = re.sub(r"^(line|row) \d+ (is )?", "", kind)
    # "the judge prompt is 20259 tokens" and "... is 9000 tokens" are one kind; quoted names keep their digits
    parts = kind.split("'")
    kind = "'".join(re.sub(r"\b\d{2,}\b", "N", part) if index % 2 == 0 else part for index, part in enumerate(parts))
    return kind[:80]

def _one_line(text: str) -> str:
    return " ".join(text.split())
