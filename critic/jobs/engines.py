"""Engines run the judge over chunks of items: in this process here, on Ray in :mod:`critic.jobs.ray`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Protocol

from critic.errors import InputError
from critic.io.shapes import Columns
from critic.io.source import InputSource
from critic.jobs.items import Item, Result, describe_judge, iter_items, judge_items
from critic.judges import JudgeDescription
from critic.judges.each import chunked

logger = logging.getLogger("critic")


class Engine(Protocol):
    """Runs the judge over the rows of an input, in input order, one chunk at a time."""

    def describe(self) -> JudgeDescription: ...

    def judged_chunks(
        self, source: InputSource, columns: Columns, *, skip: int, chunk_size: int
    ) -> Iterator[list[tuple[Item, Result]]]: ...


class LocalEngine:
    """Judges in this process with one judge (anything with ``compare_each`` and ``describe``)."""

    name = "local"

    def __init__(self, judge: Any) -> None:
        if not callable(getattr(judge, "compare_each", None)):
            raise InputError(f"the judge must have compare_each(pairs) (a PairwiseJudge), got {type(judge).__name__}")
        self.judge = judge

    def describe(self) -> JudgeDescription:
        return describe_judge(self.judge)

    def judged_chunks(
        self, source: InputSource, columns: Columns, *, skip: int, chunk_size: int
    ) -> Iterator[list[tuple[Item, Result]]]:
        for chunk in chunked(iter_items(source.rows(skip=skip), columns), chunk_size):
            yield list(zip(chunk, judge_items(self.judge, chunk), strict=True))
