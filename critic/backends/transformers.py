"""The transformers backend: a causal LM judging verdict requests on CPU or GPU.

score       one forward pass over prompt + ``[[``; letter probabilities from the
            next-token distribution (only the needed positions reach the LM head).
constrained the same pass, then outlines' logits processor picks the verdict
            among ``A]]``/``B]]`` after the prefilled ``[[``, as greedy
            constrained decoding would. Prefilling matters: constraining the
            whole ``[[A]]`` lets the model spell it ``[``, ``[``, ``A``, ``]]``,
            a path it was never trained on.
generate    greedy free generation up to the end of turn (the model card's way).

Prompts are tokenised through the model's own chat template, with exactly
one BOS (``PromptEncoder``); a prompt the tokenizer cannot take fails alone.

Throughput (see ``benchmarks/``): every prompt is counted before judging and
checked against the model's context (``PromptEncoder.fit``); in score and constrained
modes the two orders of a pair share one row whose common prefix is computed
once (``_batching``); rows are batched longest first under a token budget; a
CUDA out-of-memory error halves the batch and retries the same prompts.
Results do not depend on any of this beyond float rounding (tested to 1e-4).
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from critic.backends._batching import (
    PAD_SEGMENT,
    Family,
    family_row,
    find_families,
    plan_batches,
    split_for_retry,
)
from critic.backends._overflow import pair_key
from critic.backends._passes import context_limit, halving_on_oom, out_of_memory_error, pad_batch
from critic.backends._tree_attention import layouts, tree_attention, tree_attention_mask
from critic.backends.base import BackendOutput, VerdictRequest
from critic.backends.encoder import EncodingBackend, PromptEncoder
from critic.backends.loading import load_pretrained
from critic.errors import MissingDependencyError
from critic.options import BatchLimits, LoadOptions, spelled

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


class TransformersBackend(EncodingBackend):
    """Judges requests with a Hugging Face causal LM and its tokenizer.

    Args:
        limits: prompts per forward pass (a pair's two orders count as two),
            padded tokens per pass, the longest prompt the model may read (never
            more than the model's ``max_position_embeddings``, the default) and
            what to do with a longer one: ``"error"`` (that request gets an
            :class:`InputError`) or ``"truncate"`` (its responses are cut in the
            middle with a visible marker, and a warning is logged).
        name: the model's name, for logs.
        share_prefix: compute the common prefix of a pair's two orders once
            (score and constrained modes; needs sdpa or eager attention).
    """

    kind = "transformers"

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        limits: BatchLimits = BatchLimits(),
        name: str | None = None,
        share_prefix: bool = True,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.limits = limits
        self.encoder = PromptEncoder(tokenizer, generation_config=model.generation_config, overflow=limits.overflow,
                                     max_length=context_limit(model.config, limits.max_length))
        self.name = name or getattr(model, "name_or_path", type(model).__name__)
        self.verdict_tokens.letters  # noqa: B018 - a tokenizer that cannot spell verdicts is refused at load
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
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
        load: LoadOptions = LoadOptions(),
        limits: BatchLimits = BatchLimits(),
        share_prefix: bool = True,
    ) -> TransformersBackend:
        """Load a causal LM (a hub id, a local folder, a ``.gguf`` file or ``"demo"``) as ``load`` says."""
        from transformers import AutoModelForCausalLM

        loaded, tokenizer = load_pretrained(model, AutoModelForCausalLM, load)
        return cls(loaded, tokenizer, limits=limits, name=model, share_prefix=share_prefix)

    def run(self, requests: Sequence[VerdictRequest]) -> list[BackendOutput]:
        prompts = self.encoder.fit(requests)
        outputs = [prompt if isinstance(prompt, BackendOutput) else None for prompt in prompts]
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for index, (request, prompt) in enumerate(zip(requests, prompts, strict=True)):
            if not isinstance(prompt, BackendOutput):
                groups[(request.mode, request.verdicts, request.max_new_tokens)].append(index)
        for (mode, verdicts, max_new_tokens), indices in groups.items():
            sequences: list[list[int]] = [prompts[i] for i in indices]  # type: ignore[misc]
            shared = self.share_prefix and mode != "generate"
            keys = [pair_key(requests[i]) if shared else None for i in indices]
            families = find_families(sequences, keys, max_members=MAX_FAMILY)
            step = self._step(mode, verdicts, max_new_tokens)
            for position, output in self._judge_families(families, sequences, step):
                outputs[indices[position]] = output
        return outputs  # type: ignore[return-value]

    def _judge_families(
        self, families: Sequence[Family], sequences: Sequence[Sequence[int]], step: JudgeStep
    ) -> list[tuple[int, BackendOutput]]:
        """``step`` over batches of families within the limits, each batch halved on out-of-memory."""
        widths = [family.width(sequences) for family in families]
        sizes = [len(family.members) for family in families]
        batches = plan_batches(widths, sizes, max_prompts=self.limits.max_batch_size,
                               max_tokens=self.limits.max_batch_tokens)
        return [
            item
            for batch in batches
            for item in halving_on_oom(
                [families[i] for i in batch],
                lambda part: step(part, sequences),
                split=split_for_retry,
                alone=lambda part: _alone_out_of_memory(part, sequences),
                size=lambda part: sum(len(family.members) for family in part),
            )
        ]

    # --- batches ------------------------------------------------------------------------------

    def _step(self, mode: str, verdicts: tuple[str, ...], max_new_tokens: int) -> JudgeStep:
        if mode == "score":
            return lambda families, sequences: self._score(families, sequences, verdicts)
        if mode == "constrained":
            return lambda families, sequences: self._constrained(families, sequences, verdicts)
        return lambda families, sequences: self._generate(families, sequences, max_new_tokens)

    # --- the three modes ----------------------------------------------------------------------

    def _score(
        self, families: Sequence[Family], sequences: Sequence[Sequence[int]], verdicts: tuple[str, ...]
    ) -> list[tuple[int, BackendOutput]]:
        logits = self._next_token_logits(families, sequences)
        chosen = logits.softmax(dim=-1)[:, self.encoder.letter_ids(verdicts)].tolist()
        members = [index for family in families for index in family.members]
        return [(index, BackendOutput(letter_probs=dict(zip(verdicts, row, strict=True))))
                for index, row in zip(members, chosen, strict=True)]

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
        members = [index for family in families for index in family.members]
        return [(index, BackendOutput(text=self.encoder.constrained_verdict(token, verdicts)))
                for index, token in zip(members, chosen, strict=True)]

    def _generate(
        self, families: Sequence[Family], sequences: Sequence[Sequence[int]], max_new_tokens: int
    ) -> list[tuple[int, BackendOutput]]:
        members = [index for family in families for index in family.members]
        new_ids = self._greedy([sequences[i] for i in members], max_new_tokens)
        return [(index, BackendOutput(text=self.encoder.generated_text(ids)))
                for index, ids in zip(members, new_ids, strict=True)]

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

        input_ids, mask = pad_batch(sequences, self.pad_id, self.model.device)
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

    def _greedy(self, sequences: Sequence[Sequence[int]], max_new_tokens: int, **kwargs: Any) -> list[list[int]]:
        import torch

        input_ids, mask = pad_batch(sequences, self.pad_id, self.model.device)
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
                eos_token_id=self.encoder.stop_ids,
                **kwargs,
            )
        rows: list[list[int]] = output[:, input_ids.shape[1] :].tolist()
        return rows

    def _verdict_processor(self, verdicts: tuple[str, ...]) -> Any:
        """outlines' bare regex logits processor for the verdict tail, built once per letter set.

        ``outlines.backends.get_regex_logits_processor`` (outlines >= 1.2) on the regex outlines writes for
        the tails: what ``Generator(model, Literal[tails])`` holds. ``reset()`` before each batch (the next
        call sizes it to the batch); ``processor(input_ids, logits)`` masks ``logits`` in place.
        """
        if verdicts not in self._processors:
            try:
                import outlines
                from outlines.backends import get_regex_logits_processor
                from outlines.types import either
                from outlines.types.dsl import to_regex
            except ImportError as error:
                raise MissingDependencyError("outlines", "outlines", "constrained mode") from error

            closing = self.encoder.decode(self.verdict_tokens.closing)
            tails = [f"{letter}{closing}" for letter in verdicts]
            model: Any = outlines.from_transformers(self.model, self.tokenizer)  # type: ignore[arg-type]
            self._processors[verdicts] = get_regex_logits_processor(None, model, to_regex(either(*tails)))
        return self._processors[verdicts]


def _alone_out_of_memory(
    families: Sequence[Family], sequences: Sequence[Sequence[int]]
) -> list[tuple[int, BackendOutput]]:
    (index,) = families[0].members
    error = out_of_memory_error(len(sequences[index]), "prompt",
                                f"lower {spelled('max_length')} (with {spelled('overflow', 'truncate')})")
    return [(index, BackendOutput(error=error))]
