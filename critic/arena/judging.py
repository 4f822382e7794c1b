"""Judging an arena's comparisons: the ones the store lacks, chunk by chunk, through the one judging path.

Each chunk is read into pairs (a comparison that cannot become a pair keeps its error in
place), judged by the judge's ``compare_each`` through
:func:`critic.judges.each.judged_in_place` (a whole-chunk failure is retried pair by pair,
so only the guilty pair fails), and appended to the store before the next chunk starts.
The chunks are cut from the run's whole list of distinct judgments, so a rerun after a
crash judges the same chunks as an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from critic.arena.pairing import Comparison
from critic.arena.store import RESULT_FIELDS, JudgmentStore, judgment_key
from critic.errors import CriticError
from critic.judges.each import chunked, judged_in_place, read_each
from critic.types import Pair, Preference

DEFAULT_CHUNK_SIZE = 32


@dataclass(frozen=True)
class Keyed:
    """A comparison and the key of its judgment."""

    comparison: Comparison
    key: str


def keyed(comparisons: Sequence[Comparison], identity: dict[str, Any]) -> list[Keyed]:
    return [Keyed(comparison, judgment_key(identity, shown(comparison))) for comparison in comparisons]


def shown(comparison: Comparison) -> dict[str, Any]:
    """The pair as the judge is shown it (response A first), as plain values: what the key hashes."""
    question, turn = comparison.question, comparison.turn
    return {
        "prompt": question.turns[: turn + 1],
        "reference": list(question.references[: turn + 1]),
        "response_a": comparison.answer_a.turns[: turn + 1],
        "response_b": comparison.answer_b.turns[: turn + 1],
    }


def judge_missing(judge: Any, items: Sequence[Keyed], store: JudgmentStore, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                  on_chunk: Callable[[int, int], None] | None = None) -> int:
    """Judge every distinct key of ``items`` the store lacks; returns how many were judged.

    ``on_chunk(judged, failed)`` is called after each chunk is stored.
    """
    distinct: dict[str, Comparison] = {}
    for item in items:
        distinct.setdefault(item.key, item.comparison)
    judged = 0
    for chunk in chunked(list(distinct.items()), chunk_size):
        todo = [(key, comparison) for key, comparison in chunk if not store.done(key)]
        if not todo:
            continue
        pairs: list[Pair | CriticError] = read_each([comparison for _, comparison in todo], Comparison.pair)
        results = judged_in_place(pairs, judge.compare_each, isolate_failures=True)
        records = [judgment_record(key, comparison, result) for (key, comparison), result in zip(todo, results,
                                                                                              strict=True)]
        store.append(records)
        judged += len(records)
        if on_chunk is not None:
            on_chunk(len(records), sum("error" in record for record in records))
    return judged


def judgment_record(key: str, comparison: Comparison, result: Preference | CriticError) -> dict[str, Any]:
    """One line of judgments.jsonl: the key, which comparison, and the result (or its error and kind)."""
    record: dict[str, Any] = {"key": key, **comparison.describe()}
    if isinstance(result, CriticError):
        record.update(error=str(result), kind=result.kind.value)
    else:
        record.update(result.to_dict())
    return record


def result_of(record: dict[str, Any]) -> dict[str, Any]:
    """The result fields of a stored judgment (what a comparison with the same key reuses)."""
    return {name: record[name] for name in RESULT_FIELDS if name in record}
