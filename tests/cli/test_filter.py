"""`critic filter`: the command, its errors and exit codes, kill -9 and resume, the demo model on PandaLM."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from critic import cli

from ..conftest import shared_path
from ..jobs.support import generated_lines as generated
from ..jobs.support import outputs, read_jsonl
from .conftest import kill_9_during, run_critic
from .conftest import demo_judge_factory  # noqa: F401 (tests/test_ray.py imports it from here)
from .fakes import FACTORY, fake_judge, not_a_judge  # noqa: F401

PANDALM_SLICE = (614, 611, 86, 81, 140, 157)  # four short pairs, a tie (rejected), a boolean response (rejected)


def filter_args(source: Path, out: Path, *extra: str, model: str = "fast") -> list[str]:
    return ["filter", str(source), "--output-dir", str(out), "--judge-factory", FACTORY, "--model", model, *extra]


def test_filter_writes_outputs_and_prints_the_summary_table(tmp_path, capsys):
    source = generated(tmp_path / "in.jsonl", 200)
    # exit 1: two rows are rejected
    assert cli.main(filter_args(source, tmp_path / "out", "--chunk-size", "32", "--progress-every", "3600")) == 1
    captured = capsys.readouterr()
    # no progress bar when stderr is not a terminal: how the rows are read, which model loads, what was rejected
    assert captured.err == ("critic: rows read as prompt/chosen/rejected: the chosen answer is the better one\n"
                            f"critic: loading fast (generative, with --judge-factory {FACTORY}) ...\n"
                            f"critic: 2 row(s) rejected; see {tmp_path / 'out' / 'rejected.jsonl'} (each line has "
                            "the row and the reason)\n")
    table = captured.out
    assert "rows in          200" in table and "kept             158" in table
    assert "dropped           40" in table and "rejected           2" in table and "not valid JSON" in table
    assert "fake-good · skywork-critic · score · both orders · on fake  [local engine]" in table
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"]["rows_in"] == 200 == sum(summary["counts"][k] for k in ("kept", "dropped", "rejected"))
    # A finished job resumed again does no work and shows its table (and its exit status).
    assert cli.main(filter_args(source, tmp_path / "out", "--resume")) == 1
    assert "(resumed)" in capsys.readouterr().out


def test_filter_refuses_to_overwrite_and_force_starts_over(tmp_path, capsys):
    source = generated(tmp_path / "in.jsonl", 20)
    assert cli.main(filter_args(source, tmp_path / "out")) == 1  # row 14 is not JSON: rejected
    assert cli.main(filter_args(source, tmp_path / "out")) == 2
    assert "already holds outputs of a filter job" in capsys.readouterr().err
    assert cli.main(filter_args(source, tmp_path / "out", "--force", "--relabel")) == 1
    kept = read_jsonl(tmp_path / "out" / "kept.jsonl")
    assert len(kept) == 19 and sum(row["critic_relabelled"] for row in kept) == 4
    assert all(row["chosen"].startswith("good") for row in kept)


def test_max_rejects_stops_with_a_clear_message(tmp_path, capsys):
    source = tmp_path / "garbage.jsonl"
    source.write_text('{"prompt": "q", "chosen": "good", "rejected": "bad"}\n' + "not json\n" * 50, encoding="utf-8")
    assert cli.main(filter_args(source, tmp_path / "out", "--max-rejects", "10", "--chunk-size", "16")) == 2
    shape, loading, error = capsys.readouterr().err.splitlines()
    assert shape == "critic: rows read as prompt/chosen/rejected: the chosen answer is the better one"
    assert loading.startswith("critic: loading fast")
    assert error.startswith("critic: error: stopped after 16 rows: 15 rejected, more than --max-rejects 10")
    assert "unreadable row: 15" in error and "--resume" in error


@pytest.mark.parametrize("args, message", [
    (["--no-swap"], "use --min-p with --no-swap"),
    (["--judge-factory", "tests.no_such_module:make"], "cannot load --judge-factory 'tests.no_such_module:make'"),
    (["--judge-factory", "json:dumps"], "cannot be called as FUNCTION(model, **options)"),
    (["--judge-factory", "tests.cli.fakes:not_a_judge"], "returned object, which has no compare_each(pairs)"),
    (["--format", "parquet"], "cannot read Parquet file"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, args, message):
    source = generated(tmp_path / "in.jsonl", 3)
    assert cli.main(filter_args(source, tmp_path / "out", *args)) == 2
    assert message in capsys.readouterr().err


def test_a_missing_input_fails_before_the_model_loads(tmp_path, loaders, capsys):
    code = cli.main(["filter", "/nonexistent.jsonl", "--model", "demo", "-o", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert code == 2 and error == "critic: error: cannot read input file '/nonexistent.jsonl': no such file or folder\n"
    assert loaders["generative"].calls == [] and not (tmp_path / "out").exists()


def test_earlier_outputs_and_unwritable_folders_fail_before_the_model_loads(tmp_path, loaders, capsys):
    source = generated(tmp_path / "in.jsonl", 3)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "summary.json").write_text("{}", encoding="utf-8")
    assert cli.main(["filter", str(source), "--model", "demo", "-o", str(tmp_path / "out")]) == 2
    assert "already holds outputs of a filter job (summary.json); use --resume" in capsys.readouterr().err
    (tmp_path / "file").write_text("x", encoding="utf-8")
    assert cli.main(["filter", str(source), "--model", "demo", "-o", str(tmp_path / "file" / "out")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert loaders["generative"].calls == []


@pytest.mark.parametrize("flag", ["--chunk-size", "--limit", "--ray-actors"])
def test_counts_below_one_are_usage_errors(tmp_path, capsys, flag):
    source = generated(tmp_path / "in.jsonl", 3)
    assert cli.main(filter_args(source, tmp_path / "out", flag, "0")) == 2
    assert f"argument {flag}: must be at least 1, got 0" in capsys.readouterr().err


def test_ctrl_c_keeps_the_work_done_and_says_how_to_resume(tmp_path, capsys):
    source = generated(tmp_path / "in.jsonl", 100)
    assert cli.main(filter_args(source, tmp_path / "out", "--chunk-size", "10", model="interrupt:3")) == 130
    assert "interrupted after 30 rows; continue with the same command and --resume" in capsys.readouterr().err
    assert cli.main(filter_args(source, tmp_path / "out", "--chunk-size", "10", "--resume")) == 1
    assert cli.main(filter_args(source, tmp_path / "whole", "--chunk-size", "10")) == 1
    assert outputs(tmp_path / "out") == outputs(tmp_path / "whole")


def checkpoint_rows(folder: Path) -> int:
    try:
        return json.loads((folder / "checkpoint.json").read_text(encoding="utf-8"))["rows_done"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
def test_kill_9_at_any_moment_then_resume_gives_the_same_bytes_as_an_uninterrupted_run(tmp_path):
    """A real subprocess is killed with SIGKILL four times at random moments, resumed each time."""
    source = generated(tmp_path / "in.jsonl", 3000)
    assert cli.main(filter_args(source, tmp_path / "whole", "--chunk-size", "25", "--quiet")) == 1
    seed = random.randrange(1 << 30)
    chance = random.Random(seed)
    out = tmp_path / "out"
    command = filter_args(source, out, "--chunk-size", "25", model="slow:0.02")
    for kills, target in enumerate((300, 1000, 1700, 2400)):  # killed while judging, writing rows or checkpointing
        kill_9_during(command + (["--resume"] if kills else []), progress=lambda: checkpoint_rows(out), target=target,
                      chance=chance, seed=seed, within_s=0.06)
        assert 0 < checkpoint_rows(out) < 3000
    finished = run_critic(*command, "--resume")
    assert finished.returncode == 1, finished.stderr
    assert "(resumed)" in finished.stdout and "rows in         3000" in finished.stdout
    assert outputs(out) == outputs(tmp_path / "whole"), f"seed {seed}"
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"]["rows_in"] == 3000 and summary["resumed"] is True


def pandalm_slice(path: Path, indices: tuple[int, ...] = PANDALM_SLICE) -> Path:
    """Some PandaLM rows, in their native format, as a JSON array file."""
    rows = json.loads(shared_path("data", "pandalm", "testset-v1.json").read_text(encoding="utf-8"))
    by_idx = {row["idx"]: row for row in rows}
    path.write_text(json.dumps([by_idx[idx] for idx in indices], indent=1), encoding="utf-8")
    return path


@pytest.mark.model
def test_demo_model_filters_pandalm_pairs_from_the_readme_command(tmp_path, demo_judge_factory, capsys):  # noqa: F811
    source = pandalm_slice(tmp_path / "pandalm.json")
    rows = json.loads(source.read_text(encoding="utf-8"))
    too_long = dict(rows[0], idx=10_000, input="word " * 20_000)  # far beyond the demo model's 8192 tokens
    source.write_text(json.dumps([*rows, too_long]), encoding="utf-8")
    out = tmp_path / "out"
    # exit 1: the tie and the too-long pair are rejected
    assert cli.main(["filter", str(source), "--output-dir", str(out), "--model", "demo"]) == 1
    table = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    counts = summary["counts"]
    # the tie and the too-long pair are rejected; PandaLM's boolean response is judged as its text
    assert counts["rows_in"] == 7 and counts["judged"] == 6 and counts["rejected"] == 2
    assert counts["kept"] + counts["dropped"] == 5
    assert counts["rejected_by_reason"] == {"no preference (tie)": 1, "judge: too long for the model": 1}
    assert summary["judge"]["model"] == "demo" and summary["judge"]["template"] == "skywork-critic"
    judged = read_jsonl(out / "kept.jsonl") + read_jsonl(out / "dropped.jsonl")
    assert sorted(row["idx"] for row in judged) == [81, 86, 157, 611, 614]
    for row in judged:
        assert row["critic_label"] in {"chosen", "rejected", "tie"} and 0.0 <= row["critic_p_chosen"] <= 1.0
        assert isinstance(row["critic_consistent"], bool) and row["chosen_from"] in {"response1", "response2"}
    rejected = read_jsonl(out / "rejected.jsonl")
    assert [row["row"] for row in rejected] == [5, 7]
    assert rejected[1]["reason"].startswith("judge: ") and "token" in rejected[1]["reason"]
    assert rejected[1]["input"]["idx"] == 10_000
    assert "no preference (tie)  (e.g. tie: annotators have no majority preference)" in table


# --------------------------------------------------------------------------- --force and --resume, checked early


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_force_keeps_the_earlier_job_until_the_new_one_has_judged_a_chunk(tmp_path, capsys):
    source = generated(tmp_path / "in.jsonl", 20)
    out = tmp_path / "out"
    assert cli.main(filter_args(source, out, "--quiet")) == 1
    before = folder_bytes(out)
    # a Ctrl-C during the first chunk (the model loaded, nothing judged yet)
    assert cli.main(filter_args(source, out, "--force", "--relabel", "--quiet", model="interrupt:0")) == 130
    assert folder_bytes(out) == before  # the earlier job, whole: its outputs, summary and checkpoint
    capsys.readouterr()
    assert cli.main(filter_args(source, out, "--resume")) == 1  # and it is still that job, finished
    assert "already complete" in capsys.readouterr().err


def test_resume_without_a_checkpoint_is_refused_before_loading(tmp_path, loaders, capsys):
    source = generated(tmp_path / "in.jsonl", 3)
    assert cli.main(["filter", str(source), "--model", "demo", "-o", str(tmp_path / "never"), "--resume"]) == 2
    assert capsys.readouterr().err == (f"critic: error: there is no job to resume in '{tmp_path / 'never'}' (no "
                                       "checkpoint.json: no filter job has checkpointed there); run without "
                                       "--resume to start one\n")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "kept.jsonl").write_text("", encoding="utf-8")
    assert cli.main(["filter", str(source), "--model", "demo", "-o", str(tmp_path / "half"), "--resume"]) == 2
    assert "but no checkpoint.json to resume from; use --force" in capsys.readouterr().err
    assert loaders["generative"].calls == [] and not (tmp_path / "never").exists()


@pytest.mark.parametrize("change, message", [
    (["INPUT"], "input: was"),
    (["--template", "mt-bench"], "judge: was"),
    (["--model", "other"], "judge: was"),
    (["--no-swap", "--min-p", "0.5"], "policy: was"),
    (["--prompt-field", "id"], "columns: was"),  # a column the rows have: the column check passes
])
def test_resume_with_other_settings_is_refused_before_loading(tmp_path, fake_models, capsys, change, message):
    source = generated(tmp_path / "in.jsonl", 30)
    out = tmp_path / "out"
    assert cli.main(["filter", str(source), "--model", "fake", "-o", str(out), "--limit", "20", "--quiet"]) == 1
    fake_models.clear()
    capsys.readouterr()
    other = generated(tmp_path / "other.jsonl", 12)
    args = ["filter", str(source), "--model", "fake", "-o", str(out), "--resume", "--quiet"]
    if change == ["INPUT"]:
        args[1] = str(other)
    else:
        args += change
        if "--model" in change:
            args.remove("fake"), args.remove("--model")
    assert cli.main(args) == 2
    error = capsys.readouterr().err
    assert error.startswith("critic: error: cannot resume: the job in") and message in error
    assert fake_models == []  # said before any model loaded
    assert cli.main(["filter", str(source), "--model", "fake", "-o", str(out), "--resume", "--quiet"]) == 1
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["counts"]["rows_in"] == 30


def test_resume_of_a_finished_job_shows_its_summary_without_loading(tmp_path, fake_models, capsys):
    source = write_rows(tmp_path / "in.jsonl", [{"prompt": f"q{i}", "chosen": "good", "rejected": "bad"}
                                                for i in range(5)])
    out = tmp_path / "out"
    assert cli.main(["filter", str(source), "--model", "fake", "-o", str(out), "--quiet"]) == 0
    table = capsys.readouterr().out
    fake_models.clear()
    assert cli.main(["filter", str(source), "--model", "fake", "-o", str(out), "--resume"]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"critic: the job in '{out}' is already complete; nothing to do (its summary follows)\n"
    # the same table (its rate is computed from the elapsed time summary.json keeps, to the millisecond)
    assert without_rate(captured.out) == without_rate(table.replace(f"-> {out}\n", f"-> {out}  (resumed)\n", 1))
    assert fake_models == []


def without_rate(table: str) -> str:
    return "\n".join(line for line in table.splitlines() if not line.lstrip().startswith("time"))


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path
