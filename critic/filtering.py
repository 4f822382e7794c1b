"""Dataset cleaning jobs: keep the preference pairs whose ``chosen`` the judge confirms.

The judge sees each pair as ``(prompt, response_a=chosen, response_b=rejected)``,
so its ``p_a`` is P(chosen is better). A :class:`Policy` decides per row:

- default: keep when the judge prefers ``chosen`` in both presentation orders
  (label ``A`` and consistent);
- ``min_p``: keep when P(chosen is better) >= ``min_p``;
- ``relabel``: where the judge confirms the *rejected* answer instead (by the
  same rule), swap chosen and rejected, mark ``critic_relabelled`` and keep.

With a reward judge (``describe()["kind"] == "reward"``, e.g.
:class:`critic.RewardJudge`) the rule reads the margin
``score_chosen - score_rejected`` instead (both orders cannot disagree there):

- default: keep when the margin is > 0 (a tie is dropped);
- ``min_margin=M``: keep when the margin is >= M;
- ``relabel``: swap where the margin is < 0 (default) or <= -M.

``min_p`` works with both kinds (a reward judge's P(chosen is better) is
``sigmoid(margin)``); ``min_margin`` needs a reward judge.
:meth:`Policy.for_judge` picks the rule from the judge's ``describe()``; every
job calls it, so the job code is the same for both kinds.

:func:`filter_file` is the streaming, resumable job behind ``critic filter``: it
writes ``kept.jsonl``, ``dropped.jsonl``, ``rejected.jsonl`` (bad input, with
row number and a one-line reason) and ``summary.json`` to an output folder,
checkpointing after every chunk so a killed job resumes with identical output.
:func:`filter_dataset` and :func:`judge_columns` do the same for a
``datasets.Dataset``.

Output rows are the input rows plus ``critic_label`` (which side the judge
prefers: ``"chosen"``, ``"rejected"`` or ``"tie"``), ``critic_p_chosen`` and
``critic_consistent`` (plus ``critic_relabelled`` when relabelling; a
relabelled row is written with chosen and rejected already swapped, so its
critic columns describe the new ``chosen``). A reward judge adds
``critic_score_chosen``, ``critic_score_rejected`` and ``critic_margin``
(their difference), and its ``critic_consistent`` is null.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Literal, Protocol

from critic.data import Candidate, Columns, InputSource, RowError, dumps_row, fsync_directory, open_source, prepare_row
from critic.errors import CriticError, InputError

logger = logging.getLogger("critic")

OUTPUTS = ("kept", "dropped", "rejected")
OUTPUT_FILES = {name: f"{name}.jsonl" for name in OUTPUTS}
SUMMARY_FILE = "summary.json"
CHECKPOINT_FILE = "checkpoint.json"
DEFAULT_CHUNK_SIZE = 64
CHECKPOINT_VERSION = 1
_LABEL_NAMES = {"A": "chosen", "B": "rejected", "tie": "tie"}
SCORE_COLUMNS = ("critic_score_chosen", "critic_score_rejected", "critic_margin")
DEFAULT_COLUMNS = Columns()

__all__ = [
    "CHECKPOINT_FILE",
    "OUTPUT_FILES",
    "SCORE_COLUMNS",
    "SUMMARY_FILE",
    "Counts",
    "DatasetFilterResult",
    "FilterProgress",
    "FilterSummary",
    "Item",
    "LocalEngine",
    "Policy",
    "TooManyRejects",
    "Verdict",
    "filter_dataset",
    "filter_file",
    "filter_rows",
    "judge_columns",
    "judge_items",
]


class TooManyRejects(InputError):
    """More input rows were rejected than ``max_rejects`` allows; the job stopped."""


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class Verdict:
    """What a policy reads from a judgment, in terms of the row's claim.

    ``label`` is ``"A"`` when the judge prefers ``chosen``, ``"B"`` for
    ``rejected``, ``"tie"``; ``p_chosen`` is P(chosen is better); ``consistent``
    says whether both presentation orders agreed (``None``: one order judged).
    ``score_chosen``/``score_rejected`` are a reward judge's two scores (``None``
    for a generative judge).
    """

    label: str
    p_chosen: float
    consistent: bool | None
    score_chosen: float | None = None
    score_rejected: float | None = None

    @property
    def margin(self) -> float | None:
        """``score_chosen - score_rejected``; ``None`` without scores."""
        if self.score_chosen is None or self.score_rejected is None:
            return None
        return self.score_chosen - self.score_rejected

    @classmethod
    def from_preference(cls, preference: Any) -> Verdict:
        orders = tuple(preference.orders)
        score_a = getattr(orders[0], "score_a", None) if len(orders) == 1 else None
        score_b = getattr(orders[0], "score_b", None) if len(orders) == 1 else None
        return cls(str(preference.label), float(preference.p_a), preference.consistent,
                   None if score_a is None else float(score_a), None if score_b is None else float(score_b))

    def swapped(self) -> Verdict:
        """The same judgment read for the other response as ``chosen``."""
        label = {"A": "B", "B": "A"}.get(self.label, self.label)
        return Verdict(label, 1.0 - self.p_chosen, self.consistent, self.score_rejected, self.score_chosen)


@dataclass(frozen=True)
class Policy:
    """Which judged rows to keep (see the module docs).

    ``reward`` says the judge is a reward model (set by :meth:`for_judge`): the
    default rule is then ``margin > 0``, or ``margin >= min_margin``.
    """

    min_p: float | None = None
    relabel: bool = False
    min_margin: float | None = None
    reward: bool = False

    def __post_init__(self) -> None:
        if self.min_p is not None and not 0.0 <= self.min_p <= 1.0:
            raise InputError(f"min_p must be between 0 and 1, got {self.min_p}")
        if self.min_margin is not None:
            if not math.isfinite(self.min_margin):
                raise InputError(f"min_margin must be a finite number, got {self.min_margin}")
            if self.min_p is not None:
                raise InputError("choose either min_p or min_margin, not both")

    def for_judge(self, description: Mapping[str, Any]) -> Policy:
        """This policy for the judge that ``describe()`` returned ``description`` (checks ``min_margin``)."""
        reward = description.get("kind") == "reward"
        if self.min_margin is not None and not reward:
            raise InputError(f"min_margin (--min-margin) needs a reward judge (--judge reward); this judge is "
                             f"{description.get('kind') or 'generative'!r}: use min_p (--min-p) instead")
        return dataclasses.replace(self, reward=reward)

    @property
    def name(self) -> str:
        if self.min_p is not None:
            return "min-p"
        return "margin" if self.reward else "consistent"

    def describe(self) -> dict[str, Any]:
        if self.min_p is not None:
            rule = f"keep when P(chosen is better) >= {self.min_p:g}"
        elif self.reward:
            rule = ("keep when score(chosen) - score(rejected) > 0" if self.min_margin is None
                    else f"keep when score(chosen) - score(rejected) >= {self.min_margin:g}")
        else:
            rule = "keep when the judge prefers chosen in both orders"
        if self.relabel:
            rule += "; swap chosen and rejected where the judge confirms rejected the same way"
        described: dict[str, Any] = {"name": self.name, "min_p": self.min_p, "relabel": self.relabel, "rule": rule}
        if self.reward:  # generative jobs keep the description (and so the checkpoints) they always had
            described["min_margin"] = self.min_margin
        return described

    def decide(self, verdict: Verdict) -> Literal["keep", "relabel", "drop"]:
        if self.min_p is None and self.reward:
            if verdict.margin is None:
                raise CriticError("a reward policy needs the judge's two scores; this judgment has none")
            if self._wins(verdict.margin):
                return "keep"
            if self.relabel and self._wins(-verdict.margin):
                return "relabel"
            return "drop"
        if self.min_p is None:
            if verdict.consistent and verdict.label == "A":
                return "keep"
            if self.relabel and verdict.consistent and verdict.label == "B":
                return "relabel"
            return "drop"
        if verdict.p_chosen >= self.min_p:
            return "keep"
        if self.relabel and 1.0 - verdict.p_chosen >= self.min_p:
            return "relabel"
        return "drop"

    def _wins(self, margin: float) -> bool:
        return margin > 0 if self.min_margin is None else margin >= self.min_margin


# --------------------------------------------------------------------------- rows through the judge


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


class Engine(Protocol):
    """Runs the judge over the rows of an input, in input order, one chunk at a time."""

    def describe(self) -> dict[str, Any]: ...

    def judged_chunks(
        self, source: InputSource, columns: Columns, *, skip: int, chunk_size: int
    ) -> Iterator[list[tuple[Item, Verdict | str | None]]]: ...


class LocalEngine:
    """Judges in this process with one judge (anything with ``compare_each`` and ``describe``)."""

    name = "local"

    def __init__(self, judge: Any) -> None:
        if not callable(getattr(judge, "compare_each", None)):
            raise InputError(f"the judge must have compare_each(pairs) (a PairwiseJudge), got {type(judge).__name__}")
        self.judge = judge

    def describe(self) -> dict[str, Any]:
        return dict(self.judge.describe())

    def judged_chunks(
        self, source: InputSource, columns: Columns, *, skip: int, chunk_size: int
    ) -> Iterator[list[tuple[Item, Verdict | str | None]]]:
        for chunk in chunked(iter_items(source.rows(skip=skip), columns), chunk_size):
            yield list(zip(chunk, judge_items(self.judge, chunk), strict=True))


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


# --------------------------------------------------------------------------- the file job


@dataclass
class Counts:
    """Rows so far. ``rows_in == kept + dropped + rejected`` always; ``relabelled`` is part of ``kept``."""

    rows_in: int = 0
    kept: int = 0
    dropped: int = 0
    rejected: int = 0
    relabelled: int = 0
    judged: int = 0
    consistent: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: Outcome) -> None:
        self.rows_in += 1
        setattr(self, outcome.output, getattr(self, outcome.output) + 1)
        self.relabelled += outcome.relabelled
        self.judged += outcome.judged
        self.consistent += outcome.consistent
        if outcome.output == "rejected":
            self.reasons[reason_kind(outcome.record["reason"])] += 1

    def check(self) -> None:
        if self.rows_in != self.kept + self.dropped + self.rejected:
            raise CriticError(
                f"counts do not add up: {self.rows_in} rows in, but {self.kept} kept + {self.dropped} dropped "
                f"+ {self.rejected} rejected = {self.kept + self.dropped + self.rejected}"
            )

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in ("rows_in", "kept", "dropped", "rejected", "relabelled",
                                                         "judged", "consistent")}
        data["rejected_by_reason"] = dict(self.reasons.most_common())
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Counts:
        values = {key: int(data[key]) for key in ("rows_in", "kept", "dropped", "rejected", "relabelled", "judged",
                                                   "consistent")}
        return cls(**values, reasons=Counter(data.get("rejected_by_reason", {})))


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


@dataclass(frozen=True)
class FilterProgress:
    """Passed to the ``progress`` callback after every chunk (and once at the start)."""

    rows_done: int
    total: int | None
    kept: int
    dropped: int
    rejected: int
    elapsed_s: float


@dataclass
class FilterSummary:
    """What a job did; ``summary.json`` holds :meth:`to_dict`."""

    input: str
    format: str
    output_dir: str
    judge: dict[str, Any]
    engine: str
    policy: dict[str, Any]
    counts: Counts
    elapsed_s: float
    files: dict[str, str]
    resumed: bool = False
    complete: bool = True

    @property
    def pairs_per_second(self) -> float | None:
        return self.counts.judged / self.elapsed_s if self.elapsed_s > 0 else None

    def rates(self) -> dict[str, float | None]:
        total = self.counts.rows_in
        rate = (lambda n: n / total) if total else (lambda n: None)
        judged = self.counts.judged
        return {
            "kept": rate(self.counts.kept),
            "dropped": rate(self.counts.dropped),
            "rejected": rate(self.counts.rejected),
            "kept_of_judged": self.counts.kept / judged if judged else None,
            "consistent_of_judged": self.counts.consistent / judged if judged else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "format": self.format,
            "output_dir": self.output_dir,
            "judge": self.judge,
            "engine": self.engine,
            "policy": self.policy,
            "counts": self.counts.to_dict(),
            "rates": self.rates(),
            "elapsed_s": round(self.elapsed_s, 3),
            "pairs_per_second": None if self.pairs_per_second is None else round(self.pairs_per_second, 3),
            "files": self.files,
            "resumed": self.resumed,
            "complete": self.complete,
        }


def filter_file(
    input: str | Path | InputSource,
    output_dir: str | Path,
    judge: Any = None,
    *,
    engine: Engine | None = None,
    format: str | None = None,
    split: str | None = None,
    columns: Columns = DEFAULT_COLUMNS,
    policy: Policy = Policy(),
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    resume: bool = False,
    force: bool = False,
    max_rejects: int | None = None,
    limit: int | None = None,
    progress: Callable[[FilterProgress], None] | None = None,
    count_total: bool = True,
) -> FilterSummary:
    """Run a cleaning job from a file (or hub/saved dataset) to ``output_dir``; see the module docs.

    Args:
        input: a path (JSONL, JSON array, Parquet, CSV, ``save_to_disk`` folder)
            or a cached hub dataset name; ``format``/``split`` override detection.
        judge: any object with ``compare_each`` and ``describe`` (a
            :class:`critic.Judge`); or pass ``engine`` (e.g. a Ray engine).
        chunk_size: rows per chunk; outputs are synced and checkpointed after each.
        resume: continue a job whose checkpoint is in ``output_dir`` (outputs are
            cut back to the checkpoint, so a half-written row never survives).
        force: delete earlier outputs in ``output_dir`` and start over.
            Without ``resume`` or ``force``, existing outputs are an error.
        max_rejects: stop with :class:`TooManyRejects` once more rows than this
            are rejected (the outputs so far stay checkpointed).
        limit: stop once this many input rows are done (a sample of a big job); the
            job is left incomplete, and a resume without ``limit`` goes on to the end.
        progress: called with a :class:`FilterProgress` after every chunk.

    Returns the :class:`FilterSummary` (also written to ``summary.json``).
    """
    if resume and force:
        raise InputError("choose either resume or force, not both")
    if chunk_size < 1:
        raise InputError("chunk_size must be at least 1")
    if engine is None:
        if judge is None:
            raise InputError("filter_file needs a judge (or an engine)")
        engine = LocalEngine(judge)
    source = input if isinstance(input, InputSource) else open_source(input, format=format, split=split)
    if limit is not None:
        if limit < 0:
            raise InputError("limit must be 0 or more")
        source = dataclasses.replace(source, limit=limit)
    source.check()
    out = Path(output_dir)
    judge_description = engine.describe()
    policy = policy.for_judge(judge_description)
    job = {
        "input": source.fingerprint(),
        "columns": columns.to_dict(),
        "policy": policy.describe(),
        "judge": judge_description,
    }
    state = _prepare_output_dir(out, job, resume=resume, force=force)
    if state.get("complete"):
        logger.info("the job in %s is already complete", out)
        summary = _summary(source, out, state, engine, policy, resumed=True)
        if not (out / SUMMARY_FILE).exists():  # killed between the last checkpoint and the summary
            _write_json_atomic(out / SUMMARY_FILE, summary.to_dict())
        return summary
    resumed = state["rows_done"] > 0
    counts = Counts.from_dict(state["counts"])
    elapsed_before = float(state.get("elapsed_s", 0.0))
    total = source.count() if count_total else None
    started = time.monotonic()
    if resumed:
        logger.info("resuming %s after %d rows", source.location, state["rows_done"])
    handles = {name: (out / OUTPUT_FILES[name]).open("ab") for name in OUTPUTS}
    try:
        if progress is not None:
            progress(FilterProgress(counts.rows_in, total, counts.kept, counts.dropped, counts.rejected,
                                    elapsed_before))
        for chunk in engine.judged_chunks(source, columns, skip=state["rows_done"], chunk_size=chunk_size):
            buffers: dict[str, list[bytes]] = {name: [] for name in OUTPUTS}
            for item, result in chunk:
                outcome = decide(item, result, policy)
                buffers[outcome.output].append(dumps_row(outcome.record))
                counts.add(outcome)
            for name, lines in buffers.items():
                if lines:
                    handles[name].write(b"".join(lines))
                    handles[name].flush()
                    os.fsync(handles[name].fileno())
            elapsed = elapsed_before + time.monotonic() - started
            state = dict(state, rows_done=counts.rows_in, counts=counts.to_dict(), elapsed_s=elapsed,
                         sizes={name: handles[name].tell() for name in OUTPUTS})
            _write_json_atomic(out / CHECKPOINT_FILE, state)
            if progress is not None:
                progress(FilterProgress(counts.rows_in, total, counts.kept, counts.dropped, counts.rejected, elapsed))
            if max_rejects is not None and counts.rejected > max_rejects:
                raise TooManyRejects(
                    f"stopped after {counts.rows_in} rows: {counts.rejected} rejected, more than --max-rejects "
                    f"{max_rejects} ({_top_reasons(counts)}); see {out / OUTPUT_FILES['rejected']}. "
                    "The rows so far are saved: fix the input and start over with --force, or allow more "
                    "rejects and continue with --resume"
                )
    finally:
        for handle in handles.values():
            handle.close()
    counts.check()
    _check_files(out, counts)
    stopped = limit is not None and counts.rows_in >= limit
    state = dict(state, complete=not stopped)
    summary = _summary(source, out, state, engine, policy, resumed=resumed)
    _write_json_atomic(out / SUMMARY_FILE, summary.to_dict())
    _write_json_atomic(out / CHECKPOINT_FILE, state)
    logger.info("filtered %d rows: %d kept, %d dropped, %d rejected%s", counts.rows_in, counts.kept, counts.dropped,
                counts.rejected, " (stopped at the limit; resume to go on)" if stopped else "")
    return summary


def _summary(source: InputSource, out: Path, state: Mapping[str, Any], engine: Engine, policy: Policy,
             *, resumed: bool) -> FilterSummary:
    files = {name: str(out / OUTPUT_FILES[name]) for name in OUTPUTS}
    files["summary"] = str(out / SUMMARY_FILE)
    return FilterSummary(
        input=source.location,
        format=source.format,
        output_dir=str(out),
        judge=dict(state["job"]["judge"]),
        engine=getattr(engine, "name", type(engine).__name__),
        policy=policy.describe(),
        counts=Counts.from_dict(state["counts"]),
        elapsed_s=float(state.get("elapsed_s", 0.0)),
        files=files,
        resumed=resumed,
        complete=bool(state.get("complete")),
    )


def _top_reasons(counts: Counts, limit: int = 3) -> str:
    return "; ".join(f"{kind}: {count}" for kind, count in counts.reasons.most_common(limit))


def _prepare_output_dir(out: Path, job: dict[str, Any], *, resume: bool, force: bool) -> dict[str, Any]:
    """The checkpoint state to start from, after creating, cleaning or cutting back the outputs."""
    names = [*OUTPUT_FILES.values(), SUMMARY_FILE, CHECKPOINT_FILE]
    existing = [name for name in names if (out / name).exists()]
    checkpoint = out / CHECKPOINT_FILE
    if force:
        for name in existing:
            (out / name).unlink()
        existing = []
    elif resume and checkpoint.exists():
        return _resume_state(out, job)
    elif existing:
        only_empty = all(name in OUTPUT_FILES.values() and (out / name).stat().st_size == 0 for name in existing)
        if not (resume and only_empty):  # outputs created just before a first checkpoint: nothing to keep
            hint = ("there is no checkpoint to resume from; use --force to start over" if resume
                    else "use --resume to continue that job or --force to overwrite it")
            raise InputError(f"'{out}' already holds outputs of a filter job ({', '.join(existing)}); {hint}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create output folder '{out}': {error.strerror}") from None
    for name in OUTPUTS:
        with (out / OUTPUT_FILES[name]).open("wb") as handle:
            os.fsync(handle.fileno())
    state = {
        "version": CHECKPOINT_VERSION,
        "job": job,
        "rows_done": 0,
        "sizes": dict.fromkeys(OUTPUTS, 0),
        "counts": Counts().to_dict(),
        "elapsed_s": 0.0,
        "complete": False,
    }
    _write_json_atomic(checkpoint, state)
    return state


def _resume_state(out: Path, job: dict[str, Any]) -> dict[str, Any]:
    path = out / CHECKPOINT_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read the checkpoint {path} ({error}); use --force to start over") from None
    if state.get("version") != CHECKPOINT_VERSION:
        raise InputError(f"the checkpoint {path} has version {state.get('version')!r}, not {CHECKPOINT_VERSION}; "
                         "use --force to start over")
    different = [key for key in job if _normalise(state["job"].get(key)) != _normalise(job[key])]
    if different:
        details = "; ".join(f"{key}: was {state['job'].get(key)}, now {job[key]}" for key in different)
        raise InputError(f"cannot resume: the job in '{out}' was started with different settings ({details}); "
                         "use the same settings, or --force to start over")
    if state.get("complete"):
        return state
    for name in OUTPUTS:
        file = out / OUTPUT_FILES[name]
        size = int(state["sizes"][name])
        actual = file.stat().st_size if file.exists() else 0
        if actual < size:
            raise InputError(f"cannot resume: {file} is shorter ({actual} bytes) than at the last checkpoint "
                             f"({size} bytes); use --force to start over")
        with file.open("ab") as handle:
            handle.truncate(size)  # drop whatever was written after the last checkpoint
            os.fsync(handle.fileno())
    summary = out / SUMMARY_FILE
    if summary.exists():
        summary.unlink()
    return state


def _normalise(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=1, default=str)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)


def _check_files(out: Path, counts: Counts) -> None:
    """Count the lines actually written: they must match the counts (across resumes too)."""
    for name in OUTPUTS:
        lines = _count_lines(out / OUTPUT_FILES[name])
        if lines != getattr(counts, name):
            raise CriticError(f"{out / OUTPUT_FILES[name]} holds {lines} rows but the job counted "
                              f"{getattr(counts, name)}; the output folder was changed during the job")


def _count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
    return lines


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------- datasets.Dataset


CRITIC_COLUMNS = ("critic_status", "critic_reason")


def judge_columns(
    judge: Any,
    *,
    columns: Columns = DEFAULT_COLUMNS,
    policy: Policy = Policy(),
) -> Callable[[dict[str, list[Any]]], dict[str, list[Any]]]:
    """A function for ``Dataset.map(fn, batched=True)`` that adds the judge's columns.

    Adds ``critic_status`` (``kept``/``dropped``/``rejected``), ``critic_reason``
    (why a row was rejected), ``critic_label``, ``critic_p_chosen``,
    ``critic_consistent`` (and ``critic_relabelled``, with chosen and rejected
    swapped in place, under a relabelling policy; and :data:`SCORE_COLUMNS` for a
    reward judge). Pass ``new_fingerprint=...`` to ``map`` so that ``datasets``
    does not hash the judge (and its model).
    """
    policy = policy.for_judge(judge.describe())
    judged_names = ("critic_label", "critic_p_chosen", "critic_consistent", *(SCORE_COLUMNS if policy.reward else ()))

    def add_columns(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        names = list(batch)
        size = len(batch[names[0]]) if names else 0
        rows = [{name: batch[name][index] for name in names} for index in range(size)]
        items = [prepare_item(index + 1, row, columns) for index, row in enumerate(rows)]
        added: dict[str, list[Any]] = {name: [] for name in (*CRITIC_COLUMNS, *judged_names)}
        if policy.relabel:
            added["critic_relabelled"] = []
        changed: dict[str, list[Any]] = {}
        for index, (item, result) in enumerate(zip(items, judge_items(judge, items), strict=True)):
            outcome = decide(item, result, policy)
            record = outcome.record
            added["critic_status"].append(outcome.output)
            added["critic_reason"].append(record.get("reason"))
            for name in judged_names:
                added[name].append(record.get(name))
            if policy.relabel:
                added["critic_relabelled"].append(outcome.relabelled if outcome.output != "rejected" else None)
            if outcome.relabelled:
                if item.candidate is not None and set(item.candidate.row) - set(names):  # a converted row
                    raise InputError("relabelling PandaLM-native rows in a Dataset is not supported; "
                                     "convert them first with critic.data.pandalm_row")
                for name in names:
                    if record.get(name) != rows[index][name]:
                        changed.setdefault(name, list(batch[name]))[index] = record[name]
        return {**changed, **added}

    return add_columns


@dataclass
class DatasetFilterResult:
    """The three parts of a filtered ``datasets.Dataset`` and the job's summary."""

    kept: Any
    dropped: Any
    rejected: Any
    summary: dict[str, Any]


