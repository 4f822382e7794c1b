"""How the transformers backend lays prompts out for the model: families, rows, batches.

The two orders of a pair are the same prompt up to where the responses start
(instructions, question: often more than half the tokens). A *family* is a set
of prompts that share such a token prefix; its *row* holds the prefix once and
then each member's own tail, and the attention mask lets every tail see the
prefix and itself but not the other tails (a tree instead of a line). So the
prefix is computed once and its keys and values serve every continuation,
exactly as a reused KV cache would, in a single forward pass.

Rows are batched longest first under a prompt count and a padded-token budget,
cut where the fewest padding tokens are wasted.
This module is plain Python (no torch) so the layout can be tested on its own.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass

# Segment id of a padding column in a batch; the prefix is segment 0 and tail j is segment j + 1.
PAD_SEGMENT = -1
# What a forward pass costs beyond its tokens (reading the weights, launching
# kernels), counted in tokens. A rough setting, not tuned per device: it only
# decides whether a few rows of padding are worth one pass fewer.
PASS_COST = 128


@dataclass(frozen=True)
class Family:
    """Prompts (indices into the prompt list) that begin with the same ``prefix`` tokens.

    Every member keeps at least one token of its own, because its verdict is
    read at its own last token.
    """

    members: tuple[int, ...]
    prefix: int = 0

    def width(self, sequences: Sequence[Sequence[int]]) -> int:
        """Tokens in the family's row: the prefix once, then every tail."""
        return self.prefix + sum(len(sequences[i]) - self.prefix for i in self.members)


@dataclass(frozen=True)
class Row:
    """One family laid out as a single sequence, before padding.

    ``segments`` says which part each token belongs to (0: shared prefix,
    j + 1: member j's tail), ``positions`` is each token's position in its own
    prompt (a tail restarts right after the prefix), and ``ends`` is the column
    of each member's last token, where its next-token logits are read.
    """

    ids: tuple[int, ...]
    segments: tuple[int, ...]
    positions: tuple[int, ...]
    ends: tuple[int, ...]


def common_prefix_length(left: Sequence[int], right: Sequence[int]) -> int:
    length = 0
    for a, b in zip(left, right, strict=False):  # stops at the shorter
        if a != b:
            break
        length += 1
    return length


def find_families(
    sequences: Sequence[Sequence[int]], keys: Sequence[Hashable | None], *, max_members: int
) -> list[Family]:
    """Group prompts whose ``keys`` match (the same pair in either order) and measure their shared prefix.

    The key is only a hint of which prompts are worth grouping; what is shared
    is the measured common token prefix, so a wrong hint costs speed, never
    correctness. A ``None`` key keeps the prompt alone. Families keep the order
    of their first member.
    """
    grouped: dict[Hashable, list[int]] = {}
    order: list[list[int]] = []
    for index, key in enumerate(keys):
        if key is not None and key in grouped and len(grouped[key]) < max_members:
            grouped[key].append(index)
            continue
        members = [index]
        order.append(members)
        if key is not None:
            grouped[key] = members
    families = []
    for members in order:
        if len(members) == 1:
            families.append(Family((members[0],)))
            continue
        first = sequences[members[0]]
        shared = min(common_prefix_length(first, sequences[i]) for i in members[1:])
        # Leave every member at least its last token: that is where its verdict is read.
        shared = min(shared, *(len(sequences[i]) - 1 for i in members))
        families.append(Family(tuple(members), max(shared, 0)))
    return families


def family_row(family: Family, sequences: Sequence[Sequence[int]]) -> Row:
    """Lay a family out as one row: its prefix once, then each member's tail."""
    prefix = list(sequences[family.members[0]][: family.prefix])
    ids, segments, positions = list(prefix), [0] * len(prefix), list(range(len(prefix)))
    ends = []
    for number, index in enumerate(family.members, start=1):
        tail = sequences[index][family.prefix :]
        ids += tail
        segments += [number] * len(tail)
        positions += range(family.prefix, family.prefix + len(tail))
        ends.append(len(ids) - 1)
    return Row(tuple(ids), tuple(segments), tuple(positions), tuple(ends))


def plan_batches(
    widths: Sequence[int],
    sizes: Sequence[int],
    *,
    max_prompts: int,
    max_tokens: int,
    pass_cost: int = PASS_COST,
) -> Iterator[list[int]]:
    """Row indices in batches, longest rows first; each batch holds at most ``max_prompts``
    prompts (a family's row counts its members) and ``max_tokens`` padded tokens.

    Rows are sorted by width and cut into runs of neighbours so as to spend the
    fewest padded tokens plus ``pass_cost`` per forward pass (a dynamic
    programme over the cut points). Filling every batch to the limit instead
    would put a short row beside a long one whenever the lengths thin out.
    A row that alone exceeds a limit still gets a batch of its own: the limits
    shape batches, they never drop work (a row too long for memory is the
    out-of-memory handler's business).
    """
    order = sorted(range(len(widths)), key=lambda i: widths[i], reverse=True)
    # cost[end]: the cheapest way to batch order[:end]; start[end]: where its last batch begins.
    cost = [0.0] + [float("inf")] * len(order)
    start = [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        prompts = 0
        for begin in range(end - 1, -1, -1):  # the batch order[begin:end]; its widest row is order[begin]
            prompts += sizes[order[begin]]
            rows, widest = end - begin, widths[order[begin]]
            if rows > 1 and (prompts > max_prompts or rows * widest > max_tokens):
                break  # growing the batch further only adds prompts and width
            candidate = cost[begin] + rows * widest + pass_cost
            if candidate < cost[end]:
                cost[end], start[end] = candidate, begin
    cuts, end = [], len(order)
    while end:
        cuts.append((start[end], end))
        end = start[end]
    for begin, end in reversed(cuts):
        yield order[begin:end]


def split_for_retry(families: Sequence[Family]) -> list[list[Family]] | None:
    """Two halves of a batch to retry after running out of memory, or ``None`` for a lone prompt.

    A batch of one family splits into its members, each judged alone (their
    row is then shorter than the shared one).
    """
    if len(families) > 1:
        half = len(families) // 2
        return [list(families[:half]), list(families[half:])]
    (family,) = families
    if len(family.members) == 1:
        return None
    members = [Family((index,)) for index in family.members]
    half = len(members) // 2
    return [members[:half], members[half:]]
