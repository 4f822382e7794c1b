"""The transformers backend: a causal LM judging verdict requests on CPU or GPU.

score       one forward pass over prompt + ``[[``; letter probabilities from the
            next-token distribution (only the last position's logits are made).
constrained outlines' logits processor forces ``A]]``/``B]]`` after a prefilled
            ``[[`` during greedy decoding. Prefilling matters: constraining the
            whole ``[[A]]`` lets the model spell it ``[``, ``[``, ``A``, ``]]``,
            a path it was never trained on.
generate    greedy free generation up to the end of turn (the model card's way).

Prompts are tokenised through the model's own chat template with
``apply_chat_template(tokenize=True)``, which writes exactly one BOS; rendering
to text and tokenising again would double it on Llama-3.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from critic.backends.base import VERDICT_OPENING, BackendOutput, VerdictRequest
from critic.errors import MissingDependencyError, ModelError
from critic.models import (
    load_model,
    load_tokenizer,
    pick_attention,
    pick_device,
    pick_dtype,
    resolve_model,
)
from critic.templates import Message

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger("critic")

DEFAULT_MAX_BATCH_SIZE = 16
DEFAULT_MAX_BATCH_TOKENS = 16384


@dataclass(frozen=True)
class VerdictTokens:
    """How a tokenizer spells ``[[X]]``: shared opening ids, one id per letter, shared closing ids."""

    opening: tuple[int, ...]
    letters: dict[str, int]
    closing: tuple[int, ...]

    @classmethod
    def from_tokenizer(cls, tokenizer: PreTrainedTokenizerBase, letters: Sequence[str] = ("A", "B", "C")) -> VerdictTokens:
        spelled = {letter: tokenizer.encode(f"{VERDICT_OPENING}{letter}]]", add_special_tokens=False) for letter in letters}
        first = spelled[letters[0]]
        if not all(len(ids) == len(first) for ids in spelled.values()):
            raise ModelError(f"the tokenizer spells the verdict tokens with different lengths: {spelled}")
        differing = [i for i in range(len(first)) if len({ids[i] for ids in spelled.values()}) > 1]
        if len(differing) != 1:
            raise ModelError(f"the tokenizer does not spell each verdict letter as one token: {spelled}")
        at = differing[0]
        return cls(tuple(first[:at]), {letter: ids[at] for letter, ids in spelled.items()}, tuple(first[at + 1 :]))


def chat_prompt_ids(
    tokenizer: PreTrainedTokenizerBase,
    messages: Sequence[Message],
    *,
    prefill: str = "",
    opening: Sequence[int] = (),
) -> list[int]:
    """Token ids of a judge prompt through the model's chat template, with assistant text appended."""
    encoded = tokenizer.apply_chat_template(
        [dict(message) for message in messages], tokenize=True, add_generation_prompt=True, return_dict=True
    )
    ids = list(encoded["input_ids"])
    if prefill:
        ids += tokenizer.encode(prefill, add_special_tokens=False)
    return ids + list(opening)


