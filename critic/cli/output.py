"""What the commands show: progress (a bar on a terminal, timed lines in a log), the output stream,
and the tables printed at the end.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

from critic.errors import CriticError
from critic.io.writers import RowFile, dumps_row

REASON_ROWS = 8  # reasons listed in the filter table; the rest are summed as "other"
EXAMPLE_CHARS = 72  # an example message in the filter table is cut to this length
DEFAULT_PROGRESS_SECONDS = 30.0  # a progress line this often when stderr is not a terminal


class _StdoutRows:
    """Records as JSONL on stdout (what ``judge`` and ``score`` write without ``-o``)."""

    def __enter__(self) -> _StdoutRows:
        return self

    def write(self, record: Mapping[str, Any]) -> None:
        sys.stdout.write(dumps_row(record).decode("utf-8"))

    def flush(self) -> None:
        sys.stdout.flush()

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()

    def describe(self) -> str:
        return "stdout"


def open_output(path: Path | None) -> Any:
    """Where ``judge`` and ``score`` write their records: ``-o FILE`` (JSONL, or Parquet by its name; it
    replaces FILE only when the command ends without an error), or stdout."""
    return _StdoutRows() if path is None else RowFile(path)


def progress(total: int | None, quiet: bool, description: str, unit: str = "pair", *,
             every: float = DEFAULT_PROGRESS_SECONDS) -> Any:
    """Progress on stderr: a tqdm bar on a terminal; elsewhere (a log file, a pipe) a plain line every
    ``every`` seconds; nothing with --quiet."""
    from tqdm import tqdm

    if not quiet and not sys.stderr.isatty():
        return ProgressLines(total, description, unit, every=every)
    return tqdm(total=total, unit=unit, desc=description, file=sys.stderr, dynamic_ncols=True, disable=quiet)


class ProgressLines:
    """A progress bar for a stderr that is not a terminal: ``critic: judging 64/200 pairs (32%), ...``.

    It takes the calls a tqdm bar takes (``update``, ``n``, ``total``, ``set_postfix``).
    Rows counted by setting ``n`` directly (a resumed job's earlier rows) are not
    part of the rate.
    """

    def __init__(self, total: int | None, description: str, unit: str, *, every: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.description, self.unit, self.every, self.clock = total, description, unit, every, clock
        self.started = self.last = clock()
        self._n = self._before = 0
        self.postfix: dict[str, str] = {}

    @property
    def n(self) -> int:
        return self._n

    @n.setter
    def n(self, value: int) -> None:  # done before this run: not counted in the rate
        self._before += value - self._n
        self._n = value

    def __enter__(self) -> ProgressLines:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set_postfix(self, refresh: bool = True, **values: Any) -> None:
        self.postfix = {key: str(value) for key, value in values.items()}

    def update(self, count: int = 1) -> None:
        self._n += count
        now = self.clock()
        if count and now - self.last >= self.every:
            self.last = now
            print(f"critic: {self.line(now)}", file=sys.stderr, flush=True)

    def line(self, now: float) -> str:
        units = f"{self.unit}s"
        done = f"{self._n}/{self.total}" if self.total else str(self._n)
        share = f" ({100 * self._n / self.total:.0f}%)" if self.total else ""
        parts = [f"{self.description} {done} {units}{share}"]
        elapsed, counted = now - self.started, self._n - self._before
        if elapsed > 0 and counted > 0:
            rate = counted / elapsed
            parts.append(f"{rate:.2f} {units}/s")
            if self.total:
                parts.append(f"{_duration(max(self.total - self._n, 0) / rate)} left")
        parts += [f"{key} {value}" for key, value in self.postfix.items()]
        return ", ".join(parts)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def judge_table(rows: Iterable[tuple[str, Any]]) -> str:
    """``critic judge --table``: one line per pair, its label and each order's verdict."""
    header = f"{'pair':12} {'label':5} {'p_a':>6}  {'consistent':10}"
    lines = [f"{header} per order (verdict as shown, P(response_a better))"]
    for name, result in rows:
        lines.append(f"{name[:12]:12} {_judge_cells(result)}")
    return "\n".join(lines)


def _judge_cells(result: Any) -> str:
    if isinstance(result, CriticError):
        return f"error: {result}"
    orders = "  ".join(f"{o.order}: [[{o.verdict}]] {o.p_a:.3f}" for o in result.orders)
    return f"{result.label:5} {result.p_a:6.3f}  {str(result.consistent):10} {orders}"


def reason_lines(reasons: Mapping[Any, int], examples: Mapping[Any, str] | None = None) -> list[str]:
    """The rejection reasons of a job, most common first: ``count  kind (e.g. one message)``."""
    counted = Counter({_reason_name(kind): count for kind, count in reasons.items()})
    shown = {_reason_name(kind): message for kind, message in (examples or {}).items()}
    lines = []
    for kind, count in counted.most_common(REASON_ROWS):
        example = f"  (e.g. {_cut(cli_wording(shown[kind]))})" if kind in shown and shown[kind] != kind else ""
        lines.append(f"    {count:>8}  {kind}{example}")
    if len(counted) > REASON_ROWS:
        rest = sum(counted.values()) - sum(count for _, count in counted.most_common(REASON_ROWS))
        lines.append(f"    {rest:>8}  other")
    return lines


def _cut(text: str) -> str:
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 3].rstrip() + "..."


