"""critic.io.writers: one JSONL line for any record (lone surrogates included), files replaced atomically,
outputs kept apart from inputs, JSONL or Parquet by the name."""

from __future__ import annotations

import datetime
import json
import os

import pytest

from critic.errors import InputError
from critic.io.rows import prepare_row
from critic.io.writers import dumps_row


def test_dumps_row_writes_one_utf8_line_for_any_value():
    line = dumps_row({"text": "é [[A]]\n", "when": datetime.date(2024, 1, 2), "blob": b"\xff", "n": 1.5,
                      "lone": "\udcff"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    decoded = json.loads(line.decode("utf-8"))
    assert decoded["text"] == "é [[A]]\n" and decoded["when"] == "2024-01-02" and decoded["blob"] == "/w=="
    assert decoded["lone"] == "\udcff"


def test_a_rejected_row_holding_an_escaped_lone_surrogate_is_written_and_reads_back():
    row = json.loads('{"prompt": "q \\ud800", "response_a": "a", "response_b": "b", "label": "maybe"}')
    with pytest.raises(InputError) as caught:  # the label (or, with the judges' Pair, the surrogate) is the reason
        prepare_row(row)
    line = dumps_row({"row": 1, "reason": str(caught.value), "input": row})
    assert line.decode("utf-8").count("\n") == 1  # valid UTF-8: the surrogate is written as the escape \ud800
    assert json.loads(line)["input"] == row


# --------------------------------------------------------------------------- atomic files, outputs apart from inputs


def test_atomic_file_replaces_only_on_success(tmp_path):
    from critic.io.writers import atomic_file

    path = tmp_path / "out.jsonl"
    path.write_bytes(b"old\n")
    for error in (RuntimeError("broke"), KeyboardInterrupt()):
        with pytest.raises(type(error)), atomic_file(path) as handle:
            handle.write(b"half of the new")
            raise error
        assert path.read_bytes() == b"old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
    with atomic_file(path) as handle:
        handle.write(b"new\n")
    assert path.read_bytes() == b"new\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_staged_files_move_all_or_none(tmp_path):
    from critic.io.writers import staged_files

    (tmp_path / "a.json").write_text("old a")
    with pytest.raises(OSError), staged_files(tmp_path) as staging:
        (staging / "a.json").write_text("new a")
        raise OSError(28, "No space left on device")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"] and (tmp_path / "a.json").read_text() == "old a"
    with staged_files(tmp_path) as staging:
        (staging / "a.json").write_text("new a")
        (staging / "b.md").write_text("new b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.md"]
    assert (tmp_path / "a.json").read_text() == "new a"


@pytest.mark.parametrize("make, refused", [
    (lambda src, tmp: src, True),
    (lambda src, tmp: (tmp / "link").symlink_to(src) or tmp / "link", True),
    (lambda src, tmp: os.link(src, tmp / "hard") or tmp / "hard", True),
    (lambda src, tmp: tmp / "." / src.name, True),
    (lambda src, tmp: tmp / "other.jsonl", False),
    (lambda src, tmp: (tmp / "copy.jsonl").write_bytes(src.read_bytes()) and tmp / "copy.jsonl", False),
])
def test_an_output_that_is_an_input_under_any_name_is_refused(tmp_path, make, refused):
    from critic.io.writers import refuse_inputs_as_outputs

    source = tmp_path / "in.jsonl"
    source.write_text("{}\n")
    output = make(source, tmp_path)
    if refused:
        with pytest.raises(InputError, match="is an input of this command"):
            refuse_inputs_as_outputs([output], [source])
    else:
        refuse_inputs_as_outputs([output], [source, "-", None, "org/hub-dataset"])


@pytest.mark.parametrize("name, expected", [
    ("out.jsonl", "jsonl"), ("out.ndjson", "jsonl"), ("out", "jsonl"), ("out.txt", "jsonl"),
    ("out.parquet", "parquet"), ("OUT.PQ", "parquet"),
    ("out.csv", None), ("out.json", None), ("out.jsonl.gz", None), ("out.zst", None), ("out.xlsx", None),
])
def test_output_format_from_the_name(name, expected):
    from critic.io.writers import output_format

    if expected is None:
        with pytest.raises(InputError, match="critic writes JSON lines or Parquet; name it .jsonl or .parquet"):
            output_format(name)
    else:
        assert output_format(name) == expected


def test_row_file_writes_parquet_with_every_field_of_every_record(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from critic.io.writers import RowFile

    with RowFile(tmp_path / "out.parquet") as rows:
        rows.write({"line": 1, "label": "A", "orders": [{"order": "ab", "p_a": 0.75}]})
        rows.write({"line": 2, "error": "no verdict"})
    assert pq.read_table(tmp_path / "out.parquet").to_pylist() == [
        {"line": 1, "label": "A", "orders": [{"order": "ab", "p_a": 0.75}], "error": None},
        {"line": 2, "label": None, "orders": None, "error": "no verdict"},
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]
