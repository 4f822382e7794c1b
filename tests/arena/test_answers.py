"""Reading answers and questions: every shape, every format the input layer reads, and every row kept or reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from critic.arena.answers import answer_from_row, question_from_row, read_answers, read_questions
from critic.errors import InputError, Reason

DATA = Path(__file__).parent / "data"

ANSWER_ROWS = [
    # (row, model, question id, prompt turns, answer turns, shape)
    ({"uid": "u1", "model": "m", "messages": [{"role": "user", "content": "Q?"},
                                              {"role": "assistant", "content": {"answer": "A."}}]},
     "m", "u1", ("Q?",), ("A.",), "arena-hard"),
    ({"uid": "u1", "model": "m", "messages": [{"role": "system", "content": "be nice"},
                                              {"role": "user", "content": "Q?"},
                                              {"role": "assistant", "content": "A."}]},
     "m", "u1", ("Q?",), ("A.",), "arena-hard"),
    ({"question_id": 81, "model_id": "vicuna", "choices": [{"index": 0, "turns": ["one", "two"]}]},
     "vicuna", "81", (), ("one", "two"), "fastchat"),
    ({"question_id": "abc", "model_id": "gpt-4", "choices": [{"turns": [{"content": "old", "token_len": 1}]}]},
     "gpt-4", "abc", (), ("old",), "fastchat"),
    ({"instruction": "Say hi", "output": "hi", "generator": "alpaca", "dataset": "helpful_base"},
     "alpaca", None, ("Say hi",), ("hi",), "alpaca-eval"),
    ({"id": 3, "prompt": "Q?", "response": "A.", "model": "plain"}, "plain", "3", ("Q?",), ("A.",), "plain"),
    ({"prompt": "Q?", "response": "A."}, "from-file", None, ("Q?",), ("A.",), "plain"),
]


@pytest.mark.parametrize(("row", "model", "question_id", "prompts", "turns", "shape"), ANSWER_ROWS)
def test_each_answer_shape_is_read(row, model, question_id, prompts, turns, shape):
    answer = answer_from_row(row, where="f:1", default_model="from-file")
    assert (answer.model, answer.question_id, answer.prompt_turns, answer.turns, answer.shape) == (
        model, question_id, prompts, turns, shape)


BAD_ANSWERS = [
    ([1, 2], Reason.NOT_AN_OBJECT, "must be an object"),
    ({"text": "no shape"}, Reason.UNKNOWN_SHAPE, "not an answer row"),
    ({"uid": "u", "model": "m", "messages": [{"role": "user", "content": "Q"}]}, Reason.BAD_MESSAGES, "end with"),
    ({"uid": "u", "model": "m", "messages": [{"role": "assistant", "content": "A"}]}, Reason.BAD_MESSAGES, "role"),
    ({"question_id": 1, "model_id": "m", "choices": []}, Reason.WRONG_TYPE, "non-empty"),
    ({"question_id": 1, "model_id": "m", "choices": [{"turns": [3]}]}, Reason.WRONG_TYPE, "must be a string"),
    ({"instruction": "Q", "output": None, "generator": "g"}, Reason.MISSING_FIELD, "missing or null"),
    ({"id": 1, "response": "A", "model": ""}, Reason.WRONG_TYPE, "name the model"),
    ({"id": 1.5, "response": "A", "model": "m"}, Reason.WRONG_TYPE, "whole number"),
]


@pytest.mark.parametrize(("row", "kind", "message"), BAD_ANSWERS)
def test_a_row_that_is_no_answer_is_an_error_with_its_kind(row, kind, message):
    with pytest.raises(InputError, match=message) as raised:
        answer_from_row(row, default_model=None)
    assert raised.value.kind == kind


QUESTION_ROWS = [
    ({"uid": "u", "category": "hard_prompt", "prompt": "Q?"}, "u", ("Q?",), (), "hard_prompt"),
    ({"question_id": 111, "category": "math", "turns": ["a?", "b?"], "reference": ["3", "5pi"]}, "111", ("a?", "b?"),
     ("3", "5pi"), "math"),
    ({"question_id": "x", "turns": [{"content": "old?"}]}, "x", ("old?",), (), None),
    ({"instruction": "Say hi", "dataset": "helpful_base"}, "Say hi", ("Say hi",), (), "helpful_base"),
    ({"id": 7, "prompt": "2+2?", "reference": "4", "category": "math"}, "7", ("2+2?",), ("4",), "math"),
]


@pytest.mark.parametrize(("row", "key", "turns", "references", "category"), QUESTION_ROWS)
def test_each_question_shape_is_read(row, key, turns, references, category):
    field = "dataset" if "dataset" in row else "category"
    question = question_from_row(row, category_field=field)
    assert (question.key, question.turns, question.references, question.category) == (key, turns, references,
                                                                                       category)


def test_a_reference_per_turn_or_none():
    with pytest.raises(InputError, match="2 turns but 1 references"):
        question_from_row({"question_id": 1, "turns": ["a", "b"], "reference": ["only one"]})


def test_the_peers_real_files_read_whole():
    answers, problems = read_answers([DATA / "arena_hard_v2_answers.jsonl", DATA / "arena_hard_v01_answers.jsonl"])
    assert not problems and len(answers) == 20
    assert {answer.model for answer in answers} == {"o3-mini-2025-01-31", "gpt-4-0314"}
    assert all(answer.metadata and "token_len" in answer.metadata for answer in answers[:12])
    questions, problems = read_questions(DATA / "mt_bench_questions.jsonl", category_field="category")
    assert not problems and [q.category for q in questions] == ["writing", "writing", "math", "math"]
    assert questions[2].references == ("Area is 3", "5pi")
    v01, problems = read_questions(DATA / "arena_hard_v01_questions.jsonl")
    assert not problems and len(v01) == 8 and all(len(q.turns) == 1 for q in v01)


def test_every_format_of_the_input_layer_gives_the_same_answers(tmp_path):
    rows = [{"id": index, "prompt": f"Q{index}?", "response": f"A{index}.", "model": "m"} for index in range(5)]
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    (tmp_path / "m.json").write_text(json.dumps(rows), encoding="utf-8")
    (tmp_path / "m.csv").write_text("id,prompt,response,model\n" + "".join(
        f"{r['id']},{r['prompt']},{r['response']},{r['model']}\n" for r in rows), encoding="utf-8")
    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset.from_list(rows)
    dataset.to_parquet(str(tmp_path / "m.parquet"))
    dataset.save_to_disk(str(tmp_path / "saved"))
    expected = [(a.model, a.question_id, a.prompt_turns, a.turns) for a in read_answers([jsonl])[0]]
    for path in ("m.json", "m.csv", "m.parquet", "saved"):
        answers, problems = read_answers([tmp_path / path])
        assert not problems
        assert [(a.model, a.question_id, a.prompt_turns, a.turns) for a in answers] == expected, path


def test_unreadable_rows_are_reported_with_file_row_and_model(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"id": 1, "prompt": "Q", "response": "A", "model": "m"}\n{not json\n{"id": 2, "model": "m"}\n',
                    encoding="utf-8")
    answers, problems = read_answers([path])
    assert len(answers) == 1
    assert [(p.where, p.kind, p.model) for p in problems] == [("m.jsonl:2", Reason.UNREADABLE_ROW, "m"),
                                                             ("m.jsonl:3", Reason.UNKNOWN_SHAPE, "m")]
