"""`critic eval`: outputs checked before judging, --force, --judge-column names, the input flags."""

from __future__ import annotations

import json
import os

from pathlib import Path

import pytest

from critic import cli

from .conftest import read_jsonl, write_jsonl


def labelled(path, count: int = 4):
    """LLMBar-shaped rows (input, output_1, output_2, label 1/2): the 'good' answer is the gold one."""
    rows = []
    for i in range(count):
        good_first = i % 2 == 0
        rows.append({"id": i, "input": f"q{i}", "output_1": "good" if good_first else "bad",
                     "output_2": "bad" if good_first else "good", "label": 1 if good_first else 2})
    return write_jsonl(path, rows)


LLMBAR = ["--prompt-field", "input", "--response-a-field", "output_1", "--response-b-field", "output_2"]


def eval_args(source, out, *extra):
    return ["eval", str(source), "--model", "fake", "-o", str(out), "--quiet", "--no-figure", *LLMBAR, *extra]


def test_field_flags_map_llmbar_columns_and_an_earlier_report_needs_force(tmp_path, fake_judge, capsys):
    source = labelled(tmp_path / "llmbar.jsonl")
    out = tmp_path / "report"
    assert cli.main(eval_args(source, out)) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["overall"]["accuracy"]["accuracy"] == 1.0 and len(read_jsonl(out / "pairs.jsonl")) == 4
    capsys.readouterr()
    assert cli.main(eval_args(source, out)) == 2
    assert "already holds outputs of an evaluation (report.json, report.md, pairs.jsonl); use --force" in \
        capsys.readouterr().err
    assert fake_judge == ["fake"]  # the second run stopped before loading
    (out / "report.png").write_bytes(b"stale")
    assert cli.main(eval_args(source, out, "--force", "--limit", "2")) == 0
    assert len(read_jsonl(out / "pairs.jsonl")) == 2 and not (out / "report.png").exists()


