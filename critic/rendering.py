"""What the judge model reads for a pair: the template's messages, and the exact chat-formatted text.

:func:`render_messages` and :func:`render_prompt` take a pair's fields as
arguments, histories included, so a multi-turn pair's prompt can be previewed
before anything is judged; :func:`pair_messages` and :func:`pair_prompt` take a
:class:`~critic.types.Pair` (``critic prompt FILE`` renders rows with them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from critic.templates import DEFAULT_TEMPLATE, JudgeTemplate, Message, load_template, template_for_pair
from critic.types import Mode, Pair

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def render_messages(
    prompt: str,
    response_a: str,
    response_b: str,
    *,
    reference: str | None = None,
    history: Sequence[Message] = (),
    history_a: Sequence[Message] = (),
    history_b: Sequence[Message] = (),
    reference_history: Sequence[Message] = (),
    template: str | JudgeTemplate = DEFAULT_TEMPLATE,
) -> list[Message]:
    """The chat messages a judge template produces for a pair, before any chat formatting.

    ``history`` holds the earlier turns both answers share; ``history_a`` and
    ``history_b`` each answer's own earlier turns (MT-Bench's second turn, with
    the ``mt-bench-multi-turn`` template); ``reference_history`` the reference
    conversation's earlier turns. Each is a list of ``{"role", "content"}``
    messages; the fields mean what they mean on :class:`~critic.types.Pair`.
    """
    pair = Pair(prompt, response_a, response_b, reference, history=tuple(history), history_a=tuple(history_a),
                history_b=tuple(history_b), reference_history=tuple(reference_history))
    return pair_messages(pair, template=template)


def render_prompt(
    prompt: str,
    response_a: str,
    response_b: str,
    *,
    tokenizer: PreTrainedTokenizerBase | str,
    reference: str | None = None,
    history: Sequence[Message] = (),
    history_a: Sequence[Message] = (),
    history_b: Sequence[Message] = (),
    reference_history: Sequence[Message] = (),
    template: str | JudgeTemplate = DEFAULT_TEMPLATE,
    mode: Mode = "score",
) -> str:
    """Exactly what the model reads: the judge prompt through the model's chat template.

    ``tokenizer`` is a loaded tokenizer or a model name (``"demo"``, a folder, a
    hub id). Special tokens are shown; in ``score`` and ``constrained`` mode the
    prefilled verdict opening ``[[`` ends the text. The histories are those of
    :func:`render_messages`.
    """
    pair = Pair(prompt, response_a, response_b, reference, history=tuple(history), history_a=tuple(history_a),
                history_b=tuple(history_b), reference_history=tuple(reference_history))
    return pair_prompt(pair, tokenizer=tokenizer, template=template, mode=mode)


def pair_messages(pair: Pair, *, template: str | JudgeTemplate = DEFAULT_TEMPLATE) -> list[Message]:
    """The chat messages ``template`` produces for ``pair`` in the order given.

    A pair of two conversations (``history_a``/``history_b``) under a built-in template
    that shows one is rendered with its multi-turn variant, as the judge does
    (:func:`~critic.templates.template_for_pair`).
    """
    loaded = template if isinstance(template, JudgeTemplate) else load_template(template)
    return template_for_pair(loaded, pair).render(pair)


def pair_prompt(
    pair: Pair,
    *,
    tokenizer: PreTrainedTokenizerBase | str,
    template: str | JudgeTemplate = DEFAULT_TEMPLATE,
    mode: Mode = "score",
) -> str:
    """Exactly what the model reads for ``pair`` (see :func:`render_prompt`): the judge's own token ids, decoded."""
    from critic.backends.base import VerdictRequest
    from critic.backends.encoder import PromptEncoder

    encoder = PromptEncoder.from_pretrained(tokenizer) if isinstance(tokenizer, str) else PromptEncoder(tokenizer)
    loaded = template if isinstance(template, JudgeTemplate) else load_template(template)
    request = VerdictRequest(pair, template_for_pair(loaded, pair), mode)
    return encoder.decode(encoder.prompt_ids(request))
