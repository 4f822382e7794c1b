"""Shared fixtures: the demo model is loaded once per test run."""

from __future__ import annotations

import json
import os
from pathlib import Path

# Before torch is imported: outlines' first call would otherwise compile a kernel (~14 s).
os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from critic.types import Pair

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_path(*parts: str) -> Path:
    """A file under ../shared, or a skip when it is absent (a user's clone has no ../shared)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared is absent ({path} not found): this test needs the team's shared material")
    return path


def pandalm_pairs(count: int) -> list[Pair]:
    """The first ``count`` PandaLM test pairs; the optional input belongs to the prompt."""
    rows = json.loads(shared_path("data", "pandalm", "testset-v1.json").read_text(encoding="utf-8"))
    pairs = []
    for row in rows[:count]:
        prompt = row["instruction"] + (f"\n\n{row['input']}" if row["input"] else "")
        pairs.append(Pair(prompt, row["response1"], row["response2"]))
    return pairs


@pytest.fixture(scope="session")
def demo_backend():
    """The embedded demo model (SmolLM2-135M-Instruct GGUF) behind the transformers backend."""
    from critic.backends.transformers import TransformersBackend

    return TransformersBackend.from_pretrained("demo", device="cpu")


@pytest.fixture(scope="session")
def tiny_backend(demo_backend):
    """A tiny random-weight Llama with the demo tokenizer: real mechanics, meaningless verdicts."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from critic.backends.transformers import TransformersBackend

    torch.manual_seed(0)
    tokenizer = demo_backend.tokenizer
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config).eval()
    return TransformersBackend(model, tokenizer, max_batch_size=4, name="tiny-random-llama")
