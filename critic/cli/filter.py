"""``critic filter``: the cleaning job.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import sys
from pathlib import Path
from typing import Any

from critic.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_ROW_ERRORS,
    check_output_dir,
    refuse_empty,
    say,
    say_what_rows_are,
)
from critic.cli.judge import INPUTS
from critic.cli.loading import command_judge_factory
from critic.cli.options import (
    add_batch_flags,
    add_engine_flags,
    add_input_flags,
    add_judge_kind_flags,
    add_load_flags,
    add_quiet_flags,
    add_remote_flag,
    at_least_one,
    build_options,
    policy_from_args,
    use_reward_model,
    zero_or_more,
)
from critic.cli.output import filter_table, progress
from critic.errors import CriticError, InputError
from critic.options import LoadOptions


def add_filter_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    from critic.jobs.filejob import DEFAULT_CHUNK_SIZE

    parser = commands.add_parser(
        "filter", parents=parents,
        help="clean a preference dataset: keep the pairs whose 'chosen' the judge confirms",
        description="Judge every pair of a preference dataset (prompt, chosen, rejected) and write "
                    "DIR/kept.jsonl, DIR/dropped.jsonl, DIR/rejected.jsonl (bad input, with row number and "
                    "reason) and DIR/summary.json. Resumable after a crash with --resume. Exit status 1 when any row "
                    "was rejected (see DIR/rejected.jsonl).",
    )
    parser.add_argument("input", help=INPUTS)
    parser.add_argument("--output-dir", "-o", type=Path, required=True, metavar="DIR", help="folder for the outputs")
    add_judge_kind_flags(parser, reward="a scalar reward model (RewardJudge) scores chosen and rejected on their own")
    add_remote_flag(parser)
    add_load_flags(parser)
    add_batch_flags(parser)
    add_input_flags(parser, limit_help="stop after the first N rows (a sample); --resume without it goes on to "
                                       "the end")
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
    job.add_argument("--chunk-size", type=at_least_one, default=DEFAULT_CHUNK_SIZE, metavar="N",
                     help=f"rows judged between checkpoints (default: {DEFAULT_CHUNK_SIZE})")
    again = job.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the job whose checkpoint is in --output-dir (checked against this command's "
                            "input and settings before the model loads; a finished job only shows its summary)")
    again.add_argument("--force", action="store_true",
                       help="start over, replacing the earlier job in --output-dir; its outputs stay as they are "
                            "until the new job has judged its first chunk")
    job.add_argument("--max-rejects", type=zero_or_more, metavar="N", help="stop once more than N rows are rejected")
    add_quiet_flags(job)
    add_engine_flags(parser, ray="on a pool of Ray Data actors")
    parser.set_defaults(run=run_filter)


def run_filter(args: argparse.Namespace) -> int:
    from critic.io.checks import check_columns
    from critic.io.source import open_source
    from critic.jobs.filejob import filter_file

    _check_flags(args)
    options = build_options(args)
    policy = policy_from_args(args)
    source = open_source(args.input, format=args.format, split=args.split)
    source.check()
    check_columns(source, options.columns)
    _check_output_dir(args, source)
    if args.resume:
        finished = _check_resume(args, source, options.columns, policy)
        if finished is not None:
            say(f"the job in '{args.output_dir}' is already complete; nothing to do (its summary follows)",
                quiet=args.quiet)
            return _finish(finished)
    say_what_rows_are(source, options.columns, quiet=args.quiet or args.resume)
    factory = command_judge_factory(args, options, args.judge)
    engine = _engine(args, factory, options.load)
    bar = progress(None, args.quiet, "filtering", unit="row", every=args.progress_every)
    done, first = 0, True

    def on_progress(update: Any) -> None:
        nonlocal done, first
        if bar.total is None and update.total is not None:
            bar.total = update.total
        if first:  # the rows of an earlier run (a resume) are not this run's progress
            bar.n, first = update.rows_done, False
        bar.set_postfix(kept=str(update.kept), dropped=str(update.dropped), rejected=str(update.rejected),
                        refresh=False)
        bar.update(update.rows_done - bar.n)
        done = update.rows_done

    try:
        with bar:
            summary = filter_file(source, args.output_dir, engine=engine, columns=options.columns, policy=policy,
                                  chunk_size=args.chunk_size, resume=args.resume, force=args.force,
                                  max_rejects=args.max_rejects, limit=args.limit, progress=on_progress)
    except KeyboardInterrupt:
        print(f"critic: interrupted after {done} rows; continue with the same command and --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return _finish(summary)


def _finish(summary: Any) -> int:
    """The table on stdout; exit 1 (and where to look) when rows were rejected."""
    print(filter_table(summary))
    rejected = summary.counts.rejected
    if rejected:
        say(f"{rejected} row(s) rejected; see {summary.files['rejected']} (each line has the row and the reason)")
        return EXIT_ROW_ERRORS
    return EXIT_OK


def _check_resume(args: argparse.Namespace, source: Any, columns: Any, policy: Any) -> Any:
    """Before any model loads: the checkpoint is this job's (the same input, columns, policy, and the judge
    as far as the flags tell); a finished job's summary (then nothing is loaded), else ``None``."""
    from critic.jobs import checkpoint
    from critic.jobs.summary import FilterSummary
    from critic.judges import JudgeDescription

    state = checkpoint.read_checkpoint(args.output_dir)
    job: dict[str, Any] = {"input": source.fingerprint(), "columns": columns.to_dict()}
    if not args.judge_factory:  # a factory's judge says what it is only once built
        job["policy"] = policy.for_judge(JudgeDescription(kind=args.judge)).describe()
        if not args.judge_url:
            job["judge"] = _known_judge(args)
    checkpoint.check_same_job(args.output_dir, state, job, partial=True)
    if not state.get("complete"):
        return None
    try:
        return FilterSummary.from_dict(json.loads((args.output_dir / checkpoint.SUMMARY_FILE).read_text("utf-8")),
                                       resumed=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no readable summary (killed just before writing it): the job writes it again


def _known_judge(args: argparse.Namespace) -> dict[str, Any]:
    """The fields of the judge's description that the flags fix (its backend is known once it is loaded)."""
    if args.judge == "reward":
        return {"kind": "reward", "model": args.model}
    described = _judge_description(args, "")
    if described is None:
        return {"kind": "generative", "model": args.model}
    return {key: value for key, value in described.to_dict().items() if key != "backend"}


def _check_flags(args: argparse.Namespace) -> None:
    """Flags that do not go together; with --judge reward, the generative default model means the reward one."""
    if args.judge == "reward":
        use_reward_model(args)
    elif args.min_margin is not None and args.judge_factory is None:
        raise InputError("--min-margin reads a reward model's score margin; use it with --judge reward "
                         "(or --min-p with a generative judge)")
    elif args.no_swap and args.min_p is None:
        raise InputError("--no-swap judges one order only, but the default policy needs both; "
                         "use --min-p with --no-swap")


def _check_output_dir(args: argparse.Namespace, source: Any) -> None:
    """DIR's files are not the input, earlier outputs there need --resume or --force, --resume needs a
    checkpoint, the input has rows, and DIR can be written (said now, before the model loads)."""
    from critic.io.writers import refuse_inputs_as_outputs
    from critic.jobs import checkpoint

    refuse_inputs_as_outputs([args.output_dir / name for name in checkpoint.JOB_FILES], [args.input])
    checkpoint.check_output_dir(args.output_dir, resume=args.resume, force=args.force)
    refuse_empty(source, verb="filter")  # before DIR is made: a refused job leaves nothing behind
    check_output_dir(args.output_dir)  # (creates DIR)


def _engine(args: argparse.Namespace, factory: Any, load: LoadOptions) -> Any:
    """The local engine (with its judge loaded here) or the Ray engine (its actors load their own)."""
    from critic.jobs.engines import LocalEngine

    if args.engine != "ray":
        return LocalEngine(factory())
    from critic.jobs.ray import RayEngine

    from critic.backends.registry import choose_backend

    backend = choose_backend(load)
    local_model = not (args.judge_factory or args.judge_url)
    describe = _judge_description(args, backend.name) if local_model and args.judge != "reward" else None
    # Work every actor would repeat when it loads the model (vLLM's converted demo folder) is done once, here.
    prepare = functools.partial(backend.prepare_model, args.model) if local_model else None
    engine = RayEngine(factory, actors=args.ray_actors, cpus_per_actor=args.ray_cpus_per_actor,
                       gpus_per_actor=args.ray_gpus_per_actor, address=args.ray_address, describe=describe,
                       prepare=prepare)
    if not args.verbose:
        _quiet_ray()
    return engine


def _quiet_ray() -> None:
    # Ray Data logs every execution at INFO level on stderr; keep warnings only.
    try:
        import ray.data  # noqa: F401
    except ImportError:
        return  # the engine will say how to install it
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _judge_description(args: argparse.Namespace, backend: str) -> Any:
    """What Judge.describe() will say, without loading the model (for the Ray engine's driver).

    ``None`` when that cannot be known this way: the engine then builds one judge to ask.
    """
    from critic.judges import Judge

    try:
        judge = Judge(None, template=args.template, mode=args.mode, swap=not args.no_swap,  # type: ignore[arg-type]
                      max_new_tokens=args.max_new_tokens, model_name=args.model)
        return dataclasses.replace(judge.describe(), backend=backend)
    except (CriticError, TypeError, AttributeError):
        return None
