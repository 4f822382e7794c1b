"""Rows as work items: prepared, judged and decided; rejections carry a kind and a stage."""

from __future__ import annotations

import json

import pytest

from critic.errors import CriticError, Reason
from critic.io.shapes import Columns
from critic.io.writers import dumps_row
from critic.jobs.items import (
    Item,
    Rejection,
    decide,
    describe_judge,
    filter_rows,
    judge_items,
    prepare_item,
)
from critic.jobs.policy import Policy
from critic.judges import JudgeDescription
from critic.types import Preference

from .support import good_judge


def test_filter_rows_streams_outcomes_in_order_with_the_judge_columns():
    rows = [{"prompt": "q", "chosen": "good", "rejected": "bad"},
            {"prompt": "q", "chosen": "bad", "rejected": "good"},
            {"prompt": "q", "chosen": "good"}]
    results = list(filter_rows(rows, good_judge(), policy=Policy(relabel=True), chunk_size=2))
    assert [result.output for result in results] == ["kept", "kept", "rejected"]
    first, second, bad = (result.record for result in results)
    assert first == {**rows[0], "critic_label": "chosen", "critic_p_chosen": pytest.approx(0.9),
                     "critic_consistent": True, "critic_relabelled": False}
    assert second == {"prompt": "q", "chosen": "good", "rejected": "bad", "critic_label": "chosen",
                      "critic_p_chosen": pytest.approx(0.9), "critic_consistent": True, "critic_relabelled": True}
    assert bad == {"row": 3, "reason": "missing field 'rejected' (present: chosen, prompt)",
                   "kind": "missing field", "stage": "input", "input": rows[2]}
    assert results[2].rejection == Rejection(bad["reason"], Reason.MISSING_FIELD, "input")
    assert results[2].rejection.key == "missing field"


@pytest.mark.parametrize(("row", "kind"), [
    ([1, 2], Reason.NOT_AN_OBJECT),
    ({"nonsense": 1}, Reason.UNKNOWN_SHAPE),
    ({"prompt": "q", "chosen": "good"}, Reason.MISSING_FIELD),
    ({"prompt": 7, "chosen": "good", "rejected": "bad"}, Reason.WRONG_TYPE),
    ({"prompt": "q", "response_a": "a", "response_b": "b", "label": "tie"}, Reason.NO_PREFERENCE),
    ({"prompt": "q", "response_a": "a", "response_b": "b", "label": "maybe"}, Reason.UNKNOWN_LABEL),
    ({"prompt": "q", "chosen": ["good"], "rejected": ["bad"]}, Reason.BAD_MESSAGES),
    ({"prompt": "\ud800", "chosen": "good", "rejected": "bad"}, Reason.BAD_TEXT),
])
def test_a_rejection_carries_the_kind_set_where_the_reason_was_raised(row, kind):
    item = prepare_item(5, row, Columns())
    assert item.candidate is None and item.raw == row
    assert item.rejection.kind == kind and item.rejection.stage == "input"
    assert "\n" not in item.rejection.reason


def test_a_lone_surrogate_goes_through_decide_and_dumps_row_and_reads_back_the_same():
    row = json.loads('{"prompt": "caf\\ud800", "chosen": "good \\udfff", "rejected": "bad"}')
    item = prepare_item(1, row, Columns())
    outcome = decide(item, None, Policy())
    assert outcome.output == "rejected" and outcome.record["kind"] == Reason.BAD_TEXT.value
    line = dumps_row(outcome.record)  # no UnicodeEncodeError
    assert json.loads(line)["input"] == row  # the escape is written as it came, and reads back as it was
    outcome.rejection.reason.encode("utf-8")  # the reason text itself is printable


class Picky:
    """Fails a whole chunk that holds the poisoned pair, the way ``fail`` says."""

    def __init__(self, fail):
        self.fail, self.calls = fail, 0

    def describe(self):
        return JudgeDescription(kind="custom", model="picky")

    def compare_each(self, pairs):
        self.calls += 1
        if any(pair.prompt == "poison" for pair in pairs):
            raise self.fail
        return [Preference("A", 0.8, True, ()) for _ in pairs]


def items(count: int, poison: int) -> list[Item]:
    rows = [{"prompt": "poison" if i == poison else f"q{i}", "chosen": "a", "rejected": "b"} for i in range(count)]
    return [prepare_item(i + 1, row, Columns()) for i, row in enumerate(rows)]


@pytest.mark.parametrize(("error", "kind", "text"), [
    (CriticError("the backend choked on this batch"), Reason.OTHER, "judge: the backend choked on this batch"),
    (RuntimeError("CUDA error: device-side assert"), Reason.MODEL_FAILURE,
     "judge: unexpected RuntimeError: CUDA error: device-side assert"),
    (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), Reason.BAD_TEXT,
     "judge: unexpected UnicodeEncodeError"),
])
def test_a_chunk_that_fails_as_a_whole_is_judged_pair_by_pair_and_loses_nothing(error, kind, text, caplog):
    judge = Picky(error)
    results = judge_items(judge, items(6, poison=3))
    assert judge.calls == 1 + 6
    assert all(result.label == "A" for index, result in enumerate(results) if index != 3)
    assert isinstance(results[3], Rejection) and results[3].kind == kind and results[3].stage == "judge"
    assert results[3].reason.startswith(text) and results[3].key == f"judge: {kind.value}"
    assert "judging them one by one" in caplog.text


