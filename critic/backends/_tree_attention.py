"""Attention for family rows that computes only what the tree mask lets through.

A family row is ``prefix | tail 1 | tail 2 ...`` (see ``_batching``). With one
4D mask, sdpa computes every query against every key of the row and throws the
hidden part away, and it cannot skip the upper triangle as it does for plain
causal attention. Here each row is cut into the pieces that really attend to
each other: ``prefix + tail 1`` is plain causal attention, and each later tail
attends to the prefix and, causally, to itself. Padding is skipped. Row 4c
of benchmarks/throughput.py times the masked pass beside it; the results equal
the masked pass within float rounding (tests/backends/test_engine.py).

The function is registered with transformers' ``AttentionInterface`` and used
only inside :func:`tree_attention`, which points the model's config at it for
one forward pass and restores it afterwards (so a model shared between threads
must not run other passes meanwhile).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from critic.backends._batching import PAD_SEGMENT, Row

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

ATTENTION_NAME = "critic_tree"

# Per row of a batch: (first real column, prefix length, tail lengths).
Layout = tuple[tuple[int, int, tuple[int, ...]], ...]


def row_layout(row: Row, offset: int) -> tuple[int, int, tuple[int, ...]]:
    """Where ``row`` sits in its left-padded batch row, and its prefix and tail lengths."""
    prefix = row.segments.count(0)
    starts = (prefix - 1, *row.ends[:-1])
    return offset, prefix, tuple(end - start for start, end in zip(starts, row.ends, strict=True))


def _tree_attention_forward(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    *,
    critic_layout: Layout,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature: (batch, heads, columns, dim) in, (batch, columns, heads, dim) out."""
    import torch
    from torch.nn.functional import scaled_dot_product_attention as attend

    out = query.new_zeros(query.shape)  # padding columns: attended by nobody, zero is as good as anything
    for number, (start, prefix, tails) in enumerate(critic_layout):
        row = slice(number, number + 1)
        end = start + prefix + tails[0]
        out[row, :, start:end] = attend(
            query[row, :, start:end], key[row, :, start:end], value[row, :, start:end],
            is_causal=True, scale=scaling, enable_gqa=True,
        )
        for tail in tails[1:]:
            keys = torch.cat([key[row, :, start:start + prefix], key[row, :, end:end + tail]], dim=2)
            values = torch.cat([value[row, :, start:start + prefix], value[row, :, end:end + tail]], dim=2)
            # The tail's i-th query sees the whole prefix and the tail's first i + 1 keys.
            visible = torch.ones(tail, prefix + tail, dtype=torch.bool, device=query.device).tril(prefix)
            out[row, :, end:end + tail] = attend(
                query[row, :, end:end + tail], keys, values, attn_mask=visible, scale=scaling, enable_gqa=True
            )
            end += tail
    return out.transpose(1, 2).contiguous(), None


_registered = False


@contextmanager
def tree_attention(model: PreTrainedModel) -> Iterator[None]:
    """Run ``model``'s forward passes inside the block with the tree attention above.

    The passes must give ``critic_layout=`` (a :data:`Layout`) as a keyword argument.
    """
    global _registered
    if not _registered:
        from transformers import AttentionInterface

        AttentionInterface.register(ATTENTION_NAME, _tree_attention_forward)
        _registered = True
    config = model.config
    previous = config._attn_implementation
    config._attn_implementation = ATTENTION_NAME
    try:
        yield
    finally:
        config._attn_implementation = previous


def layouts(rows: Sequence[Row], width: int) -> Layout:
    """The layout of left-padded ``rows`` in a batch ``width`` columns wide."""
    return tuple(row_layout(row, width - len(row.ids)) for row in rows)


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
