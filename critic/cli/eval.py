"""``critic eval``: a judge (and optionally a reward model) against human labels.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

from critic.cli.common import EXIT_OK, EXIT_ROW_ERRORS, check_output_dir, refuse_existing, say
from critic.cli.judge import INPUTS
from critic.cli.loading import command_judge_factory, load_judge
from critic.cli.options import (
    add_batch_flags,
    add_input_flags,
    add_judge_flags,
    add_load_flags,
    add_quiet_flags,
    add_remote_flag,
    build_options,
)
from critic.cli.output import progress, written
from critic.errors import InputError, MissingDependencyError
from critic.io.writers import refuse_inputs_as_outputs, staged_files

REPORT_FILES = ("report.json", "report.md", "report.png", "pairs.jsonl")


def add_eval_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "eval", parents=parents,
        help="evaluate a judge on human-labelled pairs: accuracy, position and length bias, calibration, agreement",
        description="Judge labelled pairs and write DIR/report.json, DIR/report.md, DIR/report.png and "
                    "DIR/pairs.jsonl; print the Markdown report. Inputs: PandaLM's three-annotator rows (majority "
                    "vote, ties kept), prompt/response_a/response_b with a label, or chosen/rejected rows "
                    "(RewardBench's subsets get its section scores); the --X-field flags map other columns "
                    "(LLMBar: --prompt-field input --response-a-field output_1 --response-b-field output_2).",
    )
    parser.add_argument("input", help=INPUTS)
    parser.add_argument("--output-dir", "-o", type=Path, required=True, metavar="DIR", help="folder for the reports")
    parser.add_argument("--force", action="store_true", help="overwrite the reports of an earlier run in DIR")
    add_quiet_flags(parser)
    add_judge_flags(parser)
    add_remote_flag(parser)
    parser.add_argument("--reward-model", metavar="R",
                        help="also evaluate the reward model R (hub id or local folder; a RewardJudge with the same "
                             "loading and batching flags; it never truncates, so --overflow does not apply) on the "
                             "same pairs: its own report goes to DIR/reward/, and each report lists the other "
                             "judge's accuracy and the agreement between the two (Cohen's kappa)")
    add_load_flags(parser)
    add_batch_flags(parser)
    add_input_flags(parser, limit_help="evaluate the first N input rows only")
    report = parser.add_argument_group("report")
    report.add_argument("--judge-column", action="append", default=[], metavar="NAME=PATH[#FIELD]",
                        help="another judge's predictions (rows keyed by idx or id, label in FIELD: 1/2/0, A/B/tie; "
                             "anything else counts as a failed prediction); repeatable, one NAME each")
    report.add_argument("--no-companions", action="store_true",
                        help="do not read the files named <judge>-<input name> beside the input as other judges' "
                             "predictions (PandaLM's gpt-3.5-turbo-testset-v1.json and pandalm-7b-testset-v1.json)")
    report.add_argument("--tie-policy", choices=("strict", "half", "rewardbench"), default="strict",
                        help="strict (default): a tie is right only against a tie; half: 0.5 when one side is a tie; "
                             "rewardbench: as RewardBench's generative runner scores (a win 1, a loss 0, a tie or a "
                             "failed judgment 0.5), for its section scores and Score")
    report.add_argument("--failed-as", choices=("wrong", "tie"), default="wrong",
                        help="a failed judgment counts as not correct (wrong, default) or as a predicted tie (tie: "
                             "PandaLM's convention); under --tie-policy rewardbench a failure earns 0.5 either way "
                             "against a gold winner")
    report.add_argument("--bins", type=int, default=10, help="calibration bins (default: 10)")
    report.add_argument("--no-figure", action="store_true", help="skip report.png (it needs matplotlib)")
    parser.set_defaults(run=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from critic.eval.evaluate import evaluate_side_by_side
    from critic.eval.pairs import load_labelled_pairs, load_predictions

    options = build_options(args)
    if args.bins < 1:
        raise InputError(f"--bins must be at least 1, got {args.bins}")
    sources = _prediction_sources(args)
    _check_outputs(args, inputs=[args.input, *(path for path, _ in sources.values())])
    loaded = load_labelled_pairs(args.input, limit=args.limit, format=args.format, split=args.split,
                                 columns=options.columns)
    if not loaded.pairs:
        first = loaded.skipped[0] if loaded.skipped else "the input is empty"
        raise InputError(f"no labelled pairs in '{args.input}' ({first})")
    if loaded.detected is not None:
        say(loaded.detected.describe(), quiet=args.quiet)
    others = [load_predictions(name, path, field=field) for name, (path, field) in sources.items()]
    judges = {"generative": command_judge_factory(args, options, "generative")()}
    if args.reward_model:
        judges["reward"] = load_judge(None, args.reward_model, options, "reward", quiet=args.quiet)
    with progress(len(loaded.pairs) * len(judges), args.quiet, "evaluating", every=args.progress_every) as bar:
        reports = evaluate_side_by_side(judges, loaded.pairs, others=others, tie_policy=args.tie_policy,
                                        failed_as=args.failed_as,
                                        bins=args.bins, source=str(args.input), skipped_rows=loaded.skipped,
                                        on_progress=bar.update)
    _write(args, reports)
    return _exit_code(args, reports, skipped=len(loaded.skipped))


def _exit_code(args: argparse.Namespace, reports: dict[str, Any], *, skipped: int) -> int:
    """1 (saying how many and where to look) when a pair could not be judged or an input row was skipped."""
    problems = []
    for name, report in reports.items():
        failed = sum(1 for record in report.records if record.error is not None)
        if failed:
            where = args.output_dir if name == "generative" else args.output_dir / name
            problems.append(f"{failed} pair(s) could not be judged by the {name} judge (see 'error' in "
                            f"{where / 'pairs.jsonl'})")
    if skipped:
        problems.append(f"{skipped} input row(s) were skipped (see 'skipped_rows' in "
                        f"{args.output_dir / 'report.json'})")
    if problems:
        say("; ".join(problems))
        return EXIT_ROW_ERRORS
    return EXIT_OK


def _check_outputs(args: argparse.Namespace, *, inputs: list[Any]) -> None:
    """No report is an input; DIR can be written and holds no earlier reports (unless --force); the figure
    can be drawn."""
    folders = (args.output_dir, args.output_dir / "reward")
    refuse_inputs_as_outputs([folder / name for folder in folders for name in REPORT_FILES], inputs)
    check_output_dir(args.output_dir)
    if not args.force:
        for folder in folders:
            refuse_existing(folder, REPORT_FILES, what="an evaluation", hint="use --force to overwrite them")
    if not args.no_figure and importlib.util.find_spec("matplotlib") is None:
        raise MissingDependencyError("matplotlib", "eval", "report.png (or pass --no-figure)")


def _prediction_sources(args: argparse.Namespace) -> dict[str, tuple[Path, str | None]]:
    """Other judges' predictions by name: the companion files beside the input, then each --judge-column."""
    from critic.eval.evaluate import GOLD, JUDGE
    from critic.eval.pairs import companion_files

    sources: dict[str, tuple[Path, str | None]] = {}
    if not args.no_companions:
        sources = {name: (path, None) for name, path in companion_files(args.input).items()}
    named: set[str] = set()
    for spec in args.judge_column:
        name, equals, location = spec.partition("=")
        path, _, field = location.partition("#")
        if not equals or not name or not path:
            raise InputError(f"--judge-column must look like NAME=PATH or NAME=PATH#FIELD, got '{spec}'")
        if name in named:
            raise InputError(f"--judge-column names '{name}' twice; give each judge's predictions one name")
        if name in {"generative", "reward", JUDGE, GOLD}:
            raise InputError(f"--judge-column name '{name}' is taken by the report itself; choose another name")
        if not Path(path).is_file():
            raise InputError(f"--judge-column {name}: cannot read predictions file '{path}': no such file")
        named.add(name)
        sources[name] = (Path(path), field or None)
    return sources


def _write(args: argparse.Namespace, reports: dict[str, Any]) -> None:
    """Each judge's reports, written beside each other and moved into place together (an earlier report is
    replaced only once the new one is whole)."""
    from critic.eval.reports import markdown, write_reports

    for name, report in reports.items():
        directory = args.output_dir if name == "generative" else args.output_dir / name
        with staged_files(directory) as staging:
            staged = write_reports(report, staging, figure=not args.no_figure)
        if args.no_figure:
            (directory / "report.png").unlink(missing_ok=True)  # a figure of an earlier run would be stale
        paths = [None if path is None else directory / path.name
                 for path in (staged.json, staged.markdown, staged.figure, staged.records)]
        if len(reports) > 1:
            print(f"## {name} judge\n")
        print(markdown(report))
        say(written(paths))
