"""critic.io.source: detecting formats, opening inputs, cheap counts, one load per dataset."""

from __future__ import annotations

import json
import os
import pickle

import pytest

import critic.io.source
from critic.errors import InputError, Reason
from critic.io import readers
from critic.io.source import InputSource, count_rows, detect_format, open_source
from tests.conftest import shared_path


def test_format_detection(tmp_path):
    (tmp_path / "array.json").write_text('\n  [{"a": 1}]', encoding="utf-8")
    (tmp_path / "lines.json").write_text('{"a": 1}\n{"a": 2}\n', encoding="utf-8")
    (tmp_path / "data.txt").write_text("", encoding="utf-8")
    assert detect_format(tmp_path / "array.json") == "json"
    assert detect_format(tmp_path / "lines.json") == "jsonl"
    with pytest.raises(InputError, match="pass --format"):
        detect_format(tmp_path / "data.txt")
    with pytest.raises(InputError, match="cannot read input file") as caught:
        open_source(tmp_path / "absent.jsonl")
    assert caught.value.kind == Reason.BAD_ARGUMENT
    with pytest.raises(InputError, match="not a dataset saved with save_to_disk"):
        detect_format(tmp_path)
    with pytest.raises(InputError, match="unknown input format 'xml'"):
        open_source(tmp_path / "array.json", format="xml")


def test_open_source_applies_a_limit_and_refuses_a_negative_one(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(5)), encoding="utf-8")
    source = open_source(path, limit=2)
    assert [row for _, row in source.rows()] == [{"i": 0}, {"i": 1}] and source.count() == 2
    assert list(source.rows(skip=1)) == [(2, {"i": 1})]
    with pytest.raises(InputError, match="0 or more"):
        open_source(path, limit=-1)


def test_tsv_is_read_as_csv_with_tabs(tmp_path):
    tsv = tmp_path / "in.tsv"
    tsv.write_text("prompt\tchosen\trejected\nq\ta\tb\n", encoding="utf-8")
    assert [row for _, row in open_source(tsv).rows()] == [{"prompt": "q", "chosen": "a", "rejected": "b"}]


def test_standard_input_is_jsonl_unless_told_and_never_read_ahead(monkeypatch):
    source = open_source("-")
    assert (source.format, source.count()) == ("jsonl", None)
    monkeypatch.setattr(readers, "_open_binary", lambda path: pytest.fail("check() must not read stdin"))
    source.check()
    assert open_source("-", format="json").format == "json"
    with pytest.raises(InputError, match="standard input"):
        open_source("-", format="parquet")


# --------------------------------------------------------------------------- counting


def test_counts_are_cheap_jsonl_lines_and_no_json_array_parse(tmp_path, monkeypatch):
    rows = [{"i": i} for i in range(4)]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    (tmp_path / "in.json").write_text(json.dumps(rows), encoding="utf-8")
    assert open_source(tmp_path / "in.jsonl").count() == 4
    monkeypatch.setattr(critic.io.source, "read_json_array", lambda *a, **k: pytest.fail("counting parsed the array"))
    assert open_source(tmp_path / "in.json").count() is None  # unknown, rather than a second full parse


@pytest.mark.parametrize(("text", "count"), [
    (b"prompt,chosen,rejected\nq,a,b\n\nq2,a2,b2", 2),
    (b"prompt,chosen,rejected\r\nq,a,b\r\nq2,a2,b2\r\n", 2),
    (b"prompt,chosen,rejected\n", 0),
    (b"", 0),
    (b'prompt,chosen,rejected\n"two\nlines",a,b\n', None),  # a quoted field may hold newlines: not counted
    (b"prompt,chosen,rejected\rq,a,b\r", None),  # old Mac line ends: lines are not records
])
def test_csv_records_are_counted_only_when_lines_are_records(tmp_path, monkeypatch, text, count):
    path = tmp_path / "in.csv"
    path.write_bytes(text)
    monkeypatch.setattr(critic.io.source, "COUNT_CHUNK", 3)  # records cut across chunks
    assert open_source(path).count() == count
    if count is not None:
        assert count == sum(1 for _ in open_source(path).rows())


def test_pandalm_test_set_reads_as_999_rows():
    path = shared_path("data", "pandalm", "testset-v1.json")
    source = open_source(path)
    assert source.format == "json" and source.count() is None
    assert [row for _, row in source.rows()] == json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- datasets


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


def test_a_dataset_is_loaded_once_per_source_and_the_source_still_pickles(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list([{"prompt": "q", "chosen": "a", "rejected": "b"}] * 3).save_to_disk(str(tmp_path / "d"))
    loads = []
    real = critic.io.source.load_hf_disk
    monkeypatch.setattr(critic.io.source, "load_hf_disk", lambda *args: loads.append(args) or real(*args))
    source = open_source(tmp_path / "d")
    source.check()
    assert source.count() == 3 and len(list(source.rows())) == 3 and len(list(source.rows(skip=1))) == 2
    assert len(loads) == 1
    copy = pickle.loads(pickle.dumps(source))
    assert copy == source and "dataset" not in copy.__dict__  # a worker loads its own
    assert len(list(copy.rows())) == 3 and len(loads) == 2


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
    loads = []
    real = critic.io.source.load_hub_cached
    monkeypatch.setattr(critic.io.source, "load_hub_cached", lambda *args: loads.append(args) or real(*args))
    source = open_source("someorg/prefs")
    assert source.format == "hub" and source.count() == 3
    source.check()
    assert [row for _, row in source.rows()] == rows
    assert len(loads) == 1  # count, check and rows share one load
    offline_before = os.environ.get("HF_HUB_OFFLINE") == "1"
    assert datasets.config.HF_HUB_OFFLINE is offline_before  # restored


def test_input_sources_are_picklable_for_ray_workers(tmp_path):
    source = InputSource(str(tmp_path / "x.jsonl"), "jsonl", limit=3)
    assert pickle.loads(pickle.dumps(source)) == source
    assert count_rows(source) is None  # absent: counting is best effort, reading says what is wrong
