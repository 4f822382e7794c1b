"""The public formats (tests/data/*): each detected by its columns, read the same way by filter, judge and eval."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import critic.io.rows
from critic.errors import InputError, Reason
from critic.io.formats import SERIALIZED_LIMIT, check_not_serialized, split_transcript, transcript_messages
from critic.io.rows import detect, pair_from_row, pairs_from_row, prepare_row, read_pair, read_pairs, row_label
from critic.io.shapes import SHAPE_NAMES, Columns
from critic.io.source import open_source

DATA = Path(__file__).resolve().parents[1] / "data"


def rows_of(name: str) -> list:
    return [row for _, row in open_source(DATA / name).rows()]


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


@pytest.fixture(autouse=True)
def _fresh_log_once(monkeypatch):
    monkeypatch.setattr(critic.io.rows, "_logged", set())


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize("name, shape, label_column", [
    ("rewardbench_filtered.jsonl", "pairs", None),
    ("rewardbench2.jsonl", "best-of", None),
    ("hh_rlhf.jsonl", "hh", None),
    ("mt_bench_human_judgments.jsonl", "mt-bench", "winner"),
    ("llmbar.json", "llmbar", "label"),
    ("arena_winner.jsonl", "ab", "winner"),
    ("arena_55k.csv", "arena", "winner_model_a/winner_model_b/winner_tie"),
    ("helpsteer2_preference.jsonl", "helpsteer2", "preference_strength"),
])
def test_each_public_shape_is_detected_by_its_columns(name, shape, label_column):
    detected = detect(rows_of(name)[0])
    assert (detected.shape, detected.label_column) == (shape, label_column)
    assert SHAPE_NAMES.get(shape, shape) in detected.describe()


# --------------------------------------------------------------------------- RewardBench


def test_rewardbench_filtered_rows_keep_subset_and_id():
    for row in rows_of("rewardbench_filtered.jsonl"):
        candidate = prepare_row(row)
        assert (candidate.shape, candidate.pair.prompt) == ("pairs", row["prompt"])
        assert (candidate.pair.response_a, candidate.pair.response_b) == (row["chosen"], row["rejected"])
        assert candidate.row == row  # subset, id, chosen_model, rejected_model travel with the output row
        assert candidate.relabelled()["chosen"] == row["rejected"]


def test_rewardbench2_rows_are_one_pair_per_chosen_and_rejected_answer_in_every_command():
    """Before: filter and judge refused every RewardBench 2 row, and its Ties rows were read by no command."""
    *best_of_4, ref, tied = rows_of("rewardbench2.jsonl")
    for row in best_of_4:
        reads = read_pairs(row)
        assert [r.pair.response_b for r in reads] == row["rejected"]
        assert all(r.pair.response_a == row["chosen"][0] and r.pair.prompt == row["prompt"] for r in reads)
        assert [r.answers for r in reads] == [(0, 0), (0, 1), (0, 2)] and all(row_label(r) == "A" for r in reads)
        candidate = prepare_row(row)  # filter: one candidate holding the row's three pairs, chosen first
        assert candidate.pairs == tuple(r.pair for r in reads) and candidate.answers == ((0, 0), (0, 1), (0, 2))
        assert [pair for pair, _ in pairs_from_row(row)] == [r.pair for r in reads]  # judge
        with pytest.raises(InputError, match="holds 3 pairs .*read it with read_pairs") as caught:
            read_pair(row)
        assert caught.value.kind == Reason.WRONG_TYPE
    assert [r.answers for r in read_pairs(ref)] == [(0, 0), (0, 1)]
    reads = read_pairs(tied)  # three correct answers against two incorrect: six pairs, each correct one first
    assert [(r.answers, r.pair.response_a, r.pair.response_b) for r in reads] == [
        ((i, j), good, bad) for i, good in enumerate(tied["chosen"]) for j, bad in enumerate(tied["rejected"])]


@pytest.mark.parametrize("row, expected", [
    ({"prompt": "q", "chosen": "c", "rejected": ["r"]}, ("q", (), "c", "r")),
    ({"prompt": [user("hi"), assistant("hey"), user("q")], "chosen": "c", "rejected": ["r"]},
     ("q", (user("hi"), assistant("hey")), "c", "r")),
    ({"prompt": [user("q")], "chosen": "c", "rejected": "r"}, ("q", (), "c", "r")),  # RewardBench pref sets
])
def test_one_rejected_answer_or_a_message_list_prompt_reads_as_one_pair_everywhere(row, expected):
    pair = pair_from_row(row)
    assert (pair.prompt, pair.history, pair.response_a, pair.response_b) == expected
    assert len(read_pairs(row)) == 1 and prepare_row(row).pair == pair


@pytest.mark.parametrize("row, reason, kind", [
    ({"prompt": "q", "chosen": None, "rejected": ["r", "s"]}, "field 'chosen' is null", Reason.MISSING_FIELD),
    ({"prompt": "q", "chosen": 3, "rejected": ["r", "s"]}, "got number", Reason.WRONG_TYPE),
    ({"prompt": "q", "chosen": [], "rejected": ["r", "s"]}, "got an empty list", Reason.WRONG_TYPE),
    ({"prompt": "q", "chosen": ["c", 3], "rejected": ["r", "s"]}, "got list", Reason.WRONG_TYPE),
    ({"prompt": [user("q"), assistant("a")], "chosen": "c", "rejected": ["r"]},
     "field 'prompt' must end with a user message, not 'assistant'", Reason.BAD_MESSAGES),
    ({"prompt": "q", "chosen": ["c"], "rejected": ["r"]}, "field 'chosen'[0] must be an object", Reason.BAD_MESSAGES),
    ({"prompt": "q", "chosen": "c", "rejected": []}, "must both be strings or both message lists, got string and list",
     Reason.WRONG_TYPE),
])
def test_rewardbench2_refusals(row, reason, kind):
    with pytest.raises(InputError) as caught:
        read_pairs(row)
    assert reason in str(caught.value) and caught.value.kind == kind


# --------------------------------------------------------------------------- HH-RLHF


def test_hh_transcripts_split_at_the_last_assistant_turn():
    single, multi, unshared, broken = rows_of("hh_rlhf.jsonl")
    pair = prepare_row(single).pair
    assert (pair.prompt, pair.history) == ("What is the boiling point of water at sea level?", ())
    assert (pair.response_a, pair.response_b) == ("100 degrees Celsius, or 212 degrees Fahrenheit.",
                                                  "It boils at about 50 degrees.")
    pair = pair_from_row(multi)
    assert pair.prompt == "Science fiction."
    assert pair.history == (user("Can you recommend a book?"), assistant("Sure, what genres do you like?"))
    assert pair.response_b == "I don't read books."
    assert prepare_row(multi).relabelled()["chosen"] == multi["rejected"]
    for row, reason in ((unshared, "do not share the conversation before the last answer"),
                        (broken, "turn 2 of the transcript is 'Human:' where 'Assistant:' was expected")):
        with pytest.raises(InputError, match=reason) as caught:
            prepare_row(row)
        assert caught.value.kind == Reason.BAD_MESSAGES


@pytest.mark.parametrize("text, reason", [
    ("\n\nHuman: hi", "without a '\\\\n\\\\nAssistant:' turn"),
    ("\n\nHuman: hi\n\nAssistant: hello\n\nAssistant: again", "last turn before the answer must be Human's"),
    ("\n\nHuman: hi\n\nAssistant: a\n\nAssistant: b\n\nHuman: q\n\nAssistant: c",
     "turn 3 of the transcript is 'Assistant:' where 'Human:' was expected"),
    ("Human: hi\n\nAssistant: hello", "it must start with"),
])
def test_malformed_transcripts_are_a_reason(text, reason):
    with pytest.raises(InputError, match=reason) as caught:
        before, _ = split_transcript(text, "chosen")
        transcript_messages(before, "chosen")
    assert caught.value.kind == Reason.BAD_MESSAGES


def test_rows_that_are_not_transcripts_keep_their_old_reading():
    with pytest.raises(InputError, match="missing field 'prompt'"):
        prepare_row({"chosen": "Human: hi Assistant: a", "rejected": "b"})  # no "\n\nHuman:" opening


# --------------------------------------------------------------------------- MT-Bench human judgments


@pytest.mark.parametrize("index, label, prompt, answer_a, history_a", [
    (0, "A", "Compose an engaging", "Aloha! My trip", ()),
    (1, "A", "Rewrite your previous response", "Aloha! A trip",
     (user("Compose an engaging travel blog post about a recent trip to Hawaii."),
      assistant("Aloha! My trip to Hawaii began on Oahu..."))),
    (2, "B", "Compose an engaging", "Hawaii is nice.", ()),
    (3, "tie", "Rewrite your previous response", "Aloha! A trip", None),
    (4, "tie", "Compose an engaging", "Aloha! My trip", ()),
])
def test_mt_bench_judgments_read_turn_and_winner(index, label, prompt, answer_a, history_a):
    row = rows_of("mt_bench_human_judgments.jsonl")[index]
    read = read_pair(row)
    assert row_label(read) == label and read.pair.prompt.startswith(prompt)
    assert read.pair.response_a.startswith(answer_a) and read.pair.history == ()
    if history_a is not None:
        assert read.pair.history_a == history_a
    if row["turn"] == 2:
        assert read.pair.history_b == (user(row["conversation_b"][0]["content"]), row["conversation_b"][1])
        assert read.pair.swapped().history_a == read.pair.history_b
    if label == "tie":
        with pytest.raises(InputError, match="^tie: label") as caught:
            prepare_row(row)
        assert caught.value.kind == Reason.NO_PREFERENCE
    else:
        candidate = prepare_row(row)
        assert candidate.relabelled()["winner"] == {"model_a": "model_b", "model_b": "model_a"}[row["winner"]]


@pytest.mark.parametrize("change, reason, kind", [
    ({"turn": 3}, "field 'turn' must be 1 or 2, got 3", Reason.WRONG_TYPE),
    ({"turn": True}, "field 'turn' must be 1 or 2", Reason.WRONG_TYPE),
    ({"conversation_b": [user("other"), assistant("b")]}, "ask different questions at message 0",
     Reason.BAD_MESSAGES),
    ({"turn": 2, "conversation_b": [user("q"), assistant("b")]}, "must hold user/assistant turns up to turn 2",
     Reason.BAD_MESSAGES),
    ({"winner": "both"}, "field 'winner' is 'both'", Reason.UNKNOWN_LABEL),
])
def test_mt_bench_refusals(change, reason, kind):
    row = {**rows_of("mt_bench_human_judgments.jsonl")[0], **change}
    if "conversation_b" in change:
        row["conversation_a"] = [user("q"), assistant("a")] if change.get("turn") == 2 else row["conversation_a"]
    with pytest.raises(InputError) as caught:
        prepare_row(row)
    assert reason in str(caught.value) and caught.value.kind == kind


# --------------------------------------------------------------------------- LLMBar, Arena, no label


def test_llmbar_reads_without_flags_and_with_the_old_mapping():
    columns = Columns(prompt="input", response_a="output_1", response_b="output_2")
    for row in rows_of("llmbar.json"):
        assert pair_from_row(row) == pair_from_row(row, columns)
        candidate = prepare_row(row)
        assert candidate.pair.response_a == row[f"output_{row['label']}"]
        assert candidate.relabelled()["label"] == 3 - row["label"]


def test_a_winner_column_is_the_label_and_is_logged_once(caplog):
    rows = rows_of("arena_winner.jsonl")
    with caplog.at_level(logging.INFO, logger="critic"):
        chosen = [prepare_row(row).pair.response_a for row in rows[:2]]
    assert chosen == ["2 + 2 = 4.", "Mars."]
    assert [r.getMessage() for r in caplog.records] == ["reading labels from column 'winner' (there is no 'label' "
                                                        "column)"]
    with pytest.raises(InputError, match="^tie: label 'tie'"):
        prepare_row(rows[2])
    labelled = {**rows[0], "label": "A"}  # a label column wins over winner
    assert prepare_row(labelled).pair.response_a == "2 + 2 = 5." and detect(labelled).label_column == "label"


def test_rows_without_any_label_column_say_once_that_response_a_is_assumed_chosen(caplog):
    row = {"prompt": "q", "response_a": "a", "response_b": "b"}
    with caplog.at_level(logging.INFO, logger="critic"):
        prepare_row(row)
        prepare_row(row)
    assert [r.getMessage() for r in caplog.records] == [
        "no 'label' or 'winner' column: assuming response_a is chosen"]
    assert "assuming response_a is chosen" in detect(row).describe()


# --------------------------------------------------------------------------- serialized message lists


def test_ultrafeedback_exported_to_csv_is_refused_not_judged_as_text():
    repr_row, json_row, plain = rows_of("ultrafeedback_export.csv")
    for row in (repr_row, json_row):
        for read in (prepare_row, pair_from_row, read_pairs):
            with pytest.raises(InputError, match="field 'chosen' looks like a serialized message list") as caught:
                read(row)
            assert caught.value.kind == Reason.BAD_MESSAGES
    assert prepare_row(plain).pair.response_a == "A spider has eight legs."


@pytest.mark.parametrize("text, refused", [
    ("[{'role': 'user', 'content': 'hi'}]", True),
    ('  [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}]\n', True),
    ("[{'role': 'user', 'content': 'hi'}", False),  # not closed: not a list
    ("[{'role': 'user'}]", False),  # no content: not messages
    ("[[A]] is better", False),
    ("[1, 2, 3]", False),
    ("['role', 'content']", False),
    ("[{'role': 'user', 'content': __import__('os').getcwd()}]", False),  # literal_eval evaluates no code
    ("[{'role': 'user', 'content': '" + "x" * SERIALIZED_LIMIT + "'}]", False),  # too long to parse
    ("The list [{'role': 'user', 'content': 'hi'}] shows it", False),
])
def test_only_text_that_parses_as_a_message_list_is_refused(text, refused):
    if refused:
        with pytest.raises(InputError, match="looks like a serialized message list"):
            check_not_serialized(text, "chosen")
    else:
        assert check_not_serialized(text, "chosen") == text
    row = {"prompt": "q", "response_a": text, "response_b": "b", "label": "A"}
    if refused:
        with pytest.raises(InputError, match="field 'response_a' looks like"):
            prepare_row(row)
    else:
        assert prepare_row(row).pair.response_a == text


# --------------------------------------------------------------------------- Arena (arena-human-preference-55k)


def test_arena_55k_rows_read_their_turns_and_one_hot_winner():
    """Before: the one-hot columns were ignored ("assuming response_a is chosen") and the literal text
    '["17 + 25 = 42."]' was judged."""
    a_wins, b_wins, tie, two_turns_a, two_turns_b, null_answer, no_winner = rows_of("arena_55k.csv")
    read = read_pair(a_wins)
    assert (read.shape, read.pair.prompt, read.pair.response_a, read.pair.response_b) == (
        "arena", "What is 17 + 25?", "17 + 25 = 42.", "17 + 25 = 32.")
    assert (read.pair.history, read.pair.history_a, read.pair.history_b) == ((), (), ())
    assert [row_label(read_pair(row)) for row in (a_wins, b_wins, tie, two_turns_a, two_turns_b)] == [
        "A", "B", "tie", "A", "B"]
    # filter: the winner is shown first, and relabelling swaps the one-hot columns
    candidate = prepare_row(b_wins)
    assert candidate.pair.response_a == "Canberra is the capital of Australia."
    assert candidate.relabelled()["winner_model_a"] == "1" and candidate.relabelled()["winner_model_b"] == "0"
    with pytest.raises(InputError, match="^tie: label .* prefers neither") as caught:
        prepare_row(tie)
    assert caught.value.kind == Reason.NO_PREFERENCE
    with pytest.raises(InputError, match="none of them is set, and exactly one must be") as caught:
        row_label(read_pair(no_winner))
    assert caught.value.kind == Reason.UNKNOWN_LABEL
    with pytest.raises(InputError, match="field 'response_b' turn 1 of 1 is null") as caught:
        read_pair(null_answer)
    assert caught.value.kind == Reason.MISSING_FIELD


def test_a_multi_turn_arena_row_is_the_last_turn_with_each_models_own_history():
    row = rows_of("arena_55k.csv")[4]
    pair = read_pair(row).pair
    assert (pair.prompt, pair.response_a, pair.response_b) == (
        "What are its factors?", "It has no factors other than 1 and 91.", "Its factors are 1, 7, 13 and 91.")
    assert pair.history == ()
    assert pair.history_a == (user("Is 91 a prime number?"), assistant("Yes, 91 is prime."))
    assert pair.history_b == (user("Is 91 a prime number?"), assistant("No: 91 = 7 \u00d7 13."))
    assert prepare_row(row).pair == pair.swapped()  # B won: shown first as the chosen one, histories and all


@pytest.mark.parametrize("label_field", ["winner_model_a", "winner_model_b", "winner_tie"])
def test_naming_one_one_hot_column_reads_all_three_never_a_b_win_as_a_tie(label_field):
    """Before: --label-field winner_model_a read 0 as a tie, so every B win became a tie."""
    b_wins = rows_of("arena_55k.csv")[1]
    read = read_pair(b_wins, Columns(label=label_field))
    assert row_label(read) == "B"
    assert prepare_row(b_wins, Columns(label=label_field)).pair.response_a.startswith("Canberra")
    lone = {"prompt": "q", "response_a": "a", "response_b": "b", label_field: 0}
    with pytest.raises(InputError, match="one-hot columns, which are read together; this row lacks") as caught:
        read_pair(lone, Columns(label=label_field))
    assert caught.value.kind == Reason.MISSING_FIELD


@pytest.mark.parametrize("row, expected", [
    # the same rows from Parquet or a datasets dataset: real lists, not JSON text
    ({"prompt": ["q"], "response_a": ["a"], "response_b": ["b"]}, ("q", "a", "b", 0)),
    ({"prompt": ["q1", "q2"], "response_a": ["a1", "a2"], "response_b": ["b1", "b2"]}, ("q2", "a2", "b2", 2)),
    ({"prompt": '["q"]', "response_a": ' ["a"] ', "response_b": '["b"]'}, ("q", "a", "b", 0)),
    # not all three are turn lists: plain text, as before
    ({"prompt": '["q"]', "response_a": "a", "response_b": "b"}, ('["q"]', "a", "b", 0)),
    ({"prompt": "q", "response_a": '["a"]', "response_b": "[1, 2]"}, ("q", '["a"]', "[1, 2]", 0)),
])
def test_turn_lists_are_unwrapped_only_when_all_three_fields_hold_them(row, expected):
    pair = read_pair(row).pair
    assert (pair.prompt, pair.response_a, pair.response_b, len(pair.history_a)) == expected


def test_turn_lists_of_different_lengths_are_refused():
    row = {"prompt": '["q1", "q2"]', "response_a": '["a1", "a2"]', "response_b": '["b1"]'}
    with pytest.raises(InputError, match="one answer per turn .*'prompt' 2, 'response_a' 2, 'response_b' 1") as caught:
        read_pair(row)
    assert caught.value.kind == Reason.BAD_MESSAGES


# --------------------------------------------------------------------------- HelpSteer2 preferences


def test_helpsteer2_preference_strength_negative_is_response_1():
    """Before: response_1/response_2 were no known shape, and mapped by hand +1 read as A (backwards)."""
    a_much_better, b_better, tie, b_slightly = rows_of("helpsteer2_preference.jsonl")
    labels = [row_label(read_pair(row)) for row in (a_much_better, b_better, tie, b_slightly)]
    assert labels == ["A", "B", "tie", "B"]
    read = read_pair(a_much_better)
    assert (read.pair.response_a, read.answer_fields) == (a_much_better["response_1"], ("response_1", "response_2"))
    candidate = prepare_row(b_better)
    assert candidate.pair.response_a == "Fast."
    assert candidate.relabelled()["preference_strength"] == -2  # the other answer as the better one
    assert "negative-is-a: negative means the first answer is better, 0 a tie" in detect(a_much_better).describe()
    # the rule can be turned round, and the same columns mapped by hand read the same way
    assert row_label(read_pair(b_slightly, Columns(label_sign="negative-is-b"))) == "A"
    mapped = Columns(response_a="response_1", response_b="response_2", label="preference_strength")
    assert [row_label(read_pair(row, mapped)) for row in rows_of("helpsteer2_preference.jsonl")] == labels


@pytest.mark.parametrize("value, label", [(-2, "A"), (3, "B"), (0, "tie"), ("-1", "A")])
def test_any_signed_label_column_reads_under_label_sign_and_is_refused_without(value, label):
    row = {"prompt": "q", "response_a": "a", "response_b": "b", "label": value}
    assert row_label(read_pair(row, Columns(label_sign="negative-is-a"))) == label
    if value not in (0,):
        with pytest.raises(InputError, match="--label-sign") as caught:
            row_label(read_pair(row))
        assert caught.value.kind == Reason.UNKNOWN_LABEL


def test_pandas_float_labels_read_as_their_integers():
    """Before: 1.0 and 2.0 (a pandas export of a label column with a gap) were "unknown label"."""
    for value, label in ((1.0, "A"), ("2.0", "B"), (0.0, "tie")):
        assert row_label(read_pair({"prompt": "q", "response_a": "a", "response_b": "b", "label": value})) == label
    candidate = prepare_row({"prompt": "q", "response_a": "a", "response_b": "b", "label": 2.0})
    assert candidate.relabelled()["label"] == 1.0
