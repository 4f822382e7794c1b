"""The output folder of a file job: its files, the checkpoint, starting over and resuming.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from critic.errors import CriticError, InputError
from critic.io.writers import fsync_directory, write_json_atomic
from critic.jobs.summary import Counts

logger = logging.getLogger("critic")


OUTPUTS = ("kept", "dropped", "rejected")


OUTPUT_FILES = {name: f"{name}.jsonl" for name in OUTPUTS}


SUMMARY_FILE = "summary.json"


CHECKPOINT_FILE = "checkpoint.json"


CHECKPOINT_VERSION = 2  # 2: rejections counted by kind, the judge as a JudgeDescription's fields


JOB_FILES = (*OUTPUT_FILES.values(), SUMMARY_FILE, CHECKPOINT_FILE)  # every file a job writes in its folder


def existing_outputs(out: Path) -> list[str]:
    """The names of a filter job's files already in ``out``."""
    return [name for name in JOB_FILES if (out / name).exists()]


def check_output_dir(out: Path, *, resume: bool, force: bool) -> None:
    """Refuse to start where earlier outputs would be lost, or to resume where there is no job.

    Earlier outputs need ``resume`` (with a checkpoint) or ``force``; ``resume``
    needs a checkpoint. Reads nothing and writes nothing, so a command can call it
    before loading a model.
    """
    existing = existing_outputs(out)
    if resume:
        if (out / CHECKPOINT_FILE).exists():
            return
        if existing:
            raise InputError(f"'{out}' holds outputs of a filter job ({', '.join(existing)}) but no "
                             f"{CHECKPOINT_FILE} to resume from; use --force to start over")
        raise InputError(f"there is no job to resume in '{out}' (no {CHECKPOINT_FILE}: no filter job has "
                         "checkpointed there); run without --resume to start one")
    if existing and not force:
        raise InputError(f"'{out}' already holds outputs of a filter job ({', '.join(existing)}); "
                         "use --resume to continue that job or --force to overwrite it")


def read_checkpoint(out: Path) -> dict[str, Any]:
    """The checkpoint state in ``out`` (an :class:`InputError` when it is unreadable or of another version)."""
    path = out / CHECKPOINT_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict) or not isinstance(state.get("job"), dict):
            raise ValueError("not a critic checkpoint")
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read the checkpoint {path} ({error}); use --force to start over") from None
    if state.get("version") != CHECKPOINT_VERSION:
        raise InputError(f"the checkpoint {path} has version {state.get('version')!r}, not {CHECKPOINT_VERSION}; "
                         "use --force to start over")
    return state


def check_same_job(out: Path, state: Mapping[str, Any], job: Mapping[str, Any], *, partial: bool = False) -> None:
    """Refuse to resume the job of ``state`` with other settings than ``job``.

    ``partial``: ``job`` holds only what is known before the judge is loaded (a
    command's pre-load check), so a mapping in it is compared on its own keys only.
    """
    recorded = state["job"]
    different = [key for key in job if not _same(recorded.get(key), job[key], partial=partial)]
    if different:
        details = "; ".join(f"{key}: was {recorded.get(key)}, now {job[key]}" for key in different)
        raise InputError(f"cannot resume: the job in '{out}' was started with different settings ({details}); "
                         "use the same settings, or --force to start over")


def _same(recorded: Any, expected: Any, *, partial: bool) -> bool:
    if partial and isinstance(expected, Mapping) and isinstance(recorded, Mapping):
        return all(_normalise(recorded.get(key)) == _normalise(value) for key, value in expected.items())
    return bool(_normalise(recorded) == _normalise(expected))


def prepare_output_dir(out: Path, job: dict[str, Any], *, resume: bool, force: bool) -> tuple[dict[str, Any], bool]:
    """The checkpoint state to start from, and whether the folder must still be started afresh.

    A new job in an empty folder starts now (:func:`start_fresh`). With ``force``
    over earlier outputs, nothing is touched yet: the caller starts afresh once the
    new job has judged its first chunk, so a job that cannot start (a model that
    fails to load, a server that is down) leaves the earlier outputs as they were.
    """
    check_output_dir(out, resume=resume, force=force)
    if resume:
        return _resume_state(out, job), False
    state = _fresh_state(job)
    if force and existing_outputs(out):
        return state, True
    start_fresh(out, state)
    return state, False


def _fresh_state(job: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": CHECKPOINT_VERSION,
        "job": job,
        "rows_done": 0,
        "sizes": dict.fromkeys(OUTPUTS, 0),
        "counts": Counts().to_dict(),
        "elapsed_s": 0.0,
        "complete": False,
    }


def start_fresh(out: Path, state: Mapping[str, Any]) -> None:
    """Replace whatever job ``out`` held with an empty one: no summary, the new checkpoint, empty outputs.

    In that order, so that a crash in between leaves a folder a resume can read:
    the new checkpoint (0 bytes of each output) is written before the outputs are
    emptied, and a resume cuts them back to 0.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create output folder '{out}': {error.strerror}") from None
    (out / SUMMARY_FILE).unlink(missing_ok=True)
    write_json_atomic(out / CHECKPOINT_FILE, state)
    for name in OUTPUTS:
        with (out / OUTPUT_FILES[name]).open("wb") as handle:
            os.fsync(handle.fileno())
    fsync_directory(out)


def _resume_state(out: Path, job: dict[str, Any]) -> dict[str, Any]:
    state = read_checkpoint(out)
    check_same_job(out, state, job)
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


class OutputFiles:
    """The three output files of a running job, appended to chunk by chunk.

    Counts the lines and bytes it writes (on top of the checkpoint it resumes
    from), so that the end-of-job check needs no re-read: :meth:`check` compares
    the lines with the job's counts and each file's size on disk with the bytes
    written.
    """

    def __init__(self, out: Path, state: Mapping[str, Any]) -> None:
        self.out = out
        counts = state["counts"]
        self.lines = {name: int(counts[name]) for name in OUTPUTS}
        self.bytes = {name: int(state["sizes"][name]) for name in OUTPUTS}
        self.handles = {name: (out / OUTPUT_FILES[name]).open("ab") for name in OUTPUTS}

    def write(self, buffers: Mapping[str, list[bytes]]) -> None:
        """Append each output's lines, then flush and fsync it (before the checkpoint names its size)."""
        for name, lines in buffers.items():
            if lines:
                handle, data = self.handles[name], b"".join(lines)
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
                self.lines[name] += len(lines)
                self.bytes[name] += len(data)

    def sizes(self) -> dict[str, int]:
        """The size of each file as this job wrote it (what a resume cuts back to)."""
        return dict(self.bytes)

    def check(self, counts: Counts) -> None:
        """The lines written must match the counts, and no file may have changed under the job."""
        for name in OUTPUTS:
            path = self.out / OUTPUT_FILES[name]
            if self.lines[name] != getattr(counts, name):
                raise CriticError(f"{path} holds {self.lines[name]} rows but the job counted "
                                  f"{getattr(counts, name)}; this is a bug in critic")
            written, actual = self.bytes[name], os.fstat(self.handles[name].fileno()).st_size
            on_disk = path.stat().st_size if path.exists() else -1
            if not written == actual == on_disk:
                raise CriticError(f"{path} is {on_disk} bytes but the job wrote {written}; the output folder "
                                  "was changed during the job: start over with --force")

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()
