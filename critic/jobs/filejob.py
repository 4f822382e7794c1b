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
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from critic.errors import InputError
from critic.io.rows import Columns
from critic.io.source import InputSource, open_source
from critic.io.writers import dumps_row
from critic.jobs.checkpoint import (
    CHECKPOINT_FILE,
    OUTPUT_FILES,
    OUTPUTS,
    SUMMARY_FILE,
    _check_files,
    _prepare_output_dir,
    _write_json_atomic,
)
from critic.jobs.engines import Engine, LocalEngine
from critic.jobs.items import DEFAULT_CHUNK_SIZE, DEFAULT_COLUMNS, decide
from critic.jobs.policy import Policy
from critic.jobs.summary import Counts, FilterProgress, FilterSummary, TooManyRejects, _top_reasons

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
