"""Scripted judges and answer sets for the arena tests (no model: the fake backend decides by the text).

``arena_judge`` is also the ``--judge-factory`` of the command-line tests
(``tests.arena.fakes:arena_judge``); its ``model`` picks the variant: ``fast``, ``slow:SECONDS`` (sleeps
that long per chunk, so a subprocess can be killed mid-run), ``fail`` (answers holding "FAIL" cannot be
judged: the backend reports them too long).
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Any

from critic import Judge
from critic.backends.base import BackendOutput, VerdictRequest
from critic.errors import InputError, Reason
from critic.testing import FakeBackend, letter_output

FACTORY = "tests.arena.fakes:arena_judge"
QUALITY = {"careful": 0.6, "terse": 0.0, "padded": -0.3, "newcomer": 0.2}


def quality(text: str) -> float:
    """What the fake judge likes: a model's marker word, and a little length (a length-biased judge)."""
    marker = next((value for name, value in QUALITY.items() if f"[{name}]" in text), 0.0)
    return marker + 0.01 * len(text)


def respond(request: VerdictRequest) -> BackendOutput:
    pair = request.pair
    if "FAIL" in pair.response_a or "FAIL" in pair.response_b:
        return BackendOutput(error=InputError("the pair is too long for the model (scripted)", kind=Reason.TOO_LONG))
    margin = quality(pair.response_a) - quality(pair.response_b)
    p_first = 1.0 / (1.0 + math.exp(-margin))
    if request.mode != "score":
        return BackendOutput(text="[[A]]" if p_first >= 0.5 else "[[B]]")
    # a slight first-position bias, so that the two orders can disagree
    return letter_output(min(max(p_first + 0.1, 0.0), 1.0))


def quality_judge(model_name: str = "fake-quality", template: str = "skywork-critic") -> Judge:
    backend = FakeBackend(respond)
    backend.run = lambda requests: [respond(request) for request in requests]  # type: ignore[method-assign]
    return Judge(backend, template=template, model_name=model_name)


def arena_judge(model: str, **options: Any) -> Judge:
    """The --judge-factory of the CLI tests (see the module's description)."""
    judge = quality_judge("fake-quality", options.get("template", "skywork-critic"))
    kind, _, value = model.partition(":")
    if kind == "slow":
        compare_each = judge.compare_each

        def slow(pairs):  # noqa: ANN001, ANN202
            time.sleep(float(value))
            return compare_each(pairs)

        judge.compare_each = slow  # type: ignore[method-assign]
    return judge


def answer_rows(model: str, questions: int, *, start: int = 0, text: str | None = None) -> list[dict[str, Any]]:
    """Plain answer rows of ``model`` to questions q{start}..: varied lengths, the model's marker word."""
    rows = []
    for index in range(start, start + questions):
        body = text if text is not None else f"[{model}] answer {index} " + "detail " * ((index * 7 + len(model)) % 11)
        rows.append({"id": f"q{index:03d}", "prompt": f"Question number {index}?", "response": body, "model": model,
                     "category": "odd" if index % 2 else "even"})
    return rows


def write_answers(folder: Path, models: tuple[str, ...] = ("careful", "terse", "padded"),
                  questions: int = 12) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for model in models:
        path = folder / f"{model}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in answer_rows(model, questions)), encoding="utf-8")
        paths.append(path)
    return paths


def arena_hard_judgments(models=("model-x", "model-y", "model-z"), questions=40, seed=11):
    """Judgment rows in Arena-Hard v2's shape (gen_judgment.py's output), with a few null games."""
    rng = random.Random(seed)
    labels = ["A>>B", "A>B", "A=B", "B>A", "B>>A"]
    rows = []
    for skill, model in enumerate(models):
        for index in range(questions):
            weights = [1, 2, 2, 2 + skill, 1 + skill]
            games = [{"score": rng.choices(labels, weights[::-1])[0], "judgment": {"answer": "..."}},
                     {"score": rng.choices(labels, weights)[0], "judgment": {"answer": "..."}}]
            if index == 7 and skill == 1:
                games[0] = None
            if index == 9 and skill == 2:
                games[1]["score"] = None
            rows.append({"uid": f"u{index:03d}", "category": "hard_prompt" if index % 3 else "coding",
                         "judge": "gpt-4.1", "model": model, "baseline": "o3-mini-2025-01-31", "games": games})
    return rows
