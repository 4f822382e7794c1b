"""Prompts longer than the model reads: a clear per-request error, or responses cut in the middle.

The policy is explicit. ``overflow="error"`` (the default) fails only the
requests that do not fit, saying by how much. ``overflow="truncate"`` shortens
``response_a`` and ``response_b`` in the middle, token-wise, keeping the head
and the tail of each and putting a visible marker where text was removed, and
logs every pair it shortened. Nothing is ever cut silently.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from critic.backends._passes import encode_each
from critic.backends.base import BackendOutput, VerdictRequest
from critic.errors import CriticError, InputError, Reason
from critic.options import spelled
from critic.types import Message

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from critic.backends.encoder import PromptEncoder

logger = logging.getLogger("critic")

CUT_MARKER = "\n[... {count} tokens cut by critic ...]\n"
# Re-tokenising around a cut can move the count by a few tokens; a few more tries absorb that.
MAX_ATTEMPTS = 8


def pair_key(request: VerdictRequest) -> Hashable:
    """The same key for both presentation orders of one pair under one template and mode."""
    pair = request.pair
    def turns(messages: tuple[Message, ...]) -> tuple[tuple[str, str], ...]:
        return tuple((message["role"], message["content"]) for message in messages)

    # Each answer travels with its own earlier turns (two-conversation pairs), so they are sorted together.
    responses = tuple(sorted(((pair.response_a, turns(pair.history_a)), (pair.response_b, turns(pair.history_b)))))
    return (request.template.name, request.mode, request.prefill, pair.prompt, pair.reference, turns(pair.history),
            turns(pair.reference_history), responses)


def fitted_prompts(encoder: PromptEncoder, requests: Sequence[VerdictRequest]) -> list[list[int] | BackendOutput]:
    """Token ids per request, or an error output for a request the tokenizer or the model cannot take.

    :meth:`PromptEncoder.fit` is this: every generative backend counts and fits
    its prompts here, so all of them fail, shorten and warn alike.
    ``encoder.max_length`` is the most tokens the model reads (a generation's new
    tokens included: their budget is reserved up front); ``encoder.overflow`` is
    ``"error"`` (that request gets a TOO_LONG error) or ``"truncate"`` (every pair
    too long in either order is shortened in the middle, both orders alike).
    Prompts are counted with ``encoder.prompt_ids``, looked up at each call.
    """
    max_length = encoder.max_length
    prompts = [_as_prompt(item) for item in encode_each(requests, encoder.prompt_ids, "judge prompt")]
    if max_length is None:
        return prompts
    budgets = [max_length - (request.max_new_tokens if request.mode == "generate" else 0) for request in requests]
    over = [isinstance(ids, list) and len(ids) > budget for ids, budget in zip(prompts, budgets, strict=True)]
    if encoder.overflow == "truncate":
        # Both orders are shortened alike: the model must see the same two answers in either order.
        shorten = {pair_key(request) for request, too_long in zip(requests, over, strict=True) if too_long}
        truncator = Truncator(encoder)
        to_fit = [index for index, request in enumerate(requests)
                  if isinstance(prompts[index], list) and pair_key(request) in shorten]
        fitted = encode_each(to_fit, lambda index: encoder.prompt_ids(truncator.fit(requests[index], budgets[index])),
                             "judge prompt")
        for index, encoded in zip(to_fit, fitted, strict=True):
            prompts[index] = _as_prompt(encoded)
        return prompts
    for index, too_long in enumerate(over):
        if too_long:
            tokens = len(prompts[index])  # type: ignore[arg-type]  # a list wherever over is true
            prompts[index] = BackendOutput(error=too_long_error(tokens, max_length - budgets[index], max_length))
    return prompts


def _as_prompt(encoded: list[int] | CriticError) -> list[int] | BackendOutput:
    return BackendOutput(error=encoded) if isinstance(encoded, CriticError) else encoded


def too_long_error(tokens: int, reserved: int, limit: int) -> InputError:
    """A prompt over the limit, said for Python and command-line users alike (``spelled``)."""
    wanted = f"{tokens} tokens" if not reserved else f"{tokens} tokens plus {reserved} new tokens"
    return InputError(
        f"the judge prompt is {wanted}; the model reads at most {limit}. Shorten the pair, raise "
        f"{spelled('max_length')} if the model allows longer inputs, or use {spelled('overflow', 'truncate')} "
        "to shorten responses in the middle",
        kind=Reason.TOO_LONG,
    )


class Truncator:
    """Shortens pairs in the middle until their prompt fits ``budget`` tokens.

    Both orders of a pair get the same shortened texts (a pair is shortened
    once, for whichever order is longer, and remembered), so the two orders
    still show the model the same answers.
    """

    def __init__(self, encoder: PromptEncoder) -> None:
        self.encoder = encoder
        self.tokenizer = encoder.tokenizer
        self._done: dict[Hashable, dict[str, str]] = {}

    def fit(self, request: VerdictRequest, budget: int) -> VerdictRequest:
        """``request`` with its responses shortened to fit ``budget`` tokens; InputError when impossible."""
        key = (pair_key(request), budget)
        if key not in self._done:
            self._done[key] = self._shorten(request, budget)
        texts = self._done[key]
        pair = request.pair
        return request.with_pair(replace(pair, response_a=texts[pair.response_a], response_b=texts[pair.response_b]))

    def count(self, request: VerdictRequest) -> int:
        return len(self.encoder.prompt_ids(request))

    def _shorten(self, request: VerdictRequest, budget: int) -> dict[str, str]:
        pair = request.pair
        swapped = request.with_pair(pair.swapped())
        ids = {text: self.tokenizer.encode(text, add_special_tokens=False)
               for text in (pair.response_a, pair.response_b)}
        longest = max(self.count(request), self.count(swapped))
        to_cut = longest - budget + 2 * _marker_tokens(self.tokenizer)
        total = len(ids[pair.response_a]) + len(ids[pair.response_b])
        for _ in range(MAX_ATTEMPTS):
            if to_cut >= total:
                break
            cuts = _share_cut(len(ids[pair.response_a]), len(ids[pair.response_b]), to_cut)
            texts = {pair.response_a: self._cut(pair.response_a, ids[pair.response_a], cuts[0]),
                     pair.response_b: self._cut(pair.response_b, ids[pair.response_b], cuts[1])}
            shortened = replace(pair, response_a=texts[pair.response_a], response_b=texts[pair.response_b])
            orders = (request.with_pair(shortened), swapped.with_pair(shortened.swapped()))
            longest_now = max(self.count(order) for order in orders)
            over = longest_now - budget
            if over <= 0:
                logger.warning(
                    "shortened a pair to fit the model (%s): response_a by %d and response_b by %d "
                    "of %d and %d tokens, marked in the text; its prompt was %d tokens, the budget %d",
                    spelled("overflow", "truncate"), cuts[0], cuts[1], len(ids[pair.response_a]),
                    len(ids[pair.response_b]), longest, budget,
                )
                return texts
            to_cut += over + 4
        raise InputError(
            f"the judge prompt is {longest} tokens and cannot fit {budget} even with the responses cut: the prompt, "
            f"the template and the history alone are too long. Shorten the question or raise {spelled('max_length')}",
            kind=Reason.TOO_LONG,
        )

    def _cut(self, text: str, ids: list[int], count: int) -> str:
        if count <= 0:
            return text
        keep = len(ids) - count
        head, tail = ids[: keep - keep // 2], ids[len(ids) - keep // 2 :]
        marker = CUT_MARKER.format(count=count)
        return self.encoder.decode(head) + marker + self.encoder.decode(tail)


def _share_cut(left: int, right: int, count: int) -> tuple[int, int]:
    """Split ``count`` tokens to cut between two responses so that the longer one loses first
    and, once they are level, both lose alike (neither is emptied before the other)."""
    keep = left + right - count
    if left <= right:
        kept_left = min(left, keep // 2)
        return left - kept_left, count - (left - kept_left)
    kept_right = min(right, keep // 2)
    return count - (right - kept_right), right - kept_right


def _marker_tokens(tokenizer: PreTrainedTokenizerBase) -> int:
    return len(tokenizer.encode(CUT_MARKER.format(count=10**6), add_special_tokens=False))
