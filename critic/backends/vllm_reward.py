"""The reward-model scorer on vLLM's pooling runner: the same scores as the transformers scorer, on vLLM.

A one-label ``*ForSequenceClassification`` runs on vLLM's ``classify`` task,
which pools the last token through the model's score head. vLLM applies an
activation to that output by default (a sigmoid for one label); critic's score
is the raw logit, so every request asks for none (``use_activation=False``).

Conversations are counted and refused exactly as on the transformers scorer
(``PromptEncoder.encode_conversations``: one BOS, the same length limit, the
same per-conversation errors) and go to the engine as token ids, never as text, all
in one call: vLLM batches them itself under ``limits``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from critic.backends._vllm_engine import build_engine, engine_max_model_len, engine_source
from critic.backends.encoder import EncodingScorer, PromptEncoder
from critic.backends.loading import load_config, load_tokenizer
from critic.backends.reward import (
    DEFAULT_REWARD_MODEL,
    REWARD_ALTERNATIVES,
    check_limits,
    check_reward_config,
    check_reward_model,
)
from critic.errors import CriticError, ModelError
from critic.options import BatchLimits, LoadOptions

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger("critic")


class VLLMRewardScorer(EncodingScorer):
    """Scores conversations with a one-label sequence classifier on a vLLM pooling engine.

    ``engine`` is a started ``vllm.LLM`` with ``runner="pooling"`` on the model
    whose tokenizer is ``tokenizer``. ``max_length`` caps the tokens per
    conversation; by default it is what the engine takes (its
    ``max_model_len``: the model's context capped by ``limits.max_length``).
    """

    kind = "vllm"

    def __init__(
        self,
        engine: Any,
        tokenizer: PreTrainedTokenizerBase,
        *,
        limits: BatchLimits = BatchLimits(),
        name: str = "",
        max_length: int | None = None,
    ) -> None:
        check_limits(limits)
        self.engine = engine
        self.tokenizer = tokenizer
        self.limits = limits
        self.name = name
        self.encoder = PromptEncoder(
            tokenizer, max_length=max_length if max_length is not None else engine_max_model_len(engine))

    @classmethod
    def from_pretrained(
        cls,
        model: str = DEFAULT_REWARD_MODEL,
        *,
        load: LoadOptions = LoadOptions(),
        limits: BatchLimits = BatchLimits(),
    ) -> VLLMRewardScorer:
        """Start a vLLM pooling engine on a reward model (a hub id or a local folder); its config is checked first.

        fp32 on the CPU and bf16 on CUDA unless ``load.dtype`` says otherwise
        (``_vllm_engine.build_engine``). ``"demo"`` is refused, as on the
        transformers scorer: the demo model has no reward head.
        """
        check_reward_model(model, limits)
        load.check_device()
        source = engine_source(model, alternatives=REWARD_ALTERNATIVES)
        check_reward_config(load_config(source, load, alternatives=REWARD_ALTERNATIVES), model)
        tokenizer = load_tokenizer(source, trust_remote_code=load.trust_remote_code, alternatives=REWARD_ALTERNATIVES)
        engine = build_engine(source.location, load=load, limits=limits, runner="pooling")
        logger.info("reward model %s on vLLM's pooling runner", model)
        return cls(engine, tokenizer, limits=limits, name=model)

    def close(self) -> None:
        """Stop the engine's processes now (they also stop when the scorer is garbage-collected)."""
        self.engine.llm_engine.engine_core.shutdown()

    def _score_ids(self, sequences: list[list[int]]) -> list[float | CriticError]:
        from vllm.pooling_params import PoolingParams

        outputs = self.engine.classify(
            [{"prompt_token_ids": ids} for ids in sequences],  # a TokensPrompt: ids, never text
            pooling_params=PoolingParams(use_activation=False),  # the raw logit, not vLLM's sigmoid of it
            use_tqdm=False,
        )
        return [_score(output) for output in outputs]


def _score(output: Any) -> float | CriticError:
    """The raw score of one ``ClassificationRequestOutput``, or its error."""
    if output.error is not None:
        return ModelError(f"vLLM could not score this conversation: {output.error}")
    values = list(output.outputs.probs)
    if len(values) != 1:
        return ModelError(f"the model returned {len(values)} values for a conversation; a reward model returns one")
    return float(values[0])
