"""critic.io.checks: a field flag naming a column the input lacks is an error before any model loads (issue 17, item 5).

Before, `critic filter hh.jsonl --prompt-field question` ran normally: the
HH-RLHF shape was detected and the flag silently ignored.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from critic import Judge, RewardJudge, cli
from critic.errors import InputError, Reason
from critic.io.checks import check_columns
from critic.io.shapes import Columns
from critic.io.source import open_source

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize("name, columns", [
    ("hh_rlhf.jsonl", Columns(prompt="question")),
    ("pandalm.json", Columns(chosen="better")),
    ("arena_55k.csv", Columns(response_b="answer_b")),
    ("arena_55k.csv", Columns(label="winner")),
    ("rows.parquet", Columns(reference="ref")),
])
def test_a_renamed_column_the_input_lacks_is_refused(tmp_path, name, columns):
    path = _input(tmp_path, name)
    with pytest.raises(InputError) as caught:
        check_columns(open_source(path), columns)
    field, column = next(iter(columns.customized().items()))
    message = str(caught.value)
    assert message.startswith(f"--{field.replace('_', '-')}-field names column '{column}', which is not in ")
    assert "name a column the input has, or leave the flag out" in message and "\n" not in message
    assert caught.value.kind == Reason.MISSING_FIELD


@pytest.mark.parametrize("name, columns", [
    ("hh_rlhf.jsonl", Columns()),  # nothing renamed: nothing to check
    ("hh_rlhf.jsonl", Columns(prompt="prompt", label_sign="negative-is-a")),  # the default, typed out
    ("pandalm.json", Columns(prompt="instruction")),
    ("arena_55k.csv", Columns(label="winner_model_b")),  # one of the one-hot triple, all three there
    ("helpsteer2_preference.jsonl", Columns(response_a="response_1", label="preference_strength")),
    ("rows.parquet", Columns(chosen="chosen", prompt="prompt")),
])
def test_columns_the_input_has_pass(tmp_path, name, columns):
    check_columns(open_source(_input(tmp_path, name)), columns)


def test_a_column_present_only_in_a_later_row_of_the_first_hundred_counts(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{"prompt": "q", "chosen": "a", "rejected": "b"}] * 5 + [{"prompt": "q", "chosen": "a", "rejected": "b",
                                                                      "ref": "a"}]
    path.write_text("not json\n" + "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    check_columns(open_source(path), Columns(reference="ref"))
    with pytest.raises(InputError, match="the first 3 readable rows"):
        check_columns(open_source(path), Columns(reference="ref"), rows=3)


def test_one_hot_label_columns_are_checked_as_a_triple(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"prompt": "q", "response_a": "a", "response_b": "b", "winner_model_a": 1}) + "\n",
                    encoding="utf-8")
    with pytest.raises(InputError, match="--label-field names column 'winner_model_b'"):
        check_columns(open_source(path), Columns(label="winner_model_a"))


def test_standard_input_and_inputs_without_readable_rows_are_not_read_ahead(tmp_path):
    check_columns(open_source("-"), Columns(prompt="question"))  # nothing read from stdin
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    check_columns(open_source(empty), Columns(prompt="question"))


@pytest.mark.parametrize("command", [
    ["filter", "{input}", "-o", "{out}", "--prompt-field", "question"],
    ["judge", "{input}", "--prompt-field", "question"],
    ["eval", "{input}", "-o", "{out}", "--prompt-field", "question", "--no-figure"],
    ["score", "{input}", "--prompt-field", "question"],
])
def test_every_command_refuses_the_flag_before_loading_a_model(tmp_path, monkeypatch, capsys, command):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(Judge, "from_pretrained", staticmethod(no_model))
    monkeypatch.setattr(RewardJudge, "from_pretrained", staticmethod(no_model))
    argv = [part.format(input=DATA / "hh_rlhf.jsonl", out=tmp_path / "out") for part in command]
    code = cli.main([*argv, "--model", "demo", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("critic: error: --prompt-field names column 'question', which is not in the first 100 "
                          f"readable rows of '{DATA / 'hh_rlhf.jsonl'}' (columns there: chosen, rejected)")
    assert err.count("\n") == 1


def _input(tmp_path: Path, name: str) -> Path:
    if name == "pandalm.json":
        path = tmp_path / name
        path.write_text(json.dumps([{"idx": 1, "instruction": "q", "input": "", "response1": "a", "response2": "b",
                                     "annotator1": 1, "annotator2": 1, "annotator3": 2}]), encoding="utf-8")
        return path
    if name == "rows.parquet":
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        path = tmp_path / name
        pq.write_table(pa.Table.from_pylist([{"prompt": "q", "chosen": "a", "rejected": "b"}]), path)
        return path
    return DATA / name
