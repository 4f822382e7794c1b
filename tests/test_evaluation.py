"""critic.evaluation: loading labelled pairs, judging them with fake judges, the report's numbers."""

from __future__ import annotations

import json

import pytest

from critic import Judge
from critic.backends.base import BackendOutput
from critic.errors import ModelError
from critic.eval.evaluate import PairRecord, align, evaluate, slice_report, summarize
from critic.eval.pairs import LabelledPair, Predictions, companion_files, load_labelled_pairs, load_predictions
from critic.eval.rewardbench import EXAMPLE_COUNTS, SUBSET_MAPPING
from critic.io.labels import majority_label, normalize_label
from critic.testing import FakeBackend, letter_output
from critic.types import Pair
from tests.conftest import shared_path


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def pandalm_row(idx, votes, r1="first answer", r2="second answer", extra=""):
    return {"idx": idx, "instruction": "Do it.", "input": extra, "response1": r1, "response2": r2,
            **{f"annotator{i + 1}": vote for i, vote in enumerate(votes)}}


@pytest.mark.parametrize(
    ("value", "label"),
    [(1, "A"), (2, "B"), (0, "tie"), ("1", "A"), ("2", "B"), ("Tie", "tie"), ("garbage", None), ("A", "A"),
     ("model_b", "B"), ("response_a", "A"), (" b ", "B"), ("C", "tie"), (True, None), (None, None), (3, None),
     (1.0, None)],
)
def test_normalize_label(value, label):
    assert normalize_label(value) == label


@pytest.mark.parametrize(
    ("votes", "label"),
    [((1, 1, 2), "A"), ((2, 2, 2), "B"), ((0, 0, 1), "tie"), ((1, 2, 0), "tie"), ((2, 0, 2), "B")],
)
def test_majority_label(votes, label):
    assert majority_label(votes) == label


def test_load_pandalm_rows_keeps_ties_and_order(tmp_path):
    path = tmp_path / "panda.json"
    rows = [pandalm_row(0, (1, 1, 0)), pandalm_row(1, (2, 2, 1), extra="ctx"), pandalm_row(2, (0, 0, 2)),
            pandalm_row(3, (1, 2, 1), r1=True)]  # PandaLM stores some answers "True" as JSON true
    path.write_text(json.dumps(rows), encoding="utf-8")
    loaded = load_labelled_pairs(path)
    assert loaded.skipped == ()
    assert [(p.key, p.label, p.flipped) for p in loaded.pairs] == [("0", "A", False), ("1", "B", False),
                                                                   ("2", "tie", False), ("3", "A", False)]
    assert loaded.pairs[1].pair.prompt == "Do it.\n\nctx"
    assert loaded.pairs[0].pair.response_a == "first answer"
    assert loaded.pairs[3].pair.response_a == "True"


def test_load_chosen_rejected_rows_alternates_the_chosen_side(tmp_path):
    rows = [{"prompt": f"q{i}", "chosen": f"good{i}", "rejected": f"bad{i}", "subset": "hep-go"} for i in range(4)]
    loaded = load_labelled_pairs(write_jsonl(tmp_path / "rb.jsonl", rows))
    assert [p.label for p in loaded.pairs] == ["A", "B", "A", "B"]
    for item in loaded.pairs:
        better = item.pair.response_a if item.label == "A" else item.pair.response_b
        assert better.startswith("good") and item.subset == "hep-go"
        assert item.flipped == (item.label == "B")


