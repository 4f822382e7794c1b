"""critic.io.rows: the row shapes every command reads, and the reason (with its kind) when a row is unusable."""

from __future__ import annotations

import json
import logging

import pytest

import critic.io.rows
from critic.errors import InputError, Reason
from critic.io.labels import ACCEPTED_LABELS
from critic.io.readers import RowError
from critic.io.rows import conversation_from_row, pair_from_row, pandalm_row, prepare_row, read_pair
from critic.io.shapes import Columns
from critic.io.source import open_source
from critic.types import Pair
from tests.conftest import shared_path

# --------------------------------------------------------------------------- shapes


def test_shape_a_prompt_chosen_rejected_strings():
    candidate = prepare_row({"prompt": "2+2?", "chosen": "4", "rejected": "5", "id": 7, "reference": "4"})
    assert (candidate.pair.prompt, candidate.pair.response_a, candidate.pair.response_b) == ("2+2?", "4", "5")
    assert candidate.pair.reference == "4" and candidate.shape == "pairs"
    assert candidate.relabelled() == {"prompt": "2+2?", "chosen": "5", "rejected": "4", "id": 7, "reference": "4"}


def test_shape_b_message_lists_share_the_conversation_before_the_answer():
    shared = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
              {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "2+2?"}]
    row = {"chosen": [*shared, {"role": "assistant", "content": "4"}],
           "rejected": [*shared, {"role": "assistant", "content": "5"}]}
    candidate = prepare_row(row)
    assert candidate.pair.prompt == "2+2?"
    assert (candidate.pair.response_a, candidate.pair.response_b) == ("4", "5")
    assert list(candidate.pair.history) == shared[:3]
    assert candidate.relabelled()["chosen"] == row["rejected"]


@pytest.mark.parametrize("prompt, expected_prompt, expected_history", [
    ("2+2?", "2+2?", ()),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hey"}, {"role": "user", "content": "2+2?"}],
     "2+2?", ({"role": "user", "content": "hi"}, {"role": "assistant", "content": "hey"})),
])
def test_shape_b_answer_only_lists_take_the_conversation_from_the_prompt_column(prompt, expected_prompt,
                                                                                expected_history):
    row = {"prompt": prompt, "chosen": [{"role": "assistant", "content": "4"}],
           "rejected": [{"role": "assistant", "content": "5"}]}
    candidate = prepare_row(row)
    assert candidate.pair.prompt == expected_prompt and candidate.pair.history == expected_history


@pytest.mark.parametrize("label, a_is_chosen, relabelled", [
    ("A", True, "B"), ("b", False, "a"), ("response_a", True, "response_b"), ("MODEL_B", False, "MODEL_A"),
    ("1", True, "2"), (2, False, 1), ("response1", True, "response2"), ("Response2", False, "response1"),
    (None, True, None),
])
def test_shape_c_labels_name_the_chosen_response(label, a_is_chosen, relabelled):
    row = {"prompt": "q", "response_a": "first", "response_b": "second", "label": label}
    candidate = prepare_row(row)
    assert candidate.pair.response_a == ("first" if a_is_chosen else "second")
    if relabelled is None:  # no label: response_a is the claim; relabelling swaps the responses
        assert candidate.relabelled() == {**row, "response_a": "second", "response_b": "first"}
    else:
        assert candidate.relabelled() == {**row, "label": relabelled}


@pytest.mark.parametrize("label", ["tie", "Draw", "tie (bothbad)", "C", 0, "0"])
def test_shape_c_ties_are_no_preference(label):
    with pytest.raises(InputError, match="^tie: label .* prefers neither response$") as caught:
        prepare_row({"prompt": "q", "response_a": "a", "response_b": "b", "label": label})
    assert caught.value.kind == Reason.NO_PREFERENCE


@pytest.mark.parametrize("label", ["both", "neither", "none", "first", True, 1.5])
def test_shape_c_unknown_labels_are_refused_with_the_vocabulary_message(label):
    with pytest.raises(InputError) as caught:
        prepare_row({"prompt": "q", "response_a": "a", "response_b": "b", "label": label})
    assert caught.value.kind == Reason.UNKNOWN_LABEL
    assert str(caught.value).startswith(f"field 'label' is {label!r}; expected {ACCEPTED_LABELS}")
    assert ("--label-sign" in str(caught.value)) == (label == 1.5)  # a number names the signed rule


