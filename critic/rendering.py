"""What the judge model reads for a pair: the template's messages, and the exact chat-formatted text."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    from critic.backends.base import VerdictRequest
    from critic.backends.encoder import PromptEncoder

    encoder = PromptEncoder.from_pretrained(tokenizer) if isinstance(tokenizer, str) else PromptEncoder(tokenizer)
    loaded = template if isinstance(template, JudgeTemplate) else load_template(template)
    request = VerdictRequest(Pair(prompt, response_a, response_b, reference), loaded, mode)  # type: ignore[arg-type]
    return encoder.decode(encoder.prompt_ids(request))