def filter_dataset(
    dataset: Any,
    judge: Any,
    *,
    columns: Columns = DEFAULT_COLUMNS,
    policy: Policy = Policy(),
    batch_size: int = DEFAULT_CHUNK_SIZE,
    desc: str | None = "judging",
) -> DatasetFilterResult:
    """Filter a ``datasets.Dataset``: kept and dropped rows with the judge's columns, rejected rows with a reason.

    Counts always add up (checked). For files, resumable jobs and bad input
    lines, use :func:`filter_file`.
    """
    try:
        import datasets
    except ImportError as error:
        from critic.errors import MissingDependencyError

        raise MissingDependencyError("datasets", "data", "filter_dataset") from error
    if not isinstance(dataset, datasets.Dataset):
        raise InputError(f"filter_dataset takes a datasets.Dataset, got {type(dataset).__name__} "
                         "(pick a split of a DatasetDict first)")
    policy = policy.for_judge(judge.describe())
    features = dataset.features.copy()
    features.update({
        "critic_status": datasets.Value("string"),
        "critic_reason": datasets.Value("string"),
        "critic_label": datasets.Value("string"),
        "critic_p_chosen": datasets.Value("float64"),
        "critic_consistent": datasets.Value("bool"),
    })
    if policy.reward:
        features.update(dict.fromkeys(SCORE_COLUMNS, datasets.Value("float64")))
    if policy.relabel:
        features["critic_relabelled"] = datasets.Value("bool")
    started = time.monotonic()
    fingerprint = f"critic-filter-{dataset._fingerprint}-{time.time_ns()}"
    mapped = dataset.map(judge_columns(judge, columns=columns, policy=policy), batched=True, batch_size=batch_size,
                         features=features, new_fingerprint=fingerprint, load_from_cache_file=False, desc=desc)
    elapsed = time.monotonic() - started
    statuses = mapped["critic_status"]
    parts = {name: [index for index, status in enumerate(statuses) if status == name] for name in OUTPUTS}
    judge_columns_only = [name for name in ("critic_label", "critic_p_chosen", "critic_consistent",
                                            *SCORE_COLUMNS, "critic_relabelled") if name in mapped.column_names]
    kept = mapped.select(parts["kept"]).remove_columns(["critic_status", "critic_reason"])
    dropped = mapped.select(parts["dropped"]).remove_columns(["critic_status", "critic_reason"])
    rejected = mapped.select(parts["rejected"]).remove_columns(["critic_status", *judge_columns_only])
    counts = Counts(rows_in=len(dataset), kept=len(kept), dropped=len(dropped), rejected=len(rejected))
    counts.check()
    counts.relabelled = sum(bool(value) for value in kept["critic_relabelled"]) if policy.relabel else 0
    counts.judged = len(kept) + len(dropped) + sum(reason.startswith("judge: ") for reason in rejected["critic_reason"])
    counts.consistent = sum(bool(value) for part in (kept, dropped) for value in part["critic_consistent"])
    counts.reasons = Counter(reason_kind(reason) for reason in rejected["critic_reason"])
    summary = {
        "judge": dict(judge.describe()),
        "policy": policy.describe(),
        "counts": counts.to_dict(),
        "elapsed_s": round(elapsed, 3),
        "pairs_per_second": round(counts.judged / elapsed, 3) if elapsed > 0 else None,
    }
    return DatasetFilterResult(kept, dropped, rejected, summary)
