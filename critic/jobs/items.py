"""Rows as work items: read, prepared, judged and decided (kept, dropped or rejected with a reason).

A rejection carries its :class:`~critic.errors.Reason` (set where the error was
raised) and its ``stage``: ``"input"`` (the row could not be read or shaped) or
``"judge"`` (the judge could not judge the pair).

A RewardBench 2 row holds several pairs (its chosen answer, or each of its
``Ties`` answers, against each rejected one). Its pairs are judged together with
the other rows' and read as one combined verdict (see
:meth:`~critic.jobs.policy.Verdict.combined`): the row is kept when the policy
keeps every pair, its output row gains ``critic_pairs`` (each pair's
``chosen``/``rejected`` indices, label, ``p_chosen``, ``consistent``, and a
reward judge's scores), and one failed pair rejects the row, naming the pair.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from critic.errors import CriticError, Reason
from critic.io.readers import RowError
from critic.io.rows import prepare_row
from critic.io.shapes import Candidate, Columns
from critic.judges import JudgeDescription
from critic.judges.each import chunked, grouped, judged_in_place
from critic.jobs.policy import _LABEL_NAMES, DEFAULT_POLICY, SCORE_COLUMNS, Policy, Verdict

logger = logging.getLogger("critic")


DEFAULT_COLUMNS = Columns()
DEFAULT_CHUNK_SIZE = 64
JUDGE_PREFIX = "judge: "
Stage = Literal["input", "judge"]


@dataclass(frozen=True)
class Rejection:
    """Why a row is rejected: a one-line ``reason``, its ``kind`` and the ``stage`` that rejected it."""

    reason: str
    kind: Reason
    stage: Stage = "input"

    @classmethod
    def from_error(cls, error: BaseException, stage: Stage) -> Rejection:
        """The rejection for ``error`` (a judge's unexpected exception counts as a model failure)."""
        if isinstance(error, CriticError):
            kind, text = error.kind, str(error) or type(error).__name__
        else:
            kind = Reason.BAD_TEXT if isinstance(error, UnicodeError) else Reason.MODEL_FAILURE
            text = f"unexpected {type(error).__name__}: {error}"
        reason = one_line(text)
        return cls(JUDGE_PREFIX + reason if stage == "judge" else reason, kind, stage)

    @property
    def key(self) -> str:
        """How the summary counts it: the kind's value, after ``judge: `` for the judge's failures."""
        return reason_key(self.kind, self.stage)


def reason_key(kind: Reason | str, stage: str) -> str:
    value = kind.value if isinstance(kind, Reason) else str(kind)
    return JUDGE_PREFIX + value if stage == "judge" else value


@dataclass(frozen=True)
class Item:
    """One input row on its way through a job: a candidate for the judge, or the reason it was rejected."""

    number: int
    candidate: Candidate | None
    rejection: Rejection | None = None
    raw: Any = None


Result = Verdict | Rejection | None  # what the judge said about an item (None: the item was rejected before)


def prepare_item(number: int, row: Any, columns: Columns) -> Item:
    """An :class:`Item` for a row read from an input (a :class:`RowError` or an unusable row is rejected)."""
    try:
        return Item(number, prepare_row(row, columns))
    except CriticError as error:
        raw = error.raw if isinstance(error, RowError) else row
        return Item(number, None, Rejection.from_error(error, "input"), raw)


def judge_items(judge: Any, items: Sequence[Item]) -> list[Result]:
    """The judge's verdict for each item (``None`` for rejected items, a :class:`Rejection` where the judge failed).

    A pair the judge cannot judge (too long, unreadable verdict) gets its error
    in place from ``compare_each``. When ``compare_each`` fails as a whole (any
    exception but an interrupt), the pairs are judged one by one so that only
    the guilty ones are rejected; nothing of the chunk is lost.
    """
    groups: list[Any] = [item.candidate.pairs if item.candidate is not None else _REJECTED for item in items]
    judged = judged_in_place(groups, grouped(lambda valid: list(judge.compare_each(valid))), isolate_failures=True)
    results: list[Result] = []
    for item, result in zip(items, judged, strict=True):
        if item.candidate is None:
            results.append(None)
        elif isinstance(result, BaseException):
            results.append(Rejection.from_error(result, "judge"))
        else:
            results.append(_verdict(item.candidate, result))
    return results


def _verdict(candidate: Candidate, results: Sequence[Any]) -> Verdict | Rejection:
    """The (combined) verdict of a row's judged pairs; the first failed pair rejects the row, naming the pair."""
    for index, result in enumerate(results):
        if isinstance(result, BaseException):
            rejection = Rejection.from_error(result, "judge")
            if len(results) == 1:
                return rejection
            chosen, rejected = candidate.answers[index]
            where = f"pair chosen[{chosen}] vs rejected[{rejected}]: "
            return Rejection(JUDGE_PREFIX + where + rejection.reason[len(JUDGE_PREFIX):], rejection.kind, "judge")
    return Verdict.combined([Verdict.from_preference(result) for result in results])


# Stands in for an item rejected before judging: judged_in_place passes errors through untouched.
_REJECTED = CriticError("rejected before judging")


@dataclass(frozen=True)
class Outcome:
    """Where a row goes (``kept``, ``dropped``, ``rejected``) and the record written there."""

    output: str
    record: dict[str, Any]
    relabelled: bool = False
    judged: bool = False
    consistent: bool = False
    rejection: Rejection | None = None


def decide(item: Item, result: Result, policy: Policy) -> Outcome:
    """Apply ``policy`` to one judged item."""
    if item.candidate is None or not isinstance(result, Verdict):
        return _rejected(item, result)
    action = policy.decide(result)
    several = len(item.candidate.pairs) > 1
    if action == "relabel" and several:
        action = "drop"  # a row of several pairs is not relabelled: which rejected answer would be chosen?
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
    if several and result.pairs:
        record["critic_pairs"] = [_pair_record(answers, verdict)
                                  for answers, verdict in zip(item.candidate.answers, result.pairs, strict=True)]
    if policy.relabel:
        record["critic_relabelled"] = action == "relabel"
    return Outcome("dropped" if action == "drop" else "kept", record, relabelled=action == "relabel",
                   judged=True, consistent=bool(result.consistent))


def _pair_record(answers: tuple[int, int], verdict: Verdict) -> dict[str, Any]:
    """One pair of a several-pair row, as its output row lists it in ``critic_pairs``."""
    record: dict[str, Any] = {"chosen": answers[0], "rejected": answers[1],
                              "label": _LABEL_NAMES.get(verdict.label, verdict.label), "p_chosen": verdict.p_chosen,
                              "consistent": verdict.consistent}
    if verdict.margin is not None:
        record.update(score_chosen=verdict.score_chosen, score_rejected=verdict.score_rejected, margin=verdict.margin)
    return record


def _rejected(item: Item, result: Result) -> Outcome:
    if item.candidate is None:
        rejection, raw = item.rejection, item.raw
    else:
        rejection, raw = (result if isinstance(result, Rejection) else None), item.candidate.row
    if rejection is None:  # a candidate the engine returned no result for
        rejection = Rejection(JUDGE_PREFIX + "no result from the judge", Reason.MODEL_FAILURE, "judge")
    record = {"row": item.number, "reason": rejection.reason, "kind": rejection.kind.value,
              "stage": rejection.stage, "input": raw}
    return Outcome("rejected", record, judged=rejection.stage == "judge", rejection=rejection)


def iter_items(rows: Iterable[tuple[int, Any]], columns: Columns) -> Iterator[Item]:
    for number, row in rows:
        yield prepare_item(number, row, columns)


def describe_judge(judge: Any) -> JudgeDescription:
    """``judge.describe()`` as a :class:`JudgeDescription`.

    A third-party judge (``--judge-factory``) may still describe itself with a
    mapping: it is read once here, at the boundary (``kind`` defaults to ``"custom"``).
    """
    description = judge.describe()
    if isinstance(description, JudgeDescription):
        return description
    if isinstance(description, Mapping):
        return JudgeDescription.from_dict({"kind": "custom", **description})
    raise CriticError(f"the judge's describe() returned {type(description).__name__}, not a JudgeDescription")


def filter_rows(
    rows: Iterable[tuple[int, Any]] | Iterable[Any],
    judge: Any,
    *,
    columns: Columns = DEFAULT_COLUMNS,
    policy: Policy = DEFAULT_POLICY,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Iterator[Outcome]:
    """Stream :class:`Outcome` objects for rows in memory (dicts, or ``(number, row)`` tuples), in order.

    No files, no checkpoints: for pipelines that handle their own I/O. Plain
    dicts are numbered from 1.
    """
    policy = policy.for_judge(describe_judge(judge))
    numbered = (row if isinstance(row, tuple) and len(row) == 2 and isinstance(row[0], int) else (index, row)
                for index, row in enumerate(rows, start=1))
    for chunk in chunked(iter_items(numbered, columns), chunk_size):
        for item, result in zip(chunk, judge_items(judge, chunk), strict=True):
            yield decide(item, result, policy)


def one_line(text: str) -> str:
    """``text`` on one line, with any lone surrogate written as its escape (so it can be printed and logged)."""
    return " ".join(text.split()).encode("utf-8", "backslashreplace").decode("utf-8")
