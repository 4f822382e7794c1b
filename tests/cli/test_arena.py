"""`critic arena` on the command line: the table, the outputs, checks before loading, kill -9, judgments from files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from critic import cli

from ..arena.fakes import FACTORY, arena_hard_judgments, write_answers
from .conftest import kill_9_during, run_critic
from .test_options import server_backend  # noqa: F401 (the fixture that registers a stand-in server backend)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "arena" / "data"
EXAMPLES = ROOT / "examples" / "arena"


def arena_args(answers, out, *extra, model="fast"):
    return ["arena", *map(str, answers), "-o", str(out), "--judge-factory", FACTORY, "--model", model, *extra]


def outputs(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


def test_the_command_prints_the_leaderboard_and_writes_every_output(tmp_path, capsys):
    answers = write_answers(tmp_path / "answers", questions=8)
    assert cli.main(arena_args(answers, tmp_path / "out", "--baseline", "terse", "--quiet")) == 0
    table = capsys.readouterr().out
    lines = table.splitlines()
    assert lines[0].split() == ["#", "model", "score", "interval", "W", "/", "T", "/", "L", "soft", "LC", "length",
                                "consistent"]
    assert lines[1].split()[1] == "careful" and "terse (baseline)" in table
    assert "score: win rate in % against terse (mean P(better)); interval: 5%-95% quantiles of 100 bootstrap" in table
    assert sorted(outputs(tmp_path / "out")) == ["judgments.jsonl", "leaderboard.csv", "leaderboard.json",
                                                 "leaderboard.png", "problems.jsonl", "report.md"]


def test_an_unreadable_answer_row_is_listed_and_the_exit_status_is_1(tmp_path):
    answers = write_answers(tmp_path / "answers", questions=4)
    with answers[0].open("a", encoding="utf-8") as stream:
        stream.write('{"id": "q009", "prompt": "Q?", "response": \n')
    assert cli.main(arena_args(answers, tmp_path / "out", "--baseline", "terse", "--quiet", "--no-figure")) == 1
    problems = [json.loads(line) for line in (tmp_path / "out" / "problems.jsonl").read_text().splitlines()]
    assert [(p["stage"], p["where"], p["model"], p["kind"]) for p in problems] == [
        ("read", "careful.jsonl:5", "careful", "unreadable row")]


def test_mistakes_are_said_before_any_judge_loads(tmp_path, capsys, loaders):
    answers = write_answers(tmp_path / "answers", questions=3)
    cases = [
        (["arena", *map(str, answers), "-o", str(tmp_path / "o"), "--baseline", "nobody"], "baseline 'nobody'"),
        (["arena", str(answers[0]), "-o", str(tmp_path / "o")], "at least two models"),
        (["arena", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "o")], "no such file"),
        (["arena", "-o", str(tmp_path / "o")], "answer files"),
        (["arena", *map(str, answers), "-o", str(tmp_path / "o"), "--template", "nope"], "unknown template"),
        (["arena", *map(str, answers), "-o", str(answers[0])], "is a file"),
        (["arena", str(DATA / "arena_hard_v01_answers.jsonl"), str(DATA / "arena_hard_v01_answers.jsonl"),
          "-o", str(tmp_path / "o")], "--questions"),
    ]
    for argv, message in cases:
        assert cli.main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert loaders["generative"].calls == []


@pytest.mark.slow
def test_kill_9_mid_run_then_the_same_command_gives_the_same_bytes(tmp_path):
    """A real subprocess is killed with SIGKILL while judging, twice; the rerun ends byte-identical."""
    answers = write_answers(tmp_path / "answers", ("careful", "terse", "padded"), questions=30)
    common = ["--baseline", "terse", "--chunk-size", "4", "--bootstrap", "20", "--quiet", "--no-figure"]
    assert cli.main(arena_args(answers, tmp_path / "whole", *common)) == 0
    out = tmp_path / "out"
    command = arena_args(answers, out, *common, model="slow:0.05")
    seed = random.randrange(1 << 30)
    chance = random.Random(seed)
    for target in (15, 40):  # killed while judging or appending
        kill_9_during(command, progress=lambda: judged(out), target=target, chance=chance, seed=seed, within_s=0.05)
        assert 0 < judged(out) < 60
        assert not (out / "leaderboard.json").exists()
    finished = run_critic(*command)
    assert finished.returncode == 0, finished.stderr
    assert outputs(out) == outputs(tmp_path / "whole"), f"seed {seed}"


def judged(folder):
    path = folder / "judgments.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_mt_bench_answers_are_judged_turn_by_turn_with_the_questions_file(tmp_path, capsys):
    questions = [json.loads(line) for line in (DATA / "mt_bench_questions.jsonl").read_text().splitlines()]
    for model, words in (("vicuna", "[careful] a careful answer"), ("alpaca", "[padded] padded")):
        rows = [{"question_id": q["question_id"], "answer_id": f"{model}-{q['question_id']}", "model_id": model,
                 "choices": [{"index": 0, "turns": [f"{words} to turn {turn}" for turn in (1, 2)]}], "tstamp": 0.0}
                for q in questions]
        (tmp_path / f"{model}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    argv = arena_args([tmp_path / "vicuna.jsonl", tmp_path / "alpaca.jsonl"], tmp_path / "out", "--baseline",
                      "alpaca", "--questions", str(DATA / "mt_bench_questions.jsonl"), "--template", "mt-bench",
                      "--category", "category", "--quiet", "--no-figure")
    assert cli.main(argv) == 0
    lines = [json.loads(line) for line in (tmp_path / "out" / "judgments.jsonl").read_text().splitlines()]
    assert [(line["question"], line["turn"]) for line in lines] == [(str(q["question_id"]), turn)
                                                                    for q in questions for turn in (1, 2)]
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    assert board["models"][0]["model"] == "vicuna" and board["models"][0]["battles"] == 8
    assert set(board["categories"]) == {"writing", "math"}
    assert "category math:" in capsys.readouterr().out


def test_from_judgments_ranks_arena_hard_alpaca_eval_and_battle_files_without_a_model(tmp_path, capsys, loaders):
    arena_hard = tmp_path / "arena_hard.jsonl"
    arena_hard.write_text("".join(json.dumps(row) + "\n" for row in arena_hard_judgments(questions=12)))
    rng = random.Random(2)
    alpaca = tmp_path / "annotations.json"  # AlpacaEval writes a JSON array
    alpaca.write_text(json.dumps([{"instruction": f"Q{i}", "output_1": "base " * rng.randint(1, 9),
                                   "generator_1": "gpt4_turbo", "output_2": "model " * rng.randint(1, 9),
                                   "generator_2": "my-model", "annotator": "weighted_alpaca_eval_gpt4_turbo",
                                   "preference": rng.choice([1.0, 2.0, 1.5, 1.0 + rng.random(), 0, None])}
                                  for i in range(30)]))
    cases = [([arena_hard], "o3-mini-2025-01-31 (baseline)", 1), ([alpaca], "gpt4_turbo (baseline)", None),
             ([DATA / "arena_hard_battles.jsonl"], "claude-3-5-sonnet-20240620", 0)]
    for files, expected, code in cases:
        out = tmp_path / files[0].stem
        status = cli.main(["arena", "--from-judgments", *map(str, files), "-o", str(out), "--quiet", "--bootstrap",
                           "10", "--no-figure"])
        printed = capsys.readouterr().out
        assert expected in printed
        if code is not None:
            assert status == code  # a null Arena-Hard game is a failed judgment: exit 1
        assert (out / "leaderboard.json").exists() and not (out / "judgments.jsonl").exists()
    assert loaders["generative"].calls == [] and loaders["reward"].calls == []


def test_from_judgments_with_the_answers_gives_length_and_style_control(tmp_path, capsys):
    answers = [json.loads(line) for line in (DATA / "arena_hard_v2_answers.jsonl").read_text().splitlines()]
    other = [dict(row, model="other-model", messages=[row["messages"][0], {"role": "assistant", "content": {
        "answer": row["messages"][1]["content"]["answer"][:400]}}], metadata=None) for row in answers]
    (tmp_path / "other.jsonl").write_text("".join(json.dumps(row) + "\n" for row in other))
    verdicts = ["A>>B", "A>B", "A=B", "B>A", "B>>A"]
    rows = [{"uid": row["uid"], "category": "hard_prompt", "judge": "j", "model": "other-model",
             "baseline": "o3-mini-2025-01-31", "games": [{"score": verdicts[i % 5]}, {"score": verdicts[(i * 3) % 5]}]}
            for i, row in enumerate(answers)]
    (tmp_path / "judgments.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    argv = ["arena", str(DATA / "arena_hard_v2_answers.jsonl"), str(tmp_path / "other.jsonl"), "--from-judgments",
            str(tmp_path / "judgments.jsonl"), "-o", str(tmp_path / "out"), "--quiet", "--no-figure"]
    assert cli.main(argv) == 0
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    entry = next(e for e in board["models"] if e["model"] == "other-model")
    assert entry["lc_win_rate"] is not None and entry["style_score"] is not None
    assert board["style_length_unit"] == "characters"  # the shortened answers carry no metadata


@pytest.mark.model
def test_the_demo_model_ranks_the_example_answers(tmp_path, demo_judge_factory, capsys):
    """The documented command on two of the example questions, with the real demo model."""
    small = tmp_path / "answers"
    small.mkdir()
    for path in sorted(EXAMPLES.glob("*.jsonl")):
        (small / path.name).write_text("".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:2]),
                                       encoding="utf-8")
    argv = ["arena", *map(str, sorted(small.glob("*.jsonl"))), "--baseline", "terse", "--model", "demo", "-o",
            str(tmp_path / "out"), "--bootstrap", "20"]
    assert cli.main(argv) == 0
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    assert {entry["model"] for entry in board["models"]} == {"careful", "terse", "padded"}
    assert board["settings"]["judge"]["model"] == "demo" and board["settings"]["comparisons"] == 4
    careful = next(entry for entry in board["models"] if entry["model"] == "careful")
    assert careful["battles"] == 2 and careful["format_mass"] is not None and 0 < careful["score"] < 100


@pytest.mark.usefixtures("server_backend")
def test_every_model_loading_and_batching_flag_reaches_the_loader_unchanged(tmp_path, loaders):
    from critic.cli.options import SERVER_FLAGS
    from critic.options import LoadOptions

    from .test_options import BATCH, GENERATIVE, LIMITS, LOAD, LOADED, SERVED, SERVER, SETTINGS, TRUNCATE
    from .test_options import declared_flags

    answers = write_answers(tmp_path / "answers", questions=2)
    start = ["arena", *map(str, answers), "-o", str(tmp_path / "out")]
    argv = [*start, *GENERATIVE, *LOAD, *BATCH, *TRUNCATE]
    assert cli.main(argv) == 2  # the recorder stops the command once the loader is called
    assert loaders["generative"].calls == [("gen-model", {**SETTINGS, "load": LOADED, "limits": LIMITS})]
    assert not declared_flags("arena") - set(argv) - set(SERVER_FLAGS.values())
    assert cli.main([*start, *GENERATIVE, *SERVED, *BATCH, *TRUNCATE]) == 2  # the shared server flags too
    served = LoadOptions(trust_remote_code=True, backend="server", server=SERVER)
    assert loaders["generative"].calls[-1] == ("gen-model", {**SETTINGS, "load": served, "limits": LIMITS})
    reward = [*start, "--judge", "reward", "--model", "rm-model", *LOAD, *BATCH]
    assert cli.main(reward) == 2
    assert loaders["reward"].calls == [("rm-model", {"load": LOADED, "limits": LIMITS.__class__(3, 999, 123, "error")})]


def test_a_judge_served_by_critic_serve_gives_the_same_bytes_as_the_same_judge_here(tmp_path):
    from critic.serve import ServeSettings, create_app

    from ..arena.fakes import quality_judge
    from ..serve.support import serving

    answers = write_answers(tmp_path / "answers", questions=5)
    common = ["--baseline", "terse", "--quiet", "--no-figure"]
    assert cli.main(arena_args(answers, tmp_path / "local", *common)) == 0
    with serving(create_app(quality_judge(), ServeSettings())) as url:
        argv = ["arena", *map(str, answers), "-o", str(tmp_path / "remote"), "--judge-url", url, *common]
        assert cli.main(argv) == 0
    assert outputs(tmp_path / "remote") == outputs(tmp_path / "local")
