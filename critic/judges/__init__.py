"""Judges: pairs in, preferences out. A generative critic (:class:`Judge`) or a reward model (:class:`RewardJudge`).

Both share :class:`~critic.judges.base.BaseJudge` (``compare``,
``compare_batch``, ``compare_each``) and describe themselves with a
:class:`JudgeDescription`; jobs accept anything that fits :class:`PairwiseJudge`.
"""

from critic.backends.loading import DEFAULT_MODEL
from critic.backends.reward import DEFAULT_REWARD_MODEL
from critic.judges.base import BaseJudge, PairwiseJudge
from critic.judges.description import JudgeDescription
from critic.judges.generative import Judge
from critic.judges.reward import RewardJudge

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_REWARD_MODEL",
    "BaseJudge",
    "Judge",
    "JudgeDescription",
    "PairwiseJudge",
    "RewardJudge",
]
