"""The transformers backend: a causal LM judging verdict requests on CPU or GPU.

score       one forward pass over prompt + ``[[``; letter probabilities from the
            next-token distribution (only the needed positions reach the LM head).
constrained the same pass, then outlines' logits processor picks the verdict
            among ``A]]``/``B]]`` after the prefilled ``[[``, as greedy
            constrained decoding would. Prefilling matters: constraining the
            whole ``[[A]]`` lets the model spell it ``[``, ``[``, ``A``, ``]]``,
            a path it was never trained on.
generate    greedy free generation up to the end of turn (the model card's way).

Prompts are tokenised through the model's own chat template with
``apply_chat_template(tokenize=True)``, which writes exactly one BOS; rendering
to text and tokenising again would double it on Llama-3.

Throughput (see ``benchmarks/``): every prompt is counted before judging and
checked against the model's context (``_overflow``); in score and constrained
modes the two orders of a pair share one row whose common prefix is computed
once (``_batching``); rows are batched longest first under a token budget; a
CUDA out-of-memory error halves the batch and retries the same prompts.
Results do not depend on any of this beyond float rounding (tested to 1e-4).
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from critic.backends._batching import (
    PAD_SEGMENT,
    Family,
    family_row,
    find_families,
    plan_batches,
    split_for_retry,
)
from critic.backends._overflow import OVERFLOW_POLICIES, Overflow, Truncator, pair_key, too_long_error
from critic.backends._tree_attention import layouts, tree_attention
from critic.backends.base import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_BATCH_TOKENS,
    VERDICT_OPENING,
    BackendOutput,
    VerdictRequest,
)
from critic.backends.loading import (
    decode_text,
    load_model,
    load_tokenizer,
    pick_attention,
    pick_device,
    pick_dtype,
    resolve_model,
)
from critic.errors import InputError, MissingDependencyError, ModelError
from critic.templates import Message

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger("critic")

# Prefix sharing hands the model a custom 4D attention mask; these attention
# implementations take one (flash-attention 2 reads only 2D padding masks).
TREE_MASK_ATTENTION = ("sdpa", "eager")
# A family is usually the two orders of a pair; more members (the same pair
# repeated) only make its row longer, so cap it.
MAX_FAMILY = 4

# One batch of families in, (prompt index, output) pairs out.
JudgeStep = Callable[[Sequence[Family], Sequence[Sequence[int]]], list[tuple[int, BackendOutput]]]


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
    conversation = [{"role": message["role"], "content": message["content"]} for message in messages]
    encoded: Any = tokenizer.apply_chat_template(conversation, tokenize=True, add_generation_prompt=True,
                                                 return_dict=True)
    ids = list(encoded["input_ids"])
    if prefill:
        ids += tokenizer.encode(prefill, add_special_tokens=False)
    return ids + list(opening)


class TransformersBackend:
    """Judges requests with a Hugging Face causal LM and its tokenizer.

    Args:
        max_batch_size: prompts per forward pass (a pair's two orders count as two).
        max_batch_tokens: padded tokens per forward pass.
        share_prefix: compute the common prefix of a pair's two orders once
            (score and constrained modes; needs sdpa or eager attention).
        max_length: the longest prompt the model may read; by default the
            model's ``max_position_embeddings``.
        overflow: what to do with a longer prompt: ``"error"`` (that request
            gets an :class:`InputError`) or ``"truncate"`` (its responses are
            cut in the middle with a visible marker, and a warning is logged).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        name: str | None = None,
        share_prefix: bool = True,
        max_length: int | None = None,
        overflow: Overflow = "error",
    ) -> None:
        if max_batch_size < 1 or max_batch_tokens < 1:
            raise ValueError("max_batch_size and max_batch_tokens must be at least 1")
        if overflow not in OVERFLOW_POLICIES:
            raise InputError(f"unknown overflow policy '{overflow}'; choose one of {', '.join(OVERFLOW_POLICIES)}")
        if max_length is not None and max_length < 1:
            raise InputError("max_length must be at least 1")
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.name = name or getattr(model, "name_or_path", type(model).__name__)
        self.verdict_tokens = VerdictTokens.from_tokenizer(tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.stop_ids = _stop_ids(model, tokenizer)
        self.max_length = max_length if max_length is not None else getattr(model.config, "max_position_embeddings", None)
        self.overflow: Overflow = overflow
        attention = str(getattr(model.config, "_attn_implementation", None))
        self.share_prefix = share_prefix and attention in TREE_MASK_ATTENTION
        if share_prefix and not self.share_prefix:
            logger.info("prefix sharing is off: %s attention takes no custom attention mask", attention)
        # On the CPU, attention cut along the tree (``_tree_attention``) beats one masked
        # sdpa call; on a GPU the many small calls it makes have not been measured.
        self.tree_kernel = self.share_prefix and attention == "sdpa" and model.device.type == "cpu"
        # flash-attention reads prompts laid end to end as separate sequences (varlen
        # kernels), so its batches need no padding at all.
        self.pack_prompts = attention.startswith("flash_attention")
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
        share_prefix: bool = True,
        max_length: int | None = None,
        overflow: Overflow = "error",
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
        return cls(
            loaded,
            tokenizer,
            max_batch_size=max_batch_size,
            max_batch_tokens=max_batch_tokens,
            name=model,
            share_prefix=share_prefix,
            max_length=max_length,
            overflow=overflow,
        )

    def prompt_ids(self, request: VerdictRequest) -> list[int]:
        """The exact token ids the model reads for ``request``."""
        opening = self.verdict_tokens.opening if request.mode != "generate" else ()
        return chat_prompt_ids(self.tokenizer, request.messages, prefill=request.prefill, opening=opening)

    def run(self, requests: Sequence[VerdictRequest]) -> list[BackendOutput]:
        prompts = self._prompts(requests)
        outputs = [prompt if isinstance(prompt, BackendOutput) else None for prompt in prompts]
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for index, (request, prompt) in enumerate(zip(requests, prompts)):
            if not isinstance(prompt, BackendOutput):
                groups[(request.mode, request.verdicts, request.max_new_tokens)].append(index)
        for (mode, verdicts, max_new_tokens), indices in groups.items():
            sequences: list[list[int]] = [prompts[i] for i in indices]  # type: ignore[misc]
            shared = self.share_prefix and mode != "generate"
            keys = [pair_key(requests[i]) if shared else None for i in indices]
            families = find_families(sequences, keys, max_members=MAX_FAMILY)
            widths = [family.width(sequences) for family in families]
            sizes = [len(family.members) for family in families]
            step = self._step(mode, verdicts, max_new_tokens)
            for batch in plan_batches(widths, sizes, max_prompts=self.max_batch_size, max_tokens=self.max_batch_tokens):
                for position, output in self._halving_on_oom([families[i] for i in batch], sequences, step):
                    outputs[indices[position]] = output
        return outputs  # type: ignore[return-value]

    # --- counting and fitting -----------------------------------------------------------------

    def _prompts(self, requests: Sequence[VerdictRequest]) -> list[list[int] | BackendOutput]:
        """Token ids per request, or an error output for a request that does not fit the model."""
        counted = [self.prompt_ids(request) for request in requests]
        prompts: list[list[int] | BackendOutput] = list(counted)
        if self.max_length is None:
            return prompts
        # Generation writes into the same context, so its budget is reserved up front.
        reserved = [request.max_new_tokens if request.mode == "generate" else 0 for request in requests]
        over = [len(ids) + extra > self.max_length for ids, extra in zip(counted, reserved)]
        if self.overflow == "error":
            return [
                BackendOutput(error=too_long_error(len(ids), extra, self.max_length)) if too_long else ids
                for ids, extra, too_long in zip(counted, reserved, over)
            ]
        # When one order of a pair is too long, both orders are shortened alike: the
        # model must see the same two answers in either order.
        shorten = {pair_key(request) for request, too_long in zip(requests, over) if too_long}
        truncator = Truncator(self.tokenizer, lambda request: len(self.prompt_ids(request)))
        for index, request in enumerate(requests):
            if shorten and pair_key(request) in shorten:
                try:
                    prompts[index] = self.prompt_ids(truncator.fit(request, self.max_length - reserved[index]))
                except InputError as error:
                    prompts[index] = BackendOutput(error=error)
        return prompts

    # --- batches ------------------------------------------------------------------------------

    def _batches(self, sequences: Sequence[Sequence[int]]) -> Iterator[list[int]]:
        """Indices of lone prompts grouped longest first, within the size and padded-token budget."""
        return plan_batches(
            [len(ids) for ids in sequences], [1] * len(sequences),
            max_prompts=self.max_batch_size, max_tokens=self.max_batch_tokens,
        )

    def _step(self, mode: str, verdicts: tuple[str, ...], max_new_tokens: int) -> JudgeStep:
        if mode == "score":
            return lambda families, sequences: self._score(families, sequences, verdicts)
        if mode == "constrained":
            return lambda families, sequences: self._constrained(families, sequences, verdicts)
        return lambda families, sequences: self._generate(families, sequences, max_new_tokens)

    def _halving_on_oom(
        self, families: Sequence[Family], sequences: Sequence[Sequence[int]], step: JudgeStep
    ) -> list[tuple[int, BackendOutput]]:
        """Run ``step`` on a batch; on CUDA out-of-memory, retry the same prompts in two halves.

        Only a pass that completes produces outputs, so a prompt is never lost
        nor judged twice. A prompt that does not fit even alone gets an error.
        """
        try:
            return step(families, sequences)
        except _out_of_memory_errors():
            pass  # retried below, outside the handler: the traceback's frames hold the failed pass's tensors
        _release_cached_memory()
        halves = split_for_retry(families)
        if halves is None:
            (index,) = families[0].members
            message = (f"out of GPU memory on a single prompt of {len(sequences[index])} tokens; "
                       "lower max_length (with overflow='truncate') or use a smaller dtype or model")
            return [(index, BackendOutput(error=ModelError(message)))]
        prompts = sum(len(family.members) for family in families)
        logger.warning("CUDA out of memory on a batch of %d prompts; retrying them in two halves", prompts)
        return [item for half in halves for item in self._halving_on_oom(half, sequences, step)]

    # --- the three modes ----------------------------------------------------------------------

    def _score(
        self, families: Sequence[Family], sequences: Sequence[Sequence[int]], verdicts: tuple[str, ...]
    ) -> list[tuple[int, BackendOutput]]:
        logits = self._next_token_logits(families, sequences)
        letter_ids = [self.verdict_tokens.letters[letter] for letter in verdicts]
        chosen = logits.softmax(dim=-1)[:, letter_ids].tolist()
        members = [index for family in families for index in family.members]
        return [(index, BackendOutput(letter_probs=dict(zip(verdicts, row)))) for index, row in zip(members, chosen)]

    def _constrained(
        self, families: Sequence[Family], sequences: Sequence[Sequence[int]], verdicts: tuple[str, ...]
    ) -> list[tuple[int, BackendOutput]]:
        """Greedy constrained decoding of the verdict after the prefilled opening.

        The first constrained token decides the letter; after it the grammar
        leaves exactly one text (the closing ``]]``), so that text is written
        out rather than decoded token by token: the same output as running
        the processor through ``generate``, without the extra passes.
        """
        import torch

        logits = self._next_token_logits(families, sequences)
        processor = self._verdict_processor(verdicts)
        processor.reset()
        last_ids = torch.tensor([[self.verdict_tokens.opening[-1]]] * logits.shape[0], device=logits.device)
        with torch.inference_mode():  # the processor masks the logits in place
            chosen = processor(last_ids, logits).argmax(dim=-1).tolist()
        opening = decode_text(self.tokenizer, self.verdict_tokens.opening)
        closing = decode_text(self.tokenizer, self.verdict_tokens.closing)
        members = [index for family in families for index in family.members]
        outputs = []
        for index, token in zip(members, chosen):
            letter = decode_text(self.tokenizer, [token])[:1]
            if letter not in verdicts:
                raise ModelError(f"the verdict constraint let through token {token} ({decode_text(self.tokenizer, [token])!r})")
            outputs.append((index, BackendOutput(text=f"{opening}{letter}{closing}")))
        return outputs

    def _generate(
        self, families: Sequence[Family], sequences: Sequence[Sequence[int]], max_new_tokens: int
    ) -> list[tuple[int, BackendOutput]]:
        members = [index for family in families for index in family.members]
        new_ids = self._greedy([sequences[i] for i in members], max_new_tokens)
        return [(index, BackendOutput(text=decode_text(self.tokenizer, ids, skip_special_tokens=True)))
                for index, ids in zip(members, new_ids)]

    # --- forward passes -----------------------------------------------------------------------

    def _next_token_logits(self, families: Sequence[Family], sequences: Sequence[Sequence[int]]) -> torch.Tensor:
        """Float32 next-token logits after each member's last token, members in family order."""
        if any(len(family.members) > 1 for family in families):
            return self._shared_prefix_logits(families, sequences)
        alone = [sequences[family.members[0]] for family in families]
        return self._packed_logits(alone) if self.pack_prompts else self._padded_logits(alone)

    def _packed_logits(self, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
        """One row holding the prompts end to end, positions restarting at each: no padding.

        Without a mask, transformers reads the restarts as sequence boundaries
        (flash-attention's varlen kernels; a block-diagonal mask elsewhere).
        """
        import torch

        ids = [token for prompt in sequences for token in prompt]
        positions = [position for prompt in sequences for position in range(len(prompt))]
        ends, end = [], -1
        for prompt in sequences:
            end += len(prompt)
            ends.append(end)
        device = self.model.device
        with torch.inference_mode():
            logits = self.model(
                input_ids=torch.tensor([ids], device=device),
                position_ids=torch.tensor([positions], device=device),
                logits_to_keep=torch.tensor(ends, device=device),
                use_cache=False,
            ).logits
        return logits[0].float()

    def _padded_logits(self, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
        """One left-padded pass with a plain 2D padding mask (any attention implementation)."""
        import torch

        input_ids, mask = self._pad_left(sequences)
        # Left padding shifts positions unless they are given explicitly.
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = self.model(
                input_ids=input_ids, attention_mask=mask, position_ids=position_ids, logits_to_keep=1, use_cache=False
            ).logits
        return logits[:, -1, :].float()

    def _shared_prefix_logits(self, families: Sequence[Family], sequences: Sequence[Sequence[int]]) -> torch.Tensor:
        """One pass over family rows: each prefix once, each tail attending to it and to itself."""
        import torch

        rows = [family_row(family, sequences) for family in families]
        width = max(len(row.ids) for row in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        segments = torch.full((len(rows), width), PAD_SEGMENT, dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        ends: list[tuple[int, int]] = []
        for number, row in enumerate(rows):
            offset = width - len(row.ids)  # left padding: every row ends at the last column
            input_ids[number, offset:] = torch.tensor(row.ids)
            segments[number, offset:] = torch.tensor(row.segments)
            positions[number, offset:] = torch.tensor(row.positions)
            ends += [(number, offset + end) for end in row.ends]
        # Only the columns where some member's verdict is read reach the LM head.
        columns = sorted({column for _, column in ends})
        at = {column: place for place, column in enumerate(columns)}
        device = self.model.device
        mask = tree_attention_mask(segments.to(device), self.model.dtype)
        extra: dict[str, Any] = {}
        kernel: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        if self.tree_kernel:
            extra["critic_layout"] = layouts(rows, width)
            kernel = tree_attention(self.model)
        with torch.inference_mode(), kernel:
            logits = self.model(
                input_ids=input_ids.to(device),
                attention_mask=mask,
                position_ids=positions.to(device),
                logits_to_keep=torch.tensor(columns, device=device),
                use_cache=False,
                **extra,
            ).logits
        picked = logits[[number for number, _ in ends], [at[column] for _, column in ends]]
        return picked.float()

    def _pad_left(self, sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        width = max(len(ids) for ids in sequences)
        input_ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, ids in enumerate(sequences):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            mask[row, width - len(ids) :] = 1
        return input_ids.to(self.model.device), mask.to(self.model.device)

    def _greedy(self, sequences: Sequence[Sequence[int]], max_new_tokens: int, **kwargs: Any) -> list[list[int]]:
        import torch

        input_ids, mask = self._pad_left(sequences)
        with torch.inference_mode():
            generate: Any = self.model.generate  # typed as a Tensor attribute by transformers' stubs
            output = generate(
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

            closing = decode_text(self.tokenizer, self.verdict_tokens.closing)
            tails = tuple(f"{letter}{closing}" for letter in verdicts)
            model = outlines.from_transformers(self.model, self.tokenizer)  # type: ignore[arg-type]
            generator: Any = outlines.Generator(model, Literal[tails])  # type: ignore[valid-type]
            self._processors[verdicts] = generator.logits_processor
        return self._processors[verdicts]


def tree_attention_mask(segments: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The additive 4D mask of a batch of family rows, from each column's segment (see ``_batching``).

    A query sees earlier keys of the shared prefix and of its own segment, never
    another member's tail nor padding. Additive (0 or the dtype's minimum)
    because eager attention adds it and sdpa takes it as is; a boolean mask
    would be converted again in every layer.
    """
    import torch

    width, device = segments.shape[1], segments.device
    columns = torch.arange(width, device=device)
    causal = columns[None, :] <= columns[:, None]
    query, key = segments[:, :, None], segments[:, None, :]
    visible = causal & (key != PAD_SEGMENT) & ((key == 0) | (key == query))
    # A padding query would see nothing and turn into NaN, which its keys would
    # then carry into every later layer; letting it see itself keeps it finite.
    visible |= torch.eye(width, dtype=torch.bool, device=device)
    hidden = torch.zeros(visible.shape, dtype=dtype, device=device).masked_fill(~visible, torch.finfo(dtype).min)
    return hidden[:, None, :, :]


def _out_of_memory_errors() -> tuple[type[BaseException], ...]:
    """CUDA's out-of-memory error where this torch build has one (CPU builds may not)."""
    import torch

    error = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    return (error,) if isinstance(error, type) else ()


def _release_cached_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


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
