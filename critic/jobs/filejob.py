"""The streaming, resumable cleaning job behind ``critic filter``.

:func:`filter_file` writes ``kept.jsonl``, ``dropped.jsonl``, ``rejected.jsonl`` (bad
input, with row number and a one-line reason) and ``summary.json`` to an output
folder, checkpointing after every chunk so a killed job resumes with identical output.

Output rows are the input rows plus ``critic_label`` (``chosen``, ``rejected`` or
``tie``), ``critic_p_chosen`` and ``critic_consistent`` (plus ``critic_relabelled``
when relabelling). A reward judge adds ``critic_score_chosen``,
``critic_score_rejected`` and ``critic_margin``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from critic.errors import InputError
from critic.io.shapes import Columns
from critic.io.source import InputSource, open_source
from critic.io.writers import dumps_row, refuse_inputs_as_outputs, write_json_atomic
from critic.jobs.checkpoint import (
    CHECKPOINT_FILE,
    JOB_FILES,
    OUTPUT_FILES,
    OUTPUTS,
    SUMMARY_FILE,
    OutputFiles,
    prepare_output_dir,
    start_fresh,
)
from critic.jobs.engines import Engine, LocalEngine
from critic.jobs.items import DEFAULT_CHUNK_SIZE, DEFAULT_COLUMNS, decide
from critic.jobs.policy import DEFAULT_POLICY, Policy
from critic.jobs.summary import Counts, FilterProgress, FilterSummary, TooManyRejects, _top_reasons
from critic.judges import JudgeDescription

logger = logging.getLogger("critic")


def filter_file(
    input: str | Path | InputSource,
    output_dir: str | Path,
    judge: Any = None,
    *,
    engine: Engine | None = None,
    format: str | None = None,
    split: str | None = None,
    columns: Columns = DEFAULT_COLUMNS,
    policy: Policy = DEFAULT_POLICY,
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
        force: replace earlier outputs in ``output_dir`` and start over. They are
            kept until the new job has judged its first chunk, so a job that cannot
            start (its model or server fails) leaves them as they were. Without
            ``resume`` or ``force``, existing outputs are an error; ``resume``
            without a checkpoint in ``output_dir`` is an error too.
        max_rejects: stop with :class:`TooManyRejects` once more rows than this
            are rejected (the outputs so far stay checkpointed).
        limit: stop once this many input rows are done (a sample of a big job); the
            job is left incomplete, and a resume without ``limit`` goes on to the end.
        progress: called with a :class:`FilterProgress` after every chunk.

    Returns the :class:`FilterSummary` (also written to ``summary.json``).
    """
    _check_arguments(resume=resume, force=force, chunk_size=chunk_size, limit=limit)
    engine = _engine(judge, engine)
    source = (_with_limit(input, limit) if isinstance(input, InputSource)
              else open_source(input, format=format, split=split, limit=limit))
    source.check()
    out = Path(output_dir)
    refuse_inputs_as_outputs([out / name for name in JOB_FILES], [source.location])
    description = engine.describe()
    policy = policy.for_judge(description)
    job = {
        "input": source.fingerprint(),
        "columns": columns.to_dict(),
        "policy": policy.describe(),
        "judge": description.to_dict(),
    }
    state, pending_start = prepare_output_dir(out, job, resume=resume, force=force)
    run = _Run(source, out, engine, policy, columns, chunk_size, max_rejects, progress, pending_start)
    if state.get("complete"):
        return run.already_complete(state)
    resumed = state["rows_done"] > 0
    if resumed:
        logger.info("resuming %s after %d rows", source.location, state["rows_done"])
    state, counts = run.chunks(state, total=source.count() if count_total else None)
    counts.check()
    stopped = limit is not None and counts.rows_in >= limit
    state = dict(state, complete=not stopped)
    summary = run.summary(state, resumed=resumed)
    write_json_atomic(out / SUMMARY_FILE, summary.to_dict())
    write_json_atomic(out / CHECKPOINT_FILE, state)
    logger.info("filtered %d rows: %d kept, %d dropped, %d rejected%s", counts.rows_in, counts.kept, counts.dropped,
                counts.rejected, " (stopped at the limit; resume to go on)" if stopped else "")
    return summary


def _check_arguments(*, resume: bool, force: bool, chunk_size: int, limit: int | None) -> None:
    if resume and force:
        raise InputError("choose either resume or force, not both")
    if chunk_size < 1:
        raise InputError("chunk_size must be at least 1")
    if limit is not None and limit < 0:
        raise InputError("limit must be 0 or more")


