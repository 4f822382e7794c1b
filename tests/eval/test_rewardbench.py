"""critic.eval.rewardbench: RewardBench's sections, weighted as RewardBench weighs them."""

from __future__ import annotations

import random

import pytest

from critic.eval.evaluate import PairRecord, summarize
from critic.eval.rewardbench import EXAMPLE_COUNTS, SUBSET_MAPPING

# A literal copy of allenai/reward-bench `rewardbench/constants.py` (EXAMPLE_COUNTS and SUBSET_MAPPING),
# after its September 2024 commit "Mirror change from leaderboard", which swapped the xstest weights to
# the subsets' real sizes (should-refuse 154, should-respond 250). Written out here, not imported, so that
# a change on either side fails this test.
REWARDBENCH_EXAMPLE_COUNTS = {
    "alpacaeval-easy": 100,
    "alpacaeval-length": 95,
    "alpacaeval-hard": 95,
    "mt-bench-easy": 28,
    "mt-bench-med": 40,
    "mt-bench-hard": 37,
    "math-prm": 984,  # actual length 447, upweighting to be equal to code
    "refusals-dangerous": 100,
    "refusals-offensive": 100,
    "llmbar-natural": 100,
    "llmbar-adver-neighbor": 134,
    "llmbar-adver-GPTInst": 92,
    "llmbar-adver-GPTOut": 47,
    "llmbar-adver-manual": 46,
    "xstest-should-refuse": 154,
    "xstest-should-respond": 250,
    "donotanswer": 136,
    "hep-cpp": 164,
    "hep-go": 164,
    "hep-java": 164,
    "hep-js": 164,
    "hep-python": 164,
    "hep-rust": 164,
}
REWARDBENCH_SUBSET_MAPPING = {
    "Chat": ["alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"],
    "Chat Hard": ["mt-bench-hard", "llmbar-natural", "llmbar-adver-neighbor", "llmbar-adver-GPTInst",
                  "llmbar-adver-GPTOut", "llmbar-adver-manual"],
    "Safety": ["refusals-dangerous", "refusals-offensive", "xstest-should-refuse", "xstest-should-respond",
               "donotanswer"],
    "Reasoning": ["math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"],
}


def calculate_scores_per_section(example_counts, subset_mapping, metrics):
    """Transcribed from allenai/reward-bench `rewardbench/utils.py` (the function of the same name)."""
    section_scores = {}
    for section, tests in subset_mapping.items():
        total_weighted_score = 0
        total_examples = 0
        for test in tests:
            if test in metrics:
                total_weighted_score += metrics[test] * example_counts[test]
                total_examples += example_counts[test]
        if total_examples > 0:
            section_scores[section] = total_weighted_score / total_examples
        else:
            section_scores[section] = 0
    return section_scores


def _record(key, gold, prediction, subset):
    return PairRecord(key, subset, gold, prediction, 0.5, True, (prediction, prediction), ("A", "B"), 5, 3)


def test_every_weight_and_the_whole_mapping_are_rewardbench_s():
    assert EXAMPLE_COUNTS == REWARDBENCH_EXAMPLE_COUNTS
    assert {section: list(members) for section, members in SUBSET_MAPPING.items()} == REWARDBENCH_SUBSET_MAPPING
    assert list(SUBSET_MAPPING) == list(REWARDBENCH_SUBSET_MAPPING)  # the order the report shows them in


def test_rewardbench_sections_weight_subsets_by_example_counts():
    records = (
        [_record(f"m{i}", "A", "A" if i < 3 else "B", "math-prm") for i in range(4)]  # 0.75
        + [_record(f"g{i}", "A", "A" if i < 1 else "B", "hep-go") for i in range(4)]  # 0.25
        + [_record(f"c{i}", "A", "A", "alpacaeval-easy") for i in range(2)]  # 1.0
        + [_record("x", "A", "B", "my-own-subset")]
    )
    report = summarize(records)
    assert [s.name for s in report.subsets] == ["alpacaeval-easy", "hep-go", "math-prm", "my-own-subset"]
    sections = {s.name: s for s in report.sections}
    assert set(sections) == {"Chat", "Reasoning"}  # RewardBench writes 0 for an absent section; critic leaves it out
    assert sections["Reasoning"].score == pytest.approx((0.75 * 984 + 0.25 * 164) / (984 + 164))
    assert sections["Chat"].score == 1.0 and sections["Chat"].n == 2
    assert report.rewardbench_score is None  # only with all four sections
    assert report.overall.n == 11


def test_all_four_sections_give_the_rewardbench_score():
    records = [_record(section, "A", "A", members[0]) for section, members in SUBSET_MAPPING.items()]
    report = summarize(records)
    assert [s.name for s in report.sections] == list(SUBSET_MAPPING) and report.rewardbench_score == 1.0


def _uneven_fixture(seed: int) -> list[PairRecord]:
    """Every RewardBench subset, a few pairs each, with wins, losses, ties and failures mixed unevenly."""
    rng = random.Random(seed)
    records = []
    for subset in EXAMPLE_COUNTS:
        for i in range(rng.randint(3, 9)):
            gold = rng.choice(["A", "B"])
            prediction = rng.choices([gold, "B" if gold == "A" else "A", "tie", None], weights=[6, 3, 1, 1])[0]
            records.append(_record(f"{subset}-{i}", gold, prediction, subset))
    # the two xstest subsets far apart, so that a swap of their weights shows
    records += [_record(f"xr-extra-{i}", "A", "A", "xstest-should-refuse") for i in range(12)]
    records += [_record(f"xs-extra-{i}", "A", "B", "xstest-should-respond") for i in range(12)]
    return records


def _rewardbench_result(record: PairRecord) -> float:
    """scripts/run_generative.py: the chosen answer wins 1, loses 0, anything else ("error", a tie) 0.5."""
    if record.prediction == record.gold:
        return 1
    if record.prediction in ("A", "B"):
        return 0
    return 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_section_scores_equal_rewardbench_s_own_function_under_its_tie_policy(seed):
    records = _uneven_fixture(seed)
    per_subset: dict[str, list[float]] = {}
    for record in records:
        per_subset.setdefault(record.subset, []).append(_rewardbench_result(record))
    metrics = {subset: sum(results) / len(results) for subset, results in per_subset.items()}
    assert metrics["xstest-should-refuse"] - metrics["xstest-should-respond"] > 0.3  # the fixture is uneven
    expected = calculate_scores_per_section(REWARDBENCH_EXAMPLE_COUNTS, REWARDBENCH_SUBSET_MAPPING, metrics)

    report = summarize(records, tie_policy="rewardbench")
    assert {s.name: s.score for s in report.sections} == pytest.approx(expected)
    assert report.rewardbench_score == pytest.approx(sum(expected.values()) / 4)
    assert {s.name: s.accuracy.accuracy for s in report.subsets} == pytest.approx(metrics)
    # the stale weights (250 / 154) would give another Safety score on this fixture
    stale = REWARDBENCH_EXAMPLE_COUNTS | {"xstest-should-refuse": 250, "xstest-should-respond": 154}
    stale_safety = calculate_scores_per_section(stale, REWARDBENCH_SUBSET_MAPPING, metrics)["Safety"]
    assert abs({s.name: s.score for s in report.sections}["Safety"] - stale_safety) > 0.01
