"""Writing an :class:`~critic.eval.evaluate.EvalReport`: JSON, a Markdown table, a PNG figure.

The figure needs matplotlib (``pip install 'critic[eval]'``), imported only when
a figure is drawn. It renders with the Agg canvas directly, never through
pyplot, so drawing a report does not change the caller's matplotlib backend.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from critic.errors import MissingDependencyError
from critic.eval.evaluate import GOLD, JUDGE, EvalReport, SliceReport
from critic.eval.metrics import (
    F1,
    Agreement,
    Rate,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

logger = logging.getLogger("critic")

__all__ = ["ReportPaths", "markdown", "write_figure", "write_json", "write_markdown", "write_records", "write_reports"]

TIE_POLICY_TEXT = {
    "strict": "strict: a pair counts as right only when the label matches exactly (a gold tie needs a predicted tie)",
    "half": "half: a predicted tie against a winner, or a winner against a gold tie, earns 0.5",
    "rewardbench": "rewardbench: as RewardBench's generative runner scores a pair (a win 1, a loss 0, a tie or a "
                   "failed judgment 0.5)",
}

FAILED_AS_TEXT = {
    "wrong": "failed judgments count as not correct (never guessed)",
    "tie": "failed judgments count as a predicted tie (PandaLM's convention)",
}


@dataclass(frozen=True)
class ReportPaths:
    json: Path
    markdown: Path
    figure: Path | None
    records: Path


def write_reports(report: EvalReport, directory: str | Path, *, figure: bool = True) -> ReportPaths:
    """``report.json``, ``report.md``, ``report.png`` and ``pairs.jsonl`` in ``directory``.

    With ``figure=False`` no figure is drawn, and a ``report.png`` left there by
    an earlier run is removed (it would show another evaluation).
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(folder / "report.json", folder / "report.md", folder / "report.png" if figure else None,
                        folder / "pairs.jsonl")
    if paths.figure is None and (folder / "report.png").is_file():
        (folder / "report.png").unlink()
        logger.info("removed the stale %s (no figure this time)", folder / "report.png")
    write_json(report, paths.json)
    write_markdown(report, paths.markdown)
    write_records(report, paths.records)
    if paths.figure is not None:
        write_figure(report, paths.figure)
    logger.info("wrote the evaluation reports to %s", folder)
    return paths


# Text that holds a lone surrogate (an input's "\ud800") is written with it escaped, never a crash.
def write_json(report: EvalReport, path: str | Path) -> None:
    text = json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
    Path(path).write_bytes(text.encode("utf-8", "backslashreplace"))


