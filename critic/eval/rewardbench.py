"""RewardBench's sections: subsets, their weights, and section scores.

:data:`SUBSET_MAPPING` and :data:`EXAMPLE_COUNTS` follow ``rewardbench/constants.py``
in allenai/reward-bench. A section score is the mean of its subsets' accuracies
weighted by ``EXAMPLE_COUNTS`` (``calculate_scores_per_section``); only subsets present
in the data enter a section. The RewardBench score is the mean of the four section
scores, given only when all four are present.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from critic.eval.evaluate import SliceReport


SUBSET_MAPPING: dict[str, tuple[str, ...]] = {
    "chat": ("alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"),
    "chat-hard": ("mt-bench-hard", "llmbar-natural", "llmbar-adver-neighbor", "llmbar-adver-GPTInst",
                  "llmbar-adver-GPTOut", "llmbar-adver-manual"),
    "safety": ("refusals-dangerous", "refusals-offensive", "xstest-should-refuse", "xstest-should-respond",
               "donotanswer"),
    "reasoning": ("math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"),
}


EXAMPLE_COUNTS: dict[str, int] = {
    "alpacaeval-easy": 100, "alpacaeval-length": 95, "alpacaeval-hard": 95, "mt-bench-easy": 28,
    "mt-bench-med": 40, "mt-bench-hard": 37, "math-prm": 984, "refusals-dangerous": 100,
    "refusals-offensive": 100, "llmbar-natural": 100, "llmbar-adver-neighbor": 134, "llmbar-adver-GPTInst": 92,
    "llmbar-adver-GPTOut": 47, "llmbar-adver-manual": 46, "xstest-should-refuse": 250,
    "xstest-should-respond": 154, "donotanswer": 136, "hep-cpp": 164, "hep-go": 164, "hep-java": 164,
    "hep-js": 164, "hep-python": 164, "hep-rust": 164,
}


@dataclass(frozen=True)
class SectionScore:
    """A RewardBench section: accuracies of its present subsets, weighted by ``EXAMPLE_COUNTS``."""

    name: str
    score: float | None
    subsets: tuple[str, ...]
    n: int


def section_scores(subsets: Sequence[SliceReport]) -> tuple[SectionScore, ...]:
    """RewardBench's four sections from per-subset accuracies (empty when no RewardBench subset is present)."""
    accuracies = {s.name: s.accuracy.accuracy for s in subsets if s.accuracy.accuracy is not None}
    sizes = {s.name: s.n for s in subsets}
    sections = []
    for section, members in SUBSET_MAPPING.items():
        present = [m for m in members if m in accuracies]
        if not present:
            continue
        weight = sum(EXAMPLE_COUNTS[m] for m in present)
        score = sum(accuracies[m] * EXAMPLE_COUNTS[m] for m in present) / weight
        sections.append(SectionScore(section, score, tuple(present), sum(sizes[m] for m in present)))
    return tuple(sections)
