"""Every command's outputs: never one of its inputs, replaced only by a finished run, JSONL or Parquet by name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from critic import cli

from .conftest import read_jsonl, write_jsonl

GOOD = {"prompt": "2+2?", "response_a": "good 4", "response_b": "5", "response": "good"}
LLMBAR = ["--prompt-field", "input", "--response-a-field", "output_1", "--response-b-field", "output_2"]


def rows(count: int) -> list[dict]:
    return [dict(GOOD, id=i) for i in range(count)]


def leftovers(folder: Path) -> list[str]:
    """Temporary files or folders a command left behind."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob(".*"))


def one_line_error(capsys, *phrases: str) -> str:
    error = capsys.readouterr().err
    assert error.startswith("critic: error:") and error.count("\n") == 1, error
    for phrase in phrases:
        assert phrase in error
    return error


# --------------------------------------------------------------------------- outputs are never inputs


def same_file(how: str, source: Path, tmp_path: Path) -> Path:
    """Another name for ``source``: itself, a symlink, a hard link, a path through '..'."""
    if how == "symlink":
        (tmp_path / "link.jsonl").symlink_to(source)
        return tmp_path / "link.jsonl"
    if how == "hard link":
        os.link(source, tmp_path / "hard.jsonl")
        return tmp_path / "hard.jsonl"
    if how == "through ..":
        (tmp_path / "sub").mkdir()
        return tmp_path / "sub" / ".." / source.name
    return source


@pytest.mark.parametrize("command", ["judge", "score"])
@pytest.mark.parametrize("how", ["the same path", "symlink", "hard link", "through .."])
def test_an_output_that_is_the_input_is_refused_before_anything_opens(tmp_path, loaders, capsys, command, how):
    source = write_jsonl(tmp_path / "in.jsonl", rows(3))
    before = source.read_bytes()
    output = same_file(how, source, tmp_path)
    assert cli.main([command, str(source), "-o", str(output), "--force"]) == 2
    one_line_error(capsys, f"the output '{output}' is an input of this command", "choose another output")
    assert source.read_bytes() == before and loaders["generative"].calls == loaders["reward"].calls == []
    assert leftovers(tmp_path) == []


def test_a_file_of_a_saved_dataset_is_an_input_too(tmp_path, loaders, capsys):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(rows(2)).save_to_disk(str(tmp_path / "saved"))
    capsys.readouterr()  # the datasets library's own progress bar
    data = next((tmp_path / "saved").glob("*.arrow"))
    before = data.read_bytes()
    assert cli.main(["judge", str(tmp_path / "saved"), "-o", str(data), "--force"]) == 2
    one_line_error(capsys, f"is an input of this command (a file of the input folder '{tmp_path / 'saved'}')")
    assert data.read_bytes() == before and loaders["generative"].calls == []


@pytest.mark.parametrize("name", ["kept.jsonl", "rejected.jsonl", "summary.json", "checkpoint.json"])
def test_filter_refuses_a_folder_holding_its_input(tmp_path, fake_models, capsys, name):
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "q", "chosen": "good", "rejected": "bad"}] * 3)
    out = tmp_path / "out"
    assert cli.main(["filter", str(source), "-o", str(out), "--model", "fake", "--quiet"]) == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    fake_models.clear()
    for flags in (["--force"], ["--resume"], []):
        assert cli.main(["filter", str(out / name), "-o", str(out), "--model", "fake", *flags]) == 2
        one_line_error(capsys, f"the output '{out / name}' is an input of this command")
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before and fake_models == []


