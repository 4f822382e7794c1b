"""Judges for `--judge-factory` in the CLI tests, and recorders for the loaders."""

from __future__ import annotations

import time
from typing import Any

from critic import Judge
from critic.errors import CriticError
from critic.testing import FakeBackend

FACTORY = "tests.cli.fakes:fake_judge"


def fake_judge(model: str, **options: Any) -> Judge:
    """The ``--judge-factory`` of the filter tests: prefers answers starting with 'good'.

    ``model`` picks the variant: ``fast``; ``slow:SECONDS`` sleeps that long per
    chunk (so a subprocess can be killed mid-job); ``interrupt:N`` acts as a
    Ctrl-C on the N+1-th chunk.
    """
    backend = FakeBackend.prefer(lambda text: text.startswith("good"))
    backend.run = lambda requests: [backend.respond(request) for request in requests]  # keep no history
    judge = Judge(backend, template=options["template"], mode=options["mode"], swap=options["swap"],
                  model_name="fake-good")
    kind, _, value = model.partition(":")
    if kind == "fast":
        return judge
    compare_each = judge.compare_each
    calls = {"left": int(value) if kind == "interrupt" else 0}

    def slow_or_interrupted(pairs):
        if kind == "slow":
            time.sleep(float(value))
        elif kind == "interrupt":
            calls["left"] -= 1
            if calls["left"] < 0:
                raise KeyboardInterrupt
        return compare_each(pairs)

    judge.compare_each = slow_or_interrupted  # type: ignore[method-assign]
    return judge


def not_a_judge(model: str, **options: Any) -> object:
    return object()


class Loaded(CriticError):
    """Raised by a recorder once it has seen a loader call: the command stops there (exit 2)."""


class Recorder:
    """Stands in for a ``from_pretrained``: keeps every call's model and keyword arguments."""

    def __init__(self, result: Any = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.result = result

    def __call__(self, model: str, **options: Any) -> Any:
        self.calls.append((model, options))
        if self.result is None:
            raise Loaded(f"recorded {model}")
        return self.result(model, **options) if callable(self.result) else self.result
