"""Fixtures of the command-line tests: the session's demo model behind `--model demo`, loader recorders."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from critic import Judge, RewardJudge
from critic.errors import VerdictError
from critic.testing import FakeBackend, FakeScorer
from critic.options import BatchLimits, LoadOptions

from ..jobs.support import read_jsonl, write_jsonl  # noqa: F401 (the CLI tests import them from here)
from .fakes import Recorder

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "pairs.jsonl"
LOAD_DEFAULTS, LIMIT_DEFAULTS = LoadOptions(), BatchLimits()


@pytest.fixture
def demo_judge_factory(monkeypatch, demo_backend):
    """Make `--model demo` reuse the session's demo model instead of loading it again."""

    def from_pretrained(model, **options):
        assert model == "demo"
        keep = {key: options[key] for key in ("template", "mode", "swap", "max_new_tokens")}
        return Judge(demo_backend, model_name=model, **keep)

    monkeypatch.setattr(Judge, "from_pretrained", staticmethod(from_pretrained))


@pytest.fixture
def tiny_model_loader(monkeypatch, tiny_backend):
    """Make the real Judge.from_pretrained build its backend on the tiny model, keeping the limits it is given."""
    from critic.backends.transformers import TransformersBackend

    def from_pretrained(model, *, load=LOAD_DEFAULTS, limits=LIMIT_DEFAULTS, share_prefix=True):
        return TransformersBackend(tiny_backend.model, tiny_backend.tokenizer, limits=limits,
                                   share_prefix=share_prefix)

    monkeypatch.setattr(TransformersBackend, "from_pretrained", staticmethod(from_pretrained))


@pytest.fixture
def loaders(monkeypatch):
    """Recorders in place of Judge.from_pretrained and RewardJudge.from_pretrained (each stops the command)."""
    recorders = {"generative": Recorder(), "reward": Recorder()}
    monkeypatch.setattr(Judge, "from_pretrained", staticmethod(recorders["generative"]))
    monkeypatch.setattr(RewardJudge, "from_pretrained", staticmethod(recorders["reward"]))
    return recorders




def critic_env() -> dict[str, str]:
    """The environment of a real `critic` process: this checkout's critic and tests importable (--judge-factory)."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def run_critic(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real command in a fresh process."""
    return subprocess.run([sys.executable, "-m", "critic.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=critic_env())


def kill_9_during(command: list[str], *, progress: Callable[[], int], target: int, chance: random.Random,
                  seed: int, within_s: float) -> None:
    """Start ``command`` (``critic ...``) as a real process, wait (at most 120 s) until ``progress()`` reaches
    ``target``, then a random moment up to ``within_s`` more (anywhere in a chunk), and kill it with SIGKILL."""
    process = subprocess.Popen([sys.executable, "-m", "critic.cli", *command], cwd=ROOT, env=critic_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while progress() < target and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(chance.uniform(0, within_s))
    if process.poll() is not None:
        pytest.fail(f"the run ended before it could be killed (seed {seed}): {process.stderr.read().decode()}")
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    process.stderr.close()


@pytest.fixture
def fake_judge(monkeypatch):
    """`--model fake` is a judge that prefers answers containing 'good'; counts its loads."""
    loads = []

    def from_pretrained(model, **options):
        loads.append(model)
        return Judge(FakeBackend.prefer(lambda text: "good" in text), model_name=model, template=options["template"],
                     mode=options["mode"], swap=options["swap"])

    monkeypatch.setattr(Judge, "from_pretrained", staticmethod(from_pretrained))
    return loads


class Stopping:
    """Wraps a judge's batch call: the ``after``-th call and later raise ``error`` (a Ctrl-C, a crash)."""

    def __init__(self, call, error: BaseException, after: int) -> None:
        self.call, self.error, self.left = call, error, after

    def __call__(self, items):
        self.left -= 1
        if self.left < 0:
            raise self.error
        return self.call(items)


@pytest.fixture
def fake_models(monkeypatch):
    """`--model NAME` for judge, score, filter and eval without a model; the names loaded are recorded.

    NAME is ``fake`` (prefers answers containing 'good'; a reward model scores 'good' 1.0, else 0.0),
    ``interrupt`` (a Ctrl-C on the second chunk), ``crash`` (a RuntimeError on the second chunk) or
    ``unreadable`` (a generative judge whose verdict on a prompt containing 'unreadable' cannot be read).
    """
    loads: list[str] = []
    stops = {"interrupt": KeyboardInterrupt(), "crash": RuntimeError("the judge broke")}

    def generative(model, **options):
        loads.append(model)
        judge = Judge(FakeBackend.prefer(lambda text: "good" in text), model_name=model,
                      template=options["template"], mode=options["mode"], swap=options["swap"])
        if model in stops:
            judge.compare_each = Stopping(judge.compare_each, stops[model], 1)  # type: ignore[method-assign]
        if model == "unreadable":
            compare_each = judge.compare_each

            def unreadable(pairs):
                results = compare_each(pairs)
                return [VerdictError("no verdict", "I cannot decide.") if "unreadable" in pair.prompt else result
                        for pair, result in zip(pairs, results, strict=True)]

            judge.compare_each = unreadable  # type: ignore[method-assign]
        return judge

    def reward(model, **options):
        loads.append(model)
        judge = RewardJudge(FakeScorer.by_response({"good": 1.0}), model_name=model)
        if model in stops:
            judge.score_each = Stopping(judge.score_each, stops[model], 1)  # type: ignore[method-assign]
        return judge

    monkeypatch.setattr(Judge, "from_pretrained", staticmethod(generative))
    monkeypatch.setattr(RewardJudge, "from_pretrained", staticmethod(reward))
    return loads
