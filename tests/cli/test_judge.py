"""`critic judge`: output shape, bad rows, every input format, outputs checked before the model loads."""

from __future__ import annotations

import codecs
import json
import os

from pathlib import Path

import pytest

from critic import cli

from .conftest import EXAMPLE, read_jsonl, run_critic, write_jsonl

GOOD = {"prompt": "2+2?", "response_a": "4", "response_b": "5"}


def test_judge_writes_one_line_per_input_line(tmp_path, demo_judge_factory, capsys):
    out = tmp_path / "out.jsonl"
    code = cli.main(["judge", str(EXAMPLE), "--model", "demo", "-o", str(out), "--quiet", "--table"])
    assert code == 0
    records = read_jsonl(out)
    inputs = read_jsonl(EXAMPLE)
    assert [r["id"] for r in records] == [row["id"] for row in inputs]
    for record in records:
        assert record["label"] in {"A", "B", "tie"}
        assert 0.0 <= record["p_a"] <= 1.0
        assert isinstance(record["consistent"], bool)
        assert [o["order"] for o in record["orders"]] == ["ab", "ba"]
    captured = capsys.readouterr()
    assert all(row["id"] in captured.out for row in inputs)
    assert captured.err == ""  # --quiet: no loading line either


def test_bad_lines_get_an_error_record_and_the_rest_are_judged(tmp_path, demo_judge_factory, capsys):
    source = tmp_path / "in.jsonl"
    source.write_bytes(
        b"\n".join(
            [
                json.dumps(GOOD).encode(),
                b"{not json",
                json.dumps({"prompt": "q", "response_a": "a"}).encode(),
                b'{"prompt": "\xff", "response_a": "a", "response_b": "b"}',
                json.dumps({"prompt": "q", "response_a": None, "response_b": "b"}).encode(),
                json.dumps({"question": "q", "first": "a", "second": "b"}).encode(),
                b"[" * 100_000,  # nested too deeply for the JSON parser: one row's error, not a crash
            ]
        )
    )
    out = tmp_path / "out.jsonl"
    code = cli.main(["judge", str(source), "--model", "demo", "-o", str(out), "--quiet"])
    assert code == 1
    records = read_jsonl(out)
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5, 6, 7]
    assert "label" in records[0]
    assert "not valid JSON" in records[1]["error"]
    assert "response_b" in records[2]["error"] and "missing" in records[2]["error"]
    assert "UTF-8" in records[3]["error"]
    assert "null" in records[4]["error"]
    assert "no known row shape" in records[5]["error"]
    assert "nested too deeply" in records[6]["error"]
    assert "6 line(s) could not be judged" in capsys.readouterr().err


@pytest.mark.parametrize("line, message", [
    (b'{"prompt": "a\tb"}', "not valid JSON (Invalid control character at column 14)"),
    (b'{"prompt": "unterminated}', "not valid JSON (Unterminated string starting at column 12)"),
    (b'{"prompt" "q"}', "not valid JSON (Expecting ':' delimiter at column 11)"),
])
def test_json_errors_say_where_once(tmp_path, fake_models, line, message):
    source = tmp_path / "in.jsonl"
    source.write_bytes(line)  # no newline after the last line: the unterminated string ends the file
    out = tmp_path / "out.jsonl"
    assert cli.main(["judge", str(source), "--model", "fake", "-o", str(out), "--quiet"]) == 1
    assert read_jsonl(out)[0]["error"] == f"line 1 is {message}"


def test_field_flags_rename_input_columns(tmp_path, demo_judge_factory):
    source = write_jsonl(tmp_path / "in.jsonl", [{"question": "2+2?", "first": "4", "second": "5"}])
    out = tmp_path / "out.jsonl"
    code = cli.main(["judge", str(source), "--model", "demo", "-o", str(out), "--quiet", "--prompt-field", "question",
                     "--response-a-field", "first", "--response-b-field", "second"])
    assert code == 0 and "label" in read_jsonl(out)[0]


def test_a_json_array_is_read_as_rows_and_limit_stops_early(tmp_path, demo_judge_factory):
    source = tmp_path / "pairs.json"
    source.write_text(json.dumps([dict(GOOD, id=i) for i in range(3)], indent=2), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert cli.main(["judge", str(source), "--model", "demo", "-o", str(out), "--quiet"]) == 0
    assert [r["id"] for r in read_jsonl(out)] == [0, 1, 2] and all("label" in r for r in read_jsonl(out))
    assert cli.main(["judge", str(source), "--model", "demo", "-o", str(out), "--quiet", "--force",
                     "--limit", "2"]) == 0
    assert [r["id"] for r in read_jsonl(out)] == [0, 1]


def test_a_utf8_bom_does_not_break_the_first_line(tmp_path, demo_judge_factory):
    source = tmp_path / "bom.jsonl"
    source.write_bytes(codecs.BOM_UTF8 + (json.dumps(GOOD) + "\n").encode())
    out = tmp_path / "out.jsonl"
    assert cli.main(["judge", str(source), "--model", "demo", "-o", str(out), "--quiet"]) == 0
    assert "label" in read_jsonl(out)[0]


def test_csv_input_with_the_same_flags(tmp_path, demo_judge_factory):
    source = tmp_path / "pairs.csv"
    source.write_text("q,x,y\n2+2?,4,5\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert cli.main(["judge", str(source), "--model", "demo", "-o", str(out), "--quiet", "--prompt-field", "q",
                     "--response-a-field", "x", "--response-b-field", "y"]) == 0
    assert "label" in read_jsonl(out)[0]


