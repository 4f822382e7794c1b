"""The one judging path: errors stay in place, one call per chunk, isolation of a failing call, the chunker."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from critic.errors import CriticError, InputError, ModelError, Reason
from critic.judges.each import ajudged_in_place, as_critic_error, chunked, judged_in_place, read_each


def upper_all(items: list[str]) -> list[str]:
    return [item.upper() for item in items]


def test_errors_stay_in_place_and_the_rest_go_in_one_call():
    calls: list[list[str]] = []
    bad = InputError("bad row")

    def run(items: list[str]) -> list[str]:
        calls.append(items)
        return upper_all(items)

    assert judged_in_place(["a", bad, "c"], run) == ["A", bad, "C"]
    assert calls == [["a", "c"]]


def test_nothing_to_judge_makes_no_call():
    bad = InputError("bad")
    assert judged_in_place([bad], lambda items: pytest.fail("called")) == [bad]
    assert judged_in_place([], lambda items: pytest.fail("called")) == []


@pytest.mark.parametrize("returned", [[], ["A", "B", "C"]], ids=["too few", "too many"])
def test_a_wrong_number_of_results_is_a_model_error(returned):
    with pytest.raises(ModelError, match="returned .* results for 2 items"):
        judged_in_place(["a", "b"], lambda items: returned)


def test_a_whole_failure_raises_unless_isolated():
    def run(items: list[str]) -> list[str]:
        if "boom" in items:
            raise RuntimeError("the model crashed")
        return upper_all(items)

    with pytest.raises(RuntimeError):
        judged_in_place(["a", "boom"], run)
    results = judged_in_place(["a", "boom", "c"], run, isolate_failures=True)
    assert results[0] == "A" and results[2] == "C"
    assert isinstance(results[1], ModelError) and results[1].kind == Reason.MODEL_FAILURE
    assert "unexpected RuntimeError: the model crashed" in str(results[1])


def test_an_interrupt_is_never_isolated():
    def run(items: list[str]) -> list[str]:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        judged_in_place(["a"], run, isolate_failures=True)


def test_async_twin_is_the_same_path():
    bad = InputError("bad")

    async def arun(items: list[str]) -> list[str]:
        return upper_all(items)

    assert asyncio.run(ajudged_in_place(["a", bad, "c"], arun)) == ["A", bad, "C"]

    async def fails(items: list[str]) -> list[str]:
        if len(items) > 1:
            raise RuntimeError("batch too big")
        return upper_all(items)

    assert asyncio.run(ajudged_in_place(["a", "b"], fails, isolate_failures=True)) == ["A", "B"]


def test_read_each_keeps_errors_and_given_errors():
    given_error = InputError("unreadable line")

    def read(value: object) -> int:
        if not isinstance(value, int):
            raise InputError(f"not a number: {value!r}")
        return value

    results = read_each([1, "x", given_error, 4], read)
    assert results[0] == 1 and results[3] == 4 and results[2] is given_error
    assert isinstance(results[1], InputError)


def test_unexpected_errors_become_critic_errors_with_their_kind():
    assert as_critic_error(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogate")).kind == Reason.BAD_TEXT
    error = InputError("x")
    assert as_critic_error(error) is error
    wrapped = as_critic_error(ValueError("odd"))
    assert isinstance(wrapped, CriticError) and isinstance(wrapped.__cause__, ValueError)


@given(st.lists(st.integers(), max_size=50), st.integers(min_value=1, max_value=12))
def test_chunked_keeps_every_item_in_order(items, size):
    chunks = list(chunked(iter(items), size))
    assert [item for chunk in chunks for item in chunk] == items
    assert all(1 <= len(chunk) <= size for chunk in chunks)
    assert all(len(chunk) == size for chunk in chunks[:-1])


@pytest.mark.parametrize("size", [0, -1, True, 1.5])
def test_chunked_refuses_a_bad_size(size):
    with pytest.raises(ValueError, match="chunk size"):
        list(chunked([1], size))


def test_grouped_judges_every_member_of_every_group_in_one_call_and_hands_results_back_per_group():
    from critic.judges.each import grouped

    calls = []

    def run(items):
        calls.append(list(items))
        return [InputError(f"bad {item}") if item == "x" else item.upper() for item in items]

    groups = [("a", "b", "c"), InputError("unreadable row"), ("d",), ("x", "e")]
    results = judged_in_place(groups, grouped(run))
    assert calls == [["a", "b", "c", "d", "x", "e"]]  # one call for every pair of every readable row
    assert results[0] == ["A", "B", "C"] and results[2] == ["D"]
    assert isinstance(results[1], InputError)
    assert isinstance(results[3][0], InputError) and results[3][1] == "E"  # a failed pair stays in its place
