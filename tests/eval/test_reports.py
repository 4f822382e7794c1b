"""critic.eval.reports: the report files, their content, and the missing-matplotlib message."""

from __future__ import annotations

import json
import struct
import sys

import pytest

from critic import Judge
from critic.errors import MissingDependencyError
from critic.eval.evaluate import PairRecord, evaluate, summarize
from critic.eval.pairs import LabelledPair, Predictions
from critic.eval.reports import markdown, write_figure, write_reports
from critic.judges import JudgeDescription
from critic.testing import FakeBackend
from critic.types import Pair

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report():
    pairs = []
    for i in range(12):
        good, bad = f"a careful, correct answer {i}", f"wrong {i}"
        pair = Pair(f"q{i}", good, bad) if i % 3 else Pair(f"q{i}", bad, good)
        pairs.append(LabelledPair(str(i), pair, "A" if i % 3 else "B", subset="hep-go" if i < 6 else "llmbar-natural"))
    pairs.append(LabelledPair("t", Pair("q", "same", "same!"), "tie"))
    other = Predictions("rival", "rival.json", "label", {p.key: ("A" if int(p.key != "t") else "tie") for p in pairs})
    judge = Judge(FakeBackend.prefer(lambda text: "correct" in text, p=0.8), model_name="fake-judge")
    return evaluate(judge, pairs, others=[other], source="data/labelled.jsonl")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_write_reports_writes_valid_files(tmp_path, report):
    pytest.importorskip("matplotlib")
    paths = write_reports(report, tmp_path / "out")
    data = json.loads(paths.json.read_text(encoding="utf-8"))
    assert data["overall"]["n"] == 13
    assert data["judge"]["model"] == "fake-judge"
    assert data["overall"]["accuracy"]["tie_policy"] == "strict"
    assert [s["name"] for s in data["subsets"]] == ["hep-go", "llmbar-natural"]
    assert {s["name"] for s in data["sections"]} == {"Reasoning", "Chat Hard"}
    assert len(data["overall"]["calibration"]["bins"]) == 10
    assert {(a["first"], a["second"]) for a in data["agreement"]} == {("gold", "judge"), ("gold", "rival"),
                                                                       ("judge", "rival")}
    width, height = png_size(paths.figure.read_bytes())
    assert width > 800 and height > 300
    records = [json.loads(line) for line in paths.records.read_text(encoding="utf-8").splitlines()]
    assert [r["key"] for r in records] == [str(i) for i in range(12)] + ["t"]
    assert paths.markdown.read_text(encoding="utf-8") == markdown(report)


def test_markdown_states_its_policy_and_shows_every_slice(report):
    text = markdown(report)
    assert "Tie policy strict" in text and "never guessed" in text
    assert "| overall | 13 |" in text and "| hep-go | 6 |" in text
    assert "| Reasoning |" in text  # a RewardBench section
    assert "| rival |" in text and "kappa with gold" in text
    assert "judge `fake-judge`" in text.lower()
    header = next(line for line in text.splitlines() if line.startswith("| slice"))
    row = next(line for line in text.splitlines() if line.startswith("| overall"))
    assert header.count("|") == row.count("|")  # the table is well formed


def test_markdown_shows_na_rather_than_inventing_numbers():
    records = [PairRecord("0", None, "A", None, None, None, (), (), 3, 3, error="boom")]
    text = markdown(summarize(records, judge={"model": "m"}, source="x.jsonl"))
    row = next(line for line in text.splitlines() if line.startswith("| overall"))
    assert "0.0%" in row  # one failed pair: accuracy 0, as counted
    assert row.count("n/a") >= 4  # consistency, first-shown, length, calibration have nothing to measure


def test_figure_without_other_judges(tmp_path):
    pytest.importorskip("matplotlib")
    records = [PairRecord(str(i), None, "AB"[i % 2], "A", 0.7, False, ("A", "B"), ("A", "A"), 9, 4) for i in range(6)]
    path = tmp_path / "plain.png"
    write_figure(summarize(records), path)
    png_size(path.read_bytes())


