"""critic.eval.rewardbench: RewardBench's sections, weighted as RewardBench weighs them."""

from __future__ import annotations

import pytest

from critic.eval.evaluate import PairRecord, summarize
from critic.eval.rewardbench import EXAMPLE_COUNTS, SUBSET_MAPPING


def _record(key, gold, prediction, subset):
    return PairRecord(key, subset, gold, prediction, 0.5, True, (prediction, prediction), ("A", "B"), 5, 3)


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
    assert set(sections) == {"chat", "reasoning"}
    assert sections["reasoning"].score == pytest.approx((0.75 * 984 + 0.25 * 164) / (984 + 164))
    assert sections["chat"].score == 1.0 and sections["chat"].n == 2
    assert report.rewardbench_score is None  # only with all four sections
    assert report.overall.n == 11


def test_all_four_sections_give_the_rewardbench_score():
    records = [_record(section, "A", "A", members[0]) for section, members in SUBSET_MAPPING.items()]
    report = summarize(records)
    assert [s.name for s in report.sections] == list(SUBSET_MAPPING) and report.rewardbench_score == 1.0


def test_subset_mapping_matches_rewardbench():
    assert list(SUBSET_MAPPING) == ["chat", "chat-hard", "safety", "reasoning"]
    members = [s for subsets in SUBSET_MAPPING.values() for s in subsets]
    assert len(members) == len(set(members)) == 23 == len(EXAMPLE_COUNTS)
    assert EXAMPLE_COUNTS["math-prm"] == 6 * EXAMPLE_COUNTS["hep-go"]  # math weighs as much as code
