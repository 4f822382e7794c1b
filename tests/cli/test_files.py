"""`critic judge`, `score` and `filter` end to end: an empty input, the summary, exit codes, progress in a log."""

from __future__ import annotations

import io
import json
import re
import sys

import pytest

from critic import cli

from .conftest import read_jsonl, write_jsonl

GOOD = {"prompt": "2+2?", "response_a": "good 4", "response_b": "5", "response": "good"}
LABELLED = {"prompt": "2+2?", "chosen": "good 4", "rejected": "5"}


@pytest.mark.parametrize("command, verb", [("judge", "judge"), ("score", "score"), ("filter", "filter")])
@pytest.mark.parametrize("content", ["", "\n\n", "[]", "prompt,response\n"])
def test_an_input_without_rows_is_said_before_loading(tmp_path, loaders, capsys, command, verb, content):
    suffix = {"[]": ".json", "prompt,response\n": ".csv"}.get(content, ".jsonl")
    source = tmp_path / f"empty{suffix}"
    source.write_text(content, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert cli.main([command, str(source), "-o", str(out)]) == 2
    assert capsys.readouterr().err == f"critic: error: no rows in '{source}': nothing to {verb}\n"
    assert loaders["generative"].calls == loaders["reward"].calls == [] and not out.exists()


def test_empty_standard_input_is_said_before_loading(loaders, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert cli.main(["judge", "-"]) == 2
    assert capsys.readouterr().err == "critic: error: no rows on standard input: nothing to judge\n"
    assert loaders["generative"].calls == []


def test_judge_ends_with_a_summary_on_stderr(tmp_path, fake_models, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join([json.dumps(GOOD), "{not json", json.dumps({"prompt": "q"}), json.dumps(GOOD)]),
                      encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert cli.main(["judge", str(source), "--model", "fake", "-o", str(out), "--progress-every", "3600"]) == 1
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0] == "critic: loading fake (generative, transformers backend) ..."
    assert lines[1:7] == [f"critic judge: {source} -> {out}",
                          "  rows               4",
                          "  judged             2",
                          "  errors             2",
                          "           1  unreadable row  (e.g. line 2 is not valid JSON (Expecting property name "
                          "enclosed in double...)",
                          "           1  no known row shape  (e.g. no known row shape (expected 'chosen'/'rejected', "
                          "'response_a'/'respo...)"]
    assert re.fullmatch(r"  time {8}\d+\.\d s, \d+\.\d\d rows/s", lines[7])
    assert lines[8] == f"critic: 2 line(s) could not be judged; see their 'error' field in {out}"
    assert len(lines) == 9


def test_score_ends_with_a_summary_and_quiet_keeps_only_the_failure_line(tmp_path, fake_models, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", [GOOD, {"prompt": "q"}])
    assert cli.main(["score", str(source), "--model", "fake", "--progress-every", "3600"]) == 1
    captured = capsys.readouterr()
    assert [json.loads(line)["reward"] for line in captured.out.splitlines()] == [1.0, None]
    assert f"critic score: {source} -> stdout\n  rows               2\n  scored             1\n" in captured.err
    assert captured.err.endswith("critic: 1 line(s) could not be scored; see their 'error' field in stdout\n")
    assert cli.main(["score", str(source), "--model", "fake", "--quiet"]) == 1
    assert capsys.readouterr().err == "critic: 1 line(s) could not be scored; see their 'error' field in stdout\n"


# --------------------------------------------------------------------------- one rule for exit codes


def run_command(command: str, folder, rows: list[dict]) -> int:
    folder.mkdir()
    source = write_jsonl(folder / "in.jsonl", rows)
    output = folder / ("out.jsonl" if command in {"judge", "score"} else "out")
    extra = ["--no-figure"] if command == "eval" else []
    return cli.main([command, str(source), "--model", "fake", "-o", str(output), "--quiet", *extra])


@pytest.mark.parametrize("command, said", [
    ("judge", "critic: 1 line(s) could not be judged; see their 'error' field in "),
    ("score", "critic: 1 line(s) could not be scored; see their 'error' field in "),
    ("filter", "critic: 1 row(s) rejected; see "),
    ("eval", "critic: 1 input row(s) were skipped (see 'skipped_rows' in "),
])
def test_every_command_exits_1_when_a_row_failed_and_0_otherwise(tmp_path, fake_models, capsys, command, said):
    good = dict(GOOD, **LABELLED, label="A")
    assert run_command(command, tmp_path / "ok", [good, good]) == 0
    assert said not in capsys.readouterr().err
    assert run_command(command, tmp_path / "bad", [good, {"prompt": "no answers"}]) == 1
    assert said in capsys.readouterr().err


def test_eval_says_how_many_pairs_failed_and_where(tmp_path, fake_models, capsys):
    rows = [dict(LABELLED, id=i, prompt="unreadable" if i % 3 == 0 else f"q{i}") for i in range(7)]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "report"
    code = cli.main(["eval", str(source), "--model", "unreadable", "-o", str(out), "--quiet", "--no-figure"])
    assert code == 1
    assert sum(1 for record in read_jsonl(out / "pairs.jsonl") if record.get("error")) == 3
    assert (f"critic: 3 pair(s) could not be judged by the generative judge (see 'error' in "
            f"{out / 'pairs.jsonl'})") in capsys.readouterr().err


# --------------------------------------------------------------------------- progress in a log file


def test_progress_lines_go_to_a_log_file_and_quiet_silences_them(tmp_path, fake_models, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", [GOOD] * 70)  # three chunks of 32
    out = tmp_path / "out.jsonl"
    assert cli.main(["judge", str(source), "--model", "fake", "-o", str(out), "--progress-every", "0"]) == 0
    progress = [line for line in capsys.readouterr().err.splitlines() if line.startswith("critic: judging")]
    assert [line.split(",")[0] for line in progress] == ["critic: judging 32/70 pairs (46%)",
                                                         "critic: judging 64/70 pairs (91%)",
                                                         "critic: judging 70/70 pairs (100%)"]
    assert all(re.search(r", \d+\.\d\d pairs/s, \d+ s left$", line) for line in progress)
    assert cli.main(["judge", str(source), "--model", "fake", "-o", str(out), "--force", "--quiet",
                     "--progress-every", "0"]) == 0
    assert capsys.readouterr().err == ""


def test_filter_progress_lines_count_this_run_only(tmp_path, capsys):
    from .fakes import FACTORY

    source = write_jsonl(tmp_path / "in.jsonl", [LABELLED] * 30)
    args = ["filter", str(source), "-o", str(tmp_path / "out"), "--judge-factory", FACTORY, "--model", "fast",
            "--chunk-size", "10", "--progress-every", "0"]
    assert cli.main([*args, "--limit", "20"]) == 0
    capsys.readouterr()
    assert cli.main([*args, "--resume"]) == 0
    progress = [line for line in capsys.readouterr().err.splitlines() if line.startswith("critic: filtering")]
    assert len(progress) == 1 and progress[0].startswith("critic: filtering 30/30 rows (100%), ")
    assert progress[0].endswith(", kept 30, dropped 0, rejected 0")

