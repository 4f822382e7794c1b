"""``run_arena``: answers in, judgments kept, a leaderboard out; ``arena_from_judgments`` for judgments made elsewhere.

    >>> from critic.arena import run_arena
    >>> run = run_arena(["careful.jsonl", "terse.jsonl"], judge, "out/arena", baseline="terse")  # doctest: +SKIP
    >>> run.leaderboard.entry("careful").score                                                   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critic.arena.answers import Question, RowProblem, read_answers, read_questions
from critic.arena.battles import Battle, Failure, battle_from_judgment
from critic.arena.external import STRONG_WEIGHT, read_judgment_files
from critic.arena.join import AnswerTable, ModelInput, join_answers
from critic.arena.judging import DEFAULT_CHUNK_SIZE, judge_missing, keyed, result_of
from critic.arena.leaderboard import Leaderboard, build_board
from critic.arena.pairing import Comparison, schedule
from critic.arena.ratings import QUANTILES
from critic.arena.reports import OUTPUT_FILES, PROBLEMS, ReportPaths, problem_lines, write_leaderboard
from critic.arena.store import JUDGMENTS, JudgmentStore, judge_identity
from critic.errors import InputError
from critic.io.writers import refuse_inputs_as_outputs, write_bytes_atomic
from critic.judges.description import JudgeDescription

DEFAULT_BOOTSTRAP = 100


@dataclass(frozen=True)
class ArenaRun:
    """A finished arena: its leaderboard, where it was written, and what this run judged."""

    leaderboard: Leaderboard
    output_dir: Path
    paths: ReportPaths
    comparisons: int  # of the run
    judged: int  # judged by this run (the rest were in judgments.jsonl already)
    failed: int  # comparisons without a result


@dataclass(frozen=True)
class ArenaPlan:
    """What an arena will judge, known before any model loads: the joined answers and the comparisons."""

    output_dir: Path
    table: AnswerTable
    comparisons: tuple[Comparison, ...]
    answers: tuple[str, ...]
    questions: str | None
    baseline: str | None
    max_comparisons: int | None
    seed: int
    category_field: str | None


def prepare_arena(
    answers: Sequence[str | Path],
    output_dir: str | Path,
    *,
    questions: str | Path | None = None,
    baseline: str | None = None,
    max_comparisons: int | None = None,
    seed: int = 0,
    category_field: str | None = None,
    format: str | None = None,
    split: str | None = None,
    limit: int | None = None,
) -> ArenaPlan:
    """Read and join the answers and decide the comparisons (every input error is raised here, before a model)."""
    folder = _check_folder(output_dir, [*answers, *([questions] if questions else [])])
    table = load_table(answers, questions=questions, category_field=category_field, format=format, split=split,
                       limit=limit)
    comparisons = schedule(table, baseline=baseline, max_comparisons=max_comparisons, seed=seed)
    return ArenaPlan(folder, table, tuple(comparisons), tuple(str(path) for path in answers),
                     str(questions) if questions else None, baseline, max_comparisons, seed, category_field)


def run_arena(
    answers: Sequence[str | Path],
    judge: Any,
    output_dir: str | Path,
    *,
    questions: str | Path | None = None,
    baseline: str | None = None,
    max_comparisons: int | None = None,
    seed: int = 0,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    category_field: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    format: str | None = None,
    split: str | None = None,
    figure: bool = True,
    on_start: Callable[[int], None] | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
) -> ArenaRun:
    """Judge the models' answers against each other with ``judge`` and write the leaderboard to ``output_dir``.

    ``judge`` is any :class:`~critic.judges.base.PairwiseJudge` (``compare_each`` and ``describe``): a
    generative :class:`~critic.Judge`, a :class:`~critic.RewardJudge` (p is the sigmoid of the two answers'
    score margin), a :class:`~critic.client.RemoteJudge`. ``on_start(to_judge)`` is called once the
    judgments still missing are known, ``on_chunk(judged, failed)`` after each chunk is stored.
    """
    plan = prepare_arena(answers, output_dir, questions=questions, baseline=baseline,
                         max_comparisons=max_comparisons, seed=seed, category_field=category_field, format=format,
                         split=split)
    return judge_plan(plan, judge, bootstrap=bootstrap, chunk_size=chunk_size, figure=figure, on_start=on_start,
                      on_chunk=on_chunk)


def judge_plan(
    plan: ArenaPlan,
    judge: Any,
    *,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    figure: bool = True,
    on_start: Callable[[int], None] | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
) -> ArenaRun:
    """Judge what the plan's judgments.jsonl lacks, then compute and write the leaderboard (see :func:`run_arena`)."""
    if bootstrap < 0:
        raise InputError(f"bootstrap rounds must be 0 or more, got {bootstrap}")
    folder, table, comparisons, baseline = plan.output_dir, plan.table, plan.comparisons, plan.baseline
    description: JudgeDescription = judge.describe()
    identity = judge_identity(description)
    items = keyed(comparisons, identity)
    store = JudgmentStore(folder)
    if on_start is not None:
        on_start(len({item.key for item in items if not store.done(item.key)}))
    judged = judge_missing(judge, items, store, chunk_size=chunk_size, on_chunk=on_chunk)
    lines = [{"key": item.key, **item.comparison.describe(), **result_of(store.records[item.key])} for item in items]
    store.rewrite(lines, {item.key for item in items})
    outcomes: list[Battle | Failure] = []
    for item, line in zip(items, lines, strict=True):
        comparison, turn = item.comparison, item.comparison.turn
        outcomes.append(battle_from_judgment(line, text_a=comparison.answer_a.turns[turn],
                                             text_b=comparison.answer_b.turns[turn],
                                             metadata_a=comparison.answer_a.metadata if turn == 0 else None,
                                             metadata_b=comparison.answer_b.metadata if turn == 0 else None))
    settings = {
        "judge": description.to_dict(), "judge_summary": description.summary(), "template": description.template,
        "template_sha256": identity.get("template_sha256"), "mode": description.mode,
        "backend": description.backend,
        "p": "sigmoid(score_a - score_b) of the reward model's scores" if description.kind == "reward"
        else "P(response A is better), averaged over both presentation orders" if description.swap
        else "P(response A is better), one presentation order",
        "answers": list(plan.answers), "questions_file": plan.questions,
        "pairing": "baseline" if baseline else "round robin", "max_comparisons": plan.max_comparisons,
        "comparisons": len(comparisons), "chunk_size": chunk_size,
    }
    battles = [item for item in outcomes if isinstance(item, Battle)]
    failures = [item for item in outcomes if isinstance(item, Failure)]
    problems = [_problem(problem) for problem in table.problems] + [_failure(failure) for failure in failures]
    leaderboard = build_leaderboard(battles, failures, models=list(table.models), baseline=baseline, seed=plan.seed,
                                    rounds=bootstrap, inputs=table.inputs, category_field=plan.category_field,
                                    settings=settings, questions=len(table.questions), problems=problems)
    paths = _write(leaderboard, folder, problems, figure=figure)
    return ArenaRun(leaderboard, folder, paths, len(comparisons), judged, len(failures))


