"""Does a judgment depend on what it is batched with? In-process vLLM, bf16 against fp32.

Run from the repository root:

    TORCHDYNAMO_DISABLE=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/batch_invariance.py

It judges the 20 pairs of examples/arena (the careful answer against the padded
one) with the demo model on critic's in-process vLLM engine, three ways per
dtype: all in one call, the same call again, and one pair per call, and prints
the largest difference in p_a between them. The throughput benchmark compares
the server row with the in-process row; where bf16 kernels are not batch
invariant (CPUs with AMX here), this says how much of their difference is the
engine's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import critic
from critic import LoadOptions

ROOT = Path(__file__).resolve().parents[1]


def arena_pairs() -> list[critic.Pair]:
    def read(name: str) -> list[dict]:
        path = ROOT / "examples" / "arena" / f"{name}.jsonl"
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    padded = {row["id"]: row["response"] for row in read("padded")}
    return [critic.Pair(row["prompt"], row["response"], padded[row["id"]]) for row in read("careful")]


def largest_difference(first: list[critic.Preference], second: list[critic.Preference]) -> float:
    return max(abs(a.p_a - b.p_a) for a, b in zip(first, second, strict=True))


def main() -> None:
    pairs = arena_pairs()
    for dtype in ("bfloat16", "float32"):
        with critic.Judge.from_pretrained("demo", load=LoadOptions(backend="vllm", dtype=dtype)) as judge:
            whole = judge.compare_batch(pairs)
            again = judge.compare_batch(pairs)
            alone = [judge.compare_batch([pair])[0] for pair in pairs]
        print(f"{dtype}: {len(pairs)} pairs; max |p_a difference|: one call and the same call again "
              f"{largest_difference(whole, again):.4g}, one call and one pair per call "
              f"{largest_difference(whole, alone):.4g}")


if __name__ == "__main__":  # vLLM starts its engine in a new process: the guard keeps it from rerunning this
    main()
