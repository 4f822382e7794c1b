"""What ``judge`` and ``score`` share: rows read, judged a chunk at a time, written, counted and summed up.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from critic.cli.common import EXIT_OK, EXIT_ROW_ERRORS, say, through_judge
from critic.cli.output import cli_wording, file_table, open_output, progress
from critic.errors import CriticError
from critic.judges.each import chunked

Record = dict[str, Any]


@dataclass(frozen=True)
class FileSummary:
    """What a ``judge`` or ``score`` run did, for the lines it prints at the end."""

    command: str
    input: str
    output: str
    rows: int
    done: int
    failed: int
    reasons: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def verb(self) -> str:
        return "scored" if self.command == "score" else "judged"


@dataclass
class _Tally:
    rows: int = 0
    failed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, error: CriticError | None) -> None:
        self.rows += 1
        if error is not None:
            self.failed += 1
            self.reasons[error.kind.value] += 1
            self.examples.setdefault(error.kind.value, cli_wording(str(error)))


def _the_error(result: Any) -> CriticError | None:
    return result if isinstance(result, CriticError) else None


def write_results(
    args: argparse.Namespace,
    rows: Iterable[tuple[int, Any]],
    *,
    total: int | None,
    chunk_size: int,
    read: Callable[[Any], Any],
    run: Callable[[list[Any]], Sequence[Any]],
    record: Callable[[int, Any, Any], Record],
    failure: Callable[[Any], CriticError | None] = _the_error,
) -> FileSummary:
    """Each row read by ``read``, judged by ``run`` a chunk at a time, its ``record`` written to the output.

    The output replaces ``-o FILE`` only once every row is written: an error or
    Ctrl-C midway leaves an earlier FILE as it was (and no new one). ``failure`` says
    whether a row's result failed (default: it is a :class:`CriticError`).
    """
    tally = _Tally()
    started = time.monotonic()
    unit = "row" if args.command == "score" else "pair"
    description = "scoring" if args.command == "score" else "judging"
    every = args.progress_every
    try:
        with open_output(args.output) as out, progress(total, args.quiet, description, unit, every=every) as bar:
            for chunk in chunked(rows, chunk_size):
                for (number, row), result in zip(chunk, through_judge(chunk, read, run), strict=True):
                    out.write(record(number, row, result))
                    tally.add(failure(result))
                out.flush()
                bar.update(len(chunk))
            where = out.describe()
    except KeyboardInterrupt:
        if args.output is not None:
            say(f"interrupted after {tally.rows} rows; '{args.output}' was not written (a file there before is "
                "left as it was)")
        raise
    return FileSummary(args.command, str(args.input), where, tally.rows, tally.rows - tally.failed, tally.failed,
                       tally.reasons, tally.examples, time.monotonic() - started)


def finish(summary: FileSummary, *, quiet: bool) -> int:
    """The summary on stderr (unless --quiet) and the exit code: 1 when any row failed."""
    if not quiet:
        print(file_table(summary), file=sys.stderr, flush=True)
    if summary.failed:
        say(f"{summary.failed} line(s) could not be {summary.verb}; see their 'error' field in {summary.output}")
        return EXIT_ROW_ERRORS
    return EXIT_OK
