"""The reward judge: margins to preferences, errors in place, pointwise scores, and `critic score`.

Scores come from ``FakeScorer`` (exact control) or, for the CLI, from a tiny
randomly initialised reward model: real mechanics, meaningless numbers.
"""

from __future__ import annotations

import json
import logging
import math

import pytest

from critic import InputError, ModelError, Pair, PairwiseJudge, RewardJudge, cli
from critic.judges.reward import conversation_from_row, preference_from_scores
from critic.testing import FakeScorer, tiny_reward_model


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_reward_judge_is_a_pairwise_judge():
    judge = RewardJudge(FakeScorer.scripted([]), model_name="rm", tie_margin=0.5)
    assert isinstance(judge, PairwiseJudge)
    assert judge.describe() == {"kind": "reward", "model": "rm", "tie_margin": 0.5}


@pytest.mark.parametrize(
    ("score_a", "score_b", "tie_margin", "label", "verdict"),
    [
        (2.0, -1.0, 0.0, "A", "A"),
        (-1.0, 2.0, 0.0, "B", "B"),
        (1.5, 1.5, 0.0, "tie", "C"),  # with the default margin only equal scores tie
        (1.0, 0.9999, 0.0, "A", "A"),
        (1.4, 1.0, 0.5, "tie", "C"),
        (1.0, 1.5, 0.5, "tie", "C"),  # |margin| == tie_margin is a tie
        (1.6, 1.0, 0.5, "A", "A"),
        (12.625, -15.25, 0.0, "A", "A"),
    ],
)
def test_margin_maps_to_label_and_sigmoid(score_a, score_b, tie_margin, label, verdict):
    judge = RewardJudge(FakeScorer.scripted([score_a, score_b]), tie_margin=tie_margin)
    preference = judge.compare("q", "a", "b")
    assert preference.label == label
    assert preference.p_a == pytest.approx(sigmoid(score_a - score_b))
    assert preference.consistent is None  # each response scored alone: no order to disagree with
    (order,) = preference.orders
    assert (order.order, order.verdict, order.score_a, order.score_b) == ("ab", verdict, score_a, score_b)
    assert order.p_a == preference.p_a and order.p_b == pytest.approx(1 - preference.p_a)


def test_huge_margins_do_not_overflow():
    assert preference_from_scores(1000.0, -1000.0).p_a == 1.0
    assert preference_from_scores(-1000.0, 1000.0).p_a == 0.0


def test_to_dict_carries_the_scores_and_is_json():
    record = preference_from_scores(2.0, -1.0).to_dict()
    assert record["consistent"] is None
    assert record["orders"] == [
        {"order": "ab", "verdict": "A", "p_a": pytest.approx(sigmoid(3.0)), "p_b": pytest.approx(1 - sigmoid(3.0)),
         "p_tie": 0.0, "forced": False, "score_a": 2.0, "score_b": -1.0}
    ]
    json.dumps(record)


def test_each_response_is_scored_alone_as_a_conversation():
    scorer = FakeScorer.by_response({"good": 1.0, "bad": -1.0})
    judge = RewardJudge(scorer)
    history = ({"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"})
    pairs = [Pair("q1", "good", "bad", history=history), {"prompt": "q2", "response_a": "bad", "response_b": "good"}]
    results = judge.compare_batch(pairs)
    assert [r.label for r in results] == ["A", "B"]
    assert scorer.calls[0] == (*history, {"role": "user", "content": "q1"}, {"role": "assistant", "content": "good"})
    assert scorer.calls[1][-1] == {"role": "assistant", "content": "bad"}
    assert scorer.calls[2:] == [
        ({"role": "user", "content": "q2"}, {"role": "assistant", "content": "bad"}),
        ({"role": "user", "content": "q2"}, {"role": "assistant", "content": "good"}),
    ]


def test_a_failed_response_costs_its_pair_only():
    too_long = InputError("the conversation is 9000 tokens, longer than the model's context of 8192 tokens")
    judge = RewardJudge(FakeScorer.scripted([1.0, 0.0, 1.0, too_long, float("nan"), 0.0]))
    results = judge.compare_each([Pair("q", "a", "b")] * 3)
    assert results[0].label == "A"
    assert isinstance(results[1], InputError) and str(results[1]).startswith("response_b: the conversation is 9000")
    assert results[1].pair_index == 1
    assert isinstance(results[2], ModelError)
    assert str(results[2]).startswith("response_a: ") and "not a finite score" in str(results[2])
    with pytest.raises(InputError, match="response_b"):
        RewardJudge(FakeScorer.scripted([1.0, too_long])).compare_batch([Pair("q", "a", "b")])


