"""``critic filter``: the cleaning job.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from critic.backends.loading import DEFAULT_MODEL
from critic.cli.common import EXIT_OK, _generative_options, _model_options, _progress
from critic.errors import CriticError, InputError


def _filter_parser(commands: Any) -> None:
    from critic.jobs.filejob import DEFAULT_CHUNK_SIZE

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
    from critic.io.rows import Columns
    from critic.jobs.engines import LocalEngine
    from critic.jobs.filejob import filter_file
    from critic.jobs.policy import Policy

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
        from critic.jobs.ray import RayEngine

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
    from critic.judges.reward import DEFAULT_REWARD_MODEL

    if args.model == DEFAULT_MODEL:
        args.model = DEFAULT_REWARD_MODEL


def build_judge(factory: str | None, model: str, options: dict[str, Any], *, kind: str = "generative") -> Any:
    """``Judge.from_pretrained(model, **options)`` (``RewardJudge`` for ``kind="reward"``), or
    ``FUNCTION(model, **options)`` for ``--judge-factory``."""
    if factory is None:
        if kind == "reward":
            from critic.judges.reward import RewardJudge

            return RewardJudge.from_pretrained(model, **options)
        from critic.judges.generative import Judge

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
    from critic.judges.generative import Judge

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