def test_eval_refuses_an_input_or_predictions_file_among_its_reports(tmp_path, fake_models, capsys):
    out = tmp_path / "report"
    out.mkdir()
    source = write_jsonl(out / "pairs.jsonl", [{"id": i, "input": f"q{i}", "output_1": "good", "output_2": "bad",
                                               "label": 1} for i in range(3)])
    before = source.read_bytes()
    assert cli.main(["eval", str(source), "--model", "fake", "-o", str(out), "--force", "--no-figure", *LLMBAR]) == 2
    one_line_error(capsys, f"the output '{out / 'pairs.jsonl'}' is an input of this command")
    other = write_jsonl(tmp_path / "labelled.jsonl", [{"input": "q", "output_1": "good", "output_2": "bad",
                                                       "label": 1}])
    (out / "reward").mkdir()
    predictions = write_jsonl(out / "reward" / "report.json", [{"id": 0, "label": "A"}])
    assert cli.main(["eval", str(other), "--model", "fake", "-o", str(out), "--force", "--no-figure", *LLMBAR,
                     "--judge-column", f"mine={predictions}"]) == 2
    one_line_error(capsys, "is an input of this command")
    assert source.read_bytes() == before and fake_models == []


# --------------------------------------------------------------------------- replaced only by a finished run


@pytest.mark.parametrize("command", ["judge", "score"])
@pytest.mark.parametrize("model, code", [("interrupt", 130), ("crash", 70)])
def test_an_interrupted_or_failed_run_leaves_the_earlier_output_as_it_was(tmp_path, fake_models, capsys, command,
                                                                          model, code):
    source = write_jsonl(tmp_path / "in.jsonl", rows(80))  # three chunks: the second one stops the run
    out = tmp_path / "out.jsonl"
    out.write_text("the earlier run\n", encoding="utf-8")
    fresh = tmp_path / "fresh.jsonl"
    assert cli.main([command, str(source), "--model", model, "-o", str(out), "--force", "--quiet"]) == code
    assert out.read_text(encoding="utf-8") == "the earlier run\n"
    if model == "interrupt":
        assert (f"critic: interrupted after 32 rows; '{out}' was not written (a file there before is left as it "
                "was)\ncritic: interrupted\n") in capsys.readouterr().err
    assert cli.main([command, str(source), "--model", model, "-o", str(fresh), "--quiet"]) == code
    assert not fresh.exists() and leftovers(tmp_path) == []
    assert cli.main([command, str(source), "--model", "fake", "-o", str(out), "--force", "--quiet"]) == 0
    assert len(read_jsonl(out)) == 80


def test_a_replaced_output_keeps_its_permissions_and_its_symlink(tmp_path, fake_models):
    source = write_jsonl(tmp_path / "in.jsonl", rows(2))
    target = tmp_path / "target.jsonl"
    target.write_text("old\n", encoding="utf-8")
    target.chmod(0o640)
    (tmp_path / "link.jsonl").symlink_to(target)
    assert cli.main(["judge", str(source), "--model", "fake", "-o", str(tmp_path / "link.jsonl"), "--force",
                     "--quiet"]) == 0
    assert (tmp_path / "link.jsonl").is_symlink() and len(read_jsonl(target)) == 2
    assert target.stat().st_mode & 0o777 == 0o640


def test_dev_null_is_written_directly(tmp_path, fake_models):
    source = write_jsonl(tmp_path / "in.jsonl", rows(2))
    assert cli.main(["judge", str(source), "--model", "fake", "-o", os.devnull, "--force", "--quiet"]) == 0
    assert Path(os.devnull).is_char_device()


