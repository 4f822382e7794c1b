"""``critic arena``: a leaderboard of models from pairwise judgments, with intervals, length and style control.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from pathlib import Path
from typing import Any

from critic.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_ROW_ERRORS, check_output_dir, say
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
    use_reward_model,
    zero_or_more,
)
from critic.cli.output import progress, written
from critic.errors import InputError, MissingDependencyError


def add_arena_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    from critic.arena.judging import DEFAULT_CHUNK_SIZE
    from critic.arena.run import DEFAULT_BOOTSTRAP

    parser = commands.add_parser(
        "arena", parents=parents,
        help="evaluate models: judge their answers pairwise and rank them, with intervals and length control",
        description="Judge several models' answers to the same questions (every model against --baseline, or all "
                    "pairs), each comparison in both orders, and write DIR/leaderboard.json, leaderboard.csv, "
                    "report.md, leaderboard.png, judgments.jsonl (every judgment, kept as a cache: a rerun, or "
                    "one with more models, judges only what is missing) and problems.jsonl. Answers: "
                    "Arena-Hard (uid, model, messages), MT-Bench / Arena-Hard v0.1 (question_id, model_id, "
                    "choices), AlpacaEval outputs (instruction, output, generator) or plain rows (id or prompt, "
                    "response, model); one file per model or one for all, in " + INPUTS + ".",
    )
    parser.add_argument("answers", nargs="*", metavar="ANSWERS",
                        help="the models' answer files (a row without a model name takes the file's name)")
    parser.add_argument("--output-dir", "-o", type=Path, required=True, metavar="DIR", help="folder for the outputs")
    arena = parser.add_argument_group("arena")
    arena.add_argument("--questions", type=Path, metavar="FILE",
                       help="the questions (Arena-Hard's or MT-Bench's question.jsonl, AlpacaEval's evaluation set, or "
                            "id/prompt/reference rows); needed when the answers do not carry the question text "
                            "(MT-Bench, Arena-Hard v0.1); references feed reference-guided templates")
    arena.add_argument("--baseline", metavar="MODEL",
                       help="judge every model against MODEL on every question (AlpacaEval, Arena-Hard, MT-Bench); "
                            "default: every pair of models (round robin)")
    arena.add_argument("--max-comparisons", type=at_least_one, metavar="N",
                       help="judge at most N comparisons, shared evenly among the model pairs (seeded sample)")
    arena.add_argument("--seed", type=zero_or_more, default=0, help="seed of the sample and the bootstrap (default: 0)")
    arena.add_argument("--bootstrap", type=zero_or_more, default=DEFAULT_BOOTSTRAP, metavar="N",
                       help=f"bootstrap rounds over questions for the 5%%-95%% intervals (default: "
                            f"{DEFAULT_BOOTSTRAP})")
    arena.add_argument("--category", metavar="FIELD",
                       help="also rank per category, read from FIELD of the questions (or of the answer or judgment "
                            "rows): Arena-Hard and MT-Bench 'category', AlpacaEval 'dataset'")
    arena.add_argument("--from-judgments", nargs="+", metavar="FILE", type=Path, default=[],
                       help="rank judgments made elsewhere, loading no model: Arena-Hard judgment files (games), "
                            "AlpacaEval annotations (preference) or Chatbot-Arena battles (model_a, model_b, winner); "
                            "ANSWERS, given before this flag, supply the answer texts for length and style control")
    arena.add_argument("--strong-weight", type=at_least_one, default=3, metavar="N",
                       help="with --from-judgments: how often an Arena-Hard strong verdict (A>>B) counts (default: 3, "
                            "as Arena-Hard's show_result.py)")
    arena.add_argument("--chunk-size", type=at_least_one, default=DEFAULT_CHUNK_SIZE, metavar="N",
                       help=f"comparisons judged and stored at a time (default: {DEFAULT_CHUNK_SIZE})")
    arena.add_argument("--force", action="store_true",
                       help="start over: remove the judgments and outputs an earlier arena left in DIR")
    arena.add_argument("--no-figure", action="store_true", help="skip leaderboard.png (it needs matplotlib)")
    add_quiet_flags(arena)
    add_judge_kind_flags(parser, reward="a reward model scores each answer and p = sigmoid(score_a - score_b)")
    add_remote_flag(parser)
    add_load_flags(parser)
    add_batch_flags(parser)
    add_input_flags(parser, fields=(), limit_help="read the first N rows of each answers file only")
    add_engine_flags(parser, ray="on a pool of Ray actors, each chunk shared among them")
    parser.set_defaults(run=run_arena_command)


def run_arena_command(args: argparse.Namespace) -> int:
    from critic.arena.run import arena_from_judgments, judge_plan, prepare_arena

    _check_flags(args)
    if args.from_judgments:
        run = arena_from_judgments(args.from_judgments, args.output_dir, answers=args.answers,
                                   questions=args.questions, baseline=args.baseline, seed=args.seed,
                                   bootstrap=args.bootstrap, category_field=args.category, weight=args.strong_weight,
                                   format=args.format, figure=not args.no_figure)
        return _finish(args, run)
    options = build_options(args)
    plan = prepare_arena(args.answers, args.output_dir, questions=args.questions, baseline=args.baseline,
                         max_comparisons=args.max_comparisons, seed=args.seed, category_field=args.category,
                         format=args.format, split=args.split, limit=args.limit)
    say(f"arena: {len(plan.table.models)} models, {len(plan.table.questions)} questions, "
        f"{len(plan.comparisons)} comparisons" + (f" against {args.baseline}" if args.baseline else " (round robin)"),
        quiet=args.quiet)
    judge = _judge(args, options)
    if args.force:
        _start_over(args.output_dir)
    bar = progress(None, args.quiet, "judging", unit="comparison", every=args.progress_every)
    stored = failures = 0

    def on_start(total: int) -> None:
        bar.total = total

    def on_chunk(judged: int, failed: int) -> None:
        nonlocal stored, failures
        stored, failures = stored + judged, failures + failed
        bar.set_postfix(failed=str(failures), refresh=False)
        bar.update(judged)

    try:
        with bar:
            run = judge_plan(plan, judge, bootstrap=args.bootstrap, chunk_size=args.chunk_size,
                             figure=not args.no_figure, on_start=on_start, on_chunk=on_chunk)
    except KeyboardInterrupt:
        print(f"critic: interrupted after {stored} judgments, all kept in {args.output_dir}/judgments.jsonl; run the "
              "same command again to go on", file=sys.stderr)
        return EXIT_INTERRUPTED
    say(f"judged {run.judged} comparisons now, {run.comparisons - run.judged} were in judgments.jsonl already",
        quiet=args.quiet)
    return _finish(args, run)


def _judge(args: argparse.Namespace, options: Any) -> Any:
    """The judge: served (--judge-url), loaded here, or one per Ray actor (--engine ray)."""
    factory = command_judge_factory(args, options, args.judge)
    if args.engine != "ray":
        return factory()
    from critic.arena.engine import RayJudges

    if not args.verbose:
        logging.getLogger("ray").setLevel(logging.WARNING)
    return RayJudges(factory, actors=args.ray_actors, cpus_per_actor=args.ray_cpus_per_actor,
                     gpus_per_actor=args.ray_gpus_per_actor, address=args.ray_address)


def _check_flags(args: argparse.Namespace) -> None:
    """Flags that do not go together, and the outputs, checked before anything is read or loaded."""
    if args.from_judgments and (args.max_comparisons or args.judge_url or args.judge_factory):
        raise InputError("--from-judgments ranks judgments already made; --max-comparisons, --judge-url and "
                         "--judge-factory judge new ones. Drop one or the other")
    if not args.from_judgments and len(args.answers) < 1:
        raise InputError("give the models' answer files (or --from-judgments FILE...)")
    if args.judge == "reward":
        use_reward_model(args)
    check_output_dir(args.output_dir)
    if not args.no_figure and importlib.util.find_spec("matplotlib") is None:
        raise MissingDependencyError("matplotlib", "eval", "leaderboard.png (or pass --no-figure)")


def _start_over(folder: Path) -> None:
    from critic.arena.reports import OUTPUT_FILES
    from critic.arena.store import JUDGMENTS

    for name in (*OUTPUT_FILES, JUDGMENTS):
        (folder / name).unlink(missing_ok=True)


def _finish(args: argparse.Namespace, run: Any) -> int:
    print(leaderboard_table(run.leaderboard))
    paths = run.paths
    say(written((paths.json, paths.csv, paths.markdown, paths.figure, run.output_dir / "judgments.jsonl"
                 if not args.from_judgments else None, run.output_dir / "problems.jsonl")), quiet=args.quiet)
    # 1: some rows could not be read, or some comparisons not judged (each in problems.jsonl with its reason)
    return EXIT_ROW_ERRORS if run.leaderboard.settings.get("unusable_rows") else EXIT_OK


def leaderboard_table(leaderboard: Any) -> str:
    """The terminal table: model, score and interval, W/T/L, soft and LC win rates, length, consistency."""
    lines = [_table(leaderboard.overall, leaderboard.settings)]
    for board in leaderboard.categories:
        lines += ["", f"category {board.category}:", _table(board, leaderboard.settings)]
    return "\n".join(lines)


def _table(board: Any, settings: Any) -> str:
    width = max([len("model"), *(len(entry.model) + (11 if entry.baseline else 0) for entry in board.entries)])
    header = (f"{'#':>2}  {'model':<{width}}  {'score':>6}  {'interval':>13}  {'W / T / L':>17}  {'soft':>6}  "
              f"{'LC':>6}  {'length':>6}  {'consistent':>10}")
    lines = [header]
    for entry in board.entries:
        name = entry.model + (" (baseline)" if entry.baseline else "")
        interval = (f"{entry.ci_low:5.1f} - {entry.ci_high:5.1f}" if entry.ci_low is not None
                    and entry.ci_high is not None else "n/a")
        wtl = f"{entry.wins} / {entry.ties} / {entry.losses}"
        lines.append(f"{entry.rank:>2}  {name:<{width}}  {_cell(entry.score)}  {interval:>13}  {wtl:>17}  "
                     f"{_cell(entry.soft_win_rate)}  {_cell(entry.lc_win_rate)}  {_cell(entry.mean_length, 0)}  "
                     f"{_cell(entry.consistency, unit='%'):>10}")
    if board.against == "baseline":
        meaning = f"win rate in % against {settings.get('baseline')} (mean P(better))"
    else:
        meaning = "Bradley-Terry win probability in % against " + (str(settings.get("baseline"))
                                                                   if settings.get("baseline") else "an average model")
    lines.append(f"score: {meaning}; interval: {settings.get('interval')}; "
                 f"separability {_cell(board.separability, unit='%').strip()}")
    return "\n".join(lines)


def _cell(value: float | None, digits: int = 1, unit: str = "") -> str:
    return f"{'n/a':>6}" if value is None else f"{value:6.{digits}f}{unit}"
