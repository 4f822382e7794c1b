"""critic.io.readers: streaming readers; a bad row becomes a RowError (kind UNREADABLE_ROW), never a stop."""

from __future__ import annotations

import io
import json
import sys

import pytest

import critic.io.readers
from critic.errors import InputError, Reason
from critic.io.readers import RowError, read_csv, read_json_array, read_jsonl, read_parquet


# --------------------------------------------------------------------------- JSONL


def test_jsonl_numbers_rows_by_line_and_turns_bad_lines_into_row_errors(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n{broken\n{"b": "\xff"}\n  \n[1, 2]\r\n{"c": "\xc3\xa9"}')
    rows = list(read_jsonl(path))
    assert [number for number, _ in rows] == [1, 3, 4, 6, 7]
    assert rows[0][1] == {"a": 1}
    assert isinstance(rows[1][1], RowError) and "line 3 is not valid JSON" in str(rows[1][1])
    assert rows[1][1].raw == "{broken" and rows[1][1].kind == Reason.UNREADABLE_ROW
    assert isinstance(rows[2][1], RowError) and "line 4 is not valid UTF-8" in str(rows[2][1])
    assert rows[2][1].raw == '{"b": "\ufffd"}' and rows[2][1].kind == Reason.UNREADABLE_ROW
    assert rows[3][1] == [1, 2]
    assert rows[4][1] == {"c": "é"}
    assert list(read_jsonl(path, skip=3)) == rows[3:]


def test_a_deeply_nested_line_is_a_row_error(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + '\n{"ok": 1}\n', encoding="utf-8")
    rows = list(read_jsonl(path))
    assert isinstance(rows[0][1], RowError) and "nested too deeply" in str(rows[0][1])
    assert rows[1] == (2, {"ok": 1})


def test_an_escaped_lone_surrogate_is_valid_json_and_reads_as_it_is(tmp_path):
    """"\\ud800" is valid JSON: the row reads; the pair made from it says what is wrong (not the reader)."""
    (tmp_path / "s.jsonl").write_text('{"prompt": "\\ud800 hi"}\n', encoding="utf-8")
    (tmp_path / "s.json").write_text('[{"prompt": "\\ud800 hi"}, {"prompt": "\\udcff"}]', encoding="utf-8")
    assert list(read_jsonl(tmp_path / "s.jsonl")) == [(1, {"prompt": "\ud800 hi"})]
    assert list(read_json_array(tmp_path / "s.json")) == [(1, {"prompt": "\ud800 hi"}), (2, {"prompt": "\udcff"})]


def test_standard_input_is_read_and_left_open(monkeypatch):
    stdin = io.TextIOWrapper(io.BytesIO(b'{"a": 1}\n\n{"b": 2}\n'), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    assert list(read_jsonl("-")) == [(1, {"a": 1}), (3, {"b": 2})]
    assert not stdin.closed


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
    rows = list(read_json_array(path))
    assert rows[0] == (1, {"a": "ok"}) and rows[2] == (3, {"c": 3})
    assert isinstance(rows[1][1], RowError) and "row 2 is not valid UTF-8" in str(rows[1][1])
    assert rows[1][1].raw == '{"b": "\ufffd\ufffd"}' and rows[1][1].kind == Reason.UNREADABLE_ROW


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
    assert caught.value.kind == Reason.UNREADABLE_ROW


def test_empty_json_array(tmp_path):
    path = tmp_path / "in.json"
    path.write_text(" [ ] ", encoding="utf-8")
    assert list(read_json_array(path)) == []


# --------------------------------------------------------------------------- CSV, Parquet


def test_csv_reads_quoted_multiline_fields_and_rejects_bad_records(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b'prompt,chosen,rejected\n"two\nlines","a, b",c\n\nx,\xff,y\nonly,two\n')
    rows = list(read_csv(path))
    assert rows[0] == (1, {"prompt": "two\nlines", "chosen": "a, b", "rejected": "c"})
    assert isinstance(rows[1][1], RowError) and "row 2 is not valid UTF-8" in str(rows[1][1])
    assert rows[1][1].raw == {"prompt": "x", "chosen": "\ufffd", "rejected": "y"}
    assert isinstance(rows[2][1], RowError) and "has 2 value(s) but the header has 3" in str(rows[2][1])
    assert {rows[1][1].kind, rows[2][1].kind} == {Reason.UNREADABLE_ROW}
    assert [(n, str(row)) for n, row in read_csv(path, skip=2)] == [(3, str(rows[2][1]))]


def test_parquet_streams_rows_with_nested_message_lists_and_skips_whole_row_groups(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [{"id": i, "chosen": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
            for i in range(25)]
    path = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=4)
    assert [row for _, row in read_parquet(path)] == rows
    assert list(read_parquet(path, skip=9, batch_size=3)) == [(i + 1, rows[i]) for i in range(9, 25)]
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="cannot read Parquet file"):
        list(read_parquet(tmp_path / "bad.parquet"))


def test_an_unreadable_file_says_so(tmp_path):
    with pytest.raises(InputError, match="cannot read input file") as caught:
        list(read_jsonl(tmp_path / "absent.jsonl"))
    assert caught.value.kind == Reason.BAD_ARGUMENT
