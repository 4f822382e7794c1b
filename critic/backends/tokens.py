"""Tokens: chat messages to ids with judged text as plain text, and how a tokenizer spells a verdict.

The parts :class:`~critic.backends.encoder.PromptEncoder` is built from (no
backend calls these itself). A prompt is the chat template's rendering
tokenised without adding special tokens, so the template's own BOS is the only
one (tokenising the rendered text with ``add_special_tokens=True`` would double
it on Llama-3). A reward model's conversation is tokenised the same way, then
given exactly one BOS whatever the template does (``adds_bos`` tells what the
tokenizer adds to plain text): the Skywork-Reward templates dropped their BOS
so that tokenising the rendered text adds it once, other templates write it,
and a template without one gives none.

Judged text is always plain text (``plain_chat_ids``): a response that spells
``<|eot_id|>`` gets ordinary text tokens, never the control token."""

from __future__ import annotations

import contextlib
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from critic.backends.base import VERDICT_OPENING
from critic.errors import ModelError
from critic.types import Message

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


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


def plain_chat_ids(
    tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message], *, add_generation_prompt: bool
) -> list[int]:
    """The chat template's rendering tokenised so that only the template's own markers are control tokens.

    A judged text that spells a special token (``<|eot_id|>``, ``<|im_start|>``) would otherwise
    become that token, letting a policy under judgment close the judge's prompt and write its
    own verdict. Each such spelling in a message is swapped for a private placeholder before
    rendering, and the placeholder is tokenised afterwards as the ordinary text it spells.
    Text without such spellings tokenises exactly as ``apply_chat_template(tokenize=True)``.
    """
    contents = [message["content"] for message in messages]
    spellings = _special_spellings(tokenizer, contents)
    escape = _Escape(spellings, contents) if spellings else None
    chat = [{"role": message["role"], "content": escape.text(message["content"]) if escape else message["content"]}
            for message in messages]
    text: Any = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=add_generation_prompt)
    if escape is None:
        return _ids(tokenizer, str(text))
    ids: list[int] = []
    for piece, spelled in escape.pieces(str(text)):
        ids += plain_text_ids(tokenizer, spelled) if spelled else _ids(tokenizer, piece)
    return ids


def plain_text_ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """``text`` as ordinary text tokens, whatever special-token strings it spells."""
    spellings = _special_spellings(tokenizer, [text])
    if not spellings:
        return _ids(tokenizer, text)
    ids = list(tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])
    control = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)
    if any(token in control for token in ids):
        # Some tokenizers match non-special added tokens even then: cut each spelling in two.
        ids = []
        for piece in _split_spellings(text, spellings):
            ids += _ids(tokenizer, piece)
    return ids


def _ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _special_spellings(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[str]:
    """The added-token strings (special or not) that occur in any of ``texts``, longest first."""
    pattern = _spelling_pattern(tokenizer)
    if pattern is None:
        return []
    found = {match for text in texts for match in pattern.findall(text)}
    return sorted(found, key=lambda spelling: (-len(spelling), spelling))


# Every prompt is scanned, so each tokenizer's added-token strings are compiled into one pattern once
# (and again only if tokens are added to it).
_PATTERNS: weakref.WeakKeyDictionary[Any, tuple[int, re.Pattern[str] | None]] = weakref.WeakKeyDictionary()


def _spelling_pattern(tokenizer: PreTrainedTokenizerBase) -> re.Pattern[str] | None:
    size = len(tokenizer) if hasattr(tokenizer, "__len__") else -1  # the vocabulary grows when tokens are added
    cached = _PATTERNS.get(tokenizer)
    if cached is not None and cached[0] == size:
        return cached[1]
    strings = sorted({str(token) for token in tokenizer.get_added_vocab() if str(token)},
                     key=lambda spelling: (-len(spelling), spelling))
    pattern = re.compile("|".join(re.escape(spelling) for spelling in strings)) if strings else None
    with contextlib.suppress(TypeError):  # an object that takes no weak reference goes without the cache
        _PATTERNS[tokenizer] = (size, pattern)
    return pattern


def _split_spellings(text: str, spellings: Sequence[str]) -> list[str]:
    pattern = re.compile("|".join(re.escape(spelling) for spelling in spellings))
    pieces: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        spelling = match.group()
        pieces += [text[last : match.start()], spelling[:1], spelling[1:]]
        last = match.end()
    return [piece for piece in [*pieces, text[last:]] if piece]


class _Escape:
    """Swaps special-token spellings for numbered placeholders no message contains, and back."""

    def __init__(self, spellings: Sequence[str], contents: Sequence[str]) -> None:
        self.spellings = list(spellings)
        self.pattern = re.compile("|".join(re.escape(spelling) for spelling in spellings))
        # Two private-use characters that occur in no message delimit the placeholders.
        free = (chr(code) for code in range(0xE000, 0xF8FF) if not any(chr(code) in text for text in contents))
        self.open, self.close = next(free), next(free)
        self.placeholder = re.compile(re.escape(self.open) + r"(\d+)" + re.escape(self.close))

    def text(self, content: str) -> str:
        return self.pattern.sub(lambda match: f"{self.open}{self.spellings.index(match.group())}{self.close}",
                                content)

    def pieces(self, rendered: str) -> list[tuple[str, str]]:
        """``rendered`` cut into (template text, "") and ("", spelled special string) pieces, in order."""
        pieces: list[tuple[str, str]] = []
        last = 0
        for match in self.placeholder.finditer(rendered):
            if match.start() > last:
                pieces.append((rendered[last : match.start()], ""))
            pieces.append(("", self.spellings[int(match.group(1))]))
            last = match.end()
        if last < len(rendered):
            pieces.append((rendered[last:], ""))
        return pieces


def adds_bos(tokenizer: PreTrainedTokenizerBase) -> bool:
    ids = tokenizer("x", add_special_tokens=True)["input_ids"]
    return bool(ids) and ids[0] == tokenizer.bos_token_id
