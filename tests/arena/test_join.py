"""Joining answers to questions: by id or by text; missing, duplicate, conflicting and unknown answers counted."""

from __future__ import annotations

import pytest

from critic.arena.answers import Answer, Question
from critic.arena.join import join_answers
from critic.errors import InputError


def answer(model, key=None, text="A", prompt=("Q?",), where="f:1", turns=None):
    return Answer(model, turns or (text,), where, question_id=key, prompt_turns=prompt)


def test_every_answer_is_used_counted_or_listed():
    questions = [Question("1", ("Q1?",), id="1"), Question("2", ("Q2?",), id="2"), Question("3", ("Q3?",), id="3")]
    answers = [
        answer("a", "1", prompt=("Q1?",), where="a:1"), answer("a", "1", prompt=("Q1?",), where="a:2"),  # duplicate
        answer("a", "2", "x", prompt=("Q2?",), where="a:3"), answer("a", "2", "y", prompt=("Q2?",), where="a:4"),
        answer("a", "9", prompt=("Q9?",), where="a:5"),  # unknown question
        answer("b", "1", prompt=("Q1?",)), answer("b", "2", prompt=("another text",), where="b:2"),  # mismatched
        answer("b", "3", turns=("one", "two"), prompt=(), where="b:3"),  # two turns for a one-turn question
    ]
    table = join_answers(answers, questions=questions)
    assert table.models == ("a", "b")
    assert table.inputs["a"].to_dict() == {"answers": 1, "missing": 1, "duplicates": 1, "conflicting": 2,
                                           "unknown": 1, "mismatched": 0, "unreadable": 0}
    assert table.inputs["b"].to_dict() == {"answers": 1, "missing": 2, "duplicates": 0, "conflicting": 0,
                                           "unknown": 0, "mismatched": 2, "unreadable": 0}
    assert [p.counted_as for p in table.problems] == ["duplicate answer", "conflicting answers",
                                                      "conflicting answers", "answer to an unknown question",
                                                      "mismatched answer", "mismatched answer"]
    assert table.answer("a", questions[1]) is None  # two different answers: neither is guessed


def test_without_a_questions_file_answers_join_by_id_then_by_text():
    answers = [answer("a", "u1", prompt=("Q1?",)), answer("b", None, prompt=("Q1?",)),
               answer("b", None, prompt=("Q2?",)), answer("a", None, prompt=("Q2?",))]
    table = join_answers(answers)
    assert [q.key for q in table.questions] == ["u1", "Q2?"]
    assert all(table.inputs[model].answers == 2 and table.inputs[model].missing == 0 for model in "ab")


def test_answers_without_the_question_text_need_the_questions_file():
    with pytest.raises(InputError, match="--questions"):
        join_answers([answer("a", "81", prompt=())])
