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
from critic.io.writers import fsync_directory
from critic.jobs.summary import Counts

logger = logging.getLogger("critic")


OUTPUTS = ("kept", "dropped", "rejected")


OUTPUT_FILES = {name: f"{name}.jsonl" for name in OUTPUTS}


SUMMARY_FILE = "summary.json"


CHECKPOINT_FILE = "checkpoint.json"


CHECKPOINT_VERSION = 2  # 2: rejections counted by kind, the judge as a JudgeDescription's fields


def existing_outputs(out: Path) -> list[str]:
    """The names of a filter job's files already in ``out``."""
    return [name for name in (*OUTPUT_FILES.values(), SUMMARY_FILE, CHECKPOINT_FILE) if (out / name).exists()]


def check_output_dir(out: Path, *, resume: bool, force: bool) -> None:
    """Refuse to start where earlier outputs would be lost: they need ``resume`` (with a checkpoint) or ``force``.

    Reads nothing and writes nothing, so a command can call it before loading a model.
    """
    existing = existing_outputs(out)
    if force or not existing or (resume and (out / CHECKPOINT_FILE).exists()):
        return
    only_empty = all(name in OUTPUT_FILES.values() and (out / name).stat().st_size == 0 for name in existing)
    if not (resume and only_empty):  # outputs created just before a first checkpoint: nothing to keep
        hint = ("there is no checkpoint to resume from; use --force to start over" if resume
                else "use --resume to continue that job or --force to overwrite it")
        raise InputError(f"'{out}' already holds outputs of a filter job ({', '.join(existing)}); {hint}")


def _prepare_output_dir(out: Path, job: dict[str, Any], *, resume: bool, force: bool) -> dict[str, Any]:
    """The checkpoint state to start from, after creating, cleaning or cutting back the outputs."""
    check_output_dir(out, resume=resume, force=force)
    if force:
        for name in existing_outputs(out):
            (out / name).unlink()
    elif resume and (out / CHECKPOINT_FILE).exists():
        return _resume_state(out, job)
    checkpoint = out / CHECKPOINT_FILE
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