def test_column_flags_remap_every_shape():
    columns = Columns(prompt="question", chosen="good", rejected="bad", response_a="x", response_b="y", label="win")
    assert prepare_row({"question": "q", "good": "g", "bad": "b"}, columns).pair.response_a == "g"
    assert prepare_row({"question": "q", "x": "1", "y": "2", "win": "B"}, columns).pair.response_a == "2"


def test_no_columns_means_the_default_names():
    row = {"prompt": "q", "chosen": "c", "rejected": "r", "messages": [{"role": "assistant", "content": "x"}]}
    assert prepare_row(row, None) == prepare_row(row, Columns()) and pair_from_row(row, None) == Pair("q", "c", "r")
    assert conversation_from_row(row, None) == ({"role": "assistant", "content": "x"},)


def test_llmbar_rows_are_read_through_columns():
    columns = Columns(prompt="input", response_a="output_1", response_b="output_2")
    row = {"input": "Sort 3 1 2", "output_1": "1 2 3", "output_2": "3 2 1", "label": 1}
    assert pair_from_row(row, columns) == Pair("Sort 3 1 2", "1 2 3", "3 2 1")
    assert prepare_row({**row, "label": 2}, columns).pair.response_a == "3 2 1"


# --------------------------------------------------------------------------- PandaLM


PANDALM = {"idx": 3, "motivation_app": "app", "cmp_key": "a_b", "instruction": "Say hi.", "input": "in French",
           "response1": "Bonjour", "response2": "Hello", "annotator1": 1, "annotator2": 0, "annotator3": 1}


def test_pandalm_rows_become_chosen_and_rejected_by_majority():
    candidate = prepare_row(PANDALM)
    assert candidate.pair.prompt == "Say hi.\n\nin French"
    assert candidate.row == {"idx": 3, "motivation_app": "app", "cmp_key": "a_b", "prompt": "Say hi.\n\nin French",
                             "chosen": "Bonjour", "rejected": "Hello", "chosen_from": "response1",
                             "annotators": [1, 0, 1]}
    assert pandalm_row(PANDALM) == candidate.row
    second = prepare_row({**PANDALM, "input": "", "annotator1": 2, "annotator2": 2})
    assert (second.pair.prompt, second.pair.response_a, second.row["chosen_from"]) == ("Say hi.", "Hello", "response2")
    assert second.relabelled()["chosen"] == "Bonjour"
    for votes in ((0, 0, 1), (1, 2, 0), (0, 0, 0)):
        tie = dict(PANDALM, annotator1=votes[0], annotator2=votes[1], annotator3=votes[2])
        with pytest.raises(InputError, match="^tie: annotators have no majority preference$") as caught:
            prepare_row(tie)
        assert caught.value.kind == Reason.NO_PREFERENCE
    with pytest.raises(InputError, match="'annotator2' must be 0, 1 or 2 \\(0 is a tie\\), got '1'"):
        prepare_row(dict(PANDALM, annotator2="1"))
    with pytest.raises(InputError, match="field 'response1' must be a string, got number") as caught:
        prepare_row(dict(PANDALM, response1=3))
    assert caught.value.kind == Reason.WRONG_TYPE


def test_pandalm_boolean_answers_are_read_as_their_text_and_marked(monkeypatch, caplog):
    monkeypatch.setattr(critic.io.rows, "_warned_booleans", False)
    row = dict(PANDALM, response1=True, response2=False)
    with caplog.at_level(logging.WARNING, logger="critic"):
        candidate = prepare_row(row)
        prepare_row(row)
    assert (candidate.pair.response_a, candidate.pair.response_b) == ("True", "False")
    assert candidate.row["chosen"] == "True" and candidate.row["booleans_read_as_text"] == ["response1", "response2"]
    assert len([r for r in caplog.records if "JSON boolean" in r.getMessage()]) == 1  # logged once
    assert pair_from_row(row) == Pair("Say hi.\n\nin French", "True", "False")


