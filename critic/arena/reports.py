"""Writing a leaderboard: leaderboard.json, leaderboard.csv, report.md and leaderboard.png.

Every file is written under a temporary name and renamed into place, and none holds a
time or a duration, so a rerun of a finished (or killed) arena writes the same bytes.
The figure uses matplotlib's Agg canvas directly, as :mod:`critic.eval.reports` does, so
the caller's matplotlib backend is untouched.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critic.arena.leaderboard import Board, Leaderboard, ModelEntry
from critic.errors import MissingDependencyError
from critic.io.writers import write_bytes_atomic

LEADERBOARD_JSON = "leaderboard.json"
LEADERBOARD_CSV = "leaderboard.csv"
REPORT_MD = "report.md"
FIGURE = "leaderboard.png"
PROBLEMS = "problems.jsonl"
OUTPUT_FILES = (LEADERBOARD_JSON, LEADERBOARD_CSV, REPORT_MD, FIGURE, PROBLEMS)
CSV_SETTINGS = ("judge", "template", "mode", "backend", "baseline", "seed", "bootstrap_rounds", "interval",
                "questions", "comparisons")


@dataclass(frozen=True)
class ReportPaths:
    json: Path
    csv: Path
    markdown: Path
    figure: Path | None


def write_leaderboard(leaderboard: Leaderboard, folder: Path, *, figure: bool = True) -> ReportPaths:
    """All the leaderboard's files in ``folder`` (the figure needs matplotlib)."""
    paths = ReportPaths(folder / LEADERBOARD_JSON, folder / LEADERBOARD_CSV, folder / REPORT_MD,
                        folder / FIGURE if figure else None)
    text = json.dumps(leaderboard.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    write_bytes_atomic(paths.json, text.encode("utf-8", "backslashreplace"))
    write_bytes_atomic(paths.csv, csv_text(leaderboard).encode("utf-8", "backslashreplace"))
    write_bytes_atomic(paths.markdown, markdown(leaderboard).encode("utf-8", "backslashreplace"))
    if paths.figure is not None:
        write_bytes_atomic(paths.figure, figure_png(leaderboard))
    else:
        (folder / FIGURE).unlink(missing_ok=True)  # a figure of an earlier run would be stale
    return paths


def csv_text(leaderboard: Leaderboard) -> str:
    """One row per model and board (``category`` empty for all battles), every figure and the run's settings."""
    settings = {name: leaderboard.settings.get(name) for name in CSV_SETTINGS}
    rows = []
    for board in (leaderboard.overall, *leaderboard.categories):
        for entry in board.entries:
            data = entry.to_dict()
            answers = data.pop("answers") or {}
            data["notes"] = "; ".join(data["notes"])
            rows.append({"category": board.category or "", **data,
                         **{f"answers_{name}": value for name, value in answers.items()}, **settings})
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: _cell(value) for key, value in row.items()} for row in rows)
    return stream.getvalue()


def markdown(leaderboard: Leaderboard) -> str:
    """A short report: what ran, the leaderboard, what the columns mean, and what could not be used."""
    s = leaderboard.settings
    lines = [f"# Arena: {len(leaderboard.models)} models", "",
             f"- judge: {s.get('judge_summary') or s.get('judge') or 'judgments from files'}",
             f"- battles: {s.get('battles')}; {_pairing(leaderboard)}",
             f"- interval: {s.get('interval')}",
             f"- separability: {_num(leaderboard.overall.separability, '%')}", ""]
    lines += board_markdown(leaderboard.overall)
    for board in leaderboard.categories:
        lines += ["", f"## Category `{board.category}`", ""] + board_markdown(board)
    lines += ["", "## What the columns mean", "", *SCORE_NOTES]
    problems = s.get("problems") or {}
    if problems:
        lines += ["", "## Not used", ""]
        lines += [f"- {count} {what}" for what, count in problems.items()]
        lines += [f"(each with where and why in `{PROBLEMS}`)"]
    notes = [f"- {entry.model}: {note}" for entry in leaderboard.models for note in entry.notes]
    if notes:
        lines += ["", "## Notes", "", *notes]
    return "\n".join(lines) + "\n"


SCORE_NOTES = [
    "- **score**: win rate in percent against the baseline (the mean of P(model's answer is better) over its "
    "comparisons: AlpacaEval's weighted win rate, Arena-Hard's mean battle score), or in round robin the "
    "Bradley-Terry win probability against the baseline (or an average model); interval from the bootstrap over "
    "questions.",
    "- **W/T/L**: the judge's labels (a pair whose two orders disagree is a tie); **win rate** = (W + T/2) / n.",
    "- **LC**: length-controlled win rate (AlpacaEval's GLM on the standardised length difference, predicted at "
    "equal length, without its instruction-difficulty term): how often the model would win with answers as long "
    "as the baseline's.",
    "- **style**: Bradley-Terry win rate with Arena-Hard's length and markdown (headers, lists, bold) features held "
    "equal.",
    "- **consistent**: share of comparisons whose two presentation orders agreed; **first shown**: share of orders "
    "won by the answer shown first (50% without position bias).",
]