def test_missing_matplotlib_says_how_to_install(tmp_path, report, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib...` raise ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(MissingDependencyError, match=r"critic\[eval\]"):
        write_figure(report, tmp_path / "x.png")
    paths = write_reports(report, tmp_path / "nofig", figure=False)
    assert paths.figure is None and paths.json.exists() and paths.markdown.exists()


def test_no_figure_removes_a_stale_figure_from_an_earlier_run(tmp_path, report):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "report.png").write_bytes(PNG_SIGNATURE + b"an older evaluation")
    paths = write_reports(report, folder, figure=False)
    assert paths.figure is None and not (folder / "report.png").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["pairs.jsonl", "report.json", "report.md"]


def test_the_report_records_the_judge_description(tmp_path):
    description = JudgeDescription("reward", "some/reward-model", backend="transformers", tie_margin=0.25)
    records = [PairRecord("0", None, "A", "A", 0.7, None, ("A",), ("A",), 3, 3)]
    result = summarize(records, judge=description, source="x.jsonl")
    paths = write_reports(result, tmp_path, figure=False)
    assert json.loads(paths.json.read_text(encoding="utf-8"))["judge"] == description.to_dict()
    text = markdown(result)
    assert "judge `some/reward-model`" in text.lower() and "tie_margin `0.25`" in text and "kind `reward`" in text


def test_text_with_a_lone_surrogate_is_written_escaped(tmp_path):
    records = [PairRecord("key \ud800", None, "A", None, None, None, (), (), 3, 3, error="bad text \ud800")]
    result = summarize(records, judge={"model": "m"}, source="x\ud800.jsonl", skipped_rows=["row 2: \udcff"])
    paths = write_reports(result, tmp_path, figure=False)
    data = json.loads(paths.json.read_text(encoding="utf-8"))
    assert data["skipped_rows"]["first"] == ["row 2: \udcff"]
    assert json.loads(paths.records.read_text(encoding="utf-8"))["key"] == "key \ud800"
    assert "`x\\ud800.jsonl`" in paths.markdown.read_bytes().decode("utf-8")  # valid UTF-8, the surrogate escaped


def _rewardbench_records(xstest_respond_right: bool) -> list[PairRecord]:
    records = [PairRecord(f"{i}", subset, "A", "A", 0.9, True, ("A", "A"), ("A", "B"), 5, 3)
               for i, subset in enumerate(("alpacaeval-easy", "mt-bench-hard", "xstest-should-refuse", "math-prm"))]
    prediction = "A" if xstest_respond_right else None
    records.append(PairRecord("x", "xstest-should-respond", "A", prediction, None, None, (), (), 5, 3,
                              error=None if xstest_respond_right else "unreadable verdict"))
    return records


@pytest.mark.parametrize(("policy", "failed_as", "safety", "words"), [
    ("strict", "wrong", 154 / 404, ["Tie policy strict", "failure policy `wrong`", "never guessed"]),
    ("rewardbench", "wrong", (154 + 0.5 * 250) / 404, ["Tie policy rewardbench", "generative runner"]),
    ("half", "tie", (154 + 0.5 * 250) / 404, ["failure policy `tie`", "PandaLM's convention"]),
])
def test_markdown_states_both_policies_and_the_score_it_gives(policy, failed_as, safety, words):
    report = summarize(_rewardbench_records(False), judge={"model": "m"}, tie_policy=policy, failed_as=failed_as)
    text = markdown(report)
    assert all(word in text for word in words)
    assert {s.name: s.score for s in report.sections}["Safety"] == pytest.approx(safety)
    score = (1 + 1 + safety + 1) / 4
    assert report.rewardbench_score == pytest.approx(score)
    assert f"| **Score** | {100 * score:.1f}% |" in text
    assert "mean of the four section scores, as on RewardBench's current leaderboard" in text
    assert "Prior Sets 0.5" in text
    data = report.to_dict()
    assert (data["tie_policy"], data["failed_as"]) == (policy, failed_as)


def test_markdown_shows_macro_f1_per_label_and_for_other_judges(report):
    text = markdown(report)
    header = next(line for line in text.splitlines() if line.startswith("| slice"))
    assert "macro-F1" in header
    assert "| label | gold pairs | predicted | precision | recall | F1 |" in text
    assert report.overall.f1 is not None
    overall = next(line for line in text.splitlines() if line.startswith("| overall"))
    assert f"{100 * report.overall.f1.macro_f1:.1f}%" in overall
    other_header = next(line for line in text.splitlines() if line.startswith("| judge |"))
    rival = next(line for line in text.splitlines() if line.startswith("| rival |"))
    assert "macro-F1" in other_header and other_header.count("|") == rival.count("|")


def test_markdown_shows_accuracy_over_rows_only_where_groups_exist():
    plain = summarize(_rewardbench_records(True))
    assert "Accuracy over rows" not in markdown(plain)
    grouped = [PairRecord(f"{i}", None, "A", "A" if i else "B", 0.5, True, (), (), 3, 3, group="row")
               for i in range(3)]
    text = markdown(summarize(grouped))
    assert "Accuracy over rows" in text and "| overall | 1 | 1 | 3 | 0 | 0.0% |" in text


def test_no_score_without_all_four_sections():
    records = [PairRecord("0", "math-prm", "A", "A", 0.9, True, (), (), 3, 3)]
    assert "No Score" in markdown(summarize(records))
