"""Readers (streaming, bad rows become RowErrors) and row shapes (prepare_row)."""

from __future__ import annotations

import datetime
import json
import os

import pytest

import critic.io.readers
from critic.errors import InputError
from critic.io.readers import RowError, read_csv, read_json_array, read_jsonl, read_parquet
from critic.io.rows import Columns, prepare_row
from critic.io.source import InputSource, detect_format, open_source
from critic.io.writers import dumps_row

from .conftest import shared_path


def rows_of(source_rows):
    return list(source_rows)


# --------------------------------------------------------------------------- JSONL


def test_jsonl_numbers_rows_by_line_and_turns_bad_lines_into_row_errors(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n{broken\n{"b": "\xff"}\n  \n[1, 2]\r\n{"c": "\xc3\xa9"}')
    rows = rows_of(read_jsonl(path))
    assert [number for number, _ in rows] == [1, 3, 4, 6, 7]
    assert rows[0][1] == {"a": 1}
    assert isinstance(rows[1][1], RowError) and "line 3 is not valid JSON" in str(rows[1][1])
    assert rows[1][1].raw == "{broken"
    assert isinstance(rows[2][1], RowError) and "line 4 is not valid UTF-8" in str(rows[2][1])
    assert rows[2][1].raw == '{"b": "\ufffd"}'
    assert rows[3][1] == [1, 2]
    assert rows[4][1] == {"c": "é"}
    assert list(read_jsonl(path, skip=3)) == rows[3:]


# --------------------------------------------------------------------------- JSON arrays


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 20])
def test_json_array_streams_the_same_values_as_json_load_whatever_the_chunk_size(tmp_path, monkeypatch, chunk):
    values = [{"a": 1, "t": "x, y ] }"}, 1234567, -0.5e-3, "s\u00e9", [], {}, None, True,
              {"nested": [{"role": "user", "content": "[[A]]"}]}, 98765]
    path = tmp_path / "in.json"
    path.write_text(" \n" + json.dumps(values, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    monkeypatch.setattr(critic.io.readers, "READ_CHUNK", chunk)
    assert [row for _, row in read_json_array(path)] == values
    assert [number for number, _ in read_json_array(path, skip=4)] == list(range(5, len(values) + 1))


def test_json_array_element_with_invalid_utf8_is_a_row_error_and_the_rest_is_read(tmp_path):
    path = tmp_path / "in.json"
    path.write_bytes(b'[{"a": "ok"}, {"b": "\xff\xfe"}, {"c": 3}]')
    rows = rows_of(read_json_array(path))
    assert rows[0] == (1, {"a": "ok"}) and rows[2] == (3, {"c": 3})
    assert isinstance(rows[1][1], RowError) and "row 2 is not valid UTF-8" in str(rows[1][1])
    assert rows[1][1].raw == '{"b": "\ufffd\ufffd"}'


@pytest.mark.parametrize("text, message", [
    (b'[{"a": 1}, {"b": nope}]', "Expecting value"),
    (b'[{"a": 1} {"b": 2}]', "expected ',' or ']'"),
    (b'[{"a": 1},', "unexpected end of file"),
    (b'[{"a": 1}] [', "extra data"),
    (b'{"a": 1}', "expected '['"),
])
def test_a_broken_json_array_is_a_file_error_naming_the_position(tmp_path, text, message):
    path = tmp_path / "in.json"
    path.write_bytes(text)
    with pytest.raises(InputError, match="is not a valid JSON array") as caught:
        list(read_json_array(path))
    assert message in str(caught.value) and "at character" in str(caught.value)


def test_empty_json_array(tmp_path):
    path = tmp_path / "in.json"
    path.write_text(" [ ] ", encoding="utf-8")
    assert list(read_json_array(path)) == []


# --------------------------------------------------------------------------- CSV, Parquet, datasets


def test_csv_reads_quoted_multiline_fields_and_rejects_bad_records(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b'prompt,chosen,rejected\n"two\nlines","a, b",c\n\nx,\xff,y\nonly,two\n')
    rows = rows_of(read_csv(path))
    assert rows[0] == (1, {"prompt": "two\nlines", "chosen": "a, b", "rejected": "c"})
    assert isinstance(rows[1][1], RowError) and "row 2 is not valid UTF-8" in str(rows[1][1])
    assert rows[1][1].raw == {"prompt": "x", "chosen": "\ufffd", "rejected": "y"}
    assert isinstance(rows[2][1], RowError) and "has 2 value(s) but the header has 3" in str(rows[2][1])
    assert [(n, str(row)) for n, row in read_csv(path, skip=2)] == [(3, str(rows[2][1]))]
    tsv = tmp_path / "in.tsv"
    tsv.write_text("prompt\tchosen\trejected\nq\ta\tb\n", encoding="utf-8")
    assert [row for _, row in open_source(tsv).rows()] == [{"prompt": "q", "chosen": "a", "rejected": "b"}]


def test_parquet_streams_rows_with_nested_message_lists_and_skips_whole_row_groups(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [{"id": i, "chosen": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
            for i in range(25)]
    path = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=4)
    source = open_source(path)
    assert source.format == "parquet" and source.count() == 25
    assert [row for _, row in source.rows()] == rows
    assert list(read_parquet(path, skip=9, batch_size=3)) == [(i + 1, rows[i]) for i in range(9, 25)]


def test_save_to_disk_folders_are_read_row_by_row(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = [{"prompt": f"q{i}", "chosen": "a", "rejected": "b"} for i in range(7)]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "one"))
    source = open_source(tmp_path / "one")
    assert source.format == "hf" and source.count() == 7
    assert list(source.rows(skip=5)) == [(6, rows[5]), (7, rows[6])]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows), "test": datasets.Dataset.from_list(rows[:2])}
                         ).save_to_disk(str(tmp_path / "two"))
    with pytest.raises(InputError, match="has splits train, test; choose one with --split"):
        list(open_source(tmp_path / "two").rows())
    assert len(list(open_source(tmp_path / "two", split="test").rows())) == 2


