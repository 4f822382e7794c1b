"""What both transformers backends (judge and reward model) do alike around a forward pass.

Tokenising one request at a time so that text the tokenizer cannot take costs
that request alone; capping the length at the model's context; padding a
batch; and, on CUDA out-of-memory, retrying the same inputs in two halves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from critic.errors import CriticError, InputError, ModelError, Reason

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig

logger = logging.getLogger("critic")

Item = TypeVar("Item")
Result = TypeVar("Result")
PADDING_SIDES = ("right", "left")


def encode_each(items: Sequence[Item], encode: Callable[[Item], list[int]], what: str) -> list[list[int] | CriticError]:
    """``encode(item)`` for every item; an item the tokenizer fails on gets an InputError (BAD_TEXT) instead.

    Tokenizers raise all sorts of things on text they cannot take (a lone
    surrogate is a ``TypeError`` in ``tokenizers``); none of it may cost the
    other items of the batch.
    """
    encoded: list[list[int] | CriticError] = []
    for item in items:
        try:
            encoded.append(encode(item))
        except CriticError as error:
            encoded.append(error)
        except Exception as error:  # noqa: BLE001 - the tokenizer's failure on this one text, reported in its place
            first_line = (str(error).strip().splitlines() or [""])[0]
            encoded.append(InputError(
                f"the tokenizer could not read this {what} ({type(error).__name__}: {first_line}); check its text "
                "for characters that are not valid Unicode and its messages against the model's chat template",
                kind=Reason.BAD_TEXT,
            ))
    return encoded


def context_limit(config: PretrainedConfig, max_length: int | None) -> int | None:
    """The most tokens an input may have: ``max_length``, never more than the model's context (``config``'s)."""
    context = getattr(config, "max_position_embeddings", None)
    limits = [value for value in (max_length, context) if isinstance(value, int) and value > 0]
    return min(limits, default=None)


def pad_batch(
    sequences: Sequence[Sequence[int]], pad_id: int, device: torch.device, *, side: str = "left"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids padded to one width on ``side``, and the attention mask (1 on real tokens)."""
    import torch

    width = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        span = slice(width - len(ids), width) if side == "left" else slice(0, len(ids))
        input_ids[row, span] = torch.tensor(list(ids), dtype=torch.long)
        mask[row, span] = 1
    return input_ids.to(device), mask.to(device)


def halving_on_oom(
    batch: Sequence[Item],
    step: Callable[[Sequence[Item]], Sequence[Result]],
    *,
    split: Callable[[Sequence[Item]], list[list[Item]] | None],
    alone: Callable[[Sequence[Item]], Sequence[Result]],
    size: Callable[[Sequence[Item]], int] = len,
) -> list[Result]:
    """``step(batch)``; on CUDA out-of-memory, the same items again in the halves ``split`` makes.

    Only a pass that completes produces results, so an item is never lost nor
    judged twice, and the results keep the batch's order. When ``split``
    returns ``None`` (one item, nothing left to halve), ``alone(batch)`` gives
    its error result.
    """
    try:
        return list(step(batch))
    except out_of_memory_errors():
        pass  # retried below, outside the handler: the traceback's frames hold the failed pass's tensors
    release_cached_memory()
    parts = split(batch)
    if parts is None:
        return list(alone(batch))
    logger.warning("CUDA out of memory on a batch of %d inputs; retrying them in two halves", size(batch))
    return [result for part in parts for result in halving_on_oom(part, step, split=split, alone=alone, size=size)]


def halves(batch: Sequence[Item]) -> list[list[Item]] | None:
    """The two halves of a batch of lone inputs, ``None`` for a single one."""
    if len(batch) < 2:
        return None
    middle = len(batch) // 2
    return [list(batch[:middle]), list(batch[middle:])]


def out_of_memory_error(tokens: int, what: str, hint: str = "") -> ModelError:
    """The error of one input that does not fit in GPU memory even alone."""
    return ModelError(f"out of GPU memory on a single {what} of {tokens} tokens; {hint or 'lower max_length'} "
                      "or use a smaller dtype or model")


def out_of_memory_errors() -> tuple[type[BaseException], ...]:
    """CUDA's out-of-memory error where this torch build has one (CPU builds may not)."""
    import torch

    error = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    return (error,) if isinstance(error, type) else ()


def release_cached_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
