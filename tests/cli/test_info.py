"""`critic templates` and `critic prompt`: one pair from flags (histories included), or a file's first rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from critic import cli
from critic.io.rows import pair_from_row
from critic.rendering import pair_prompt, render_prompt

from ..jobs.support import write_jsonl

MT_BENCH = Path(__file__).resolve().parents[1] / "data" / "mt_bench_human_judgments.jsonl"

Q1 = "Compose a travel blog post about Hawaii."
HISTORY_A = [{"role": "user", "content": Q1}, {"role": "assistant", "content": "Aloha! My trip began on Oahu."}]
HISTORY_B = [{"role": "user", "content": Q1}, {"role": "assistant", "content": "Hawaii is nice."}]
TURN_TWO = {"prompt": "Start every sentence with A.", "response_a": "A trip began on Oahu.",
            "response_b": "A beach.", "history_a": HISTORY_A, "history_b": HISTORY_B}


@pytest.fixture(scope="module")
def tiny_model_folder(tmp_path_factory, tiny_tokenizer):
    """A folder holding only the tiny tokenizer: `critic prompt` loads a tokenizer, never weights."""
    folder = tmp_path_factory.mktemp("tiny-tokenizer")
    tiny_tokenizer.save_pretrained(folder)
    return str(folder)


def test_templates_lists_the_builtins(capsys):
    assert cli.main(["templates"]) == 0
    listed = capsys.readouterr().out
    assert "skywork-critic" in listed and "mt-bench-math" in listed


@pytest.mark.model
def test_prompt_shows_the_chat_formatted_input_ending_in_the_verdict_opening(capsys):
    assert cli.main(["prompt", "--model", "demo", "--prompt", "Q?", "--response-a", "X", "--response-b", "Y"]) == 0
    shown = capsys.readouterr().out
    assert "<|im_start|>user\nPlease act as an impartial judge" in shown
    assert shown.rstrip("\n").endswith("<|im_start|>assistant\n[[")


def test_a_bad_template_is_one_sentence(capsys):
    assert cli.main(["prompt", "--template", "nope", "--prompt", "Q", "--response-a", "X", "--response-b", "Y"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("critic: error:") and "nope" in error and error.count("\n") == 1


def test_the_history_flags_show_a_multi_turn_pair(capsys, tiny_model_folder, tiny_tokenizer):
    argv = ["prompt", "--model", tiny_model_folder, "--template", "mt-bench-multi-turn",
            "--prompt", TURN_TWO["prompt"], "--response-a", TURN_TWO["response_a"],
            "--response-b", TURN_TWO["response_b"],
            "--history-a", json.dumps(HISTORY_A), "--history-b", json.dumps(HISTORY_B)]
    assert cli.main(argv) == 0
    expected = render_prompt(TURN_TWO["prompt"], TURN_TWO["response_a"], TURN_TWO["response_b"],
                             history_a=HISTORY_A, history_b=HISTORY_B, tokenizer=tiny_tokenizer,
                             template="mt-bench-multi-turn")
    assert capsys.readouterr().out == expected + "\n"
    assert "Aloha! My trip began on Oahu." in expected and "Hawaii is nice." in expected


def test_a_shared_history_flag(capsys, tiny_model_folder, tiny_tokenizer):
    argv = ["prompt", "--model", tiny_model_folder, "--prompt", "And in French?", "--response-a", "Bonjour",
            "--response-b", "Hallo", "--history", json.dumps(HISTORY_B)]
    assert cli.main(argv) == 0
    expected = render_prompt("And in French?", "Bonjour", "Hallo", history=HISTORY_B, tokenizer=tiny_tokenizer)
    assert capsys.readouterr().out == expected + "\n"
    assert "[Conversation so far]" in expected


def test_a_file_dry_run_renders_the_first_rows_as_judge_reads_them(tmp_path, capsys, tiny_model_folder,
                                                                   tiny_tokenizer):
    """MT-Bench human judgments, second turn: each answer shown in its own conversation."""
    rows = [row for row in map(json.loads, MT_BENCH.read_text(encoding="utf-8").splitlines()) if row["turn"] == 2]
    path = write_jsonl(tmp_path / "turn2.jsonl", [*rows[:2], {**rows[0], "question_id": 9, "turn": 2,
                                                               "conversation_a": "never read"}])
    argv = ["prompt", str(path), "--rows", "2", "--model", tiny_model_folder, "--template", "mt-bench-multi-turn"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    pairs = [pair_from_row(row) for row in rows[:2]]
    assert all(pair.history_a and pair.history_b for pair in pairs)
    expected = "".join(
        f"--- row {number} ---\n{pair_prompt(pair, tokenizer=tiny_tokenizer, template='mt-bench-multi-turn')}\n"
        for number, pair in enumerate(pairs, start=1)
    )
    assert out == expected
    first_answer_a = rows[0]["conversation_a"][1]["content"]
    assert f"### Assistant A:\n{first_answer_a}" in out


def test_a_history_column_is_shown(tmp_path, capsys, tiny_model_folder, tiny_tokenizer):
    row = {"prompt": "And in French?", "response_a": "Bonjour", "response_b": "Hallo", "turns": HISTORY_B}
    path = write_jsonl(tmp_path / "history.jsonl", [row])
    assert cli.main(["prompt", str(path), "--model", tiny_model_folder, "--history-field", "turns"]) == 0
    expected = render_prompt("And in French?", "Bonjour", "Hallo", history=HISTORY_B, tokenizer=tiny_tokenizer)
    assert capsys.readouterr().out == f"--- row 1 ---\n{expected}\n"


def test_a_file_dry_run_shows_one_row_by_default_and_maps_columns(tmp_path, capsys, tiny_model_folder):
    rows = [{"question": "Q one?", "first": "x", "second": "y"}, {"question": "Q two?", "first": "x", "second": "y"}]
    path = write_jsonl(tmp_path / "renamed.jsonl", rows)
    argv = ["prompt", str(path), "--model", tiny_model_folder, "--prompt-field", "question",
            "--response-a-field", "first", "--response-b-field", "second"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("--- row ") == 1 and "Q one?" in out and "Q two?" not in out


def test_a_row_that_cannot_be_rendered_is_said_and_the_others_are_shown(tmp_path, capsys, tiny_model_folder):
    turn_two = next(row for row in map(json.loads, MT_BENCH.read_text(encoding="utf-8").splitlines())
                    if row["turn"] == 2)
    path = write_jsonl(tmp_path / "mixed.jsonl", [{"prompt": "Q?", "response_a": "x", "response_b": "y"}, turn_two,
                                                  {"prompt": "Q3?"}])
    assert cli.main(["prompt", str(path), "--rows", "3", "--model", tiny_model_folder]) == 1
    captured = capsys.readouterr()
    # Row 2 (MT-Bench's second turn) is shown with the multi-turn prompt the judge uses; row 3 has no answers.
    assert captured.out.count("--- row ") == 2
    assert "<|The Start of Assistant A's Conversation with User|>" in captured.out
    assert "row 3:" in captured.err and "1 row(s) could not be rendered" in captured.err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--prompt", "Q"], "--response-a, --response-b missing"),
        (["INPUT", "--prompt", "Q"], "not both"),
        (["--prompt", "Q", "--response-a", "x", "--response-b", "y", "--history", "{\"role\": 1}"],
         "expected a JSON list of messages, got dict"),
        (["--prompt", "Q", "--response-a", "x", "--response-b", "y", "--history-a", "[oops"], "not valid JSON"),
        (["--prompt", "Q", "--response-a", "x", "--response-b", "y", "--history", "[{\"role\": \"narrator\"}]"],
         "role 'narrator'"),
        (["no-such-file.jsonl"], "no such file"),
        (["INPUT", "--rows", "0"], "must be at least 1"),
    ],
)
def test_usage_mistakes_are_one_sentence_before_any_tokenizer_loads(argv, said, tmp_path, capsys, monkeypatch):
    from critic.backends import loading

    monkeypatch.setattr(loading, "load_tokenizer", lambda *a, **k: pytest.fail("the tokenizer was loaded"))
    path = write_jsonl(tmp_path / "pairs.jsonl", [TURN_TWO])
    argv = [str(path) if arg == "INPUT" else arg for arg in argv]
    assert cli.main(["prompt", *argv]) == 2
    error = capsys.readouterr().err
    assert said in error and error.count("\n") == 1