def test_hub_names_are_read_only_from_the_local_cache(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "empty-cache"))
    source = open_source("no-such-org/no-such-preferences")
    assert source.format == "hub"
    with pytest.raises(InputError, match="neither a file nor a hub dataset in the local cache"):
        list(source.rows())


def test_a_cached_hub_dataset_is_read_offline(tmp_path, monkeypatch):
    """The cache layout of a hub dataset, built locally: datasets' cache of a JSON file, renamed."""
    datasets = pytest.importorskip("datasets")
    cache = tmp_path / "cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    rows = [{"prompt": f"q{i}", "chosen": "good", "rejected": "bad"} for i in range(3)]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    datasets.load_dataset("json", data_files=str(tmp_path / "p.jsonl"), split="train", cache_dir=str(cache))
    config = next((cache / "json").iterdir())
    arrow = next(config.glob("*/*/json-train.arrow"))
    arrow.rename(arrow.with_name("prefs-train.arrow"))
    (cache / "someorg___prefs").mkdir()
    config.rename(cache / "someorg___prefs" / "default")
    source = open_source("someorg/prefs")
    assert source.format == "hub" and source.count() == 3
    assert [row for _, row in source.rows()] == rows
    offline_before = os.environ.get("HF_HUB_OFFLINE") == "1"
    assert datasets.config.HF_HUB_OFFLINE is offline_before  # restored


def test_format_detection(tmp_path):
    (tmp_path / "array.json").write_text('\n  [{"a": 1}]', encoding="utf-8")
    (tmp_path / "lines.json").write_text('{"a": 1}\n{"a": 2}\n', encoding="utf-8")
    (tmp_path / "data.txt").write_text("", encoding="utf-8")
    assert detect_format(tmp_path / "array.json") == "json"
    assert detect_format(tmp_path / "lines.json") == "jsonl"
    with pytest.raises(InputError, match="pass --format"):
        detect_format(tmp_path / "data.txt")
    with pytest.raises(InputError, match="cannot read input file"):
        open_source(tmp_path / "absent.jsonl")
    with pytest.raises(InputError, match="not a dataset saved with save_to_disk"):
        detect_format(tmp_path)


def test_pandalm_test_set_reads_as_999_rows():
    path = shared_path("data", "pandalm", "testset-v1.json")
    source = open_source(path)
    assert source.format == "json" and source.count() == 999
    assert [row for _, row in source.rows()] == json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- row shapes


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


def test_column_flags_remap_every_shape():
    columns = Columns(prompt="question", chosen="good", rejected="bad", response_a="x", response_b="y", label="win")
    assert prepare_row({"question": "q", "good": "g", "bad": "b"}, columns).pair.response_a == "g"
    assert prepare_row({"question": "q", "x": "1", "y": "2", "win": "B"}, columns).pair.response_a == "2"


