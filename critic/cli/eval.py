"""``critic eval``: a judge against human labels.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from critic.cli.common import EXIT_OK, _generative_options, _model_options, _progress
from critic.errors import InputError


def _eval_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "eval",
        help="evaluate a judge on human-labelled pairs: accuracy, position and length bias, calibration, agreement",
        description="Judge labelled pairs and write DIR/report.json, DIR/report.md, DIR/report.png and "
                    "DIR/pairs.jsonl; print the Markdown report. Inputs: PandaLM's three-annotator rows (majority "
                    "vote, ties kept), prompt/response_a/response_b with a label, or chosen/rejected rows "
                    "(RewardBench's subsets get its section scores).",
    )
    parser.add_argument("input", help="JSONL, JSON array, Parquet, CSV, a save_to_disk folder, or a cached hub dataset")
    parser.add_argument("--output-dir", "-o", type=Path, required=True, help="folder for the reports")
    _model_options(parser)
    parser.add_argument("--format", choices=("jsonl", "json", "parquet", "csv", "hf", "hub"),
                        help="input format (default: from the file name)")
    parser.add_argument("--split", help="split of a saved or hub DatasetDict")
    parser.add_argument("--limit", type=int, metavar="N", help="evaluate the first N input rows only")
    parser.add_argument("--reward-model", metavar="R",
                        help="also evaluate the reward model R (hub id or local folder; a RewardJudge, with the same "
                             "--device, --dtype, --batch-size) on the same pairs: its own report goes to "
                             "DIR/reward/, and each report lists the other judge's accuracy and the agreement "
                             "between the two (Cohen's kappa)")
    parser.add_argument("--judge-column", action="append", default=[], metavar="NAME=PATH[#FIELD]",
                        help="another judge's predictions (rows keyed by idx or id, label in FIELD: 1/2/0, A/B/tie; "
                             "anything else counts as a failed prediction); repeatable")
    parser.add_argument("--no-companions", action="store_true",
                        help="do not read the files named <judge>-<input name> beside the input as other judges' "
                             "predictions (PandaLM's gpt-3.5-turbo-testset-v1.json and pandalm-7b-testset-v1.json)")
    parser.add_argument("--tie-policy", choices=("strict", "half"), default="strict",
                        help="strict (default): a tie is right only against a tie; half: 0.5 when one side is a tie")
    parser.add_argument("--bins", type=int, default=10, help="calibration bins (default: 10)")
    parser.add_argument("--no-figure", action="store_true", help="skip report.png (it needs matplotlib)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from critic.eval.evaluate import evaluate_side_by_side
    from critic.eval.pairs import companion_files, load_labelled_pairs, load_predictions
    from critic.eval.reports import markdown, write_reports
    from critic.judges.generative import Judge, PairwiseJudge

    if args.limit is not None and args.limit < 1:
        raise InputError("--limit must be at least 1")
    loaded = load_labelled_pairs(args.input, limit=args.limit, format=args.format, split=args.split)
    if not loaded.pairs:
        first = loaded.skipped[0] if loaded.skipped else "the input is empty"
        raise InputError(f"no labelled pairs in '{args.input}' ({first})")
    sources = {} if args.no_companions else {name: (path, None) for name, path in companion_files(args.input).items()}
    for spec in args.judge_column:
        name, equals, location = spec.partition("=")
        if not equals or not name or not location:
            raise InputError(f"--judge-column must look like NAME=PATH or NAME=PATH#FIELD, got '{spec}'")
        path, _, field = location.partition("#")
        sources[name] = (Path(path), field or None)
    others = [load_predictions(name, path, field=field) for name, (path, field) in sources.items()]
    judges: dict[str, PairwiseJudge] = {
        "generative": Judge.from_pretrained(args.model, **_generative_options(args)),
    }
    if args.reward_model:
        from critic.judges.reward import RewardJudge

        judges["reward"] = RewardJudge.from_pretrained(args.reward_model, device=args.device, dtype=args.dtype,
                                                       batch_size=args.batch_size,
                                                       trust_remote_code=args.trust_remote_code)
    with _progress(len(loaded.pairs) * len(judges), args.quiet, "evaluating") as bar:
        reports = evaluate_side_by_side(judges, loaded.pairs, others=others, tie_policy=args.tie_policy,
                                        bins=args.bins, source=str(args.input), skipped_rows=loaded.skipped,
                                        on_progress=bar.update)
    for name, report in reports.items():
        directory = args.output_dir if name == "generative" else args.output_dir / name
        paths = write_reports(report, directory, figure=not args.no_figure)
        if len(reports) > 1:
            print(f"## {name} judge\n")
        print(markdown(report))
        written = ", ".join(str(p) for p in (paths.json, paths.markdown, paths.figure, paths.records) if p is not None)
        print(f"critic: wrote {written}", file=sys.stderr)
    return EXIT_OK
