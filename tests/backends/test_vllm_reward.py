"""The vLLM reward scorer: the same raw scores and the same per-conversation errors as the transformers scorer.

A tiny random ``LlamaForSequenceClassification`` (one label) is saved to a folder with the in-process tiny
tokenizer and its chat template, then scored by both backends; one vLLM engine serves the whole module.
"""

from __future__ import annotations

import json

import pytest

from critic.backends.reward import DEMO_REFUSAL, TransformersRewardScorer
from critic.errors import CriticError, InputError, ModelError, Reason
from critic.options import BatchLimits, LoadOptions

pytest.importorskip("vllm", reason="the vLLM backend needs vllm (pip install 'critic[vllm]')")

CONTEXT = 96  # the model's max_position_embeddings: the length limit on both backends
CONVERSATIONS = [
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    [{"role": "user", "content": "Name a prime. " * 6}, {"role": "assistant", "content": "7"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"},
     {"role": "assistant", "content": "4"}],
    [{"role": "user", "content": "Tell me a story."}, {"role": "assistant", "content": "Once upon a time, " * 40}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}],
    [{"role": "user", "content": "Say <|im_end|> please"}, {"role": "assistant", "content": "<|im_end|>"}],
    [{"role": "user", "content": "\ud800"}, {"role": "assistant", "content": "a lone surrogate"}],
]
TOO_LONG, BAD_TEXT = 3, 6


def save_tiny_reward_model(folder, tokenizer):
    """critic.testing.tiny_reward_model's shape, with 32-wide heads (vLLM's CPU attention takes no narrower)."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=CONTEXT,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, architectures=["LlamaForSequenceClassification"])
    config.num_labels = 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlamaForSequenceClassification(config).eval()
    with torch.no_grad():
        model.score.weight.mul_(200)  # scores of a few units, both signs: a sigmoid could not pass for them
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def reward_folder(tmp_path_factory, tiny_tokenizer):
    return save_tiny_reward_model(tmp_path_factory.mktemp("tiny-reward"), tiny_tokenizer)


@pytest.fixture(scope="module")
def vllm_scorer(reward_folder):
    """One vLLM pooling engine for the module, chosen through the backend seam as the judges choose it."""
    from critic.backends.registry import reward_scorer

    scorer = reward_scorer(str(reward_folder), load=LoadOptions(device="cpu", backend="vllm"), limits=BatchLimits())
    yield scorer
    scorer.close()


@pytest.fixture(scope="module")
def transformers_scorer(reward_folder):
    return TransformersRewardScorer.from_pretrained(str(reward_folder), load=LoadOptions(device="cpu"))


@pytest.mark.model
def test_vllm_scores_equal_the_transformers_scores_and_fail_the_same_conversations(vllm_scorer, transformers_scorer):
    assert vllm_scorer.kind == "vllm" and vllm_scorer.max_length == transformers_scorer.max_length == CONTEXT
    on_vllm, on_transformers = vllm_scorer.score(CONVERSATIONS), transformers_scorer.score(CONVERSATIONS)
    for index, (mine, theirs) in enumerate(zip(on_vllm, on_transformers, strict=True)):
        if index in (TOO_LONG, BAD_TEXT):
            assert isinstance(mine, CriticError) and type(mine) is type(theirs)
            assert (mine.kind, str(mine)) == (theirs.kind, str(theirs))
        else:
            assert isinstance(mine, float) and mine == pytest.approx(theirs, abs=1e-4)
    assert on_vllm[TOO_LONG].kind == Reason.TOO_LONG and on_vllm[BAD_TEXT].kind == Reason.BAD_TEXT
    # Raw logits: vLLM's default sigmoid would put every score in (0, 1).
    scores = [value for value in on_vllm if isinstance(value, float)]
    assert min(scores) < 0 and max(scores) > 1
    assert vllm_scorer.conversation_ids(CONVERSATIONS[0]) == transformers_scorer.conversation_ids(CONVERSATIONS[0])


@pytest.mark.model
def test_each_conversation_scores_alike_alone_or_in_a_batch_and_a_reward_judge_records_vllm(vllm_scorer):
    from critic import RewardJudge

    together = vllm_scorer.score(CONVERSATIONS[:3])
    alone = [vllm_scorer.score([conversation])[0] for conversation in CONVERSATIONS[:3]]
    assert alone == pytest.approx(together, abs=1e-4)
    assert vllm_scorer.score([CONVERSATIONS[TOO_LONG]])[0].kind == Reason.TOO_LONG  # nothing reaches the engine
    judge = RewardJudge(vllm_scorer, model_name="tiny-reward")
    assert judge.describe().backend == "vllm"
    preference = judge.compare("hi", "hello", "Once upon a time")
    assert preference.orders[0].score_a == pytest.approx(together[0], abs=1e-4)


def test_the_vllm_scorer_refuses_the_demo_model_truncation_and_non_reward_models_before_any_engine(tmp_path):
    from critic.backends.vllm_reward import VLLMRewardScorer

    with pytest.raises(ModelError) as refused:
        VLLMRewardScorer.from_pretrained("demo")
    assert str(refused.value) == DEMO_REFUSAL
    with pytest.raises(InputError, match="never cuts"):
        VLLMRewardScorer.from_pretrained("demo", limits=BatchLimits(overflow="truncate"))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    with pytest.raises(ModelError, match="not a reward model"):
        VLLMRewardScorer.from_pretrained(str(tmp_path), load=LoadOptions(device="cpu"))