def test_score_is_pointwise_and_names_the_failing_row():
    conversations = [
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}],
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "bad"}],
    ]
    judge = RewardJudge(FakeScorer.by_response({"good": 3.0, "bad": -2.0}))
    assert judge.score(conversations) == [3.0, -2.0]
    unfinished = [{"role": "user", "content": "no answer yet"}]
    results = judge.score_each([conversations[0], unfinished])
    assert results[0] == 3.0 and isinstance(results[1], InputError)
    with pytest.raises(InputError, match=r"^conversation 1: .*must end with an assistant message"):
        judge.score([conversations[0], unfinished])
    with pytest.raises(InputError, match=r"conversation 0: .*role 'robot'"):
        judge.score([[{"role": "robot", "content": "x"}]])


def test_score_count_mismatch_is_a_model_error():
    class Broken:
        def score(self, conversations):
            return [0.0]

    with pytest.raises(ModelError, match="returned 1 scores for 2 conversations"):
        RewardJudge(Broken()).compare_each([Pair("q", "a", "b")])


def test_references_are_ignored_with_one_warning(caplog):
    judge = RewardJudge(FakeScorer.by_response({}))
    with caplog.at_level(logging.WARNING, logger="critic"):
        judge.compare("q", "a", "b", reference="r")
        judge.compare("q", "a", "b", reference="r")
    assert caplog.text.count("read no reference") == 1


def test_negative_tie_margin_is_refused():
    with pytest.raises(InputError, match="tie_margin"):
        RewardJudge(FakeScorer.by_response({}), tie_margin=-1.0)


def test_conversation_from_row_reads_both_shapes():
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert conversation_from_row({"messages": messages}) == tuple(messages)
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert conversation_from_row({"prompt": "q", "response": "a", "history": history}) == (*history, *messages)
    renamed = conversation_from_row({"question": "q", "answer": "a"}, prompt_field="question", response_field="answer")
    assert renamed == tuple(messages)
    with pytest.raises(InputError, match="needs a 'messages' list or both 'prompt' and 'response'.*null: response"):
        conversation_from_row({"prompt": "q"})
    with pytest.raises(InputError, match="must end with an assistant message"):
        conversation_from_row({"messages": messages[:1]})


@pytest.fixture(scope="module")
def tiny_model_folder(tmp_path_factory, demo_backend):
    """A tiny random reward model with the demo tokenizer, saved like a real one: meaningless scores."""
    folder = tmp_path_factory.mktemp("tiny-reward-model")
    tiny_reward_model(demo_backend.tokenizer).save_pretrained(folder)
    demo_backend.tokenizer.save_pretrained(folder)
    return folder


def test_score_command_adds_a_reward_column(tmp_path, tiny_model_folder, capsys):
    messages = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    rows = [
        {"id": "m", "messages": messages},
        {"id": "p", "prompt": "2+2?", "response": "4", "extra": [1, 2]},
        {"id": "h", "prompt": "And 3+3?", "response": "6", "history": messages},
        {"id": "bad", "prompt": "2+2?"},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(row) for row in rows) + "\n{not json\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    options = ["-o", str(out), "--model", str(tiny_model_folder), "--device", "cpu", "--quiet"]
    code = cli.main(["score", str(source), *options])
    assert code == 1
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r.get("id") for r in records] == ["m", "p", "h", "bad", None]
    assert {k: v for k, v in records[1].items() if k != "reward"} == rows[1]  # the row comes back whole
    assert all(isinstance(r["reward"], float) for r in records[:3])
    assert records[0]["reward"] == pytest.approx(records[1]["reward"], abs=1e-5)  # the same conversation
    assert records[3]["reward"] is None and "line 4:" in records[3]["error"] and "'response'" in records[3]["error"]
    assert records[4] == {"line": 5, "reward": None, "error": records[4]["error"]}
    assert records[4]["error"].startswith("line 5 is not valid JSON")
    assert "2 line(s) could not be scored" in capsys.readouterr().err

    expected = RewardJudge.from_pretrained(str(tiny_model_folder), device="cpu").score([messages])[0]
    assert records[0]["reward"] == pytest.approx(expected, abs=1e-5)


def test_score_command_with_the_demo_model_explains_why_not(tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"prompt": "q", "response": "a"}) + "\n", encoding="utf-8")
    assert cli.main(["score", str(source), "--model", "demo"]) == 2
    assert "no reward model ships offline" in capsys.readouterr().err