def arena_from_judgments(
    judgments: Sequence[str | Path],
    output_dir: str | Path,
    *,
    answers: Sequence[str | Path] = (),
    questions: str | Path | None = None,
    baseline: str | None = None,
    seed: int = 0,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    category_field: str | None = None,
    weight: int = STRONG_WEIGHT,
    format: str | None = None,
    figure: bool = True,
) -> ArenaRun:
    """The leaderboard of judgments made elsewhere (see :mod:`critic.arena.external`), no model loaded.

    ``answers`` (the models' answer files) give the answer texts that length and style control need, when
    the judgment files do not carry them (Arena-Hard's do not; AlpacaEval's annotations do). Without
    ``baseline``, the one baseline the files name (Arena-Hard's ``baseline``, AlpacaEval's ``generator_1``) is
    used; battle files name none: their ratings are then centred on the average model.
    """
    folder = _check_folder(output_dir, [*judgments, *answers, *([questions] if questions else [])])
    battles, failures, unreadable, named = read_judgment_files(judgments, baseline=baseline,
                                                               category_field=category_field, weight=weight,
                                                               format=format)
    if baseline is None and len(named) == 1:  # Arena-Hard and AlpacaEval files name the baseline they ran with
        baseline = next(iter(named))
    fought = {model for battle in battles for model in (battle.model_a, battle.model_b)}
    if baseline is not None and baseline not in fought:
        raise InputError(f"the baseline '{baseline}' is in no battle of the judgment files; models: "
                         f"{', '.join(sorted(fought)) or 'none'}")
    table = load_table(answers, questions=questions, format=format) if answers else None
    if table is not None:
        by_key = {question.key: question for question in table.questions}
        battles = [_with_texts(battle, table, by_key) for battle in battles]
    settings = {"judge": None, "judge_summary": None, "judgments": [str(path) for path in judgments],
                "answers": [str(path) for path in answers], "strong_verdict_weight": weight,
                "pairing": "from judgment files"}
    problems = [_problem(problem) for problem in unreadable] + [_failure(failure) for failure in failures]
    leaderboard = build_leaderboard(battles, failures, models=None, baseline=baseline, seed=seed, rounds=bootstrap,
                                    inputs=table.inputs if table else None, category_field=category_field,
                                    settings=settings, questions=len({b.question for b in battles}),
                                    problems=problems)
    paths = _write(leaderboard, folder, problems, figure=figure)
    return ArenaRun(leaderboard, folder, paths, len(battles) + len(failures), 0, len(failures))