def test_the_pandalm_test_set_reads_with_its_six_boolean_answers():
    rows = [row for _, row in open_source(shared_path("data", "pandalm", "testset-v1.json")).rows()]
    read = [read_pair(row) for row in rows]
    marked = {r.row["idx"]: r.row["booleans_read_as_text"] for r in read if "booleans_read_as_text" in r.row}
    assert marked == {157: ["response1"], 158: ["response1"], 159: ["response1"], 161: ["response2"],
                      162: ["response2"], 164: ["response1"]}
    assert all(r.shape == "pandalm" for r in read)


# --------------------------------------------------------------------------- refusals


MESSAGES_A = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]


@pytest.mark.parametrize("row, reason, kind", [
    ("just a string", "a row must be a JSON object, got string", Reason.NOT_AN_OBJECT),
    ({"prompt": "q", "chosen": "a"}, "missing field 'rejected' (present: chosen, prompt)", Reason.MISSING_FIELD),
    ({"prompt": None, "chosen": "a", "rejected": "b"}, "field 'prompt' is null", Reason.MISSING_FIELD),
    ({"chosen": "a", "rejected": "b"}, "missing field 'prompt'", Reason.MISSING_FIELD),
    ({"prompt": "q", "chosen": 1, "rejected": "b"}, "field 'chosen' must be a string or a message list, got number",
     Reason.WRONG_TYPE),
    ({"prompt": ["q"], "chosen": "a", "rejected": "b"}, "field 'prompt' must be a string, got list", Reason.WRONG_TYPE),
    ({"chosen": MESSAGES_A, "rejected": "b"}, "must both be strings or both message lists, got list and string",
     Reason.WRONG_TYPE),
    ({"chosen": MESSAGES_A, "rejected": [{"role": "user", "content": "other"}, {"role": "assistant", "content": "b"}]},
     "do not share the conversation before the answer (they differ at message 0)", Reason.BAD_MESSAGES),
    ({"chosen": MESSAGES_A, "rejected": [{"role": "user", "content": "q"}]}, "must end with an assistant message",
     Reason.BAD_MESSAGES),
    ({"chosen": MESSAGES_A, "rejected": [{"role": "user", "content": "q"}, {"role": "bot", "content": "b"}]},
     "field 'rejected'[1] has role 'bot'", Reason.BAD_MESSAGES),
    ({"chosen": MESSAGES_A, "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": None}]},
     "field 'rejected'[1] content must be a string, got NoneType", Reason.BAD_MESSAGES),
    ({"chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]},
     "hold only the answer and there is no 'prompt'", Reason.MISSING_FIELD),
    ({"prompt": [], "chosen": [{"role": "assistant", "content": "a"}],
      "rejected": [{"role": "assistant", "content": "b"}]},
     "must end with a user message, not nothing", Reason.BAD_MESSAGES),
    ({"chosen": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}],
      "rejected": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "b"}]},
     "must end with a user message, not 'system'", Reason.BAD_MESSAGES),
    ({"prompt": "q", "response_a": "a", "response_b": "b", "label": "tie"}, "tie: label 'tie' prefers neither",
     Reason.NO_PREFERENCE),
    ({"prompt": "q", "response_a": "a", "response_b": "b", "label": "first"},
     "field 'label' is 'first'; expected A, B or tie", Reason.UNKNOWN_LABEL),
    ({"prompt": "q", "response_a": "a", "response_b": 2}, "field 'response_b' must be a string, got number",
     Reason.WRONG_TYPE),
    ({"prompt": "q", "chosen": "a", "rejected": "b", "history": "hi"}, "field 'history' must be a list of messages",
     Reason.BAD_MESSAGES),
    ({"prompt": "q", "chosen": "a", "rejected": "b", "reference": 3}, "field 'reference' must be a string or null",
     Reason.WRONG_TYPE),
    ({"question": "q", "answer": "a"}, "no known row shape", Reason.UNKNOWN_SHAPE),
])
def test_malformed_rows_are_refused_with_a_one_line_reason_and_its_kind(row, reason, kind):
    with pytest.raises(InputError) as caught:
        prepare_row(row)
    assert reason in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.kind == kind


