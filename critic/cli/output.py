"""What the commands show: progress bars, the output stream, and the tables printed at the end.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import IO, Any

from critic.errors import CriticError, InputError

REASON_ROWS = 8  # reasons listed in the filter table; the rest are summed as "other"
EXAMPLE_CHARS = 72  # an example message in the filter table is cut to this length


class _Stdout:
    def __enter__(self) -> IO[str]:
        return sys.stdout

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()


def open_output(path: Path | None) -> Any:
    """A text stream for ``-o FILE`` (its folder made), or stdout when there is no file."""
    if path is None:
        return _Stdout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("w", encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot write output file '{path}': {error.strerror}") from None


def progress(total: int | None, quiet: bool, description: str, unit: str = "pair") -> Any:
    """A tqdm bar on stderr, shown only on a terminal and without --quiet."""
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=description, file=sys.stderr, dynamic_ncols=True,
                disable=quiet or not sys.stderr.isatty())


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
        example = f"  (e.g. {_cut(shown[kind])})" if kind in shown and shown[kind] != kind else ""
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


def written(paths: Iterable[Path | None]) -> str:
    """``critic: wrote a, b, c``."""
    return "wrote " + ", ".join(str(path) for path in paths if path is not None)