def test_an_interrupt_is_never_turned_into_a_rejection():
    with pytest.raises(KeyboardInterrupt):
        judge_items(Picky(KeyboardInterrupt()), items(3, poison=1))


def test_a_judge_that_answers_the_wrong_number_of_results_is_judged_pair_by_pair():
    class Short:
        def describe(self):
            return JudgeDescription(kind="custom")

        def compare_each(self, pairs):
            return [Preference("A", 0.8, True, ())] * min(len(pairs), 2)

    results = judge_items(Short(), items(3, poison=-1))
    assert [result.label for result in results] == ["A", "A", "A"]


def test_describe_judge_reads_a_mapping_once_at_the_boundary():
    assert describe_judge(good_judge()) == good_judge().describe()

    class Old:
        def describe(self):
            return {"model": "old", "mode": "score"}

    assert describe_judge(Old()) == JudgeDescription(kind="custom", model="old", mode="score")

    class Broken:
        def describe(self):
            return 42

    with pytest.raises(CriticError, match="not a JudgeDescription"):
        describe_judge(Broken())


# --------------------------------------------------------------------------- RewardBench 2 rows (issue 17, item 7)


def _rewardbench2_rows():
    from pathlib import Path

    from critic.io.source import open_source

    return [row for _, row in open_source(Path(__file__).resolve().parents[1] / "data" / "rewardbench2.jsonl").rows()]


def _judge_preferring(texts, fail_on=()):
    """A judge that prefers the answers in ``texts``; a pair showing an answer in ``fail_on`` fails alone."""
    from critic import Judge
    from critic.backends.base import BackendOutput
    from critic.errors import VerdictError
    from critic.testing import FakeBackend

    backend = FakeBackend.prefer(lambda text: text in texts)
    respond = backend.respond

    def failing(request):
        if {request.pair.response_a, request.pair.response_b} & set(fail_on):
            return BackendOutput(error=VerdictError("no verdict", "I cannot decide."))
        return respond(request)

    backend.respond = failing
    return Judge(backend, model_name="fake")


def test_a_rewardbench2_row_is_kept_when_its_chosen_answer_wins_every_pair_with_each_pair_recorded():
    """Before: filter rejected every RewardBench 2 row ("give each rejected answer its own row")."""
    rows = _rewardbench2_rows()
    chosen = {answer for row in rows for answer in row["chosen"]}
    outcomes = list(filter_rows(rows, _judge_preferring(chosen)))
    assert [o.output for o in outcomes] == ["kept"] * 8  # the Ties rows too: each correct answer beats each wrong one
    first = outcomes[0].record
    assert {k: first[k] for k in ("id", "critic_label", "critic_consistent")} == {
        "id": "17", "critic_label": "chosen", "critic_consistent": True}
    assert first["critic_pairs"] == [{"chosen": 0, "rejected": j, "label": "chosen", "p_chosen": pytest.approx(0.9),
                                      "consistent": True} for j in range(3)]
    assert [(p["chosen"], p["rejected"]) for p in outcomes[7].record["critic_pairs"]] == [
        (i, j) for i in range(3) for j in range(2)]


def test_a_rewardbench2_row_is_dropped_when_any_rejected_answer_holds_and_never_relabelled():
    rows = _rewardbench2_rows()[:2]
    chosen = {row["chosen"][0] for row in rows}
    both = chosen | {rows[0]["rejected"][1]}  # row 1: one rejected answer as good as the chosen one (a tie)
    outcomes = list(filter_rows(rows, _judge_preferring(both)))
    assert [o.output for o in outcomes] == ["dropped", "kept"]
    tie = outcomes[0].record
    assert tie["critic_label"] == "tie" and tie["critic_consistent"] is False
    assert [p["label"] for p in tie["critic_pairs"]] == ["chosen", "tie", "chosen"]
    # a rejected answer the judge prefers consistently: relabelling would not say which answer is chosen now
    only_rejected = {rows[0]["rejected"][2]} | {rows[1]["chosen"][0]}
    outcomes = list(filter_rows(rows, _judge_preferring(only_rejected), policy=Policy(relabel=True)))
    assert [o.output for o in outcomes] == ["dropped", "kept"]
    assert outcomes[0].record["critic_label"] == "rejected" and outcomes[0].record["critic_relabelled"] is False
    assert outcomes[0].record["chosen"] == rows[0]["chosen"]  # not swapped


def test_one_failed_pair_rejects_its_rewardbench2_row_naming_the_pair():
    rows = _rewardbench2_rows()[:2]
    chosen = {row["chosen"][0] for row in rows}
    outcomes = list(filter_rows(rows, _judge_preferring(chosen, fail_on={rows[0]["rejected"][2]})))
    assert [o.output for o in outcomes] == ["rejected", "kept"]
    record = outcomes[0].record
    assert record["reason"].startswith("judge: pair chosen[0] vs rejected[2]: ")
    assert (record["kind"], record["stage"], record["input"]) == ("unreadable verdict", "judge", rows[0])
