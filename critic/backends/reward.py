"""The reward-model seam: conversations in, one scalar score each out.

A reward model (an ``AutoModelForSequenceClassification`` with one label)
reads a whole conversation and returns a score. :class:`RewardScorer` is the
one-method seam :class:`critic.RewardJudge` talks to;
:class:`TransformersRewardScorer` runs a Hugging Face model behind it and
``critic.testing.FakeScorer`` scripts it for tests.

Tokenisation writes exactly one BOS, whatever the chat template does: the
Skywork-Reward templates dropped their BOS so that tokenising the rendered
text adds it once, other templates write it and would get two that way, and
``apply_chat_template(tokenize=True)`` on a template without one gives none.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from critic.backends.base import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_BATCH_TOKENS
from critic.backends.loading import (
    DEMO_ALIAS,
    _alternatives,
    _load_error,
    load_model,
    load_tokenizer,
    pick_attention,
    pick_device,
    pick_dtype,
    resolve_model,
)
from critic.errors import CriticError, InputError, ModelError
from critic.types import Message

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger("critic")

DEFAULT_REWARD_MODEL = "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2"
PADDING_SIDES = ("right", "left")
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


@runtime_checkable
class RewardScorer(Protocol):
    """Anything that scores conversations, in order, one result each.

    A conversation that cannot be scored (longer than the model's context,
    say) gets its error in place of its score, so one row never costs a batch.
    """

    def score(self, conversations: Sequence[Sequence[Message]]) -> list[float | CriticError]: ...


def conversation_ids(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message]) -> list[int]:
    """Token ids of a whole conversation through the chat template, with exactly one BOS.

    The model wants a BOS when its template writes one or its tokenizer adds one
    to plain text; either way it gets exactly one. A tokenizer with no BOS token
    (Qwen, say) gets none.
    """
    chat = [{"role": message["role"], "content": message["content"]} for message in messages]
    text = tokenizer.apply_chat_template(chat, tokenize=False)
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    bos = tokenizer.bos_token_id
    if bos is None:
        return ids
    start = 0
    while start < len(ids) and ids[start] == bos:
        start += 1
    wants_bos = start > 0 or _adds_bos(tokenizer)
    return [bos] + ids[start:] if wants_bos else ids[start:]


def _adds_bos(tokenizer: PreTrainedTokenizerBase) -> bool:
    ids = tokenizer("x", add_special_tokens=True)["input_ids"]
    return bool(ids) and ids[0] == tokenizer.bos_token_id


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


class TransformersRewardScorer:
    """Scores conversations with a Hugging Face one-label sequence classifier.

    The score is the head's output at each conversation's last real token,
    found from the attention mask (never from ``pad_token_id``, which misses
    the last token when pad == eos and a conversation ends in eos). Batches are
    sorted by length and padded on ``padding_side``; position ids come from the
    mask, so padding changes no score.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        max_length: int | None = None,
        padding_side: str = "right",
        name: str | None = None,
    ) -> None:
        if max_batch_size < 1 or max_batch_tokens < 1:
            raise InputError("max_batch_size and max_batch_tokens must be at least 1")
        if padding_side not in PADDING_SIDES:
            raise InputError(f"padding_side must be one of {', '.join(PADDING_SIDES)}, got {padding_side!r}")
        check_reward_config(model.config, name or type(model).__name__)
        context = getattr(model.config, "max_position_embeddings", None)
        if max_length is not None and max_length < 1:
            raise InputError("max_length must be at least 1")
        self.max_length: int | None = min(filter(None, (max_length, context)), default=None)
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.padding_side = padding_side
        self.name = name or getattr(model, "name_or_path", type(model).__name__)
        self.pad_id = next((i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id) if i is not None), 0)

    @classmethod
    def from_pretrained(
        cls,
        model: str = DEFAULT_REWARD_MODEL,
        *,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        attn_implementation: str | None = None,
        trust_remote_code: bool = False,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        max_length: int | None = None,
        padding_side: str = "right",
    ) -> TransformersRewardScorer:
        """Load a reward model from a hub id or a local folder; its config is checked before its weights load."""
        from transformers import AutoConfig, AutoModelForSequenceClassification

        if model == DEMO_ALIAS:
            raise ModelError(DEMO_REFUSAL)
        with _reward_errors():
            source = resolve_model(model)
            try:
                config = AutoConfig.from_pretrained(
                    source.location, trust_remote_code=trust_remote_code, **source.kwargs()
                )
            except (OSError, ValueError) as error:
                raise _load_error(source, error) from error
            check_reward_config(config, model)
            device = pick_device(device)
            tokenizer = load_tokenizer(source, trust_remote_code=trust_remote_code)
            loaded = load_model(
                source,
                AutoModelForSequenceClassification,
                device=device,
                dtype=pick_dtype(device, dtype),
                attn_implementation=reward_attention(config, device, attn_implementation),
                trust_remote_code=trust_remote_code,
            )
        return cls(loaded, tokenizer, max_batch_size=max_batch_size, max_batch_tokens=max_batch_tokens,
                   max_length=max_length, padding_side=padding_side, name=model)

    def conversation_ids(self, messages: Sequence[Message]) -> list[int]:
        """The exact token ids the model reads for ``messages``."""
        return conversation_ids(self.tokenizer, messages)

    def score(self, conversations: Sequence[Sequence[Message]]) -> list[float | CriticError]:
        results: list[float | CriticError | None] = [None] * len(conversations)
        sequences: dict[int, list[int]] = {}
        for index, messages in enumerate(conversations):
            ids = self.conversation_ids(messages)
            if self.max_length is not None and len(ids) > self.max_length:
                results[index] = InputError(
                    f"the conversation is {len(ids)} tokens, longer than the model's context of "
                    f"{self.max_length} tokens; shorten it or leave it out"
                )
            else:
                sequences[index] = ids
        for batch in _batches(sequences, self.max_batch_size, self.max_batch_tokens):
            for index, value in zip(batch, self._forward([sequences[i] for i in batch]), strict=True):
                results[index] = value if math.isfinite(value) else ModelError(
                    f"the model returned a non-finite score ({value}); try dtype fp32 or bf16"
                )
        return results  # type: ignore[return-value]

    def _forward(self, sequences: Sequence[Sequence[int]]) -> list[float]:
        import torch

        input_ids, mask = self._pad(sequences)
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
                return head(hidden[rows, last.to(hidden.device)]).float()[:, 0].tolist()
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

    def _pad(self, sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        width = max(len(ids) for ids in sequences)
        input_ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, ids in enumerate(sequences):
            span = slice(0, len(ids)) if self.padding_side == "right" else slice(width - len(ids), width)
            input_ids[row, span] = torch.tensor(list(ids), dtype=torch.long)
            mask[row, span] = 1
        return input_ids.to(self.model.device), mask.to(self.model.device)


@contextmanager
def _reward_errors() -> Iterator[None]:
    """Loading errors name reward models as the alternatives, not the generative demo."""
    try:
        yield
    except ModelError as error:
        if _alternatives() not in str(error):
            raise
        raise ModelError(str(error).replace(_alternatives(), REWARD_ALTERNATIVES)) from error


def _batches(sequences: dict[int, list[int]], max_size: int, max_tokens: int) -> Iterator[list[int]]:
    """Keys grouped longest first, each batch within the size and padded-token budget."""
    order = sorted(sequences, key=lambda key: len(sequences[key]), reverse=True)
    batch: list[int] = []
    for key in order:
        longest = len(sequences[batch[0]]) if batch else len(sequences[key])
        if batch and (len(batch) >= max_size or (len(batch) + 1) * longest > max_tokens):
            yield batch
            batch = []
        batch.append(key)
    if batch:
        yield batch