def test_row_errors_from_readers_pass_through():
    error = RowError("line 3 is not valid JSON", "{x")
    with pytest.raises(RowError) as caught:
        prepare_row(error)
    assert caught.value.raw == "{x" and caught.value.kind == Reason.UNREADABLE_ROW
    with pytest.raises(RowError):
        pair_from_row(error)
    with pytest.raises(RowError):
        conversation_from_row(error)


def test_a_lone_surrogate_is_a_bad_text_reason_in_every_shape(tmp_path):
    """"\\ud800" is valid JSON: the row reads, and the pair made from it is refused with a reason, not a crash."""
    path = tmp_path / "s.jsonl"
    rows = [{"prompt": "q \ud800", "chosen": "a", "rejected": "b"},
            {"prompt": "q", "response_a": "\udcff", "response_b": "b", "label": "A"},
            {"chosen": [{"role": "user", "content": "\ud800"}, {"role": "assistant", "content": "a"}],
             "rejected": [{"role": "user", "content": "\ud800"}, {"role": "assistant", "content": "b"}]},
            dict(PANDALM, input="\ud83d")]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    for _, row in open_source(path).rows():
        for read in (prepare_row, pair_from_row):
            with pytest.raises(InputError, match="unpaired UTF-16 surrogate") as caught:
                read(row)
            assert caught.value.kind == Reason.BAD_TEXT and "\n" not in str(caught.value)


# --------------------------------------------------------------------------- judge and score rows


def test_pair_from_row_shows_any_shape_in_its_own_order():
    assert pair_from_row({"prompt": "q", "response_a": "a", "response_b": "b", "label": "B"}) == Pair("q", "a", "b")
    assert pair_from_row({"prompt": "q", "response_a": "a", "response_b": "b", "label": "???"}) == Pair("q", "a", "b")
    assert pair_from_row({"prompt": "q", "chosen": "c", "rejected": "r", "reference": "c"}) == Pair("q", "c", "r", "c")
    assert pair_from_row(PANDALM) == Pair("Say hi.\n\nin French", "Bonjour", "Hello")
    columns = Columns(prompt="question", response_a="x", response_b="y", reference="gold")
    assert pair_from_row({"question": "q", "x": "1", "y": "2", "gold": "1"}, columns) == Pair("q", "1", "2", "1")
    with pytest.raises(InputError, match="no known row shape") as caught:
        pair_from_row({"question": "q"})
    assert caught.value.kind == Reason.UNKNOWN_SHAPE


def test_conversation_from_row_reads_both_shapes():
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert conversation_from_row({"messages": messages}) == tuple(messages)
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert conversation_from_row({"prompt": "q", "response": "a", "history": history}) == (*history, *messages)
    renamed = conversation_from_row({"question": "q", "answer": "a"}, Columns(prompt="question", response="answer"))
    assert renamed == tuple(messages)
    assert conversation_from_row({"turns": messages}, Columns(messages="turns")) == tuple(messages)


@pytest.mark.parametrize("row, reason, kind", [
    ({"prompt": "q"}, "needs a 'messages' list or both 'prompt' and 'response'; missing or null: response",
     Reason.MISSING_FIELD),
    ({"messages": [{"role": "user", "content": "q"}]}, "must end with an assistant message", Reason.BAD_MESSAGES),
    ({"messages": "hi"}, "field 'messages' must be a list of messages", Reason.BAD_MESSAGES),
    ({"prompt": "q", "response": 4}, "field 'response' must be a string, got number", Reason.WRONG_TYPE),
    ({"prompt": "q", "response": "a \ud800"}, "field 'response' holds an unpaired UTF-16 surrogate", Reason.BAD_TEXT),
    ({"messages": [{"role": "user", "content": "\udcff"}, {"role": "assistant", "content": "a"}]},
     "field 'messages'[0] content holds an unpaired UTF-16 surrogate", Reason.BAD_TEXT),
    ([1, 2], "a row must be a JSON object, got list", Reason.NOT_AN_OBJECT),
])
def test_conversation_from_row_refusals(row, reason, kind):
    with pytest.raises(InputError) as caught:
        conversation_from_row(row)
    assert reason in str(caught.value) and caught.value.kind == kind