def _with_limit(source: InputSource, limit: int | None) -> InputSource:
    """``source`` reading at most ``limit`` rows; a dataset it has loaded already is kept, not loaded again."""
    if limit is None or limit == source.limit:
        return source
    limited = dataclasses.replace(source, limit=limit)
    if "dataset" in source.__dict__:
        limited.__dict__["dataset"] = source.__dict__["dataset"]
    return limited


def _engine(judge: Any, engine: Engine | None) -> Engine:
    if engine is not None:
        return engine
    if judge is None:
        raise InputError("filter_file needs a judge (or an engine)")
    return LocalEngine(judge)


@dataclasses.dataclass(frozen=True)
class _Run:
    """One run of a file job: judging chunk by chunk, writing, checkpointing, summarising."""

    source: InputSource
    out: Path
    engine: Engine
    policy: Policy
    columns: Columns
    chunk_size: int
    max_rejects: int | None
    progress: Callable[[FilterProgress], None] | None
    pending_start: bool = False  # --force over earlier outputs: replace them once the first chunk is judged

    def chunks(self, state: dict[str, Any], *, total: int | None) -> tuple[dict[str, Any], Counts]:
        """Judge the rows after the checkpoint ``state``; the state after the last chunk, and the counts."""
        counts = Counts.from_dict(state["counts"])
        elapsed_before = float(state.get("elapsed_s", 0.0))
        started = time.monotonic()
        files: OutputFiles | None = None if self.pending_start else OutputFiles(self.out, state)
        try:
            self._report(counts, total, elapsed_before)
            for chunk in self.engine.judged_chunks(self.source, self.columns, skip=state["rows_done"],
                                                   chunk_size=self.chunk_size):
                files = files or self._start(state)
                buffers: dict[str, list[bytes]] = {name: [] for name in OUTPUTS}
                for item, result in chunk:
                    outcome = decide(item, result, self.policy)
                    buffers[outcome.output].append(dumps_row(outcome.record))
                    counts.add(outcome)
                files.write(buffers)
                elapsed = elapsed_before + time.monotonic() - started
                state = dict(state, rows_done=counts.rows_in, counts=counts.to_dict(), elapsed_s=elapsed,
                             sizes=files.sizes())
                write_json_atomic(self.out / CHECKPOINT_FILE, state)
                self._report(counts, total, elapsed)
                self._check_rejects(counts)
            files = files or self._start(state)
            files.check(counts)
        finally:
            if files is not None:
                files.close()
        return state, counts

    def _start(self, state: Mapping[str, Any]) -> OutputFiles:
        """The earlier job's outputs replaced by this one's (empty) outputs, open for appending."""
        start_fresh(self.out, state)
        return OutputFiles(self.out, state)

    def _report(self, counts: Counts, total: int | None, elapsed: float) -> None:
        if self.progress is not None:
            self.progress(FilterProgress(counts.rows_in, total, counts.kept, counts.dropped, counts.rejected,
                                         elapsed))

    def _check_rejects(self, counts: Counts) -> None:
        if self.max_rejects is not None and counts.rejected > self.max_rejects:
            raise TooManyRejects(
                f"stopped after {counts.rows_in} rows: {counts.rejected} rejected, more than --max-rejects "
                f"{self.max_rejects} ({_top_reasons(counts)}); see {self.out / OUTPUT_FILES['rejected']}. "
                "The rows so far are saved: fix the input and start over with --force, or allow more "
                "rejects and continue with --resume"
            )

    def already_complete(self, state: Mapping[str, Any]) -> FilterSummary:
        logger.info("the job in %s is already complete", self.out)
        summary = self.summary(state, resumed=True)
        if not (self.out / SUMMARY_FILE).exists():  # killed between the last checkpoint and the summary
            write_json_atomic(self.out / SUMMARY_FILE, summary.to_dict())
        return summary

    def summary(self, state: Mapping[str, Any], *, resumed: bool) -> FilterSummary:
        files = {name: str(self.out / OUTPUT_FILES[name]) for name in OUTPUTS}
        files["summary"] = str(self.out / SUMMARY_FILE)
        return FilterSummary(
            input=self.source.location,
            format=self.source.format,
            output_dir=str(self.out),
            judge=JudgeDescription.from_dict(state["job"]["judge"]),
            engine=getattr(self.engine, "name", type(self.engine).__name__),
            policy=self.policy.describe(),
            counts=Counts.from_dict(state["counts"]),
            elapsed_s=float(state.get("elapsed_s", 0.0)),
            files=files,
            resumed=resumed,
            complete=bool(state.get("complete")),
        )
