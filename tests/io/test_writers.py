"""critic.io.writers: one JSONL line for any record, lone surrogates included."""

from __future__ import annotations

import datetime
import json

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