def load_table(answers: Sequence[str | Path], *, questions: str | Path | None = None,
               category_field: str | None = None, format: str | None = None, split: str | None = None,
               limit: int | None = None) -> AnswerTable:
    """Read the answer files (and the questions file) and join them."""
    rows, unreadable = read_answers(answers, category_field=category_field, format=format, split=split, limit=limit)
    asked = None
    if questions is not None:
        asked, bad_questions = read_questions(questions, category_field=category_field)
        unreadable = [*unreadable, *bad_questions]
    return join_answers(rows, questions=asked, unreadable=unreadable)


def build_leaderboard(battles: Sequence[Battle], failures: Sequence[Failure], *, models: Sequence[str] | None,
                      baseline: str | None, seed: int, rounds: int, inputs: Mapping[str, ModelInput] | None,
                      category_field: str | None, settings: Mapping[str, Any], questions: int,
                      problems: Sequence[Mapping[str, Any]]) -> Leaderboard:
    """The overall board and, with ``category_field``, one board per category, with the settings recorded."""
    if rounds < 0:
        raise InputError(f"bootstrap rounds must be 0 or more, got {rounds}")
    overall = build_board(battles, failures, models=models, baseline=baseline, rounds=rounds, seed=seed,
                          inputs=inputs)
    boards = []
    if category_field is not None:
        named = {b.category for b in battles if b.category is not None}
        for category in sorted(named | {f.category for f in failures if f.category is not None}):
            boards.append(build_board([b for b in battles if b.category == category],
                                      [f for f in failures if f.category == category], baseline=baseline,
                                      rounds=rounds, seed=seed, category=category))
    kinds = Counter(str(problem["what"]) for problem in problems)
    unusable = sum(1 for problem in problems if problem["stage"] in {"read", "judge"})
    recorded = {**settings, "baseline": baseline, "models": [entry.model for entry in overall.entries],
                "questions": questions, "battles": len(battles), "failed": len(failures), "seed": seed,
                "bootstrap_rounds": rounds, "category_field": category_field,
                "interval": (f"{QUANTILES[0]:.0%}-{QUANTILES[1]:.0%} quantiles of {rounds} bootstrap rounds over "
                             f"questions (seed {seed})") if rounds else "none (--bootstrap 0)",
                "rates": "percent", "problems": dict(sorted(kinds.items())), "unusable_rows": unusable}
    return Leaderboard(recorded, overall, tuple(boards))


def _with_texts(battle: Battle, table: AnswerTable, by_key: Mapping[str, Question]) -> Battle:
    question = by_key.get(battle.question)
    if question is None:
        return battle
    answer_a, answer_b = table.answer(battle.model_a, question), table.answer(battle.model_b, question)
    if answer_a is None or answer_b is None:
        return battle
    return dataclasses.replace(battle, text_a=answer_a.turns[0], text_b=answer_b.turns[0],
                               metadata_a=answer_a.metadata, metadata_b=answer_b.metadata)


def _problem(problem: RowProblem) -> dict[str, Any]:
    # "read": a row that could not be read at all; "join": an answer read but not used (see critic.arena.join)
    return {"stage": "join" if problem.what else "read", "what": problem.counted_as, "where": problem.where,
            "model": problem.model, "reason": problem.reason, "kind": problem.kind.value}


def _failure(failure: Failure) -> dict[str, Any]:
    return {"stage": "judge", "what": f"failed judgment ({failure.kind})", "question": failure.question,
            "model_a": failure.model_a, "model_b": failure.model_b, "reason": failure.reason, "kind": failure.kind}


def _write(leaderboard: Leaderboard, folder: Path, problems: Sequence[Mapping[str, Any]], *,
           figure: bool) -> ReportPaths:
    paths = write_leaderboard(leaderboard, folder, figure=figure)
    write_bytes_atomic(folder / PROBLEMS, problem_lines(problems))
    return paths


def _check_folder(output_dir: str | Path, inputs: Sequence[str | Path]) -> Path:
    """The output folder (made), refusing one where an output would overwrite an input."""
    folder = Path(output_dir)
    refuse_inputs_as_outputs([folder / name for name in (*OUTPUT_FILES, JUDGMENTS)], inputs)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
