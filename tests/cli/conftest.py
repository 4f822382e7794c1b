"""Fixtures of the command-line tests: the session's demo model behind `--model demo`, loader recorders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from critic import Judge, RewardJudge
from critic.testing import FakeBackend
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




def run_critic(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real command in a fresh process."""
    return subprocess.run([sys.executable, "-m", "critic.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


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
