"""Clean a preference dataset from Python: the library behind `critic filter`.

    python examples/clean_preferences.py [--input FILE] [--output-dir DIR] [--model demo]

Without --input it cleans a handful of pairs written below (one of them broken on
purpose). Each pair is judged as (prompt, response_a=chosen, response_b=rejected)
in both orders; the default policy keeps it when the judge prefers `chosen` both
times. The outputs are JSONL files plus summary.json, and the same job can resume
after a crash (resume=True).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from critic import Judge
from critic.jobs.filejob import filter_file
from critic.jobs.policy import Policy

PAIRS = [
    {"prompt": "What is 12 * 12?", "chosen": "144.", "rejected": "124."},
    {"prompt": "What is the capital of Australia?", "chosen": "Canberra.", "rejected": "Sydney."},
    {"prompt": "Is the Earth flat?", "chosen": "No, it is roughly a sphere.", "rejected": "Yes."},
    {"prompt": "Translate 'merci' to English.", "chosen": None, "rejected": "Please."},  # broken: goes to rejected
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, help="a preference file (default: the pairs in this script)")
    parser.add_argument("--output-dir", type=Path, default=Path("out/clean-preferences"))
    parser.add_argument("--model", default="demo")
    parser.add_argument("--min-p", type=float, help="keep by P(chosen is better) instead")
    args = parser.parse_args()

    source = args.input
    if source is None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        source = args.output_dir.parent / "clean-preferences-input.jsonl"
        source.write_text("".join(json.dumps(pair) + "\n" for pair in PAIRS), encoding="utf-8")

    judge = Judge.from_pretrained(args.model)
    summary = filter_file(
        source,
        args.output_dir,
        judge,
        policy=Policy(min_p=args.min_p),
        force=True,  # start over each time this example runs; a long job would pass resume=True instead
        progress=lambda p: print(f"  {p.rows_done}/{p.total} rows: {p.kept} kept, {p.dropped} dropped, "
                                 f"{p.rejected} rejected"),
    )
    counts = summary.counts
    print(f"{counts.rows_in} rows in = {counts.kept} kept + {counts.dropped} dropped + {counts.rejected} rejected")
    for name in ("kept", "dropped", "rejected"):
        for line in (args.output_dir / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if name == "rejected":
                print(f"  rejected row {row['row']}: {row['reason']}")
            else:
                print(f"  {name:7} {row['prompt'][:40]!r:44} judge prefers {row['critic_label']:8} "
                      f"P(chosen better)={row['critic_p_chosen']:.3f} consistent={row['critic_consistent']}")


if __name__ == "__main__":
    main()