class TransformersBackend:
    """Judges requests with a Hugging Face causal LM and its tokenizer."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        name: str | None = None,
    ) -> None:
        if max_batch_size < 1 or max_batch_tokens < 1:
            raise ValueError("max_batch_size and max_batch_tokens must be at least 1")
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.name = name or getattr(model, "name_or_path", type(model).__name__)
        self.verdict_tokens = VerdictTokens.from_tokenizer(tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.stop_ids = _stop_ids(model, tokenizer)
        self._processors: dict[tuple[str, ...], Any] = {}

    @classmethod
    def from_pretrained(
        cls,
        model: str,
        *,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        attn_implementation: str | None = None,
        trust_remote_code: bool = False,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    ) -> TransformersBackend:
        from transformers import AutoModelForCausalLM

        source = resolve_model(model)
        device = pick_device(device)
        tokenizer = load_tokenizer(source, trust_remote_code=trust_remote_code)
        loaded = load_model(
            source,
            AutoModelForCausalLM,
            device=device,
            dtype=pick_dtype(device, dtype),
            attn_implementation=pick_attention(device, attn_implementation),
            trust_remote_code=trust_remote_code,
        )
        return cls(loaded, tokenizer, max_batch_size=max_batch_size, max_batch_tokens=max_batch_tokens, name=model)

    def prompt_ids(self, request: VerdictRequest) -> list[int]:
        """The exact token ids the model reads for ``request``."""
        opening = self.verdict_tokens.opening if request.mode != "generate" else ()
        return chat_prompt_ids(self.tokenizer, request.messages, prefill=request.prefill, opening=opening)

    def run(self, requests: Sequence[VerdictRequest]) -> list[BackendOutput]:
        outputs: list[BackendOutput | None] = [None] * len(requests)
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for index, request in enumerate(requests):
            groups[(request.mode, request.verdicts, request.max_new_tokens)].append(index)
        for (mode, verdicts, max_new_tokens), indices in groups.items():
            sequences = [self.prompt_ids(requests[i]) for i in indices]
            for batch in self._batches(sequences):
                batch_sequences = [sequences[i] for i in batch]
                if mode == "score":
                    results = self._score(batch_sequences, verdicts)
                elif mode == "constrained":
                    results = self._constrained(batch_sequences, verdicts)
                else:
                    results = self._generate(batch_sequences, max_new_tokens)
                for position, result in zip(batch, results):
                    outputs[indices[position]] = result
        return outputs  # type: ignore[return-value]

    def _batches(self, sequences: Sequence[Sequence[int]]) -> Iterator[list[int]]:
        """Indices grouped longest first, each batch within the size and padded-token budget."""
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]), reverse=True)
        batch: list[int] = []
        for index in order:
            longest = len(sequences[batch[0]]) if batch else len(sequences[index])
            if batch and (len(batch) >= self.max_batch_size or (len(batch) + 1) * longest > self.max_batch_tokens):
                yield batch
                batch = []
            batch.append(index)
        if batch:
            yield batch

    def _pad_left(self, sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        width = max(len(ids) for ids in sequences)
        input_ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, ids in enumerate(sequences):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            mask[row, width - len(ids) :] = 1
        return input_ids.to(self.model.device), mask.to(self.model.device)

    def _score(self, sequences: Sequence[Sequence[int]], verdicts: tuple[str, ...]) -> list[BackendOutput]:
        import torch

        input_ids, mask = self._pad_left(sequences)
        # Left padding shifts positions unless they are given explicitly.
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = self.model(
                input_ids=input_ids, attention_mask=mask, position_ids=position_ids, logits_to_keep=1, use_cache=False
            ).logits[:, -1, :]
        probs = logits.float().softmax(dim=-1)
        letter_ids = [self.verdict_tokens.letters[letter] for letter in verdicts]
        chosen = probs[:, letter_ids].tolist()
        return [BackendOutput(letter_probs=dict(zip(verdicts, row))) for row in chosen]

    def _constrained(self, sequences: Sequence[Sequence[int]], verdicts: tuple[str, ...]) -> list[BackendOutput]:
        from transformers import LogitsProcessorList

        processor = self._verdict_processor(verdicts)
        processor.reset()
        closing = len(self.verdict_tokens.closing) + 2
        new_ids = self._greedy(sequences, closing, logits_processor=LogitsProcessorList([processor]))
        opening = list(self.verdict_tokens.opening)
        return [BackendOutput(text=self.tokenizer.decode(opening + ids, skip_special_tokens=True)) for ids in new_ids]

    def _generate(self, sequences: Sequence[Sequence[int]], max_new_tokens: int) -> list[BackendOutput]:
        new_ids = self._greedy(sequences, max_new_tokens)
        return [BackendOutput(text=self.tokenizer.decode(ids, skip_special_tokens=True)) for ids in new_ids]

    def _greedy(self, sequences: Sequence[Sequence[int]], max_new_tokens: int, **kwargs: Any) -> list[list[int]]:
        import torch

        input_ids, mask = self._pad_left(sequences)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=self.pad_id,
                eos_token_id=self.stop_ids,
                **kwargs,
            )
        rows = output[:, input_ids.shape[1] :].tolist()
        return [_until_stop(row, self.stop_ids) for row in rows]

    def _verdict_processor(self, verdicts: tuple[str, ...]) -> Any:
        """outlines' logits processor for the verdict tail, built once per letter set."""
        if verdicts not in self._processors:
            try:
                import outlines
            except ImportError as error:
                raise MissingDependencyError("outlines", "outlines", "constrained mode") from error
            from typing import Literal

            closing = self.tokenizer.decode(list(self.verdict_tokens.closing))
            tails = tuple(f"{letter}{closing}" for letter in verdicts)
            generator = outlines.Generator(outlines.from_transformers(self.model, self.tokenizer), Literal[tails])  # type: ignore[valid-type]
            self._processors[verdicts] = generator.logits_processor
        return self._processors[verdicts]


def _stop_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    ids: set[int] = set()
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    if not ids:
        raise ModelError("the model has no end-of-turn token (eos_token_id); generation could not stop")
    return sorted(ids)


def _until_stop(ids: list[int], stop_ids: Sequence[int]) -> list[int]:
    for position, token in enumerate(ids):
        if token in stop_ids:
            return ids[:position]
    return ids
