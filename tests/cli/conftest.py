"""Fixtures of the command-line tests: the session's demo model behind `--model demo`, loader recorders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from critic import Judge, RewardJudge
from critic.options import BatchLimits, LoadOptions

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


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def run_critic(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real command in a fresh process."""
    return subprocess.run([sys.executable, "-m", "critic.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