def write_records(report: EvalReport, path: str | Path) -> None:
    """One JSON line per judged pair (its key, gold, prediction, p_a, per-order detail, error)."""
    with Path(path).open("wb") as out:
        for record in report.records:
            out.write((json.dumps(record.to_dict(), ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace"))


def write_markdown(report: EvalReport, path: str | Path) -> None:
    Path(path).write_bytes(markdown(report).encode("utf-8", "backslashreplace"))


# --------------------------------------------------------------------------- Markdown


def markdown(report: EvalReport) -> str:
    """The report as Markdown: the main table, then sections, agreement and calibration."""
    judge = report.judge
    name = judge.model or judge.kind or "judge"
    overall = report.overall
    setup = ", ".join(_setting(key, value) for key, value in judge.to_dict().items() if key != "model" and value != "")
    lines = [
        f"## Judge `{name}` on `{Path(report.source).name or 'pairs'}`",
        "",
        f"{overall.n} pairs judged ({setup}); {overall.predicted.get('failed', 0)} failed"
        f"{f', {len(report.skipped_rows)} input rows skipped' if report.skipped_rows else ''}"
        f"{f', {report.seconds:.1f} s' if report.seconds is not None else ''}. "
        f"Tie policy {TIE_POLICY_TEXT[report.tie_policy]}; failure policy `{report.failed_as}`: "
        f"{FAILED_AS_TEXT[report.failed_as]}.",
        "",
        "| slice | pairs | A / B / tie / failed | accuracy | accuracy (gold has a winner) | macro-F1 "
        "| p_a leans to the winner | position-consistent | first shown wins | longer wins: judge / gold "
        "| P(longer better) | ECE of p_a |",
        "| --- | ---: | :---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [_slice_row(s) for s in (overall, *report.subsets)]
    lines += _class_lines(report) + _group_lines(report) + _rewardbench2_lines(report) + _section_lines(report)
    lines += _agreement_lines(report)
    lines += ["", f"Calibration of p_a (overall; {overall.calibration.n} pairs with a gold winner, "
                  f"Brier {_num(overall.calibration.brier)}):", "",
              "| p_a bin | pairs | mean p_a | share where response A is better |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {b.lower:.1f}-{b.upper:.1f} | {b.n} | {_num(b.mean_p)} | {_num(b.observed)} |"
              for b in overall.calibration.bins if b.n]
    lines += ["", "p_a leans to the winner: among pairs with a gold winner, how often p_a (averaged over both orders) "
                  "is on the winner's side of 0.5, ties and all (0.5 = no signal). "
                  "Position-consistent: both presentation orders gave the same outcome. First shown wins: share of "
                  "order judgments won by the response shown first (0.5 = no position bias). Longer wins: among pairs "
                  "of unequal length (characters), how often the longer response wins by the judge's labels and by the "
                  "gold labels. ECE: expected calibration error of p_a over 10 bins.", ""]
    return "\n".join(lines)


def _slice_row(s: SliceReport) -> str:
    counts = " / ".join(str(s.predicted.get(k, 0)) for k in ("A", "B", "tie", "failed"))
    length = f"{_pct(s.length.judge_longer_wins.value)} / {_pct(s.length.gold_longer_wins.value)}"
    return (f"| {s.name} | {s.n} | {counts} | {_pct(s.accuracy.accuracy)} | {_pct(s.accuracy_decided.accuracy)} "
            f"| {_f1(s.f1)} | {_rate(s.leaning)} | {_rate(s.consistency)} | {_rate(s.first_shown_wins)} | {length} "
            f"| {_num(s.length.mean_p_longer)} | {_num(s.calibration.ece)} |")


def _class_lines(report: EvalReport) -> list[str]:
    f1 = report.overall.f1
    if f1 is None or not f1.classes:
        return []
    lines = ["", f"Per-label precision and recall (overall; macro-F1 {_f1(f1)} is the mean F1 over the labels "
                 f"{' / '.join(f1.labels)}, those in the gold labels or the predictions; failures as "
                 f"`{f1.failed_as}`):", "",
             "| label | gold pairs | predicted | precision | recall | F1 |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {c.label} | {c.support} | {c.predicted} | {_pct(c.precision)} | {_pct(c.recall)} | {_pct(c.f1)} |"
              for c in f1.classes]
    return lines


def _group_lines(report: EvalReport) -> list[str]:
    slices = [s for s in (report.overall, *report.subsets) if s.groups is not None]
    if not slices:
        return []
    lines = ["", "Accuracy over rows (RewardBench 2's rule: a row that expands into several pairs, its chosen answer "
                 "against each rejected one, earns 1 when the chosen answer wins every pair, 1/k when it ties at the "
                 "top with k answers in all, 0 when it loses one, and the chance credit 1/n of its n answers when a "
                 "pair failed (0.25 for four); a Ties row earns 1 when each correct answer beats every incorrect "
                 "one; a row of one pair counts as itself):", "",
             "| slice | rows | of them groups | pairs | rows with a failed pair | accuracy over rows |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {s.name} | {g.n} | {g.grouped} | {g.pairs} | {g.failed} | {_pct(g.accuracy)} |"
              for s in slices if (g := s.groups) is not None]
    return lines


def _rewardbench2_lines(report: EvalReport) -> list[str]:
    scores = report.rewardbench2
    if scores is None:
        return []
    lines = _table("RewardBench 2 (scored as its own code scores: `reroll_and_score_dataset` for the best-of-4 "
                   "subsets, `process_single_model` for Ties; a failed row 0.25, as its generative runner):",
                   ("subset", "score", "rows", "rows with a failed pair", "note"), "-:::-",
                   [(s.name, _pct(s.score), s.rows, s.failed_rows, s.note) for s in scores.subsets])
    if scores.overall is not None:
        lines += [f"| **Overall** | {_pct(scores.overall)} | | | the mean of the six subsets, as on the RewardBench 2 "
                  "leaderboard |"]
    else:
        lines += ["", f"No RewardBench 2 overall score: the leaderboard's is the mean of all six subsets, and "
                      f"{', '.join(scores.missing)} {'is' if len(scores.missing) == 1 else 'are'} missing or not "
                      "scored."]
    return lines


def _section_lines(report: EvalReport) -> list[str]:
    if not report.sections:
        return []
    lines = _table("RewardBench sections (subset accuracies weighted as in RewardBench's `EXAMPLE_COUNTS`, as its "
                   "`calculate_scores_per_section` does):", ("section", "score", "pairs", "subsets present"), "-::-",
                   [(s.name, _pct(s.score), s.n, ", ".join(s.subsets)) for s in report.sections])
    if report.rewardbench_score is not None:
        lines.append(f"| **Score** | {_pct(report.rewardbench_score)} | | |")
        lines += ["", "Score: the mean of the four section scores, as on RewardBench's current leaderboard. (Its "
                      "older leaderboard also weighted Prior Sets 0.5: (sum of the four + 0.5 x prior) / 4.5; critic "
                      f"does not compute that one.) Tie policy `{report.tie_policy}`."]
    else:
        lines += ["", "No Score: RewardBench's Score is the mean of all four sections, and not all four are present."]
    return lines


def _agreement_lines(report: EvalReport) -> list[str]:
    kappas = {frozenset((a.first, a.second)): a for a in report.agreement}
    if not report.other_judges:
        return []
    lines = ["", "Other judges on the same pairs, and agreement (Cohen's kappa over A / B / tie; pairs where either "
                 "side failed are left out):", "",
             "| judge | failed | accuracy | accuracy (gold has a winner) | macro-F1 | kappa with gold "
             "| kappa with this judge |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    overall = report.overall
    lines.append(f"| this judge (`{report.judge.model or JUDGE}`) | {overall.accuracy.failed} "
                 f"| {_pct(overall.accuracy.accuracy)} | {_pct(overall.accuracy_decided.accuracy)} "
                 f"| {_f1(overall.f1)} | {_kappa(kappas.get(frozenset((GOLD, JUDGE))))} | |")
    for other in report.other_judges:
        lines.append(f"| {other.name} | {other.accuracy.failed} | {_pct(other.accuracy.accuracy)} "
                     f"| {_pct(other.accuracy_decided.accuracy)} | {_f1(other.f1)} "
                     f"| {_kappa(kappas.get(frozenset((GOLD, other.name))))} "
                     f"| {_kappa(kappas.get(frozenset((JUDGE, other.name))))} |")
    return lines


def _table(intro: str, header: tuple[str, ...], align: str, rows: list[tuple[object, ...]]) -> list[str]:
    """A Markdown table after a blank line and its introduction; ``align`` has one ``-`` (left) or ``:`` (right)
    per column."""
    if len(align) != len(header):
        raise ValueError(f"a table of {len(header)} columns needs {len(header)} alignments, got {align!r}")
    rules = ["---" if a == "-" else "---:" for a in align]
    return ["", intro, "", f"| {' | '.join(header)} |", f"| {' | '.join(rules)} |",
            *(f"| {' | '.join(str(value) for value in row)} |" for row in rows)]


def _setting(key: str, value: object) -> str:
    if isinstance(value, bool):
        return f"{key} {'on' if value else 'off'}"
    return f"{key} `{value}`"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _f1(f1: F1 | None) -> str:
    return "n/a" if f1 is None else _pct(f1.macro_f1)


def _rate(rate: Rate) -> str:
    return "n/a" if rate.value is None else f"{_pct(rate.value)} ({rate.hits:g}/{rate.n})"


def _kappa(agreement: Agreement | None) -> str:
    if agreement is None or agreement.kappa is None:
        return "n/a"
    return f"{agreement.kappa:.3f} (n={agreement.n})"


# --------------------------------------------------------------------------- figure


def write_figure(report: EvalReport, path: str | Path) -> None:
    """A PNG: reliability diagram of p_a, bias and accuracy bars, and kappa bars when there are other judges."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise MissingDependencyError("matplotlib", "eval", "drawing the evaluation figure (report.png)") from error
    panels = 3 if report.other_judges else 2
    figure = Figure(figsize=(5.2 * panels, 4.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, panels)
    _reliability(axes[0], report.overall)
    _bias_bars(axes[1], report.overall)
    if panels == 3:
        _kappa_bars(axes[2], report)
    name = report.judge.model or "judge"
    figure.suptitle(f"{name} on {Path(report.source).name or 'pairs'}: {report.overall.n} pairs", fontsize=12)
    figure.savefig(str(path), dpi=110)


def _reliability(ax: Axes, overall: SliceReport) -> None:
    bins = overall.calibration.bins
    width = bins[0].upper - bins[0].lower
    filled = [b for b in bins if b.n]
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    ax.bar([b.lower for b in filled], [b.observed or 0.0 for b in filled], width=width, align="edge",
           color="#4C72B0", alpha=0.75, edgecolor="white", label="observed share A better")
    ax.plot([b.mean_p or 0.0 for b in filled], [b.observed or 0.0 for b in filled], "o", color="#C44E52",
            label="bin mean p_a")
    for b in filled:
        ax.annotate(f"n={b.n}", (b.lower + width / 2, (b.observed or 0.0) + 0.02), ha="center", fontsize=7)
    ax.set(xlim=(0, 1), ylim=(0, 1.08), xlabel="p_a (judge's probability that A is better)",
           ylabel="share of pairs where A is better", title=f"Reliability of p_a (ECE {_num(overall.calibration.ece)})")
    ax.legend(loc="upper left", fontsize=7)


def _bias_bars(ax: Axes, overall: SliceReport) -> None:
    items: list[tuple[str, float | None, str]] = [
        ("accuracy", overall.accuracy.accuracy, "#55A868"),
        ("accuracy (gold winner)", overall.accuracy_decided.accuracy, "#55A868"),
        ("p_a leans to winner", overall.leaning.value, "#55A868"),
        ("position-consistent", overall.consistency.value, "#4C72B0"),
        ("first shown wins", overall.first_shown_wins.value, "#C44E52"),
        ("longer wins: judge", overall.length.judge_longer_wins.value, "#DD8452"),
        ("longer wins: gold", overall.length.gold_longer_wins.value, "#8C8C8C"),
        ("P(longer better)", overall.length.mean_p_longer, "#DD8452"),
    ]
    labels = [label for label, _, _ in items]
    values = [value if value is not None else 0.0 for _, value, _ in items]
    positions = list(range(len(items)))
    ax.barh(positions, values, color=[color for _, _, color in items])
    for position, (_, value, _) in zip(positions, items, strict=True):
        ax.text((value or 0.0) + 0.01, position, _pct(value), va="center", fontsize=8)
    ax.axvline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_yticks(positions, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1.12), xlabel="share of pairs (dotted: 0.5)", title="Accuracy and biases")


def _kappa_bars(ax: Axes, report: EvalReport) -> None:
    kappas = {frozenset((a.first, a.second)): a.kappa for a in report.agreement}
    raters = [JUDGE] + [o.name for o in report.other_judges]
    values = [kappas.get(frozenset((GOLD, rater))) for rater in raters]
    names = [report.judge.model or JUDGE] + raters[1:]
    positions = list(range(len(raters)))
    ax.barh(positions, [v or 0.0 for v in values], color=["#4C72B0"] + ["#8C8C8C"] * (len(raters) - 1))
    for position, value in zip(positions, values, strict=True):
        shown = "n/a" if value is None else f"{value:.2f}"
        ax.text(max(value or 0.0, 0.0) + 0.01, position, shown, va="center", fontsize=8)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(positions, names, fontsize=8)
    ax.invert_yaxis()
    ax.set(xlim=(min(-0.1, *[v or 0.0 for v in values]), 1.05), xlabel="Cohen's kappa with the gold labels",
           title="Agreement with gold")
