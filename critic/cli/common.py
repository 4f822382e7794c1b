"""What every command shares: exit codes, the input it reads, and the checks on its outputs.

Everything here runs before a model loads, so a typo costs a second, not a model load.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from critic.errors import CriticError, InputError, Reason
from critic.io.readers import STDIN
from critic.io.writers import check_parquet_writer, output_format, refuse_inputs_as_outputs
from critic.judges.each import judged_in_place, read_each

if TYPE_CHECKING:
    from critic.io.source import InputSource

EXIT_OK = 0  # everything done
EXIT_ROW_ERRORS = 1  # done, but some rows could not be judged (see their error)
EXIT_USAGE = 2  # a usage or input error: nothing (more) was done
EXIT_INTERNAL = 70  # a bug in critic (EX_SOFTWARE); -v shows the traceback
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_BROKEN_PIPE = 141  # the reader of stdout went away (`critic judge x | head`), as SIGPIPE would
CHUNK_PAIRS = 32  # rows read, judged and written at a time by judge and score


def open_input(args: argparse.Namespace) -> InputSource:
    """The command's input (``-`` is stdin), checked: it exists, its format is known, its first row opens, and
    the columns its field flags name are there."""
    from critic.cli.options import _columns
    from critic.io.checks import check_columns
    from critic.io.source import open_source

    source = open_source(str(args.input), format=args.format, split=args.split, limit=args.limit)
    source.check()
    check_columns(source, _columns(vars(args)))
    return source


def expected_rows(source: InputSource) -> int | None:
    """The row count for a progress bar, when it is cheap to know (never for stdin)."""
    return None if source.location == STDIN else source.count()


def rows_to_do(source: InputSource, *, verb: str) -> tuple[Iterator[tuple[int, Any]], int | None]:
    """The input's rows (its first one read already) and their count when cheap to know.

    An input without a single row is an :class:`InputError` now, before a model loads.
    """
    total = expected_rows(source)
    rows = source.rows() if total != 0 else iter(())
    first = next(rows, None)
    if first is None:
        _close(rows)
        raise _no_rows(source, verb)
    return itertools.chain([first], rows), total


def refuse_empty(source: InputSource, *, verb: str) -> None:
    """An input file without a single row is an :class:`InputError` now, before a model loads.

    For commands that read their input themselves later (``filter``); standard input
    is not read ahead (what is read cannot be read again).
    """
    if source.location == STDIN:
        return
    rows = source.rows()
    try:
        empty = next(rows, None) is None
    finally:
        _close(rows)
    if empty:
        raise _no_rows(source, verb)


def _no_rows(source: InputSource, verb: str) -> InputError:
    where = "on standard input" if source.location == STDIN else f"in '{source.location}'"
    return InputError(f"no rows {where}: nothing to {verb}", kind=Reason.BAD_ARGUMENT)


def _close(rows: Iterator[Any]) -> None:
    close = getattr(rows, "close", None)
    if close is not None:
        close()


def check_output_file(path: Path | None, *, force: bool, inputs: Sequence[str | Path] = ()) -> None:
    """``-o FILE``: not one of the ``inputs``, not a folder, named as JSONL or Parquet (pyarrow installed),
    its folder exists (or can be made) and is writable; an existing file needs --force."""
    if path is None:
        return
    refuse_inputs_as_outputs([path], inputs)
    if output_format(path) == "parquet":
        check_parquet_writer()
    if path.is_dir():
        raise InputError(f"output '{path}' is a folder; give a file name such as '{path / 'out.jsonl'}'")
    if path.exists() and not force:
        raise InputError(f"output file '{path}' already exists; use --force to overwrite it")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"cannot write output file '{path}': permission denied")
    check_output_dir(path.parent, what="folder of output file")


def check_output_dir(path: Path, *, what: str = "output folder") -> None:
    """The folder exists and is writable, or can be created (its nearest existing parent is a writable folder)."""
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"cannot create {what} '{path}': '{existing}' is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == path else f" (in '{existing}')"
        raise InputError(f"cannot write to {what} '{path}'{where}: permission denied")
    # Permission bits do not tell everything (root, read-only or virtual file systems such as /proc):
    # create the folder now and write a scratch file in it, so the job cannot fail there after the model loads.
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise InputError(f"cannot write to {what} '{path}': {error.strerror or type(error).__name__}") from None


def refuse_existing(folder: Path, names: tuple[str, ...], *, what: str, hint: str) -> None:
    """An error naming the files of ``names`` already in ``folder``, if any."""
    present = [name for name in names if (folder / name).exists()]
    if present:
        raise InputError(f"'{folder}' already holds outputs of {what} ({', '.join(present)}); {hint}")


def say(message: str, *, quiet: bool = False) -> None:
    """One line on stderr, led by ``critic:``."""
    if not quiet:
        print(f"critic: {message}", file=sys.stderr, flush=True)


def through_judge(
    chunk: Sequence[tuple[int, Any]], read: Callable[[Any], Any], run: Callable[[list[Any]], Sequence[Any]]
) -> list[Any]:
    """Each row of a chunk read by ``read`` and the readable ones judged by ``run`` in one call (errors in place)."""
    return judged_in_place(read_each([row for _, row in chunk], read), run)


def say_what_rows_are(source: InputSource, columns: Any, *, quiet: bool) -> None:
    """One stderr line on how the first readable row is read (its shape, and the column labels come from)."""
    from critic.io.rows import detect

    if quiet or source.location == STDIN:
        return
    rows = source.rows()
    try:
        for _, row in rows:
            if isinstance(row, CriticError):
                continue
            try:
                say(detect(row, columns).describe())
            except CriticError:
                continue  # an unreadable row is the job's to report, with its row number
            return
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()
