"""The ``critic`` command. The only module that prints: it parses arguments,
does the file I/O, draws progress bars and chooses exit codes; the library does
the judging.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import IO, Any

from critic.backends.base import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_BATCH_TOKENS
from critic.errors import CriticError, InputError
from critic.models import DEFAULT_MODEL, DEMO_ALIAS
from critic.templates import DEFAULT_TEMPLATE, builtin_templates
from critic.types import MODES, Pair

EXIT_OK, EXIT_ROW_ERRORS, EXIT_FAILURE = 0, 1, 2
CHUNK_PAIRS = 32


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        _quiet_transformers()
    try:
        return int(args.run(args))
    except CriticError as error:
        print(f"critic: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("critic: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="critic", description="Pairwise preference labels from a judge model.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does")
    commands = parser.add_subparsers(dest="command", required=True)

    judge = commands.add_parser("judge", help="judge the pairs of a JSONL file, one output line per input line")
    judge.add_argument("input", type=Path, help="JSONL file with prompt, response_a, response_b per line ('-' for stdin)")
    judge.add_argument("-o", "--output", type=Path, help="output JSONL (default: stdout)")
    _model_options(judge)
    judge.add_argument("--prompt-field", default="prompt")
    judge.add_argument("--response-a-field", default="response_a")
    judge.add_argument("--response-b-field", default="response_b")
    judge.add_argument("--reference-field", default="reference", help="for reference-guided templates")
    judge.add_argument("--quiet", action="store_true", help="no progress bar")
    judge.add_argument("--table", action="store_true", help="also print a table of the results (for small files)")
    judge.set_defaults(run=run_judge)

    prompt = commands.add_parser("prompt", help="show exactly what the model reads for one pair")
    prompt.add_argument("--model", default=DEMO_ALIAS, help="whose tokenizer and chat template (default: demo)")
    prompt.add_argument("--template", default=DEFAULT_TEMPLATE)
    prompt.add_argument("--mode", choices=MODES, default="score")
    prompt.add_argument("--prompt", required=True)
    prompt.add_argument("--response-a", required=True)
    prompt.add_argument("--response-b", required=True)
    prompt.add_argument("--reference")
    prompt.set_defaults(run=run_prompt)

    templates = commands.add_parser("templates", help="list the built-in judge templates")
    templates.set_defaults(run=run_templates)

    _filter_parser(commands)
    _eval_parser(commands)
    _score_parser(commands)
    return parser


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"hub id, local folder, .gguf file, or '{DEMO_ALIAS}' (default: {DEFAULT_MODEL})")
    parser.add_argument("--template", default=DEFAULT_TEMPLATE, help=f"built-in name or .jinja path (default: {DEFAULT_TEMPLATE})")
    parser.add_argument("--mode", choices=MODES, default="score", help="how verdicts are read (default: score)")
    parser.add_argument("--no-swap", action="store_true", help="judge one order only (no position-swap debiasing)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_MAX_BATCH_SIZE,
                        help=f"prompts per forward pass at most (default: {DEFAULT_MAX_BATCH_SIZE})")
    parser.add_argument("--max-batch-tokens", type=int, default=DEFAULT_MAX_BATCH_TOKENS,
                        help=f"padded tokens per forward pass at most (default: {DEFAULT_MAX_BATCH_TOKENS})")
    parser.add_argument("--max-new-tokens", type=int, default=2048, help="generation budget in generate mode")
    parser.add_argument("--max-length", type=int,
                        help="longest prompt in tokens (default: the model's context length)")
    parser.add_argument("--overflow", choices=("error", "truncate"), default="error",
                        help="a prompt over --max-length: fail that pair with a reason (default), or shorten "
                             "both responses in the middle behind a visible marker")
    parser.add_argument("--device", help="cuda, cpu, ... (default: cuda when available)")
    parser.add_argument("--dtype", help="bf16, fp16 or fp32 (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--trust-remote-code", action="store_true")


def _generative_options(args: argparse.Namespace) -> dict[str, Any]:
    """``Judge.from_pretrained`` keyword arguments from the options of :func:`_model_options`."""
    return {
        "template": args.template,
        "mode": args.mode,
        "swap": not args.no_swap,
        "device": args.device,
        "dtype": args.dtype,
        "batch_size": args.batch_size,
        "max_batch_tokens": args.max_batch_tokens,
        "max_new_tokens": args.max_new_tokens,
        "max_length": args.max_length,
        "overflow": args.overflow,
        "trust_remote_code": args.trust_remote_code,
    }


def run_judge(args: argparse.Namespace) -> int:
    from critic.judge import Judge

    total = None if str(args.input) == "-" else _count_lines(args.input)  # fails fast, before the model loads
    judge = Judge.from_pretrained(args.model, **_generative_options(args))
    fields = {
        "prompt_field": args.prompt_field,
        "response_a_field": args.response_a_field,
        "response_b_field": args.response_b_field,
        "reference_field": args.reference_field,
    }
    rows = _read_jsonl(args.input)
    failures = 0
    table: list[tuple[str, str]] = []
    with _open_output(args.output) as out, _progress(total, args.quiet, "judging") as bar:
        while chunk := list(islice(rows, CHUNK_PAIRS)):
            parsed: list[tuple[int, Any, Pair | CriticError]] = []
            for line_number, row in chunk:
                try:
                    if isinstance(row, CriticError):
                        raise row
                    parsed.append((line_number, row, Pair.from_mapping(row, **fields)))
                except CriticError as error:
                    parsed.append((line_number, row, error))
            pairs = [item for _, _, item in parsed if isinstance(item, Pair)]
            results = iter(judge.compare_each(pairs))
            for line_number, row, item in parsed:
                result = item if isinstance(item, CriticError) else next(results)
                record: dict[str, Any] = {"line": line_number}
                if isinstance(row, dict) and "id" in row:
                    record["id"] = row["id"]
                if isinstance(result, CriticError):
                    failures += 1
                    record["error"] = str(result)
                else:
                    record.update(result.to_dict())
                if args.table:
                    table.append((str(record.get("id", line_number)), _table_cells(result)))
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            bar.update(len(chunk))
    if table:
        print(f"{'pair':12} {'label':5} {'p_a':>6}  {'consistent':10} per order (verdict as shown, P(response_a better))")
        for name, cells in table:
            print(f"{name[:12]:12} {cells}")
    if failures:
        print(f"critic: {failures} line(s) could not be judged; see their 'error' field", file=sys.stderr)
        return EXIT_ROW_ERRORS
    return EXIT_OK


def _table_cells(result: Any) -> str:
    if isinstance(result, CriticError):
        return f"error: {result}"
    orders = "  ".join(f"{o.order}: [[{o.verdict}]] {o.p_a:.3f}" for o in result.orders)
    return f"{result.label:5} {result.p_a:6.3f}  {str(result.consistent):10} {orders}"


def run_prompt(args: argparse.Namespace) -> int:
    from critic import render_prompt

    text = render_prompt(args.prompt, args.response_a, args.response_b, reference=args.reference,
                         tokenizer=args.model, template=args.template, mode=args.mode)
    sys.stdout.write(text + "\n")
    return EXIT_OK


def run_templates(args: argparse.Namespace) -> int:
    from critic.templates import load_template

    for name in builtin_templates():
        template = load_template(name)
        kind = "explanation, then verdict" if template.explanation_first else "verdict only"
        print(f"{name:16} verdicts {'/'.join(template.verdicts):6} {kind}")
    return EXIT_OK


def _filter_parser(commands: Any) -> None:
    from critic.filtering import DEFAULT_CHUNK_SIZE

    parser = commands.add_parser(
        "filter",
        help="clean a preference dataset: keep the pairs whose 'chosen' the judge confirms",
        description="Judge every pair of a preference dataset (prompt, chosen, rejected) and write "
                    "DIR/kept.jsonl, DIR/dropped.jsonl, DIR/rejected.jsonl (bad input, with row number and "
                    "reason) and DIR/summary.json. Resumable after a crash with --resume.",
    )
    parser.add_argument("input", help="JSONL, JSON array, Parquet, CSV, a save_to_disk folder, or a cached hub dataset")
    parser.add_argument("--output-dir", "-o", type=Path, required=True, help="folder for the outputs")
    _model_options(parser)
    parser.add_argument("--judge", choices=("generative", "reward"), default="generative",
                        help="generative (default): a critic model judges both orders of each pair; reward: a "
                             "scalar reward model (RewardJudge) scores chosen and rejected on their own, and --model "
                             "is the reward model (the generative default model becomes "
                             "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2); reward judges read --device, --dtype, "
                             "--batch-size and --trust-remote-code only")
    parser.add_argument("--judge-factory", metavar="MODULE:FUNCTION",
                        help="advanced: build the judge with FUNCTION(model, **options) instead of "
                             "Judge.from_pretrained (RewardJudge.from_pretrained with --judge reward); it must "
                             "return an object with compare_each(pairs) and describe() (a critic.PairwiseJudge)")
    data = parser.add_argument_group("input")
    data.add_argument("--format", choices=("jsonl", "json", "parquet", "csv", "hf", "hub"),
                      help="input format (default: from the file name)")
    data.add_argument("--split", help="split of a saved or hub DatasetDict")
    for name, default in (("prompt", "prompt"), ("chosen", "chosen"), ("rejected", "rejected"),
                          ("response-a", "response_a"), ("response-b", "response_b"), ("label", "label"),
                          ("reference", "reference"), ("history", "history")):
        data.add_argument(f"--{name}-field", default=default, help=f"column holding {name} (default: {default})")
    policy = parser.add_argument_group("policy")
    policy.add_argument("--min-p", type=float,
                        help="keep when P(chosen is better) >= MIN_P (default: keep when the judge prefers "
                             "chosen in both orders; with --judge reward, when score(chosen) - score(rejected) > 0)")
    policy.add_argument("--min-margin", type=float, metavar="M",
                        help="--judge reward only: keep when score(chosen) - score(rejected) >= M (default: keep "
                             "when it is > 0, so equal scores are dropped); with --relabel, swap when it is <= -M "
                             "(default: < 0)")
    policy.add_argument("--relabel", action="store_true",
                        help="swap chosen and rejected where the judge confirms rejected instead, and keep "
                             "(marked critic_relabelled)")
    job = parser.add_argument_group("job")
    job.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE,
                     help=f"rows judged between checkpoints (default: {DEFAULT_CHUNK_SIZE})")
    again = job.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the job whose checkpoint is in --output-dir")
    again.add_argument("--force", action="store_true", help="overwrite earlier outputs in --output-dir")
    job.add_argument("--max-rejects", type=int, metavar="N", help="stop once more than N rows are rejected")
    job.add_argument("--limit", type=int, metavar="N",
                     help="stop after the first N rows (a sample); --resume without it goes on to the end")
    job.add_argument("--quiet", action="store_true", help="no progress bar")
    engine = parser.add_argument_group("engine")
    engine.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: judge in this process; ray: on a pool of Ray Data actors (default: local)")
    engine.add_argument("--ray-address", help="Ray cluster to join (default: start a local one)")
    engine.add_argument("--ray-actors", type=int, default=2, help="judges (actors) in the pool (default: 2)")
    engine.add_argument("--ray-cpus-per-actor", type=float, default=1.0)
    engine.add_argument("--ray-gpus-per-actor", type=float, default=0.0, help="1 on a GPU cluster")
    parser.set_defaults(run=run_filter)


def run_filter(args: argparse.Namespace) -> int:
    from critic.data import Columns
    from critic.filtering import LocalEngine, Policy, filter_file

    if args.judge == "reward":
        _default_reward_model(args)
        if args.overflow != "error":
            raise InputError("--overflow truncate shortens a generative judge's prompt; a reward model's "
                             "conversation over --max-length fails that row. Drop --overflow with --judge reward")
    elif args.min_margin is not None and args.judge_factory is None:
        raise InputError("--min-margin reads a reward model's score margin; use it with --judge reward "
                         "(or --min-p with a generative judge)")
    elif args.no_swap and args.min_p is None:
        raise InputError("--no-swap judges one order only, but the default policy needs both; "
                         "use --min-p with --no-swap")
    if args.max_rejects is not None and args.max_rejects < 0:
        raise InputError("--max-rejects must be 0 or more")
    columns = Columns(prompt=args.prompt_field, chosen=args.chosen_field, rejected=args.rejected_field,
                      response_a=args.response_a_field, response_b=args.response_b_field, label=args.label_field,
                      reference=args.reference_field, history=args.history_field)
    policy = Policy(min_p=args.min_p, relabel=args.relabel, min_margin=args.min_margin)
    factory = _judge_factory(args)
    engine: Any
    if args.engine == "ray":
        from critic.ray_engine import RayEngine

        engine = RayEngine(factory, actors=args.ray_actors, cpus_per_actor=args.ray_cpus_per_actor,
                           gpus_per_actor=args.ray_gpus_per_actor, address=args.ray_address,
                           describe=None if args.judge_factory or args.judge == "reward"
                           else _judge_description(args))
        if not args.verbose:
            _quiet_ray()
    else:
        engine = LocalEngine(factory())
    bar = _progress(None, args.quiet, "filtering")
    bar.unit = "row"
    done = 0

    def progress(update: Any) -> None:
        nonlocal done
        if bar.total is None and update.total is not None:
            bar.total = update.total
        bar.set_postfix(kept=str(update.kept), dropped=str(update.dropped), rejected=str(update.rejected),
                        refresh=False)
        bar.update(update.rows_done - bar.n)
        done = update.rows_done

    try:
        with bar:
            summary = filter_file(args.input, args.output_dir, engine=engine, format=args.format, split=args.split,
                                  columns=columns, policy=policy, chunk_size=args.chunk_size, resume=args.resume,
                                  force=args.force, max_rejects=args.max_rejects, limit=args.limit,
                                  progress=progress)
    except KeyboardInterrupt:
        print(f"critic: interrupted after {done} rows; continue with the same command and --resume", file=sys.stderr)
        return 130
    print(_filter_table(summary))
    return EXIT_OK


def _judge_factory(args: argparse.Namespace) -> Any:
    """A picklable zero-argument callable that builds the judge (Ray actors call it too)."""
    import functools

    if args.judge == "reward":
        options = {"device": args.device, "dtype": args.dtype, "batch_size": args.batch_size,
                   "max_length": args.max_length, "trust_remote_code": args.trust_remote_code}
    else:
        options = _generative_options(args)
    return functools.partial(build_judge, args.judge_factory, args.model, options, kind=args.judge)


def _default_reward_model(args: argparse.Namespace) -> None:
    """With ``--judge reward``, the generative default ``--model`` stands for the default reward model."""
    from critic.reward import DEFAULT_REWARD_MODEL

    if args.model == DEFAULT_MODEL:
        args.model = DEFAULT_REWARD_MODEL


def build_judge(factory: str | None, model: str, options: dict[str, Any], *, kind: str = "generative") -> Any:
    """``Judge.from_pretrained(model, **options)`` (``RewardJudge`` for ``kind="reward"``), or
    ``FUNCTION(model, **options)`` for ``--judge-factory``."""
    if factory is None:
        if kind == "reward":
            from critic.reward import RewardJudge

            return RewardJudge.from_pretrained(model, **options)
        from critic.judge import Judge

        return Judge.from_pretrained(model, **options)
    import importlib

    module_name, _, function_name = factory.partition(":")
    if not module_name or not function_name:
        raise InputError(f"--judge-factory must look like MODULE:FUNCTION, got '{factory}'")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise InputError(f"cannot load --judge-factory '{factory}': {error}") from None
    try:
        judge = function(model, **options)
    except TypeError as error:
        raise InputError(f"--judge-factory '{factory}' cannot be called as FUNCTION(model, **options): "
                         f"{error}") from None
    if not callable(getattr(judge, "compare_each", None)) or not callable(getattr(judge, "describe", None)):
        raise InputError(f"--judge-factory '{factory}' returned {type(judge).__name__}, which has no "
                         "compare_each(pairs) and describe()")
    return judge


def _quiet_ray() -> None:
    # Ray Data logs every execution at INFO level on stderr; keep warnings only.
    try:
        import ray.data  # noqa: F401
    except ImportError:
        return  # the engine will say how to install it
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _judge_description(args: argparse.Namespace) -> dict[str, Any] | None:
    """What Judge.describe() will say, without loading the model (for the Ray engine's driver).

    ``None`` when that cannot be known this way: the engine then builds one judge to ask.
    """
    from critic.judge import Judge

    try:
        judge = Judge(None, template=args.template, mode=args.mode, swap=not args.no_swap,  # type: ignore[arg-type]
                      max_new_tokens=args.max_new_tokens, model_name=args.model)
        return judge.describe()
    except (CriticError, TypeError, AttributeError):
        return None


def _filter_table(summary: Any) -> str:
    counts, rates = summary.counts, summary.rates()

    def share(value: float | None) -> str:
        return "" if value is None else f"{100 * value:5.1f}%"

    judge = summary.judge
    judge_text = " · ".join(str(judge[key]) for key in ("model", "template", "mode") if judge.get(key))
    if judge.get("kind") == "reward":
        judge_text += " · reward model"
    if judge.get("swap") is not None:
        judge_text += " · " + ("both orders" if judge["swap"] else "one order")
    lines = [
        f"critic filter: {summary.input} -> {summary.output_dir}" + ("  (resumed)" if summary.resumed else ""),
        f"  {'rows in':<12}{counts.rows_in:>8}",
        f"  {'kept':<12}{counts.kept:>8}  {share(rates['kept'])}"
        + (f"  ({counts.relabelled} relabelled)" if summary.policy.get("relabel") else ""),
        f"  {'dropped':<12}{counts.dropped:>8}  {share(rates['dropped'])}",
        f"  {'rejected':<12}{counts.rejected:>8}  {share(rates['rejected'])}",
    ]
    for kind, count in counts.reasons.most_common(8):
        lines.append(f"    {count:>8}  {kind}")
    if len(counts.reasons) > 8:
        lines.append(f"    {sum(counts.reasons.values()) - sum(c for _, c in counts.reasons.most_common(8)):>8}  other")
    consistent = rates["consistent_of_judged"]
    lines += [
        f"  {'judged':<12}{counts.judged:>8}  consistent in both orders: {counts.consistent}"
        + (f" ({100 * consistent:.1f}%)" if consistent is not None else ""),
        f"  {'policy':<12}{summary.policy['rule']}",
        f"  {'judge':<12}{judge_text}  [{summary.engine} engine]",
        f"  {'time':<12}{summary.elapsed_s:.1f} s"
        + (f", {summary.pairs_per_second:.2f} pairs/s" if summary.pairs_per_second else ""),
        f"  {'outputs':<12}{summary.output_dir}/{{kept,dropped,rejected}}.jsonl, summary.json",
    ]
    if not summary.complete:
        lines.append(f"  stopped at the first {counts.rows_in} rows (--limit); continue with --resume")
    return "\n".join(lines)


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
    from critic.evaluation import companion_files, evaluate_side_by_side, load_labelled_pairs, load_predictions
    from critic.judge import Judge, PairwiseJudge
    from critic.reports import markdown, write_reports

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
        from critic.reward import RewardJudge

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


def _score_parser(commands: Any) -> None:
    from critic.backends.reward import DEFAULT_REWARD_MODEL

    parser = commands.add_parser(
        "score",
        help="add a reward-model score to every row of a JSONL file of conversations",
        description="Score each row with a reward model and write the row back with a score column. A row "
                    "is a conversation (a 'messages' list ending with the assistant's response) or a prompt "
                    "and a response (with optional 'history' turns before the prompt).",
    )
    parser.add_argument("input", type=Path, help="JSONL file, one row per line ('-' for stdin)")
    parser.add_argument("-o", "--output", type=Path, help="output JSONL (default: stdout)")
    parser.add_argument("--model", default=DEFAULT_REWARD_MODEL,
                        help=f"reward model: hub id or local folder (default: {DEFAULT_REWARD_MODEL})")
    parser.add_argument("--score-field", default="reward", help="name of the added column (default: reward)")
    parser.add_argument("--messages-field", default="messages")
    parser.add_argument("--prompt-field", default="prompt")
    parser.add_argument("--response-field", default="response")
    parser.add_argument("--history-field", default="history")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_MAX_BATCH_SIZE,
                        help=f"conversations per forward pass at most (default: {DEFAULT_MAX_BATCH_SIZE})")
    parser.add_argument("--max-length", type=int, help="longest conversation in tokens (default: the model's context)")
    parser.add_argument("--device", help="cuda, cpu, ... (default: cuda when available)")
    parser.add_argument("--dtype", help="bf16, fp16 or fp32 (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_score)


def run_score(args: argparse.Namespace) -> int:
    from critic.reward import RewardJudge, conversation_from_row

    total = None if str(args.input) == "-" else _count_lines(args.input)  # fails fast, before the model loads
    judge = RewardJudge.from_pretrained(args.model, device=args.device, dtype=args.dtype, batch_size=args.batch_size,
                                        max_length=args.max_length, trust_remote_code=args.trust_remote_code)
    fields = {"messages_field": args.messages_field, "prompt_field": args.prompt_field,
              "response_field": args.response_field, "history_field": args.history_field}
    rows = _read_jsonl(args.input)
    failures = 0
    with _open_output(args.output) as out, _progress(total, args.quiet, "scoring") as bar:
        while chunk := list(islice(rows, max(CHUNK_PAIRS, args.batch_size))):
            conversations: list[Any] = []
            for _, row in chunk:
                try:
                    if isinstance(row, CriticError):
                        raise row
                    conversations.append(conversation_from_row(row, **fields))
                except CriticError as error:
                    conversations.append(error)
            scored = iter(judge.score_each([c for c in conversations if not isinstance(c, CriticError)]))
            for (line_number, row), item in zip(chunk, conversations, strict=True):
                result = item if isinstance(item, CriticError) else next(scored)
                # The row comes back whole with the score added; a row that is not an object cannot.
                record: dict[str, Any] = dict(row) if isinstance(row, dict) else {"line": line_number}
                record[args.score_field] = None if isinstance(result, CriticError) else result
                if isinstance(result, CriticError):
                    failures += 1
                    record["error"] = f"line {line_number}: {result}" if isinstance(row, dict) else str(result)
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            bar.update(len(chunk))
    if failures:
        print(f"critic: {failures} line(s) could not be scored; see their 'error' field", file=sys.stderr)
        return EXIT_ROW_ERRORS
    return EXIT_OK


def _read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed row or InputError) for every non-blank line."""
    stream = sys.stdin.buffer if str(path) == "-" else _open_input(path)
    with stream:
        for line_number, raw in enumerate(stream, start=1):
            if not raw.strip():
                continue
            try:
                yield line_number, json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as error:
                yield line_number, InputError(f"line {line_number} is not valid UTF-8 ({error.reason} at byte {error.start})")
            except json.JSONDecodeError as error:
                yield line_number, InputError(f"line {line_number} is not valid JSON ({error.msg} at column {error.colno})")


def _open_input(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as error:
        raise InputError(f"cannot read input file '{path}': {error.strerror}") from error


def _count_lines(path: Path) -> int:
    with _open_input(path) as stream:
        return sum(1 for raw in stream if raw.strip())


class _Stdout:
    def __enter__(self) -> IO[str]:
        return sys.stdout

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()


def _open_output(path: Path | None) -> Any:
    if path is None:
        return _Stdout()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("w", encoding="utf-8")


def _progress(total: int | None, quiet: bool, description: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="pair", desc=description, file=sys.stderr, dynamic_ncols=True,
                disable=quiet or not sys.stderr.isatty())


def _quiet_transformers() -> None:
    # transformers draws a bare tqdm bar while de-quantising GGUF weights; tqdm reads
    # TQDM_DISABLE when first imported, and critic's own bars pass ``disable`` explicitly.
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


if __name__ == "__main__":
    sys.exit(main())
