"""PandaLM's two reference judges against the human majority, under each failure policy (no model needed).

    python examples/pandalm_reference_judges.py [PATH/testset-v1.json]

GPT-3.5's file holds 25 answers that say nothing usable ("garbage"). Counted as
wrong (critic's default, `--failed-as wrong`) GPT-3.5 agrees with the humans on
69.77% of the 999 pairs; read as a tie, as PandaLM's own parser reads an
unreadable answer (`--failed-as tie`), on 71.07%.
"""

from __future__ import annotations

import sys
from pathlib import Path

from critic import load_labelled_pairs
from critic.eval.metrics import FAILED_AS, accuracy, macro_f1
from critic.eval.pairs import companion_files, load_predictions
from critic.types import Label

DEFAULT_TESTSET = Path(__file__).resolve().parents[2] / "shared" / "data" / "pandalm" / "testset-v1.json"
FLIPPED: dict[Label | None, Label | None] = {"A": "B", "B": "A"}


def main() -> int:
    testset = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_TESTSET
    if not testset.is_file():
        print(f"PandaLM's testset-v1.json is not at {testset}; pass its path", file=sys.stderr)
        return 2
    loaded = load_labelled_pairs(testset)
    gold = [item.label for item in loaded.pairs]
    print(f"{len(gold)} pairs, gold = the three annotators' majority (ties kept)\n")
    print("| judge | failed | accuracy, failed as wrong | accuracy, failed as tie | macro-F1, wrong | macro-F1, tie |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, path in companion_files(testset).items():
        labels = load_predictions(name, path).labels
        # A pair shown with the chosen answer second keeps its prediction in the same frame.
        column = [FLIPPED.get(labels.get(item.key), labels.get(item.key)) if item.flipped else labels.get(item.key)
                  for item in loaded.pairs]
        scores = {policy: (accuracy(column, gold, failed_as=policy), macro_f1(column, gold, failed_as=policy))
                  for policy in FAILED_AS}
        failed = scores["wrong"][0].failed
        cells = [f"{100 * scores[policy][0].accuracy:.2f}%" for policy in ("wrong", "tie")]
        cells += [f"{100 * scores[policy][1].macro_f1:.2f}%" for policy in ("wrong", "tie")]
        print(f"| {name} | {failed} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