def test_pandalm_rows_become_chosen_and_rejected_by_majority():
    row = {"idx": 3, "motivation_app": "app", "cmp_key": "a_b", "instruction": "Say hi.", "input": "in French",
           "response1": "Bonjour", "response2": "Hello", "annotator1": 1, "annotator2": 0, "annotator3": 1}
    candidate = prepare_row(row)
    assert candidate.pair.prompt == "Say hi.\n\nin French"
    assert candidate.row == {"idx": 3, "motivation_app": "app", "cmp_key": "a_b", "prompt": "Say hi.\n\nin French",
                             "chosen": "Bonjour", "rejected": "Hello", "chosen_from": "response1",
                             "annotators": [1, 0, 1]}
    second = prepare_row({**row, "input": "", "annotator1": 2, "annotator2": 2})
    assert (second.pair.prompt, second.pair.response_a, second.row["chosen_from"]) == ("Say hi.", "Hello", "response2")
    for votes in ((0, 0, 1), (1, 2, 0), (0, 0, 0)):
        tie = dict(row, annotator1=votes[0], annotator2=votes[1], annotator3=votes[2])
        with pytest.raises(InputError, match="^tie: annotators have no majority preference$"):
            prepare_row(tie)
    with pytest.raises(InputError, match="'annotator2' must be 0, 1 or 2 \\(0 is a tie\\), got '1'"):
        prepare_row(dict(row, annotator2="1"))
    with pytest.raises(InputError, match="field 'response1' must be a string, got boolean"):
        prepare_row(dict(row, response1=True))


MESSAGES_A = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]


@pytest.mark.parametrize("row, reason", [
    ("just a string", "a row must be a JSON object, got string"),
    ({"prompt": "q", "chosen": "a"}, "missing field 'rejected' (present: chosen, prompt)"),
    ({"prompt": None, "chosen": "a", "rejected": "b"}, "field 'prompt' is null"),
    ({"chosen": "a", "rejected": "b"}, "missing field 'prompt'"),
    ({"prompt": "q", "chosen": 1, "rejected": "b"}, "field 'chosen' must be a string or a message list, got number"),
    ({"prompt": ["q"], "chosen": "a", "rejected": "b"}, "field 'prompt' must be a string, got list"),
    ({"chosen": MESSAGES_A, "rejected": "b"}, "must both be strings or both message lists, got list and string"),
    ({"chosen": MESSAGES_A, "rejected": [{"role": "user", "content": "other"}, {"role": "assistant", "content": "b"}]},
     "do not share the conversation before the answer (they differ at message 0)"),
    ({"chosen": MESSAGES_A, "rejected": [{"role": "user", "content": "q"}]}, "must end with an assistant message"),
    ({"chosen": MESSAGES_A, "rejected": [{"role": "user", "content": "q"}, {"role": "bot", "content": "b"}]},
     "field 'rejected'[1] has role 'bot'"),
    ({"chosen": MESSAGES_A, "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": None}]},
     "field 'rejected'[1] content must be a string, got NoneType"),
    ({"chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]},
     "hold only the answer and there is no 'prompt'"),
    ({"chosen": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}],
      "rejected": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "b"}]},
     "must end with a user message, not 'system'"),
    ({"prompt": "q", "response_a": "a", "response_b": "b", "label": "tie"}, "tie: label 'tie' prefers neither"),
    ({"prompt": "q", "response_a": "a", "response_b": "b", "label": 1}, "field 'label' must be a string"),
    ({"prompt": "q", "response_a": "a", "response_b": "b", "label": "first"},
     "field 'label' is 'first'; expected A, B"),
    ({"prompt": "q", "chosen": "a", "rejected": "b", "history": "hi"}, "field 'history' must be a list of messages"),
    ({"prompt": "q", "chosen": "a", "rejected": "b", "reference": 3}, "field 'reference' must be a string or null"),
    ({"question": "q", "answer": "a"}, "no known row shape"),
])
def test_malformed_rows_are_refused_with_a_one_line_reason(row, reason):
    with pytest.raises(InputError) as caught:
        prepare_row(row)
    assert reason in str(caught.value) and "\n" not in str(caught.value)


def test_row_errors_from_readers_pass_through():
    error = RowError("line 3 is not valid JSON", "{x")
    with pytest.raises(RowError) as caught:
        prepare_row(error)
    assert caught.value.raw == "{x"


def test_dumps_row_writes_one_utf8_line_for_any_value():
    line = dumps_row({"text": "é [[A]]\n", "when": datetime.date(2024, 1, 2), "blob": b"\xff", "n": 1.5,
                           "lone": "\udcff"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    decoded = json.loads(line.decode("utf-8"))
    assert decoded["text"] == "é [[A]]\n" and decoded["when"] == "2024-01-02" and decoded["blob"] == "/w=="


def test_input_sources_are_picklable_for_ray_workers(tmp_path):
    import pickle

    source = InputSource(str(tmp_path / "x.jsonl"), "jsonl")
    assert pickle.loads(pickle.dumps(source)) == source
