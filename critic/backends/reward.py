"""The reward-model seam: conversations in, one scalar score each out.

A reward model (an ``AutoModelForSequenceClassification`` with one label)
reads a whole conversation and returns a score. :class:`RewardScorer` (defined
with the other seam in :mod:`critic.backends.base`) is the one-method seam
:class:`critic.RewardJudge` talks to; :class:`TransformersRewardScorer` runs a
Hugging Face model behind it, ``critic.backends.vllm_reward.VLLMRewardScorer``
runs the same model on vLLM, and ``critic.testing.FakeScorer`` scripts it for
tests. Every model-backed scorer is an
:class:`~critic.backends.encoder.EncodingScorer`: it counts and refuses
conversations through its :class:`~critic.backends.encoder.PromptEncoder` and
checks its scores in one place.

Conversations get exactly one BOS whatever the chat template does
(``PromptEncoder.conversation_ids``), and load, batch, pad and halve on
out-of-memory through the same code as the generative backend (``loading``,
``_batching``, ``_passes``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from critic.backends._batching import plan_batches
from critic.backends._passes import (
    PADDING_SIDES,
    context_limit,
    halves,
    halving_on_oom,
    out_of_memory_error,
    pad_batch,
)
from critic.backends.base import RewardScorer
from critic.backends.encoder import EncodingScorer, PromptEncoder
from critic.backends.loading import DEMO_ALIAS, load_pretrained, pick_attention
from critic.errors import CriticError, InputError, ModelError, Reason
from critic.options import BatchLimits, LoadOptions, spelled

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger("critic")

__all__ = ["DEFAULT_REWARD_MODEL", "RewardScorer", "TransformersRewardScorer"]

DEFAULT_REWARD_MODEL = "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2"
# Gemma-2 soft-caps its attention logits; sdpa cannot, and the Skywork-Reward-Gemma-2-27B
# card reports that sdpa significantly degrades its scores. Eager and flash-attn 2 both cap.
SOFTCAPPED_MODEL_TYPES = ("gemma2",)
REWARD_ALTERNATIVES = (
    "Pass a local folder or a Hugging Face hub id of a reward model (a sequence-classification model with "
    f"one output; default {DEFAULT_REWARD_MODEL}); '{DEMO_ALIAS}' is a generative model and cannot score"
)
# Refusing is the honest choice: a random head on the demo model would print plausible, meaningless numbers.
DEMO_REFUSAL = (
    f"no reward model ships offline: '{DEMO_ALIAS}' (SmolLM2-135M-Instruct) is a generative model with no "
    f"reward head, and a random head would give meaningless scores. Use a reward model such as "
    f"{DEFAULT_REWARD_MODEL} (a hub id, with network access, or a local folder); to test a pipeline without "
    "one, use critic.testing.FakeScorer or critic.testing.tiny_reward_model (real mechanics, meaningless scores)"
)


def check_limits(limits: BatchLimits) -> None:
    """Refuse limits a reward model cannot honour (truncation), before anything loads."""
    if limits.overflow == "truncate":
        raise InputError(
            f"{spelled('overflow', 'truncate')} shortens the responses a generative judge compares; a reward model "
            f"scores each conversation whole and never cuts it. Use {spelled('overflow', 'error')} (a conversation "
            f"that is too long fails alone) or raise {spelled('max_length')} if the model reads longer inputs",
            kind=Reason.BAD_ARGUMENT,
        )


def check_reward_model(model: str, limits: BatchLimits) -> None:
    """Refuse, before anything loads, what no reward scorer can do: truncating ``limits``, or the demo model."""
    check_limits(limits)
    if model == DEMO_ALIAS:
        raise ModelError(DEMO_REFUSAL)


def check_reward_config(config: Any, name: str) -> None:
    """Refuse a model that is not a one-output sequence classifier, before its weights load."""
    architectures = list(getattr(config, "architectures", None) or [])
    if architectures and not any(arch.endswith("ForSequenceClassification") for arch in architectures):
        raise ModelError(
            f"'{name}' is a {architectures[0]}, not a reward model (a sequence-classification model with one "
            "output); loading it as one would attach a random, meaningless scoring head"
        )
    labels = getattr(config, "num_labels", None)
    if labels != 1:
        raise ModelError(
            f"'{name}' has {labels} outputs (num_labels={labels}); a reward model has exactly one, "
            "the scalar score of the conversation"
        )


def reward_attention(config: Any, device: str, requested: str | None = None) -> str:
    """flash_attention_2 on CUDA when installed, else sdpa; but eager, never sdpa, for Gemma-2."""
    softcapped = getattr(config, "model_type", None) in SOFTCAPPED_MODEL_TYPES
    if requested is not None:
        if softcapped and requested == "sdpa":
            logger.warning("sdpa ignores Gemma-2's attention soft-capping and is reported to degrade its reward scores")
        return requested
    attention = pick_attention(device)
    if softcapped and attention == "sdpa":
        logger.info("Gemma-2 reward model: eager attention (sdpa would skip its attention soft-capping)")
        return "eager"
    return attention


class TransformersRewardScorer(EncodingScorer):
    """Scores conversations with a Hugging Face one-label sequence classifier.

    The score is the head's output at each conversation's last real token,
    found from the attention mask (never from ``pad_token_id``, which misses
    the last token when pad == eos and a conversation ends in eos). Batches are
    planned as the judge's are (sorted by length under ``limits``, halved on
    CUDA out-of-memory) and padded on ``padding_side``; position ids come from
    the mask, so padding changes no score. ``limits.max_length`` caps the
    tokens per conversation, never above the model's context (the default).
    """

    kind = "transformers"

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        limits: BatchLimits = BatchLimits(),
        padding_side: str = "right",
        name: str | None = None,
    ) -> None:
        check_limits(limits)
        if padding_side not in PADDING_SIDES:
            raise InputError(f"padding_side must be one of {', '.join(PADDING_SIDES)}, got {padding_side!r}")
        check_reward_config(model.config, name or type(model).__name__)
        self.model = model
        self.tokenizer = tokenizer
        self.limits = limits
        self.encoder = PromptEncoder(tokenizer, max_length=context_limit(model.config, limits.max_length))
        self.padding_side = padding_side
        self.name = name or getattr(model, "name_or_path", type(model).__name__)
        self.pad_id = next((i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id) if i is not None), 0)

    @classmethod
    def from_pretrained(
        cls,
        model: str = DEFAULT_REWARD_MODEL,
        *,
        load: LoadOptions = LoadOptions(),
        limits: BatchLimits = BatchLimits(),
        padding_side: str = "right",
    ) -> TransformersRewardScorer:
        """Load a reward model from a hub id or a local folder; its config is checked before its weights load.

        bf16 on CUDA, fp32 elsewhere; flash_attention_2 when installed, else
        sdpa, except Gemma-2, which gets eager (sdpa skips its attention
        soft-capping). ``"demo"`` is refused: the demo model is generative and
        has no reward head.
        """
        check_reward_model(model, limits)
        from transformers import AutoModelForSequenceClassification

        def check_config(config: Any, device: str) -> str:
            check_reward_config(config, model)
            return reward_attention(config, device, load.attn_implementation)

        loaded, tokenizer = load_pretrained(
            model, AutoModelForSequenceClassification, load, alternatives=REWARD_ALTERNATIVES, check_config=check_config
        )
        return cls(loaded, tokenizer, limits=limits, padding_side=padding_side, name=model)

    def _score_ids(self, sequences: list[list[int]]) -> list[float | CriticError]:
        scores: list[float | CriticError] = [0.0] * len(sequences)
        batches = plan_batches([len(ids) for ids in sequences], [1] * len(sequences),
                               max_prompts=self.limits.max_batch_size, max_tokens=self.limits.max_batch_tokens)
        for batch in batches:
            batch_scores: list[float | CriticError] = halving_on_oom(
                batch,
                lambda part: self._forward([sequences[index] for index in part]),
                split=halves,
                alone=lambda part: [out_of_memory_error(len(sequences[part[0]]), "conversation")],
            )
            for index, value in zip(batch, batch_scores, strict=True):
                scores[index] = value
        return scores

    def _forward(self, sequences: Sequence[Sequence[int]]) -> list[float]:
        import torch

        input_ids, mask = pad_batch(sequences, self.pad_id, self.model.device, side=self.padding_side)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        last = mask.shape[1] - 1 - mask.flip(-1).argmax(-1)  # last real token, either padding side
        backbone = getattr(self.model, getattr(self.model, "base_model_prefix", ""), None)
        head = getattr(self.model, "score", None)
        with torch.inference_mode():
            if isinstance(backbone, torch.nn.Module) and isinstance(head, torch.nn.Linear):
                hidden = backbone(
                    input_ids=input_ids, attention_mask=mask, position_ids=position_ids, use_cache=False
                ).last_hidden_state
                rows = torch.arange(len(sequences), device=hidden.device)
                return list(head(hidden[rows, last.to(hidden.device)]).float()[:, 0].tolist())
            return [self._forward_alone(ids) for ids in sequences]

    def _forward_alone(self, ids: Sequence[int]) -> float:
        import torch

        # Unknown head layout: one unpadded conversation through the model's own forward. Passing
        # embeddings rather than ids makes it pool the last position instead of guessing from pad ids.
        input_ids = torch.tensor([list(ids)], dtype=torch.long, device=self.model.device)
        with torch.inference_mode():
            embeds = self.model.get_input_embeddings()(input_ids)
            logits = self.model(inputs_embeds=embeds, use_cache=False).logits
        return float(logits.float()[0, 0])