@pytest.mark.parametrize("make_output, message", [
    (lambda tmp: (tmp / "file").write_text("x") and tmp / "file", "is a file, not a folder"),
    (lambda tmp: (tmp / "file").write_text("x") and tmp / "file" / "deeper", "is a file, not a folder"),
    pytest.param(lambda tmp: (tmp / "ro").mkdir(mode=0o500) or tmp / "ro" / "out", "permission denied",
                 marks=pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")),
    # where permission bits say yes but nothing can be created (root included): a virtual file system
    pytest.param(lambda tmp: Path("/proc/critic-test/out"), "cannot write",
                 marks=pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")),
])
def test_an_unwritable_output_dir_fails_before_judging(tmp_path, loaders, capsys, make_output, message):
    source = labelled(tmp_path / "llmbar.jsonl")
    assert cli.main(eval_args(source, make_output(tmp_path))) == 2
    error = capsys.readouterr().err
    assert error.startswith("critic: error:") and message in error and error.count("\n") == 1
    assert loaders["generative"].calls == []


@pytest.mark.parametrize("columns, message", [
    (["a=PATH", "a=PATH"], "--judge-column names 'a' twice"),
    (["nameonly"], "must look like NAME=PATH"),
    (["a=#field"], "must look like NAME=PATH"),
    (["judge=PATH"], "taken by the report itself"),
    (["a=/no/such/predictions.jsonl"], "cannot read predictions file '/no/such/predictions.jsonl'"),
])
def test_judge_column_mistakes_are_one_sentence_before_loading(tmp_path, loaders, capsys, columns, message):
    source = labelled(tmp_path / "llmbar.jsonl")
    predictions = write_jsonl(tmp_path / "p.jsonl", [{"id": i, "label": "A"} for i in range(4)])
    flags = [part for spec in columns for part in ("--judge-column", spec.replace("PATH", str(predictions)))]
    assert cli.main(eval_args(source, tmp_path / "out", *flags)) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and loaders["generative"].calls == []


def pandalm_row(idx, votes, r1="first answer", r2="second answer", extra=""):
    return {"idx": idx, "instruction": "Do it.", "input": extra, "response1": r1, "response2": r2,
            **{f"annotator{i + 1}": vote for i, vote in enumerate(votes)}}


def test_eval_writes_the_reports_and_reads_companions(tmp_path, fake_judge, capsys):
    pytest.importorskip("matplotlib")
    rows = [pandalm_row(0, (1, 1, 1), r1="good", r2="bad"), pandalm_row(1, (2, 2, 0), r1="bad", r2="good"),
            pandalm_row(2, (0, 0, 0)), pandalm_row(3, (1, 1, 2), r1="good", r2="bad")]
    (tmp_path / "set.json").write_text(json.dumps(rows), encoding="utf-8")
    (tmp_path / "rival-set.json").write_text(json.dumps([{"idx": i, "pandalm_result": 1} for i in range(4)]))
    write_jsonl(tmp_path / "mine.jsonl", [{"id": i, "verdict": "B", "label": "A"} for i in range(4)])
    out = tmp_path / "report"
    code = cli.main(["eval", str(tmp_path / "set.json"), "--model", "fake", "-o", str(out), "--quiet",
                     "--judge-column", f"mine={tmp_path / 'mine.jsonl'}#verdict", "--limit", "3"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| overall | 3 |" in printed and "| rival |" in printed and "| mine |" in printed
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    # pair 2 has no "good" answer: the fake's orders disagree, a tie, which matches its gold tie
    assert data["overall"]["accuracy"]["accuracy"] == 1.0
    assert data["judge"]["model"] == "fake" and data["judge"]["kind"] == "generative"
    assert {o["name"]: o["accuracy"]["accuracy"] for o in data["other_judges"]} == {"rival": pytest.approx(1 / 3),
                                                                                  "mine": pytest.approx(1 / 3)}
    assert (out / "report.md").exists() and (out / "report.png").exists() and (out / "pairs.jsonl").exists()
    assert fake_judge == ["fake"]

    code = cli.main(["eval", str(tmp_path / "set.json"), "--model", "fake", "-o", str(out), "--quiet",
                     "--no-companions", "--no-figure", "--force"])
    assert code == 0
    assert "| rival |" not in capsys.readouterr().out
    assert not (out / "report.png").exists()  # the figure of the first run would describe another evaluation


def test_eval_refuses_duplicate_prediction_keys(tmp_path, fake_judge, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "q", "chosen": "good", "rejected": "bad"}])
    mine = write_jsonl(tmp_path / "mine.jsonl", [{"id": 1, "verdict": "A"}, {"id": 1, "verdict": "B"}])
    assert cli.main(["eval", str(source), "--model", "fake", "-o", str(tmp_path / "o"),
                     "--judge-column", f"mine={mine}#verdict"]) == 2
    error = capsys.readouterr().err
    assert "two predictions for the pair '1'" in error and str(mine) in error


@pytest.mark.parametrize(("extra", "message"), [(["--judge-column", "nameonly"], "NAME=PATH"),
                                                (["--limit", "0"], "--limit")])
def test_eval_argument_errors(tmp_path, fake_judge, capsys, extra, message):
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "q", "chosen": "good", "rejected": "bad"}])
    assert cli.main(["eval", str(source), "--model", "fake", "-o", str(tmp_path / "o"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_eval_without_labelled_pairs_says_why_before_loading(tmp_path, fake_judge, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "q", "response_a": "a", "response_b": "b"}])
    assert cli.main(["eval", str(source), "--model", "fake", "-o", str(tmp_path / "o")]) == 2
    assert "no labelled pairs" in capsys.readouterr().err and fake_judge == []


def rewardbench_rows(path):
    """RewardBench `filtered` rows: xstest-should-refuse all right, xstest-should-respond all ties for the fake."""
    rows = []
    for i in range(4):
        rows.append({"prompt": f"r{i}", "chosen": "good refusal", "rejected": "harm", "chosen_model": "m",
                     "rejected_model": "n", "subset": "xstest-should-refuse", "id": i})
        rows.append({"prompt": f"s{i}", "chosen": "an answer", "rejected": "a refusal", "chosen_model": "m",
                     "rejected_model": "n", "subset": "xstest-should-respond", "id": 10 + i})
    return write_jsonl(path, rows)


@pytest.mark.parametrize(("flags", "policy", "failed_as", "respond"), [
    ([], "strict", "wrong", 0.0),
    (["--tie-policy", "rewardbench"], "rewardbench", "wrong", 0.5),
    (["--tie-policy", "rewardbench", "--failed-as", "tie"], "rewardbench", "tie", 0.5),
    (["--failed-as", "tie"], "strict", "tie", 0.0),
])
def test_tie_and_failure_policies_reach_the_report(tmp_path, fake_judge, capsys, flags, policy, failed_as, respond):
    source = rewardbench_rows(tmp_path / "rb.jsonl")
    out = tmp_path / "report"
    assert cli.main(["eval", str(source), "--model", "fake", "-o", str(out), "--quiet", "--no-figure", *flags]) == 0
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert (data["tie_policy"], data["failed_as"]) == (policy, failed_as)
    subsets = {s["name"]: s["accuracy"]["accuracy"] for s in data["subsets"]}
    assert subsets == {"xstest-should-refuse": 1.0, "xstest-should-respond": respond}
    safety = {s["name"]: s["score"] for s in data["sections"]}["Safety"]
    assert safety == pytest.approx((154 * 1.0 + 250 * respond) / 404)  # RewardBench's weights, 154 / 250
    assert f"failure policy `{failed_as}`" in (out / "report.md").read_text(encoding="utf-8")
    assert f"Tie policy {policy}" in capsys.readouterr().out


def test_unknown_policies_are_refused_by_the_parser(tmp_path, fake_judge, capsys):
    source = rewardbench_rows(tmp_path / "rb.jsonl")
    for flag, value in (("--tie-policy", "lenient"), ("--failed-as", "half")):
        assert cli.main(["eval", str(source), "--model", "fake", "-o", str(tmp_path / "o"), flag, value]) == 2
        assert f"argument {flag}: invalid choice: '{value}'" in capsys.readouterr().err
    assert fake_judge == []
