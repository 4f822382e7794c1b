"""Tokens: how both transformers backends turn chat messages into the ids the model reads, and where generation stops.

A judge prompt goes through ``apply_chat_template(tokenize=True)``, which
writes exactly one BOS (rendering to text and tokenising again would double it
on Llama-3). A reward model's conversation is rendered to text and tokenised
once, then given exactly one BOS whatever the template does: the Skywork-Reward
templates dropped their BOS so that tokenising the rendered text adds it once,
other templates write it and would get two that way, and
``apply_chat_template(tokenize=True)`` on a template without one gives none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from critic.backends.base import VERDICT_OPENING
from critic.errors import ModelError
from critic.types import Message

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class VerdictTokens:
    """How a tokenizer spells ``[[X]]``: shared opening ids, one id per letter, shared closing ids."""

    opening: tuple[int, ...]
    letters: dict[str, int]
    closing: tuple[int, ...]

    @classmethod
    def from_tokenizer(
        cls, tokenizer: PreTrainedTokenizerBase, letters: Sequence[str] = ("A", "B", "C")
    ) -> VerdictTokens:
        spelled = {letter: tokenizer.encode(f"{VERDICT_OPENING}{letter}]]", add_special_tokens=False)
                   for letter in letters}
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


def stop_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
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


def until_stop(ids: list[int], stop_ids: Sequence[int]) -> list[int]:
    for position, token in enumerate(ids):
        if token in stop_ids:
            return ids[:position]
    return ids
