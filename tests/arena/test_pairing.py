"""Who meets whom: baseline, round robin, an even seeded budget; MT-Bench's second turn as its own conversations."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from critic import Judge
from critic.arena.answers import Answer, Question
from critic.arena.join import join_answers
from critic.arena.pairing import schedule
from critic.errors import InputError
from critic.testing import FakeBackend


def table(models=("a", "b", "c", "d"), questions=10):
    asked = [Question(f"q{i}", (f"Q{i}?",), id=f"q{i}") for i in range(questions)]
    answers = [Answer(model, (f"{model} says {i}",), f"{model}:{i}", question_id=f"q{i}")
               for model in models for i in range(questions)]
    return join_answers(answers, questions=asked)


def test_baseline_puts_every_model_against_it_on_every_question():
    comparisons = schedule(table(), baseline="b")
    assert Counter((c.model_a, c.model_b) for c in comparisons) == {("a", "b"): 10, ("c", "b"): 10, ("d", "b"): 10}
    assert comparisons[0].pair().response_a == "a says 0" and comparisons[0].pair().response_b == "b says 0"


def test_round_robin_meets_every_pair():
    pairs = Counter((c.model_a, c.model_b) for c in schedule(table()))
    assert pairs == {pair: 10 for pair in (("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d"))}


def test_an_unknown_baseline_or_a_lone_model_is_an_input_error():
    with pytest.raises(InputError, match="baseline 'zz' has no answers"):
        schedule(table(), baseline="zz")
    with pytest.raises(InputError, match="at least two models"):
        schedule(table(models=("a",)))


@settings(max_examples=30, deadline=None)
@given(budget=st.integers(1, 60), seed=st.integers(0, 1000))
def test_the_budget_is_shared_evenly_and_a_larger_one_keeps_what_a_smaller_chose(budget, seed):
    full = table()
    chosen = schedule(full, max_comparisons=budget, seed=seed)
    counts = Counter((c.model_a, c.model_b) for c in chosen)
    assert len(chosen) == min(budget, 60)
    assert max(counts.values()) - min(counts.get(pair, 0) for pair in counts) <= 1 or len(counts) < 6
    assert schedule(full, max_comparisons=budget, seed=seed) == chosen  # seeded
    larger = {(c.question.key, c.model_a, c.model_b) for c in schedule(full, max_comparisons=budget + 6, seed=seed)}
    assert {(c.question.key, c.model_a, c.model_b) for c in chosen} <= larger


def test_mt_bench_second_turn_shows_each_model_its_own_first_turn_with_the_multi_turn_template():
    question = Question("81", ("Write a poem.", "Now in French."), id="81", references=("ref 1", "ref 2"))
    answers = [Answer("x", ("poem x", "poème x"), "x:1", question_id="81"),
               Answer("y", ("poem y", "poème y"), "y:1", question_id="81")]
    first, second = schedule(join_answers(answers, questions=[question]), baseline="y")
    assert (first.turn, second.turn) == (0, 1)
    pair = second.pair()
    assert pair.prompt == "Now in French." and (pair.response_a, pair.response_b) == ("poème x", "poème y")
    assert pair.history_a[1]["content"] == "poem x" and pair.history_b[1]["content"] == "poem y"
    assert pair.reference == "ref 2" and pair.reference_history[1]["content"] == "ref 1"
    backend = FakeBackend.first_position(0.7)
    Judge(backend, template="mt-bench").compare_each([first.pair(), second.pair()])
    assert [request.template.name for request in backend.calls] == ["mt-bench"] * 2 + ["mt-bench-multi-turn"] * 2
