"""Helpers shared by the job tests: fake judges, rows, and reading the outputs back."""

from __future__ import annotations

import json
import time
from pathlib import Path

from critic import Judge
from critic.judges import JudgeDescription
from critic.testing import FakeBackend
from critic.types import Preference

OUTPUT_NAMES = ("kept", "dropped", "rejected")
# Reward-model scores of the reward-judge tests (FakeScorer): exact, chosen by hand.
SCORES = {"great": 3.0, "poor": -1.0, "fine": 1.0, "okay": 0.5, "same": 0.25, "also same": 0.25}
# margins of (chosen, rejected): great/poor +4, fine/okay +0.5, same/also same 0, poor/great -4
KINDS = [("great", "poor"), ("fine", "okay"), ("same", "also same"), ("poor", "great")]


def good_judge(p: float = 0.9, model: str = "fake-good") -> Judge:
    """Prefers any answer that starts with 'good', in both orders."""
    return Judge(FakeBackend.prefer(lambda text: text.startswith("good"), p=p), model_name=model)


def ray_good_judge(model: str = "fake-good", *, seconds: float = 0.0) -> Judge:
    """A picklable judge factory for Ray actors (``functools.partial(ray_good_judge, ...)``): keeps no history."""
    backend = FakeBackend.prefer(lambda text: text.startswith("good"))
    backend.run = lambda requests: [backend.respond(request) for request in requests]  # type: ignore[method-assign]
    judge = Judge(backend, model_name=model)
    if seconds:
        compare_each = judge.compare_each

        def slow(pairs):
            time.sleep(seconds)
            return compare_each(pairs)

        judge.compare_each = slow  # type: ignore[method-assign]
    return judge


class Scripted:
    """A minimal PairwiseJudge: chosen wins when its text starts with 'good'."""

    def describe(self) -> JudgeDescription:
        return JudgeDescription(kind="custom", model="scripted")

    def compare_each(self, pairs):
        return [Preference("A" if p.response_a.startswith("good") else "B", 0.9, True, ()) for p in pairs]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def outputs(folder: Path) -> dict[str, bytes]:
    return {name: (folder / f"{name}.jsonl").read_bytes() for name in OUTPUT_NAMES}


def generated_rows(count: int) -> list[dict]:
    """Half the pairs have the better answer as chosen, a quarter are swapped, a quarter are ties, some are bad."""
    rows = []
    for i in range(count):
        kind = i % 8
        if kind == 7:
            rows.append({"id": i, "prompt": f"q{i}", "chosen": None, "rejected": "x"})
        elif kind in (5, 6):
            rows.append({"id": i, "prompt": f"q{i}", "chosen": f"bad {i}", "rejected": f"good {i}"})
        elif kind == 4:
            rows.append({"id": i, "prompt": f"q{i}", "chosen": f"meh {i}", "rejected": f"meh too {i}"})
        else:
            rows.append({"id": i, "prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"})
    return rows


def generated_lines(path: Path, count: int) -> Path:
    """JSONL with some unreadable lines and some swapped pairs (the CLI tests' and the Ray tests' input)."""
    lines = []
    for i in range(count):
        if i % 97 == 13:
            lines.append(f'{{"id": {i}, "prompt": "broken')
        elif i % 5 == 4:
            lines.append(json.dumps({"id": i, "prompt": f"q{i}", "chosen": f"bad {i}", "rejected": f"good {i}"}))
        else:
            lines.append(json.dumps({"id": i, "prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def reward_rows(count: int) -> list[dict]:
    """The four margins in turn, and every fifth row without 'rejected' (a bad row)."""
    out = []
    for i in range(count):
        chosen, rejected = KINDS[i % 4]
        row = {"id": i, "prompt": f"q{i}", "chosen": chosen, "rejected": rejected}
        if i % 5 == 4:
            del row["rejected"]
        out.append(row)
    return out