def _reason_name(kind: Any) -> str:
    return str(kind.value) if isinstance(kind, Enum) else str(kind)


def filter_table(summary: Any) -> str:
    """The table ``critic filter`` prints at the end, from its :class:`~critic.jobs.summary.FilterSummary`."""
    counts, rates = summary.counts, summary.rates()

    def share(value: float | None) -> str:
        return "" if value is None else f"{100 * value:5.1f}%"

    relabelled = f"  ({counts.relabelled} relabelled)" if summary.policy.get("relabel") else ""
    lines = [
        f"critic filter: {summary.input} -> {summary.output_dir}" + ("  (resumed)" if summary.resumed else ""),
        f"  {'rows in':<12}{counts.rows_in:>8}",
        f"  {'kept':<12}{counts.kept:>8}  {share(rates['kept'])}{relabelled}",
        f"  {'dropped':<12}{counts.dropped:>8}  {share(rates['dropped'])}",
        f"  {'rejected':<12}{counts.rejected:>8}  {share(rates['rejected'])}",
        *reason_lines(counts.reasons, counts.examples),
    ]
    consistent = rates["consistent_of_judged"]
    speed = f", {summary.pairs_per_second:.2f} pairs/s" if summary.pairs_per_second else ""
    lines += [
        f"  {'judged':<12}{counts.judged:>8}  consistent in both orders: {counts.consistent}"
        + (f" ({100 * consistent:.1f}%)" if consistent is not None else ""),
        f"  {'policy':<12}{summary.policy['rule']}",
        f"  {'judge':<12}{summary.judge.summary()}  [{summary.engine} engine]",
        f"  {'time':<12}{summary.elapsed_s:.1f} s{speed}",
        f"  {'outputs':<12}{summary.output_dir}/{{kept,dropped,rejected}}.jsonl, summary.json",
    ]
    if not summary.complete:
        lines.append(f"  stopped at the first {counts.rows_in} rows (--limit); continue with --resume")
    return "\n".join(lines)


def file_table(summary: Any) -> str:
    """The lines ``critic judge`` and ``critic score`` print on stderr at the end (a
    :class:`~critic.cli.files.FileSummary`)."""
    rate = f", {summary.rows / summary.elapsed_s:.2f} rows/s" if summary.elapsed_s > 0 and summary.rows else ""
    lines = [
        f"critic {summary.command}: {summary.input} -> {summary.output}",
        f"  {'rows':<12}{summary.rows:>8}",
        f"  {summary.verb:<12}{summary.done:>8}",
        f"  {'errors':<12}{summary.failed:>8}",
        *reason_lines(summary.reasons, summary.examples),
        f"  {'time':<12}{summary.elapsed_s:.1f} s{rate}",
    ]
    return "\n".join(lines)


# The library words its advice for Python callers (``overflow='truncate'``, ``max_length``); a command-line
# user needs the flag that does the same. Keyed by what the library writes, so new wording is left as it is.
_FLAG_WORDING = (
    (re.compile(r"overflow='truncate'(?: \(--overflow truncate\))?"), "--overflow truncate"),
    (re.compile(r"\braise max_length(?: \(--max-length\))?"), "raise --max-length"),
)


def cli_wording(message: str) -> str:
    """A library message with its Python option names as the command line's flags."""
    for pattern, flag in _FLAG_WORDING:
        message = pattern.sub(flag, message)
    return message


def written(paths: Iterable[Path | None]) -> str:
    """``critic: wrote a, b, c``."""
    return "wrote " + ", ".join(str(path) for path in paths if path is not None)
