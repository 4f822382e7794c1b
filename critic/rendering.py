"""What the judge model reads for a pair: the template's messages, and the exact chat-formatted text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from critic.templates import DEFAULT_TEMPLATE, JudgeTemplate, Message, load_template
from critic.types import Pair

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def render_messages(
    prompt: str,
    response_a: str,
    response_b: str,
    *,
    reference: str | None = None,
    template: str | JudgeTemplate = DEFAULT_TEMPLATE,
) -> list[Message]:
    """The chat messages a judge template produces for a pair, before any chat formatting."""
    loaded = template if isinstance(template, JudgeTemplate) else load_template(template)
    return loaded.render(Pair(prompt, response_a, response_b, reference))


def render_prompt(
    prompt: str,
    response_a: str,
    response_b: str,
    *,
    tokenizer: PreTrainedTokenizerBase | str,
    reference: str | None = None,
    template: str | JudgeTemplate = DEFAULT_TEMPLATE,
    mode: str = "score",
) -> str:
    """Exactly what the model reads: the judge prompt through the model's chat template.

    ``tokenizer`` is a loaded tokenizer or a model name (``"demo"``, a folder, a
    hub id). Special tokens are shown; in ``score`` and ``constrained`` mode the
    prefilled verdict opening ``[[`` ends the text.
    """
    from critic.backends.tokens import VerdictTokens, chat_prompt_ids

    if isinstance(tokenizer, str):
        from critic.backends.loading import load_tokenizer, resolve_model

        tokenizer = load_tokenizer(resolve_model(tokenizer))
    messages = render_messages(prompt, response_a, response_b, reference=reference, template=template)
    opening: Any = VerdictTokens.from_tokenizer(tokenizer).opening if mode != "generate" else ()
    return str(tokenizer.decode(chat_prompt_ids(tokenizer, messages, opening=opening), skip_special_tokens=False))
