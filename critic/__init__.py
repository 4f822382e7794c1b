"""critic: trustworthy pairwise preference labels from a judge model.

    >>> import critic
    >>> judge = critic.Judge.from_pretrained("demo")          # doctest: +SKIP
    >>> judge.compare("What is 2+2?", "4", "5")                # doctest: +SKIP
    Preference(label=..., p_a=..., consistent=..., orders=(...))

The names below are what users call. Internals (backends, readers, the job
machinery) stay importable from their own modules.
"""

from __future__ import annotations

from critic.client import RemoteJudge
from critic.errors import (
    CriticError,
    InputError,
    MissingDependencyError,
    ModelError,
    Reason,
    TemplateError,
    VerdictError,
)
from critic.eval.evaluate import EvalReport, evaluate
from critic.eval.pairs import LabelledPair, load_labelled_pairs
from critic.io.shapes import Columns
from critic.jobs.datasets import filter_dataset
from critic.jobs.filejob import filter_file
from critic.jobs.policy import Policy
from critic.judges import (
    DEFAULT_MODEL,
    DEFAULT_REWARD_MODEL,
    Judge,
    JudgeDescription,
    PairwiseJudge,
    RewardJudge,
)
from critic.judges.ranking import Ranking, rank
from critic.options import BatchLimits, LoadOptions, ServerOptions
from critic.rendering import render_messages, render_prompt
from critic.templates import load_template
from critic.types import OrderJudgment, Pair, Preference
from critic.verdicts import parse_verdict

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_REWARD_MODEL",
    "BatchLimits",
    "Columns",
    "CriticError",
    "EvalReport",
    "InputError",
    "Judge",
    "JudgeDescription",
    "LabelledPair",
    "LoadOptions",
    "MissingDependencyError",
    "ModelError",
    "OrderJudgment",
    "Pair",
    "PairwiseJudge",
    "Policy",
    "Preference",
    "Ranking",
    "Reason",
    "RemoteJudge",
    "RewardJudge",
    "ServerOptions",
    "TemplateError",
    "VerdictError",
    "evaluate",
    "filter_dataset",
    "filter_file",
    "load_labelled_pairs",
    "load_template",
    "parse_verdict",
    "rank",
    "render_messages",
    "render_prompt",
]
