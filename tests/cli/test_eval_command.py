"""`critic eval` end to end on PandaLM-shaped rows: reports, companions, --judge-column, what it refuses.

(Moved from tests/test_evaluation.py; see tests/cli/test_eval.py for the checks made before judging.)
"""

from __future__ import annotations

import json

import pytest

from critic import Judge, cli
from critic.testing import FakeBackend

from .conftest import write_jsonl


def pandalm_row(idx, votes, r1="first answer", r2="second answer", extra=""):
    return {"idx": idx, "instruction": "Do it.", "input": extra, "response1": r1, "response2": r2,
            **{f"annotator{i + 1}": vote for i, vote in enumerate(votes)}}


@pytest.fixture
def fake_from_pretrained(monkeypatch):
    """`critic eval --model ...` gets a fake judge that prefers answers containing 'good'."""
    seen = {}

    def from_pretrained(model, **options):
        seen.update(options, model=model)
        return Judge(FakeBackend.prefer(lambda text: "good" in text), model_name=model, template=options["template"],
                     mode=options["mode"], swap=options["swap"])

    monkeypatch.setattr(Judge, "from_pretrained", staticmethod(from_pretrained))
    return seen


def test_cli_eval_writes_the_reports_and_reads_companions(tmp_path, fake_from_pretrained, capsys):
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
    assert fake_from_pretrained["model"] == "fake" and fake_from_pretrained["swap"] is True

    code = cli.main(["eval", str(tmp_path / "set.json"), "--model", "fake", "-o", str(out), "--quiet",
                     "--no-companions", "--no-figure", "--force"])
    assert code == 0
    assert "| rival |" not in capsys.readouterr().out
    assert not (out / "report.png").exists()  # the figure of the first run would describe another evaluation


def test_cli_eval_refuses_duplicate_prediction_keys(tmp_path, fake_from_pretrained, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "q", "chosen": "good", "rejected": "bad"}])
    mine = write_jsonl(tmp_path / "mine.jsonl", [{"id": 1, "verdict": "A"}, {"id": 1, "verdict": "B"}])
    assert cli.main(["eval", str(source), "--model", "fake", "-o", str(tmp_path / "o"),
                     "--judge-column", f"mine={mine}#verdict"]) == 2
    error = capsys.readouterr().err
    assert "two predictions for the pair '1'" in error and str(mine) in error


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--judge-column", "nameonly"], "NAME=PATH"), (["--limit", "0"], "--limit")],
)
def test_cli_eval_argument_errors(tmp_path, fake_from_pretrained, capsys, extra, message):
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "q", "chosen": "good", "rejected": "bad"}])
    assert cli.main(["eval", str(source), "--model", "fake", "-o", str(tmp_path / "o"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_cli_eval_without_labelled_pairs_says_why(tmp_path, fake_from_pretrained, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "q", "response_a": "a", "response_b": "b"}])
    assert cli.main(["eval", str(source), "--model", "fake", "-o", str(tmp_path / "o")]) == 2
    assert "no labelled pairs" in capsys.readouterr().err