def test_eval_replaces_its_reports_only_once_all_are_written(tmp_path, fake_models, capsys, monkeypatch):
    import critic.eval.reports as reports

    source = write_jsonl(tmp_path / "in.jsonl", [{"id": i, "input": f"q{i}", "output_1": "good", "output_2": "bad",
                                                  "label": 1} for i in range(3)])
    out = tmp_path / "report"
    args = ["eval", str(source), "--model", "fake", "-o", str(out), "--quiet", "--no-figure", *LLMBAR]
    assert cli.main(args) == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    def disk_full(report, path):
        Path(path).write_bytes(b"half")
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(reports, "write_records", disk_full)
    assert cli.main([*args, "--force", "--limit", "2"]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before and leftovers(out) == []


# --------------------------------------------------------------------------- JSONL or Parquet, by the name


@pytest.mark.parametrize("command", ["judge", "score"])
def test_a_parquet_output_holds_the_rows_the_jsonl_output_holds(tmp_path, fake_models, command):
    pq = pytest.importorskip("pyarrow.parquet")
    source = write_jsonl(tmp_path / "in.jsonl", [*rows(3), {"prompt": "a row without answers"}])
    base = [command, str(source), "--model", "fake", "--quiet"]
    assert cli.main([*base, "-o", str(tmp_path / "out.jsonl")]) == 1  # the last row fails, in both files
    assert cli.main([*base, "-o", str(tmp_path / "out.parquet")]) == 1
    assert (tmp_path / "out.parquet").read_bytes()[:4] == b"PAR1"
    from_parquet = pq.read_table(tmp_path / "out.parquet").to_pylist()
    as_json_lines = read_jsonl(tmp_path / "out.jsonl")
    assert [_without_nulls(row) for row in from_parquet] == [_without_nulls(row) for row in as_json_lines]
    assert set(from_parquet[0]) == {key for row in as_json_lines for key in row}
    assert leftovers(tmp_path) == []


def _without_nulls(value):
    """Parquet has one schema for all rows: a field a JSONL record lacks reads back as null (so nulls are
    left out on both sides)."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


@pytest.mark.parametrize("name, what", [("out.csv", "'.csv', which promises CSV"),
                                        ("out.json", "'.json', which promises one JSON document"),
                                        ("out.tsv", "'.tsv', which promises TSV"),
                                        ("out.jsonl.gz", "'.gz', which promises gzip-compressed data"),
                                        ("OUT.CSV", "'.CSV', which promises CSV")])
def test_an_output_named_as_another_format_is_refused_before_loading(tmp_path, loaders, capsys, name, what):
    source = write_jsonl(tmp_path / "in.jsonl", rows(1))
    assert cli.main(["judge", str(source), "-o", str(tmp_path / name)]) == 2
    one_line_error(capsys, f"is named {what}, but critic writes JSON lines or Parquet; name it .jsonl or .parquet")
    assert loaders["generative"].calls == [] and not (tmp_path / name).exists()


@pytest.mark.parametrize("name", ["out.ndjson", "out.txt", "out"])
def test_other_names_get_json_lines(tmp_path, fake_models, name):
    source = write_jsonl(tmp_path / "in.jsonl", rows(2))
    assert cli.main(["judge", str(source), "--model", "fake", "-o", str(tmp_path / name), "--quiet"]) == 0
    assert [record["id"] for record in read_jsonl(tmp_path / name)] == [0, 1]


def test_parquet_without_pyarrow_is_said_before_loading(tmp_path, loaders, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # as if pyarrow were not installed
    source = write_jsonl(tmp_path / "in.jsonl", rows(1))
    assert cli.main(["judge", str(source), "-o", str(tmp_path / "out.parquet")]) == 2
    one_line_error(capsys, "writing Parquet files needs the optional package 'pyarrow'", "pip install")
    assert loaders["generative"].calls == []


def test_rows_that_cannot_form_one_parquet_table_are_kept_as_json_lines(tmp_path, fake_models, capsys):
    pytest.importorskip("pyarrow")
    source = write_jsonl(tmp_path / "in.jsonl", [dict(GOOD, id=1), dict(GOOD, id="two")])  # int, then text
    assert cli.main(["judge", str(source), "--model", "fake", "-o", str(tmp_path / "out.parquet"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "cannot write the rows as Parquet" in error and f"saved as JSON lines in '{tmp_path / 'out.jsonl'}'" in error
    assert [record["id"] for record in read_jsonl(tmp_path / "out.jsonl")] == [1, "two"]
    assert not (tmp_path / "out.parquet").exists() and leftovers(tmp_path) == []