def test_load_labelled_ab_rows_and_skips_unusable_rows(tmp_path):
    path = tmp_path / "ab.jsonl"
    rows = [
        {"id": "x", "prompt": "q", "response_a": "a", "response_b": "b", "label": "B"},
        {"prompt": "q", "response_a": "a", "response_b": "b", "label": "tie"},
        {"prompt": "q", "response_a": "a", "response_b": "b"},  # no label: nothing to evaluate against
        {"prompt": "q", "response_a": "a", "response_b": "b", "label": "maybe"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n", encoding="utf-8")
    loaded = load_labelled_pairs(path)
    assert [(p.key, p.label) for p in loaded.pairs] == [("x", "B"), ("2", "tie")]
    assert loaded.pairs[0].pair.response_a == "a"  # kept in its own order
    assert len(loaded.skipped) == 3
    assert "label" in loaded.skipped[0] and "maybe" in loaded.skipped[1] and "row 5" in loaded.skipped[2]


def test_load_respects_limit(tmp_path):
    rows = [{"prompt": "q", "chosen": "c", "rejected": "r"} for _ in range(10)]
    assert len(load_labelled_pairs(write_jsonl(tmp_path / "p.jsonl", rows), limit=3).pairs) == 3


def test_load_predictions_marks_garbage_as_failed_and_align_follows_flips(tmp_path):
    path = tmp_path / "gpt.json"
    path.write_text(json.dumps([{"idx": 0, "gpt_result": "1"}, {"idx": 1, "gpt_result": "garbage"},
                                {"idx": 2, "gpt_result": "Tie"}]), encoding="utf-8")
    predictions = load_predictions("gpt", path)
    assert predictions.field == "gpt_result"
    assert dict(predictions.labels) == {"0": "A", "1": None, "2": "tie"}
    records = [_record("0", "A"), _record("1", "A"), _record("2", "A"), _record("9", "A")]
    assert align(predictions, records) == ["A", None, "tie", None]  # a missing key is a failed prediction
    flipped = [_record("0", "B", flipped=True)]
    assert align(predictions, flipped) == ["B"]


def test_companion_files_follow_pandalm_layout(tmp_path):
    for name in ("testset-v1.json", "gpt-3.5-turbo-testset-v1.json", "pandalm-7b-testset-v1.json", "other.json"):
        (tmp_path / name).write_text("[]")
    found = companion_files(tmp_path / "testset-v1.json")
    assert sorted(found) == ["gpt-3.5-turbo", "pandalm-7b"]
    assert companion_files(tmp_path / "missing.json") == {}


def _pairs(n: int) -> list[LabelledPair]:
    """Half the pairs have the good answer first, half second, by construction."""
    out = []
    for i in range(n):
        good, bad = f"good answer {i}", f"bad {i}"
        pair = Pair(f"q{i}", good, bad) if i % 2 == 0 else Pair(f"q{i}", bad, good)
        out.append(LabelledPair(str(i), pair, "A" if i % 2 == 0 else "B"))
    return out


def _record(key, gold, prediction="A", *, subset=None, flipped=False):
    return PairRecord(key, subset, gold, prediction, 0.5, True, (prediction, prediction), ("A", "B"), 5, 3,
                      flipped=flipped)


def test_a_judge_that_knows_the_answer_scores_full_marks():
    judge = Judge(FakeBackend.prefer(lambda text: text.startswith("good")), model_name="oracle")
    report = evaluate(judge, _pairs(10))
    overall = report.overall
    assert overall.accuracy.accuracy == 1.0 and overall.accuracy.failed == 0
    assert overall.consistency.value == 1.0
    assert overall.first_shown_wins.value == 0.5
    assert overall.length.judge_longer_wins.value == 1.0  # the good answers are the longer ones here
    assert report.judge["model"] == "oracle"
    assert overall.calibration.n == 10 and overall.calibration.ece == pytest.approx(0.1)  # says 0.9, always right


def test_a_pure_position_bias_judge_is_exposed():
    report = evaluate(Judge(FakeBackend.first_position(0.8)), _pairs(10))
    overall = report.overall
    assert overall.consistency.value == 0.0
    assert overall.first_shown_wins.value == 1.0
    assert overall.predicted == {"A": 0, "B": 0, "tie": 10, "failed": 0}
    assert overall.accuracy.accuracy == 0.0
    assert summarize(report.records, tie_policy="half").overall.accuracy.accuracy == 0.5


def test_single_order_judge_reports_no_position_metrics():
    report = evaluate(Judge(FakeBackend.first_position(0.8), swap=False), _pairs(6))
    assert report.overall.consistency.n == 0 and report.overall.consistency.value is None
    assert report.overall.first_shown_wins.value is None
    assert report.overall.accuracy.accuracy == 0.5  # always "A": right on the good-first half


def test_failed_pairs_are_counted_not_guessed():
    def respond(request):
        if "q3" in request.pair.prompt:
            return BackendOutput(error=ModelError("prompt too long"))
        return letter_output(0.9 if request.pair.response_a.startswith("good") else 0.1)

    report = evaluate(Judge(FakeBackend(respond)), _pairs(6))
    overall = report.overall
    assert overall.accuracy.failed == 1 and overall.predicted["failed"] == 1
    assert overall.accuracy.accuracy == pytest.approx(5 / 6)
    assert overall.accuracy.accuracy_judged == 1.0
    assert overall.calibration.excluded == 1
    failed = [r for r in report.records if r.error is not None]
    assert [r.key for r in failed] == ["3"] and failed[0].prediction is None and failed[0].p_a is None
    assert "prompt too long" in failed[0].error


def test_other_judges_get_accuracy_and_kappa():
    pairs = _pairs(6)
    perfect = Predictions("perfect", "-", "label", {p.key: p.label for p in pairs})
    garbage = Predictions("garbage", "-", "label", {p.key: None for p in pairs})
    report = evaluate(Judge(FakeBackend.prefer(lambda t: t.startswith("good"))), pairs, others=[perfect, garbage])
    by_name = {o.name: o for o in report.other_judges}
    assert by_name["perfect"].accuracy.accuracy == 1.0
    assert by_name["garbage"].accuracy.accuracy == 0.0 and by_name["garbage"].accuracy.failed == 6
    kappas = {(a.first, a.second): a for a in report.agreement}
    assert kappas[("gold", "perfect")].kappa == pytest.approx(1.0)
    assert kappas[("judge", "perfect")].kappa == pytest.approx(1.0)
    assert kappas[("gold", "garbage")].kappa is None and kappas[("gold", "garbage")].missing == 6


def test_rewardbench_sections_weight_subsets_by_example_counts():
    records = (
        [_record(f"m{i}", "A", "A" if i < 3 else "B", subset="math-prm") for i in range(4)]  # 0.75
        + [_record(f"g{i}", "A", "A" if i < 1 else "B", subset="hep-go") for i in range(4)]  # 0.25
        + [_record(f"c{i}", "A", "A", subset="alpacaeval-easy") for i in range(2)]  # 1.0
        + [_record("x", "A", "B", subset="my-own-subset")]
    )
    report = summarize(records)
    assert [s.name for s in report.subsets] == ["alpacaeval-easy", "hep-go", "math-prm", "my-own-subset"]
    sections = {s.name: s for s in report.sections}
    assert set(sections) == {"chat", "reasoning"}
    assert sections["reasoning"].score == pytest.approx((0.75 * 984 + 0.25 * 164) / (984 + 164))
    assert sections["chat"].score == 1.0 and sections["chat"].n == 2
    assert report.rewardbench_score is None  # only with all four sections
    assert report.overall.n == 11


def test_subset_mapping_matches_rewardbench():
    assert list(SUBSET_MAPPING) == ["chat", "chat-hard", "safety", "reasoning"]
    members = [s for subsets in SUBSET_MAPPING.values() for s in subsets]
    assert len(members) == len(set(members)) == 23 == len(EXAMPLE_COUNTS)
    assert EXAMPLE_COUNTS["math-prm"] == 6 * EXAMPLE_COUNTS["hep-go"]  # math weighs as much as code


def test_slice_report_counts_add_up():
    records = [_record("0", "A", "A"), _record("1", "B", None), _record("2", "tie", "tie")]
    report = slice_report("s", records)
    assert sum(report.predicted.values()) == report.n == 3
    assert report.accuracy.correct == 2 and report.accuracy_decided.n == 2


def test_pandalm_reference_judges_reproduce_the_published_agreement():
    """GPT-3.5 and PandaLM-7B against the human majority, as ../shared/README.md states them."""
    path = shared_path("data", "pandalm", "testset-v1.json")
    loaded = load_labelled_pairs(path)
    assert len(loaded.pairs) == 999 and loaded.skipped == ()
    counts = {label: sum(1 for p in loaded.pairs if p.label == label) for label in ("A", "B", "tie")}
    assert counts == {"A": 422, "B": 472, "tie": 105}
    others = [load_predictions(name, file) for name, file in companion_files(path).items()]
    records = [PairRecord(p.key, None, p.label, None, None, None, (), (), 0, 0, error="not judged")
               for p in loaded.pairs]
    report = summarize(records, others=others)
    results = {o.name: o for o in report.other_judges}
    gpt, panda = results["gpt-3.5-turbo"], results["pandalm-7b"]
    assert round(100 * gpt.accuracy.accuracy, 1) == 69.8 and gpt.accuracy.n == 999
    assert gpt.accuracy.failed == 25  # the "garbage" answers: reported, never guessed
    assert round(100 * gpt.accuracy_decided.accuracy, 1) == 77.4 and gpt.accuracy_decided.n == 894
    assert round(100 * panda.accuracy.accuracy, 1) == 66.8
    assert round(100 * panda.accuracy_decided.accuracy, 1) == 71.0
    kappas = {(a.first, a.second): a.kappa for a in report.agreement}
    assert 0.3 < kappas[("gold", "gpt-3.5-turbo")] < 0.7
    assert 0.3 < kappas[("gold", "pandalm-7b")] < 0.7


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
    from critic import cli

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
    assert {o["name"]: o["accuracy"]["accuracy"] for o in data["other_judges"]} == {"rival": pytest.approx(1 / 3),
                                                                                  "mine": pytest.approx(1 / 3)}
    assert (out / "report.md").exists() and (out / "report.png").exists() and (out / "pairs.jsonl").exists()
    assert fake_from_pretrained["model"] == "fake" and fake_from_pretrained["swap"] is True

    code = cli.main(["eval", str(tmp_path / "set.json"), "--model", "fake", "-o", str(out), "--quiet",
                     "--no-companions", "--no-figure"])
    assert code == 0
    assert "| rival |" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--judge-column", "nameonly"], "NAME=PATH"), (["--limit", "0"], "--limit")],
)
def test_cli_eval_argument_errors(tmp_path, fake_from_pretrained, capsys, extra, message):
    from critic import cli

    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "q", "chosen": "good", "rejected": "bad"}])
    assert cli.main(["eval", str(source), "--model", "fake", "-o", str(tmp_path / "o"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_cli_eval_without_labelled_pairs_says_why(tmp_path, fake_from_pretrained, capsys):
    from critic import cli

    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "q", "response_a": "a", "response_b": "b"}])
    assert cli.main(["eval", str(source), "--model", "fake", "-o", str(tmp_path / "o")]) == 2
    assert "no labelled pairs" in capsys.readouterr().err


def test_leaning_shows_signal_hidden_behind_ties():
    # orders disagree on every pair (first-position bias), but the better answer gets a little more
    def respond(request):
        return letter_output(0.8 if request.pair.response_a.startswith("good") else 0.7)

    overall = evaluate(Judge(FakeBackend(respond)), _pairs(8)).overall
    assert overall.predicted["tie"] == 8 and overall.accuracy.accuracy == 0.0
    assert overall.leaning.value == 1.0
