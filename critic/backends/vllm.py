"""The vLLM backend: the same judge on vLLM's engine (continuous batching, prefix caching, GPU kernels).

score       one decoding step after prompt + ``[[``; the letter probabilities
            are vLLM's log-probabilities of the letter ids over the full
            vocabulary (``logprob_token_ids``), as the transformers backend
            reads them off the softmax.
constrained the same step with only the verdict letters allowed
            (``allowed_token_ids``), so the letter is the score argmax; the
            text is ``[[A]]``.
generate    greedy decoding until the end of turn, decoded as the transformers
            backend decodes it.

Prompts are critic's own token ids (``PromptEncoder.prompt_ids``, the same
code as the transformers backend, one BOS), handed to vLLM as
``TokensPrompt``: never text. They are counted and fitted to the context by
``PromptEncoder.fit``, as on the transformers backend, so length limits,
truncation and per-request errors behave alike. All the requests of a
call go to the engine in one ``generate`` call (both orders of every pair),
so vLLM's scheduler batches them and its prefix cache computes shared
prefixes once. A call the engine rejects as a whole is retried one request at
a time, so one bad request costs that request alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from critic.backends._vllm_engine import build_engine, engine_max_model_len, engine_source, import_vllm
from critic.backends.base import BackendOutput, VerdictRequest
from critic.backends.encoder import EncodingBackend, PromptEncoder
from critic.backends.loading import load_generation_config, load_tokenizer
from critic.errors import ModelError
from critic.options import BatchLimits, LoadOptions

if TYPE_CHECKING:
    import vllm
    from transformers import GenerationConfig, PreTrainedTokenizerBase

logger = logging.getLogger("critic")


class VLLMBackend(EncodingBackend):
    """Judges requests with a started ``vllm.LLM`` and the model's Hugging Face tokenizer.

    Args:
        engine: the vLLM engine (see :func:`critic.backends._vllm_engine.build_engine`).
        tokenizer: the model's tokenizer, which builds the prompt ids and decodes generations.
        generation_config: the model's generation config (its end-of-turn ids stop generation).
        limits: as for :class:`~critic.backends.transformers.TransformersBackend`; the engine
            was built with its batch limits, and ``max_length`` caps the context here too.
        name: the model's name, for logs.
    """

    kind = "vllm"

    def __init__(
        self,
        engine: vllm.LLM,
        tokenizer: PreTrainedTokenizerBase,
        generation_config: GenerationConfig,
        *,
        limits: BatchLimits = BatchLimits(),
        name: str = "",
    ) -> None:
        self.engine = engine
        self.tokenizer = tokenizer
        self.generation_config = generation_config
        self.limits = limits
        self.name = name
        context = engine_max_model_len(engine)
        self.encoder = PromptEncoder(tokenizer, generation_config=generation_config, overflow=limits.overflow,
                                     max_length=min(context, limits.max_length) if limits.max_length else context)

    @classmethod
    def from_pretrained(
        cls, model: str, *, load: LoadOptions = LoadOptions(), limits: BatchLimits = BatchLimits(),
        share_prefix: bool = True,
    ) -> VLLMBackend:
        """Start vLLM on a causal LM (a hub id, a local folder, a ``.gguf`` file or ``"demo"``).

        ``share_prefix`` is accepted for the registry's common loader signature: vLLM's
        prefix cache always computes a shared prefix once.
        """
        source = engine_source(model)
        tokenizer = load_tokenizer(source, trust_remote_code=load.trust_remote_code)
        generation_config = load_generation_config(source, trust_remote_code=load.trust_remote_code)
        engine = build_engine(source.location, load=load, limits=limits, runner="generate")
        logger.info("loaded %s on vLLM", source.description)
        return cls(engine, tokenizer, generation_config, limits=limits, name=model)

    def run(self, requests: Sequence[VerdictRequest]) -> list[BackendOutput]:
        prompts = self.encoder.fit(requests)
        outputs = [prompt if isinstance(prompt, BackendOutput) else None for prompt in prompts]
        todo = [index for index, prompt in enumerate(prompts) if not isinstance(prompt, BackendOutput)]
        if todo:
            ids: list[list[int]] = [prompts[i] for i in todo]  # type: ignore[misc]
            for index, output in zip(todo, self._engine_outputs([requests[i] for i in todo], ids), strict=True):
                outputs[index] = output
        return outputs  # type: ignore[return-value]

    def close(self) -> None:
        """Stop the engine's processes now (they also stop when the backend is garbage-collected)."""
        self.engine.llm_engine.engine_core.shutdown()

    # --- the engine ---------------------------------------------------------------------------

    def _engine_outputs(self, requests: Sequence[VerdictRequest], ids: Sequence[list[int]]) -> list[BackendOutput]:
        """One ``generate`` call for all requests; if the engine rejects it, one call per request."""
        vllm_module = import_vllm()
        prompts = [vllm_module.TokensPrompt(prompt_token_ids=list(prompt)) for prompt in ids]
        params = [self._sampling(request) for request in requests]
        try:
            results = self.engine.generate(prompts, params, use_tqdm=False)
        except (ValueError, RuntimeError) as error:
            if len(prompts) == 1:
                first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
                return [BackendOutput(error=ModelError(f"vLLM could not judge this prompt of {len(ids[0])} "
                                                       f"tokens: {first_line}"))]
            logger.warning("vLLM rejected a batch of %d prompts (%s); judging them one at a time", len(prompts), error)
            return [output for request, prompt in zip(requests, ids, strict=True)
                    for output in self._engine_outputs([request], [prompt])]
        return [self._read(request, result) for request, result in zip(requests, results, strict=True)]

    def _sampling(self, request: VerdictRequest) -> Any:
        """The sampling parameters of one request: greedy, one step or up to the end of turn."""
        from vllm import SamplingParams

        letters = self.encoder.letter_ids(request.verdicts)
        if request.mode == "score":
            return SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=letters, detokenize=False)
        if request.mode == "constrained":
            return SamplingParams(max_tokens=1, temperature=0.0, allowed_token_ids=letters, detokenize=False)
        return SamplingParams(max_tokens=request.max_new_tokens, temperature=0.0,
                              stop_token_ids=self.encoder.stop_ids, detokenize=False)

    def _read(self, request: VerdictRequest, result: Any) -> BackendOutput:
        completion = result.outputs[0]
        if request.mode == "score":
            step = completion.logprobs[0]
            return BackendOutput(letter_probs=self.encoder.letter_probs(
                {token: entry.logprob for token, entry in step.items()}, request.verdicts))
        tokens = list(completion.token_ids)
        if request.mode == "constrained":
            if len(tokens) != 1:
                raise ModelError(f"vLLM's verdict constraint let through tokens {tokens}")
            return BackendOutput(text=self.encoder.constrained_verdict(tokens[0], request.verdicts))
        return BackendOutput(text=self.encoder.generated_text(tokens))