def _pairing(leaderboard: Leaderboard) -> str:
    baseline = leaderboard.settings.get("baseline")
    if leaderboard.overall.against == "baseline":
        return f"every model against the baseline `{baseline}`"
    return "Bradley-Terry over all battles" + (f", anchored at `{baseline}`" if baseline else "")


def board_markdown(board: Board) -> list[str]:
    header = ("| # | model | score | interval | W / T / L | win rate | soft win rate | LC | style | Elo | "
              "avg length | consistent | first shown | failed |")
    lines = [header, "| ---: | --- |" + " ---: |" * 12]
    for e in board.entries:
        lines.append(f"| {e.rank} | {e.model}{' (baseline)' if e.baseline else ''} | {_num(e.score)} | "
                     f"{_interval(e.ci_low, e.ci_high)} | {e.wins} / {e.ties} / {e.losses} | {_num(e.win_rate)} | "
                     f"{_num(e.soft_win_rate)}{_se(e.soft_win_rate_se)} | {_num(e.lc_win_rate)} | "
                     f"{_num(e.style_score)} | {_num(e.elo, digits=0)} | {_num(e.mean_length, digits=0)} | "
                     f"{_num(e.consistency, '%')} | {_num(e.first_shown_wins, '%')} | {e.failed} |")
    return lines


def figure_png(leaderboard: Leaderboard) -> bytes:
    """Each model's score and interval; beside it, for round robin, the win-rate matrix."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise MissingDependencyError("matplotlib", "eval", "the leaderboard figure (leaderboard.png)") from error
    board = leaderboard.overall
    matrix = board.win_matrix
    panels = 2 if matrix else 1
    figure = Figure(figsize=(6.4 * panels, 0.45 * len(board.entries) + 2.2), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, panels, squeeze=False)[0]
    _score_bars(axes[0], board.entries)
    if matrix:
        _matrix(axes[1], [entry.model for entry in board.entries], matrix)
    figure.suptitle(f"{leaderboard.settings.get('judge_summary') or 'judgments from files'}", fontsize=10)
    stream = io.BytesIO()
    figure.savefig(stream, format="png", dpi=100, metadata={"Software": None})
    return stream.getvalue()


def _score_bars(ax: Any, entries: Sequence[ModelEntry]) -> None:
    names = [entry.model for entry in entries]
    scores = [entry.score if entry.score is not None else 0.0 for entry in entries]
    low = [max(score - (entry.ci_low if entry.ci_low is not None else score), 0.0)
           for score, entry in zip(scores, entries, strict=True)]
    high = [max((entry.ci_high if entry.ci_high is not None else score) - score, 0.0)
            for score, entry in zip(scores, entries, strict=True)]
    positions = list(range(len(entries)))
    ax.barh(positions, scores, xerr=[low, high], color="#4C72B0", alpha=0.8, capsize=3)
    for position, score, above in zip(positions, scores, high, strict=True):
        ax.text(score + above + 1.5, position, f"{score:.1f}", va="center", fontsize=8)
    ax.axvline(50.0, color="grey", linestyle=":", linewidth=1)
    ax.set_yticks(positions, names, fontsize=8)
    ax.invert_yaxis()
    ax.set(xlim=(0, 105), xlabel="score (win rate %, 5%-95% bootstrap interval)", title="Leaderboard")


def _matrix(ax: Any, models: Sequence[str], matrix: Mapping[str, Mapping[str, float | None]]) -> None:
    values = [[(matrix[row].get(column) if row != column else None) for column in models] for row in models]
    shown = [[value if value is not None else float("nan") for value in row] for row in values]
    image = ax.imshow(shown, cmap="RdBu", vmin=0, vmax=100)
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            if value is not None:
                ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(models)), models, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(models)), models, fontsize=7)
    ax.set(title="Row's win rate against column (%)")
    ax.figure.colorbar(image, ax=ax, shrink=0.8)


def problem_lines(problems: Iterable[Mapping[str, Any]]) -> bytes:
    from critic.io.writers import dumps_row

    return b"".join(dumps_row(problem) for problem in problems)


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value)
    return "" if value is None else value


def _num(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def _interval(low: float | None, high: float | None) -> str:
    return "n/a" if low is None or high is None else f"{low:.1f} - {high:.1f}"


def _se(value: float | None) -> str:
    return "" if value is None else f" ± {value:.1f}"
