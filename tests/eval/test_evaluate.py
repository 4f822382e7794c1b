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


def _grouped_pairs() -> list[LabelledPair]:
    """RewardBench 2 shaped: row r0 (chosen 'good' against three rejected), row r1 (one rejected is 'good' too),
    and one plain pair; the chosen answer is shown first on even pairs, second on odd ones."""
    rows = [("r0", "good 0", ["bad a", "bad b", "bad c"]), ("r1", "good 1", ["bad d", "good too", "bad e"])]
    out = []
    for group, chosen, rejected in rows:
        for j, other in enumerate(rejected):
            pair, label = (Pair(group, chosen, other), "A") if j % 2 == 0 else (Pair(group, other, chosen), "B")
            out.append(LabelledPair(f"{group}-{j}", pair, label, flipped=j % 2 == 1, group=group))
    out.append(LabelledPair("single", Pair("q", "good 2", "bad f"), "A"))
    return out


def test_a_group_counts_as_one_row_scored_by_rewardbench_2s_rule():
    judge = Judge(FakeBackend.prefer(lambda text: text.startswith("good")))
    report = evaluate(judge, _grouped_pairs())
    assert [r.group for r in report.records] == ["r0"] * 3 + ["r1"] * 3 + [None]
    # "good too" against "good 1": both preferred, orders disagree -> a tie, not a win for the chosen
    assert report.overall.accuracy.correct == 6 and report.overall.n == 7
    groups = report.overall.groups
    # r0: the chosen answer alone at the top (1); r1: tied at the top with one other (1/2); the lone pair won (1)
    assert groups is not None and (groups.n, groups.correct, groups.grouped, groups.pairs) == (3, 2.5, 2, 7)
    assert groups.accuracy == pytest.approx(2.5 / 3)
    assert report.to_dict()["overall"]["groups"]["accuracy"] == pytest.approx(2.5 / 3)


def test_without_groups_there_is_no_group_accuracy():
    report = evaluate(Judge(FakeBackend.prefer(lambda t: t.startswith("good"))), _pairs(4))
    assert report.overall.groups is None and report.to_dict()["overall"]["groups"] is None


def test_the_failure_policy_reaches_every_accuracy_and_the_report():
    def respond(request):
        if "q1" in request.pair.prompt:
            return BackendOutput(error=ModelError("no verdict"))
        return letter_output(0.9 if request.pair.response_a.startswith("good") else 0.1)

    pairs = _pairs(4) + [LabelledPair("t", Pair("q1 tie", "same", "same"), "tie")]
    rival = Predictions("rival", "-", "label", {"0": "A", "1": None, "2": "A", "3": "B", "t": None})
    judge = Judge(FakeBackend(respond))
    wrong = evaluate(judge, pairs, others=[rival])
    as_tie = evaluate(judge, pairs, others=[rival], failed_as="tie")
    assert (wrong.failed_as, as_tie.failed_as) == ("wrong", "tie")
    assert wrong.overall.accuracy.accuracy == pytest.approx(3 / 5)
    assert as_tie.overall.accuracy.accuracy == pytest.approx(4 / 5)  # the failed tie pair now matches
    assert as_tie.to_dict()["failed_as"] == "tie" and as_tie.to_dict()["overall"]["accuracy"]["failed_as"] == "tie"
    rival_wrong, rival_tie = wrong.other_judges[0], as_tie.other_judges[0]
    assert (rival_wrong.accuracy.accuracy, rival_tie.accuracy.accuracy) == (pytest.approx(3 / 5), pytest.approx(4 / 5))
    assert rival_wrong.f1 is not None and rival_tie.f1 is not None
    assert rival_tie.f1.macro_f1 > rival_wrong.f1.macro_f1  # the tie class is found once failures read as ties
    rewardbench = evaluate(judge, pairs, tie_policy="rewardbench")
    assert rewardbench.overall.accuracy.accuracy == pytest.approx((3 + 0.5 + 0.5) / 5)


def test_macro_f1_is_reported_overall_and_per_slice_over_the_labels_in_use():
    records = [_record("0", "A", "A", subset="s"), _record("1", "B", "A", subset="s"), _record("2", "tie", "tie")]
    report = summarize(records)
    overall = report.overall.f1
    assert overall is not None and overall.labels == ("A", "B", "tie")
    # A: P 1/2 R 1 F 2/3; B: F 0; tie: F 1
    assert overall.macro_f1 == pytest.approx((2 / 3 + 0 + 1) / 3)
    subset = report.subsets[0].f1
    assert subset is not None and subset.labels == ("A", "B")  # no tie on either side in this slice
    assert subset.macro_f1 == pytest.approx((2 / 3 + 0) / 2)
    assert report.to_dict()["subsets"][0]["f1"]["labels"] == ["A", "B"]


def test_pandalm_s_own_failure_convention_reproduces_its_published_gpt_accuracy():
    """PandaLM's parser reads an unreadable answer as a tie: with `failed_as="tie"` GPT-3.5 scores PandaLM's 71.07%."""
    from critic.eval.pairs import companion_files, load_labelled_pairs, load_predictions
    from tests.conftest import shared_path

    path = shared_path("data", "pandalm", "testset-v1.json")
    loaded = load_labelled_pairs(path)
    others = [load_predictions(name, file) for name, file in companion_files(path).items()]
    records = [PairRecord(p.key, None, p.label, None, None, None, (), (), 0, 0, error="not judged")
               for p in loaded.pairs]
    wrong = {o.name: o for o in summarize(records, others=others).other_judges}
    as_tie = {o.name: o for o in summarize(records, others=others, failed_as="tie").other_judges}
    gpt_wrong, gpt_tie = wrong["gpt-3.5-turbo"], as_tie["gpt-3.5-turbo"]
    assert round(100 * gpt_wrong.accuracy.accuracy, 2) == 69.77 and gpt_wrong.accuracy.failed == 25
    assert round(100 * gpt_tie.accuracy.accuracy, 2) == 71.07 and gpt_tie.accuracy.failed == 25
    assert gpt_tie.f1 is not None and gpt_wrong.f1 is not None and gpt_tie.f1.labels == ("A", "B", "tie")
    assert gpt_tie.f1.macro_f1 > gpt_wrong.f1.macro_f1  # 25 failures become (sometimes right) ties
    panda_wrong, panda_tie = wrong["pandalm-7b"], as_tie["pandalm-7b"]
    assert panda_wrong.accuracy.failed == 0 and panda_tie.f1 is not None and panda_wrong.f1 is not None
    assert panda_wrong.f1.classes == panda_tie.f1.classes  # no failures: both policies agree
