"""The one prompt encoder: what every backend (local or remote) feeds its model, and how it reads the answer back.

:class:`PromptEncoder` holds a model's Hugging Face tokenizer (and its
generation config, its length limit and the overflow policy) and does, once
for every engine:

- a judge prompt: the template's chat messages through the model's chat
  template into token ids, judged text always read as plain text
  (:mod:`critic.backends.tokens`), the template's own BOS the only one, the
  verdict opening ``[[`` prefilled in score and constrained modes
  (:meth:`~PromptEncoder.prompt_ids`);
- the length fit: every prompt counted, a prompt over the limit failed with a
  reason or its responses cut in the middle (:meth:`~PromptEncoder.fit`, see
  :mod:`critic.backends._overflow`);
- the verdict letters' token ids, their probabilities from an engine's
  log-probabilities, the constrained verdict's text, where generation stops and
  the decoded generation;
- a reward model's conversation: token ids with exactly one BOS, counted
  against the limit (:meth:`~PromptEncoder.conversation_ids`,
  :meth:`~PromptEncoder.encode_conversations`), and its score put back in the
  conversation's place (:func:`scored_in_place`).

A backend builds one (``PromptEncoder(tokenizer, ...)``, or
:meth:`PromptEncoder.from_pretrained` for the tokenizer alone, as a backend
whose model runs elsewhere does) and never tokenises on its own, so the same
pair is the same ids on every engine. A generative backend subclasses
:class:`EncodingBackend`, which gives it ``prompt_ids``, ``max_length`` and
``verdict_tokens`` from its encoder; a reward scorer subclasses
:class:`EncodingScorer`, which gives it ``score`` (encode, score what encoded,
check, put back in order), ``conversation_ids`` and ``max_length``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from critic.backends import loading
from critic.backends._passes import encode_each
from critic.backends.base import BackendBase, BackendOutput, ScorerBase, VerdictRequest
from critic.backends.loading import MODEL_ALTERNATIVES, ModelSource, load_generation_config, resolve_model
from critic.backends.tokens import VerdictTokens, adds_bos, plain_chat_ids, plain_text_ids
from critic.errors import CriticError, InputError, ModelError, Reason
from critic.options import OVERFLOW_POLICIES, Overflow, spelled
from critic.types import Message

if TYPE_CHECKING:
    from transformers import GenerationConfig, PreTrainedTokenizerBase


class PromptEncoder:
    """A model's tokenizer as critic uses it: prompts and conversations to ids, ids back to verdicts and text.

    Args:
        tokenizer: the model's Hugging Face tokenizer (with its chat template).
        generation_config: the model's generation config; its end-of-turn ids stop
            generation (with the tokenizer's EOS). Needed for ``stop_ids`` only.
        max_length: the most tokens the model reads (a generation's new tokens
            included); ``None``: no limit is checked here.
        overflow: what :meth:`fit` does with a prompt over ``max_length``:
            ``"error"`` (that request fails with a TOO_LONG error) or ``"truncate"``.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        *,
        generation_config: GenerationConfig | None = None,
        max_length: int | None = None,
        overflow: Overflow = "error",
    ) -> None:
        if overflow not in OVERFLOW_POLICIES:
            raise InputError(f"unknown overflow policy '{overflow}'; choose one of {', '.join(OVERFLOW_POLICIES)}")
        self.tokenizer = tokenizer
        self.generation_config = generation_config
        self.max_length = max_length
        self.overflow: Overflow = overflow

    @classmethod
    def from_pretrained(
        cls,
        model: str | ModelSource,
        *,
        trust_remote_code: bool = False,
        max_length: int | None = None,
        overflow: Overflow = "error",
        alternatives: str = MODEL_ALTERNATIVES,
    ) -> PromptEncoder:
        """The encoder of ``model`` (a hub id, a folder, a ``.gguf`` file, ``"demo"``): its tokenizer and
        generation config, no weights. For a backend whose model runs elsewhere (a server)."""
        source = model if isinstance(model, ModelSource) else resolve_model(model, alternatives=alternatives)
        # Looked up on the module at each call, as the test suite's guard against loading the demo model expects.
        tokenizer = loading.load_tokenizer(source, trust_remote_code=trust_remote_code, alternatives=alternatives)
        generation_config = load_generation_config(source, trust_remote_code=trust_remote_code,
                                                   alternatives=alternatives)
        return cls(tokenizer, generation_config=generation_config, max_length=max_length, overflow=overflow)

    # --- judge prompts -------------------------------------------------------------------------

    @functools.cached_property
    def verdict_tokens(self) -> VerdictTokens:
        """How the tokenizer spells ``[[X]]`` (read once, on first use: a reward model's tokenizer never needs it)."""
        return VerdictTokens.from_tokenizer(self.tokenizer)

    def chat_ids(self, messages: Sequence[Message], *, prefill: str = "", opening: Sequence[int] = ()) -> list[int]:
        """Token ids of chat messages through the model's chat template, with assistant text appended.

        Message texts and ``prefill`` are read as plain text: only the chat
        template's own markers become control tokens. The template is trusted
        to write its BOS once.
        """
        ids = plain_chat_ids(self.tokenizer, messages, add_generation_prompt=True)
        if prefill:
            ids += plain_text_ids(self.tokenizer, prefill)
        return ids + list(opening)

    def prompt_ids(self, request: VerdictRequest) -> list[int]:
        """The exact token ids a generative backend feeds the model for ``request`` (every engine alike).

        Score and constrained modes end with the verdict's opening (``[[``) prefilled.
        """
        opening = self.verdict_tokens.opening if request.mode != "generate" else ()
        return self.chat_ids(request.messages, prefill=request.prefill, opening=opening)

    def fit(self, requests: Sequence[VerdictRequest]) -> list[list[int] | BackendOutput]:
        """Token ids per request, fitted to ``max_length`` as ``overflow`` says, or an error output in its place.

        A request the tokenizer cannot take fails alone (BAD_TEXT); one over the
        limit fails alone (TOO_LONG) or, with ``overflow="truncate"``, is judged
        with both its responses cut in the middle behind a visible marker (both
        orders of a pair alike). See :mod:`critic.backends._overflow`.
        """
        from critic.backends._overflow import fitted_prompts

        return fitted_prompts(self, requests)

    # --- reading the model's answer ------------------------------------------------------------

    def letter_ids(self, verdicts: Sequence[str]) -> list[int]:
        """The token id of each verdict letter, in order (what score mode reads, what constrained mode allows)."""
        return [self.verdict_tokens.letters[letter] for letter in verdicts]

    def letter_probs(self, logprobs: Mapping[int, float], verdicts: Sequence[str]) -> dict[str, float]:
        """Each verdict letter's probability from an engine's log-probabilities by token id.

        A letter the engine gave no log-probability for is a :class:`ModelError`,
        never a zero: the probabilities must be the full-vocabulary ones.
        """
        ids = dict(zip(verdicts, self.letter_ids(verdicts), strict=True))
        missing = [letter for letter, token in ids.items() if token not in logprobs]
        if missing:
            raise ModelError(f"the engine returned no log-probability for verdict letter(s) {', '.join(missing)}")
        return {letter: math.exp(logprobs[token]) for letter, token in ids.items()}

    def constrained_verdict(self, token: int, verdicts: Sequence[str]) -> str:
        """The verdict text (``"[[A]]"``) of the one token a constrained step chose after ``[[``.

        A token that is not one of ``verdicts`` is a broken constraint: :class:`ModelError`.
        """
        text = self.decode([token])
        if text[:1] not in verdicts:
            raise ModelError(f"the verdict constraint let through token {token} ({text!r})")
        return self.verdict_text(text[:1])

    def verdict_text(self, letter: str) -> str:
        """``[[`` + letter + ``]]`` as this tokenizer spells the verdict's opening and closing."""
        return f"{self._verdict_edges[0]}{letter}{self._verdict_edges[1]}"

    @functools.cached_property
    def _verdict_edges(self) -> tuple[str, str]:
        return self.decode(self.verdict_tokens.opening), self.decode(self.verdict_tokens.closing)

    @functools.cached_property
    def stop_ids(self) -> list[int]:
        """Where generation stops: the generation config's end-of-turn ids and the tokenizer's EOS."""
        ids: set[int] = set()
        configured = getattr(self.generation_config, "eos_token_id", None)
        if isinstance(configured, int):
            ids.add(configured)
        elif configured:
            ids.update(configured)
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        if not ids:
            raise ModelError("the model has no end-of-turn token (eos_token_id); generation could not stop")
        return sorted(ids)

    def until_stop(self, ids: Sequence[int]) -> list[int]:
        """``ids`` up to (without) the first stop id."""
        stops = set(self.stop_ids)
        for position, token in enumerate(ids):
            if token in stops:
                return list(ids[:position])
        return list(ids)

    def generated_text(self, ids: Sequence[int]) -> str:
        """A generation's new ids as the text the judge parses: cut at the first stop id, special tokens left out."""
        return self.decode(self.until_stop(ids), skip_special_tokens=True)

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        """Token ids back to one string."""
        text = self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)
        assert isinstance(text, str)  # decode is typed to return lists for batches too
        return text

    # --- reward models ---------------------------------------------------------------------------

    def conversation_ids(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of a whole conversation through the chat template, with exactly one BOS.

        The model wants a BOS when its template writes one or its tokenizer adds
        one to plain text; either way it gets exactly one. A tokenizer with no BOS
        token (Qwen, say) gets none. Texts are plain text, as in judge prompts.
        """
        ids = plain_chat_ids(self.tokenizer, messages, add_generation_prompt=False)
        bos = self.tokenizer.bos_token_id
        if bos is None:
            return ids
        start = 0
        while start < len(ids) and ids[start] == bos:
            start += 1
        wants_bos = start > 0 or adds_bos(self.tokenizer)
        return [bos] + ids[start:] if wants_bos else ids[start:]

    def encode_conversations(self, conversations: Sequence[Sequence[Message]]) -> list[list[int] | CriticError]:
        """Each conversation's token ids (one BOS), or its error: text the tokenizer cannot take, or too long.

        Every reward scorer counts here, so all of them refuse the same
        conversations with the same errors. A reward model never cuts what it
        scores: ``overflow`` does not apply.
        """

        def fitting_ids(messages: Sequence[Message]) -> list[int]:
            ids = self.conversation_ids(messages)
            if self.max_length is not None and len(ids) > self.max_length:
                raise InputError(
                    f"the conversation is {len(ids)} tokens, longer than the model's context of "
                    f"{self.max_length} tokens; shorten it or leave it out (or raise {spelled('max_length')} "
                    "if the model reads longer inputs)",
                    kind=Reason.TOO_LONG,
                )
            return ids

        return encode_each(conversations, fitting_ids, "conversation")


class EncodingBackend(BackendBase):
    """A backend that feeds its model through ``self.encoder`` (a :class:`PromptEncoder`).

    ``prompt_ids``, ``max_length`` and ``verdict_tokens`` are the encoder's, the
    same on every engine; the subclass sets ``self.encoder`` and writes ``run``.
    """

    encoder: PromptEncoder

    @property
    def max_length(self) -> int | None:
        """The longest prompt the model reads, new tokens included (the model's or engine's context, capped by
        ``limits.max_length``)."""
        return self.encoder.max_length

    @property
    def verdict_tokens(self) -> VerdictTokens:
        return self.encoder.verdict_tokens

    def prompt_ids(self, request: VerdictRequest) -> list[int]:
        """The exact token ids the model reads for ``request``."""
        return self.encoder.prompt_ids(request)


class EncodingScorer(ScorerBase):
    """A reward scorer that feeds its model through ``self.encoder`` (a :class:`PromptEncoder`).

    ``score`` encodes the conversations (:meth:`PromptEncoder.encode_conversations`),
    hands the ones that encoded to ``_score_ids`` and puts each result back in its
    conversation's place (:func:`scored_in_place`), so every engine refuses and
    checks the same conversations the same way. The subclass sets
    ``self.encoder`` and writes ``_score_ids``.
    """

    encoder: PromptEncoder

    @property
    def max_length(self) -> int | None:
        """The most tokens per conversation (the model's or engine's context, capped by ``limits.max_length``)."""
        return self.encoder.max_length

    def conversation_ids(self, messages: Sequence[Message]) -> list[int]:
        """The exact token ids the model reads for ``messages``."""
        return self.encoder.conversation_ids(messages)

    def score(self, conversations: Sequence[Sequence[Message]]) -> list[float | CriticError]:
        encoded = self.encoder.encode_conversations(conversations)
        sequences = [ids for ids in encoded if isinstance(ids, list)]
        return scored_in_place(encoded, self._score_ids(sequences) if sequences else [])

    def _score_ids(self, sequences: list[list[int]]) -> list[float | CriticError]:
        """The model's raw score (or the error it met) for each conversation's token ids, in order."""
        raise NotImplementedError


def scored_in_place(
    encoded: Sequence[list[int] | CriticError], scores: Sequence[float | CriticError]
) -> list[float | CriticError]:
    """Each conversation's score, or the error it met, in order.

    ``encoded`` is what :meth:`PromptEncoder.encode_conversations` gave; ``scores``
    are those of the conversations that encoded, in order. A non-finite score
    becomes a :class:`ModelError` in its place. (Not ``critic.judges.each``: the
    backends sit below the judges, and importing that package would import them.)
    """
    expected = sum(isinstance(ids, list) for ids in encoded)
    if len(scores) != expected:
        raise ModelError(f"the model returned {len(scores)} scores for {expected} conversations")
    found = iter(scores)
    return [ids if isinstance(ids, CriticError) else _checked_score(next(found)) for ids in encoded]


def _checked_score(value: float | CriticError) -> float | CriticError:
    """``value``, or a :class:`ModelError` in its place when the model returned a non-finite score."""
    if isinstance(value, CriticError) or math.isfinite(value):
        return value
    return ModelError(f"the model returned a non-finite score ({value}); try dtype fp32 or bf16")
