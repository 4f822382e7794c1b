"""Helpers for testing code that uses critic, without a model.

``FakeBackend`` answers verdict requests from a script, so a pipeline built on
:class:`critic.Judge` can be tested in milliseconds::

    from critic import Judge
    from critic.testing import FakeBackend

    judge = Judge(FakeBackend.scripted([0.9, 0.2]))   # P(first shown wins) per order
    assert judge.compare("q", "good", "bad").label == "A"

``FakeScorer`` does the same for :class:`critic.RewardJudge`, and
``tiny_reward_model`` builds a real but tiny, randomly initialised reward model
to exercise the transformers mechanics (its scores mean nothing)::

    from critic import RewardJudge
    from critic.testing import FakeScorer

    judge = RewardJudge(FakeScorer.by_response({"good": 1.0, "bad": -1.0}))
    assert judge.compare("q", "good", "bad").label == "A"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from critic.backends.fake import FakeBackend, letter_output
from critic.backends.fake_reward import FakeScorer

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["FakeBackend", "FakeScorer", "letter_output", "tiny_reward_model"]


def tiny_reward_model(
    tokenizer: PreTrainedTokenizerBase, *, seed: int = 0, max_position_embeddings: int = 2048
) -> PreTrainedModel:
    """A tiny randomly initialised ``LlamaForSequenceClassification`` (one label) for ``tokenizer``.

    Real mechanics (chat template, padding, pooling, context limit), MEANINGLESS
    scores: its weights are random. For tests and dry runs only.
    """
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=pad,
        architectures=["LlamaForSequenceClassification"],
    )
    config.num_labels = 1
    with torch.random.fork_rng(devices=[]):  # a fixed seed without touching the caller's RNG
        torch.manual_seed(seed)
        model = LlamaForSequenceClassification(config)
    return model.eval()
