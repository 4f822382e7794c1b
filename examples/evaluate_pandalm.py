"""Evaluate a judge on PandaLM's human-labelled test set, next to GPT-3.5 and PandaLM-7B.

    python examples/evaluate_pandalm.py [PATH/testset-v1.json] [--limit N] [--output-dir DIR]

The same as the command line::

    critic eval PATH/testset-v1.json --model demo --output-dir out/eval-pandalm --limit 40

The test set is data/testset-v1.json of https://github.com/WeOpenML/PandaLM
(Apache-2.0); the GPT-3.5 and PandaLM-7B predictions beside it are picked up
as other judges. Gold labels are the three annotators' majority; ties stay ties.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from critic import Judge
from critic.eval.evaluate import evaluate
from critic.eval.pairs import companion_files, load_labelled_pairs, load_predictions
from critic.eval.reports import markdown, write_reports

DEFAULT_TESTSET = Path(__file__).resolve().parents[2] / "shared" / "data" / "pandalm" / "testset-v1.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("testset", nargs="?", type=Path, default=DEFAULT_TESTSET)
    parser.add_argument("--limit", type=int, default=40, help="first N pairs (default 40; the set has 999)")
    parser.add_argument("--output-dir", type=Path, default=Path("out/eval-pandalm-example"))
    args = parser.parse_args()
    if not args.testset.is_file():
        print(f"PandaLM's testset-v1.json is not at {args.testset}; download data/testset-v1.json (and the "
              "gpt-3.5-turbo-/pandalm-7b- files beside it) from github.com/WeOpenML/PandaLM and pass its path",
              file=sys.stderr)
        return 2

    loaded = load_labelled_pairs(args.testset, limit=args.limit)
    others = [load_predictions(name, path) for name, path in companion_files(args.testset).items()]
    judge = Judge.from_pretrained("demo")
    report = evaluate(judge, loaded.pairs, others=others, source=str(args.testset), skipped_rows=loaded.skipped)
    paths = write_reports(report, args.output_dir)
    print(markdown(report))
    print(f"reports: {paths.json}, {paths.markdown}, {paths.figure}")

    overall = report.overall
    print(f"accuracy {overall.accuracy.accuracy:.3f} over {overall.n} pairs ({overall.accuracy.failed} failed); "
          f"position-consistent on {overall.consistency.value:.0%} of them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