def test_an_existing_output_needs_force_and_nothing_loads(tmp_path, loaders, capsys):
    out = tmp_path / "out.jsonl"
    out.write_text("earlier\n", encoding="utf-8")
    assert cli.main(["judge", str(EXAMPLE), "--model", "demo", "-o", str(out)]) == 2
    assert "already exists; use --force" in capsys.readouterr().err
    assert loaders["generative"].calls == [] and out.read_text(encoding="utf-8") == "earlier\n"


@pytest.mark.parametrize("make_output, message", [
    (lambda tmp: tmp, "is a folder"),
    (lambda tmp: (tmp / "file").write_text("x") and tmp / "file" / "out.jsonl", "is a file, not a folder"),
    pytest.param(lambda tmp: (tmp / "ro").mkdir(mode=0o500) or tmp / "ro" / "sub" / "out.jsonl", "permission denied",
                 marks=pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")),
    # where permission bits say yes but nothing can be created (root included): a virtual file system
    pytest.param(lambda tmp: Path("/proc/critic-test/out.jsonl"), "cannot write",
                 marks=pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")),
])
def test_an_unusable_output_path_fails_before_the_model_loads(tmp_path, loaders, capsys, make_output, message):
    code = cli.main(["judge", str(EXAMPLE), "--model", "demo", "-o", str(make_output(tmp_path))])
    error = capsys.readouterr().err
    assert code == 2 and error.startswith("critic: error:") and message in error and error.count("\n") == 1
    assert loaders["generative"].calls == []


def test_missing_input_file_is_a_clear_error_before_loading(tmp_path, loaders, capsys):
    assert cli.main(["judge", str(tmp_path / "absent.jsonl"), "--model", "demo"]) == 2
    assert "cannot read input file" in capsys.readouterr().err and loaders["generative"].calls == []


def test_the_loading_line_names_the_model(tmp_path, demo_judge_factory, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", [GOOD])
    out = tmp_path / "o.jsonl"
    assert cli.main(["judge", str(source), "--model", "demo", "-o", str(out), "--progress-every", "3600"]) == 0
    loading, *summary, time = capsys.readouterr().err.splitlines()
    assert loading == "critic: loading demo (generative, transformers backend) ..."
    assert summary == [f"critic judge: {source} -> {out}", "  rows               1", "  judged             1",
                       "  errors             0"]
    assert time.startswith("  time        ") and time.endswith(" rows/s")


@pytest.mark.parametrize("overflow", [None, "truncate"])
def test_overflow_option_reaches_the_engine(tmp_path, tiny_model_loader, overflow):
    long_pair = {"prompt": "Summarise the story.", "response_a": "Once upon a time " * 80,
                 "response_b": "It was " * 60}
    source = write_jsonl(tmp_path / "in.jsonl", [long_pair, GOOD])
    out = tmp_path / "out.jsonl"
    args = ["judge", str(source), "--model", "demo", "-o", str(out), "--quiet", "--max-length", "300"]
    code = cli.main(args + (["--overflow", overflow] if overflow else []))
    long_record, short_record = read_jsonl(out)
    assert "label" in short_record
    if overflow is None:
        assert code == 1 and "the model reads at most 300" in long_record["error"]
        # said as the command line's flags, not the Python options
        assert "--overflow truncate" in long_record["error"] and "raise --max-length" in long_record["error"]
        assert "overflow='truncate'" not in long_record["error"]
    else:
        assert code == 0 and "label" in long_record


@pytest.mark.parametrize("model, loads", [("/no/such/model-folder", False), ("./missing", False),
                                          ("missing.gguf", False), ("no-such-org/no-such-model", True)])
@pytest.mark.slow
def test_wrong_model_ends_with_one_sentence_not_a_traceback(model, loads):
    """A model folder or file that is not there is said before the loading line; a hub id is tried first."""
    result = run_critic("judge", str(EXAMPLE), "--model", model)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    loading = f"critic: loading {model} (generative, transformers backend) ...\n" if loads else ""
    assert result.stderr.startswith(f"{loading}critic: error:")
    assert model in result.stderr and "'demo'" in result.stderr


@pytest.mark.model
def test_demo_command_end_to_end(tmp_path):
    """What `make demo` runs, as a real subprocess with a real model load (and -v after the command)."""
    out = tmp_path / "demo.jsonl"
    result = run_critic("judge", str(EXAMPLE), "--model", "demo", "-o", str(out), "--table", "-v")
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(out)) == len(read_jsonl(EXAMPLE))
    assert "arith" in result.stdout and "consistent" in result.stdout
    assert "INFO critic" in result.stderr  # -v after the subcommand turns on the library's log


def test_judge_writes_one_line_per_rewardbench2_row_with_each_pair(tmp_path, fake_judge, capsys):
    """Issue 17: judge rejected every RewardBench 2 row; now each row is one line with a 'pairs' list."""
    from pathlib import Path

    source = Path(__file__).resolve().parents[1] / "data" / "rewardbench2.jsonl"
    out = tmp_path / "out.jsonl"
    code = cli.main(["judge", str(source), "--model", "fake", "-o", str(out), "--quiet"])
    assert code == 0
    records, inputs = read_jsonl(out), read_jsonl(source)
    assert [(r["line"], r["id"]) for r in records] == [(n, row["id"]) for n, row in enumerate(inputs, start=1)]
    for record, row in zip(records, inputs, strict=True):
        assert [(p["chosen"], p["rejected"]) for p in record["pairs"]] == [
            (i, j) for i in range(len(row["chosen"])) for j in range(len(row["rejected"]))]
        assert all(p["label"] in {"A", "B", "tie"} and len(p["orders"]) == 2 for p in record["pairs"])
        assert "label" not in record and "error" not in record
