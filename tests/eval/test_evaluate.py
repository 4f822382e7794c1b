"""critic.eval.evaluate: judging labelled pairs with fake judges, and the report's numbers."""

from __future__ import annotations

import pytest

from critic import Judge
from critic.backends.base import BackendOutput
from critic.errors import ModelError
from critic.eval.evaluate import PairRecord, describe_judge, evaluate, evaluate_side_by_side, slice_report, summarize
from critic.eval.pairs import LabelledPair, Predictions
from critic.judges import JudgeDescription
from critic.testing import FakeBackend, letter_output
from critic.types import Pair


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
    assert isinstance(report.judge, JudgeDescription)
    assert (report.judge.kind, report.judge.model) == ("generative", "oracle")
    assert report.to_dict()["judge"]["model"] == "oracle"
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


def test_side_by_side_judges_see_each_other():
    good = Judge(FakeBackend.prefer(lambda t: t.startswith("good")), model_name="good")
    biased = Judge(FakeBackend.first_position(0.8), model_name="biased")
    reports = evaluate_side_by_side({"good": good, "biased": biased}, _pairs(4))
    assert [o.name for o in reports["good"].other_judges] == ["biased"]
    assert reports["biased"].judge.model == "biased" and reports["good"].overall.accuracy.accuracy == 1.0


@pytest.mark.parametrize(("given", "expected"), [
    (JudgeDescription("reward", "rm", tie_margin=0.5), JudgeDescription("reward", "rm", tie_margin=0.5)),
    ({"kind": "generative", "model": "m", "swap": True}, JudgeDescription("generative", "m", swap=True)),
    ({"model": "their-judge"}, JudgeDescription("custom", "their-judge")),
    (None, JudgeDescription("custom")),
])
def test_describe_judge_takes_a_description_or_a_plain_mapping(given, expected):
    assert describe_judge(given) == expected
    assert summarize([_record("0", "A")], judge=given).to_dict()["judge"] == expected.to_dict()


def test_slice_report_counts_add_up():
    records = [_record("0", "A", "A"), _record("1", "B", None), _record("2", "tie", "tie")]
    report = slice_report("s", records)
    assert sum(report.predicted.values()) == report.n == 3
    assert report.accuracy.correct == 2 and report.accuracy_decided.n == 2


def test_leaning_shows_signal_hidden_behind_ties():
    # orders disagree on every pair (first-position bias), but the better answer gets a little more
    def respond(request):
        return letter_output(0.8 if request.pair.response_a.startswith("good") else 0.7)

    overall = evaluate(Judge(FakeBackend(respond)), _pairs(8)).overall
    assert overall.predicted["tie"] == 8 and overall.accuracy.accuracy == 0.0
    assert overall.leaning.value == 1.0
