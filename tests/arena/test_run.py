"""run_arena on the fake backend: judgments kept and reused, failures listed and retried, every output written."""

from __future__ import annotations

import csv
import json
import math

import pytest

from critic import RewardJudge
from critic.arena import run_arena
from critic.arena.judging import shown
from critic.arena.pairing import schedule
from critic.arena.run import load_table
from critic.arena.store import JUDGMENTS, JudgmentStore, judge_identity, judgment_key
from critic.errors import InputError
from critic.judges.description import JudgeDescription
from critic.testing import FakeScorer

from .fakes import answer_rows, quality_judge, write_answers

REQUIRED = ("model", "score", "ci_low", "ci_high", "wins", "ties", "losses", "win_rate", "soft_win_rate",
            "lc_win_rate", "bt")


def outputs(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


class Counting:
    """A judge that counts the pairs it is asked to judge."""

    def __init__(self, judge):
        self.judge, self.pairs = judge, 0

    def describe(self):
        return self.judge.describe()

    def compare_each(self, pairs):
        self.pairs += len(pairs)
        return self.judge.compare_each(pairs)


def test_a_rerun_judges_nothing_and_one_more_model_only_its_comparisons(tmp_path):
    paths = write_answers(tmp_path / "answers", ("careful", "terse", "padded"), questions=10)
    judge = Counting(quality_judge())
    first = run_arena(paths, judge, tmp_path / "out", baseline="terse", bootstrap=20, figure=False)
    assert (first.judged, judge.pairs, first.comparisons) == (20, 20, 20)
    before = outputs(tmp_path / "out")
    again = run_arena(paths, judge, tmp_path / "out", baseline="terse", bootstrap=20, figure=False)
    assert (again.judged, judge.pairs) == (0, 20) and outputs(tmp_path / "out") == before
    [newcomer] = write_answers(tmp_path / "answers", ("newcomer",), questions=10)
    more = run_arena([*paths, newcomer], judge, tmp_path / "out", baseline="terse", bootstrap=20, figure=False)
    assert (more.judged, judge.pairs, more.comparisons) == (10, 30, 30)
    assert more.leaderboard.entry("careful").score == first.leaderboard.entry("careful").score
    # back to three models: nothing to judge, and the newcomer's judgments stay in the cache
    fewer = run_arena(paths, judge, tmp_path / "out", baseline="terse", bootstrap=20, figure=False)
    assert fewer.judged == 0 and len((tmp_path / "out" / JUDGMENTS).read_text().splitlines()) == 30


def test_the_key_changes_with_the_judge_the_template_the_answers_and_their_order(tmp_path):
    paths = write_answers(tmp_path / "answers", ("careful", "terse"), questions=2)
    table = load_table(paths)
    ab, = [c for c in schedule(table, baseline="terse") if c.question.key == "q000"]
    ba, = [c for c in schedule(table, baseline="careful") if c.question.key == "q000"]
    judge = JudgeDescription(kind="generative", model="m", backend="fake", template="skywork-critic", mode="score",
                             swap=True)
    identity = judge_identity(judge)
    assert len(identity["template_sha256"]) == 64
    keys = {judgment_key(identity, shown(ab)), judgment_key(identity, shown(ba)),
            judgment_key(judge_identity(JudgeDescription(**{**judge.to_dict(), "template": "mt-bench"})), shown(ab)),
            judgment_key(judge_identity(JudgeDescription(**{**judge.to_dict(), "mode": "generate"})), shown(ab)),
            judgment_key(judge_identity(JudgeDescription(**{**judge.to_dict(), "model": "other"})), shown(ab))}
    assert len(keys) == 5
    assert judgment_key(identity, shown(ab)) == judgment_key(judge_identity(judge), shown(ab))


def test_failed_judgments_are_listed_with_reasons_and_tried_again(tmp_path):
    rows = answer_rows("careful", 6)
    rows[2]["response"] = "FAIL: this one cannot be judged"
    (tmp_path / "careful.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    [terse] = write_answers(tmp_path, ("terse",), questions=6)
    judge = Counting(quality_judge())
    answers = [tmp_path / "careful.jsonl", terse]
    run = run_arena(answers, judge, tmp_path / "out", baseline="terse", bootstrap=10, figure=False)
    entry = run.leaderboard.entry("careful")
    assert (run.failed, entry.failed, entry.battles) == (1, 1, 5)
    problems = [json.loads(line) for line in (tmp_path / "out" / "problems.jsonl").read_text().splitlines()]
    assert problems == [{"stage": "judge", "what": "failed judgment (too long for the model)", "question": "q002",
                         "model_a": "careful", "model_b": "terse",
                         "reason": "the pair is too long for the model (scripted)", "kind": "too long for the model"}]
    assert run.leaderboard.settings["problems"] == {"failed judgment (too long for the model)": 1}
    run_arena(answers, judge, tmp_path / "out", baseline="terse", bootstrap=10, figure=False)
    assert judge.pairs == 7  # the failed one, again


def test_a_torn_last_line_is_cut_and_judged_again(tmp_path):
    paths = write_answers(tmp_path / "answers", ("careful", "terse"), questions=8)
    run_arena(paths, quality_judge(), tmp_path / "whole", baseline="terse", bootstrap=5, figure=False)
    folder = tmp_path / "torn"
    folder.mkdir()
    lines = (tmp_path / "whole" / JUDGMENTS).read_bytes().splitlines(keepends=True)
    (folder / JUDGMENTS).write_bytes(b"".join(lines[:5]) + lines[5][:40])  # killed mid-write
    store = JudgmentStore(folder)
    assert len(store.records) == 5 and (folder / JUDGMENTS).read_bytes().endswith(b"\n")
    judge = Counting(quality_judge())
    run_arena(paths, judge, folder, baseline="terse", bootstrap=5, figure=False)
    assert judge.pairs == 3 and outputs(folder) == outputs(tmp_path / "whole")


def test_a_judgments_file_that_is_not_critics_is_an_error(tmp_path):
    (tmp_path / JUDGMENTS).write_text('{"key": "k"}\nnot json\n{"key": "j"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 2 is not JSON"):
        JudgmentStore(tmp_path)


def test_outputs_hold_every_figure_the_settings_and_a_figure(tmp_path):
    paths = write_answers(tmp_path / "answers", ("careful", "terse", "padded"), questions=12)
    run = run_arena(paths, quality_judge(), tmp_path / "out", bootstrap=30, category_field="category", seed=3)
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    assert set(board) >= {"settings", "models", "categories", "separability", "win_matrix"}
    assert all(set(REQUIRED) <= set(entry) for entry in board["models"])
    assert board["settings"]["seed"] == 3 and board["settings"]["pairing"] == "round robin"
    assert board["settings"]["judge"]["model"] == "fake-quality" and board["settings"]["template"] == "skywork-critic"
    assert set(board["categories"]) == {"odd", "even"}
    assert board["win_matrix"]["careful"]["terse"] == pytest.approx(100 - board["win_matrix"]["terse"]["careful"])
    with (tmp_path / "out" / "leaderboard.csv").open(encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 3 * 3 and {row["category"] for row in rows} == {"", "odd", "even"}
    assert {"judge", "template", "backend", "seed", "bootstrap_rounds", "answers_missing"} <= set(rows[0])
    assert (tmp_path / "out" / "leaderboard.png").read_bytes()[:4] == b"\x89PNG"
    assert "| 1 | careful |" in (tmp_path / "out" / "report.md").read_text()
    careful = run.leaderboard.entry("careful")
    assert careful.score == careful.bt_win_rate == pytest.approx(100 / (1 + math.exp(-careful.bt)))
    assert run.leaderboard.overall.against == "bradley-terry"
    assert [e.model for e in run.leaderboard.models] == ["careful", "terse", "padded"]
    assert careful.consistency is not None and careful.first_shown_wins is not None and careful.format_mass == 1.0


def test_a_reward_judge_compares_the_two_scores(tmp_path):
    rows = {model: answer_rows(model, 4) for model in ("good", "bad")}
    scores = {row["response"]: (2.0 if model == "good" else -1.0) + index / 10
              for model in rows for index, row in enumerate(rows[model])}
    for model, model_rows in rows.items():
        (tmp_path / f"{model}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in model_rows), encoding="utf-8")
    judge = RewardJudge(FakeScorer.by_response(scores), model_name="fake-reward")
    run = run_arena([tmp_path / "good.jsonl", tmp_path / "bad.jsonl"], judge, tmp_path / "out", baseline="bad",
                    bootstrap=0, figure=False)
    entry = run.leaderboard.entry("good")
    assert entry.score == pytest.approx(100 / (1 + math.exp(-3.0)))  # p = sigmoid(score_a - score_b), margin 3
    assert entry.consistency is None and (entry.wins, entry.ties, entry.losses) == (4, 0, 0)
    assert run.leaderboard.settings["p"].startswith("sigmoid(score_a - score_b)")
    assert entry.ci_low is None and run.leaderboard.settings["interval"] == "none (--bootstrap 0)"


def test_an_output_folder_that_holds_an_input_is_refused(tmp_path):
    paths = write_answers(tmp_path, ("careful", "terse"), questions=2)
    (tmp_path / "leaderboard.json").write_text(paths[0].read_text())
    with pytest.raises(InputError, match="is an input of this command"):
        run_arena([tmp_path / "leaderboard.json", paths[1]], quality_judge(), tmp_path, figure=False)
