"""critic: trustworthy pairwise preference labels from a generative judge model.

    >>> import critic
    >>> judge = critic.Judge.from_pretrained("demo")          # doctest: +SKIP
    >>> judge.compare("What is 2+2?", "4", "5")                # doctest: +SKIP
    Preference(label=..., p_a=..., consistent=..., orders=(...))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from critic.backends.base import Backend, BackendOutput, VerdictRequest
from critic.backends.loading import DEFAULT_MODEL, DEMO_ALIAS
from critic.errors import (
    CriticError,
    InputError,
    MissingDependencyError,
    ModelError,
    TemplateError,
    VerdictError,
)
from critic.io.rows import Columns
from critic.jobs.datasets import filter_dataset, judge_columns
from critic.jobs.filejob import filter_file
from critic.jobs.policy import Policy
from critic.judges.generative import Judge, PairwiseJudge
from critic.judges.reward import DEFAULT_REWARD_MODEL, RewardJudge
from critic.merge import merge_orders
from critic.templates import DEFAULT_TEMPLATE, JudgeTemplate, Message, builtin_templates, load_template
from critic.types import OrderJudgment, Pair, Preference
from critic.verdicts import find_verdicts, parse_verdict

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__version__ = "0.1.0"

__all__ = [
    "Columns",
    "Policy",
    "filter_dataset",
    "filter_file",
    "judge_columns",
    "DEFAULT_MODEL",
    "DEFAULT_REWARD_MODEL",
    "DEFAULT_TEMPLATE",
    "DEMO_ALIAS",
    "Backend",
    "BackendOutput",
    "CriticError",
    "InputError",
    "Judge",
    "JudgeTemplate",
    "Message",
    "MissingDependencyError",
    "ModelError",
    "OrderJudgment",
    "PairwiseJudge",
    "RewardJudge",
    "Pair",
    "Preference",
    "TemplateError",
    "VerdictError",
    "VerdictRequest",
    "builtin_templates",
    "find_verdicts",
    "load_template",
    "merge_orders",
    "parse_verdict",
    "render_messages",
    "render_prompt",
]


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
    from critic.backends.transformers import VerdictTokens, chat_prompt_ids

    if isinstance(tokenizer, str):
        from critic.backends.loading import load_tokenizer, resolve_model

        tokenizer = load_tokenizer(resolve_model(tokenizer))
    messages = render_messages(prompt, response_a, response_b, reference=reference, template=template)
    opening: Any = VerdictTokens.from_tokenizer(tokenizer).opening if mode != "generate" else ()
    return str(tokenizer.decode(chat_prompt_ids(tokenizer, messages, opening=opening), skip_special_tokens=False))
