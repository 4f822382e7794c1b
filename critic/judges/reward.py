"""The reward judge: a scalar reward model as a pairwise judge.

Each response is scored on its own, as the conversation (history, the user's
prompt, the assistant's response), and a pair is read from the margin
``score_a - score_b``: ``p_a = sigmoid(margin)`` (the Bradley-Terry reading of
a reward margin, the loss these models are trained with) and the label is the
sign of the margin. No response is ever shown next to the other, so there is
no position bias and nothing to swap: a preference has ``consistent=None`` and
one :class:`~critic.types.OrderJudgment` that carries both scores.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Literal

from critic.backends.base import RewardScorer, backend_kind, close_runner, score_async
from critic.backends.reward import DEFAULT_REWARD_MODEL, check_limits
from critic.errors import CriticError, InputError, ModelError
from critic.judges.base import BaseJudge, prefixed
from critic.judges.description import JudgeDescription
from critic.judges.each import ajudged_in_place, judged_in_place, read_each
from critic.options import BatchLimits, LoadOptions
from critic.types import Label, Message, OrderJudgment, Pair, Preference, check_conversation, conversation

logger = logging.getLogger("critic")

__all__ = ["DEFAULT_REWARD_MODEL", "RewardJudge", "preference_from_scores"]


class RewardJudge(BaseJudge):
    """A pairwise judge over a reward model (any :class:`~critic.backends.reward.RewardScorer`).

    Same public shape as :class:`critic.Judge` (``compare``, ``compare_batch``,
    ``compare_each``, their ``a``-prefixed async twins, ``describe``, ``close``),
    plus pointwise ``score``/``score_each``/``ascore_each``.
    Each response is scored alone, so position bias is impossible and nothing
    is swapped: every :class:`~critic.types.Preference` has ``consistent=None``
    and one ``"ab"`` order carrying ``score_a`` and ``score_b``.

    Args:
        scorer: what runs the model (``TransformersRewardScorer``, ``FakeScorer``, ...).
        tie_margin: a pair is a tie when ``|score_a - score_b| <= tie_margin``. With
            the default 0 a tie needs exactly equal scores.
        model_name: recorded for reports.
    """

    def __init__(self, scorer: RewardScorer, *, tie_margin: float = 0.0, model_name: str = "") -> None:
        _check_tie_margin(tie_margin)
        self.scorer = scorer
        self.tie_margin = float(tie_margin)
        self.model_name = model_name
        self._warned_reference = False

    @classmethod
    def from_pretrained(
        cls,
        model: str = DEFAULT_REWARD_MODEL,
        *,
        tie_margin: float = 0.0,
        load: LoadOptions = LoadOptions(),
        limits: BatchLimits = BatchLimits(),
    ) -> RewardJudge:
        """Load a reward model (a one-label sequence classifier) from a hub id or a local folder.

        bf16 on CUDA, fp32 elsewhere; flash_attention_2 when installed, else sdpa,
        except Gemma-2, which gets eager (sdpa skips its attention soft-capping).
        ``limits.max_length`` caps the tokens per conversation below the model's
        context; ``limits.overflow="truncate"`` is refused before anything loads
        (a reward model never cuts what it scores). ``"demo"`` is refused: the
        demo model is generative and has no reward head.
        """
        _check_tie_margin(tie_margin)
        check_limits(limits)
        from critic.backends.registry import reward_scorer

        scorer = reward_scorer(model, load=load, limits=limits)
        return cls(scorer, tie_margin=tie_margin, model_name=model)

    def describe(self) -> JudgeDescription:
        """What this judge is, for reports and summaries."""
        return JudgeDescription(
            kind="reward", model=self.model_name, backend=backend_kind(self.scorer), tie_margin=self.tie_margin
        )

    def score(self, conversations: Iterable[Sequence[Message]]) -> list[float]:
        """The reward of each conversation (a message list ending with the assistant's response).

        Raises the first failure as an error naming the conversation's index.
        """
        return _scores_or_raise(self.score_each(conversations))

    async def ascore(self, conversations: Iterable[Sequence[Message]]) -> list[float]:
        """:meth:`score` as a coroutine."""
        return _scores_or_raise(await self.ascore_each(conversations))

    def score_each(self, conversations: Iterable[Sequence[Message]]) -> list[float | CriticError]:
        """Like :meth:`score`, but a conversation that fails yields its error in place."""
        return judged_in_place(read_each(conversations, check_conversation), self._run)

    async def ascore_each(self, conversations: Iterable[Sequence[Message]]) -> list[float | CriticError]:
        """:meth:`score_each` as a coroutine: the event loop stays free while the model scores."""
        return await ajudged_in_place(read_each(conversations, check_conversation), self._arun)

    def close(self) -> None:
        """Close the scorer (stop a vLLM engine, an HTTP client); the judge cannot score afterwards."""
        close_runner(self.scorer)

    def _judge_pairs(self, pairs: Sequence[Pair]) -> list[Preference | CriticError]:
        """Both responses of every pair are scored in one call, so the scorer can batch them all.

        A pair's ``reference`` is not read: reward models score the conversation alone.
        """
        return self._preferences(self._run(self._conversations(pairs)))

    async def _ajudge_pairs(self, pairs: Sequence[Pair]) -> list[Preference | CriticError]:
        return self._preferences(await self._arun(self._conversations(pairs)))

    def _conversations(self, pairs: Sequence[Pair]) -> list[tuple[Message, ...]]:
        """Each pair's two conversations, response_a's then response_b's."""
        if any(pair.reference is not None for pair in pairs) and not self._warned_reference:
            logger.warning("reward models read no reference answer; the pairs' references are ignored")
            self._warned_reference = True
        return [conversation(pair.prompt, answer, pair.history)
                for pair in pairs for answer in (pair.response_a, pair.response_b)]

    def _preferences(self, scores: Sequence[float | CriticError]) -> list[Preference | CriticError]:
        results: list[Preference | CriticError] = []
        for score_a, score_b in zip(scores[::2], scores[1::2], strict=True):
            if isinstance(score_a, CriticError):
                results.append(prefixed(score_a, "response_a"))
            elif isinstance(score_b, CriticError):
                results.append(prefixed(score_b, "response_b"))
            else:
                results.append(preference_from_scores(score_a, score_b, tie_margin=self.tie_margin))
        return results

    def _run(self, conversations: Sequence[tuple[Message, ...]]) -> list[float | CriticError]:
        return _checked_scores(self.scorer.score(conversations), conversations) if conversations else []

    async def _arun(self, conversations: Sequence[tuple[Message, ...]]) -> list[float | CriticError]:
        if not conversations:
            return []
        return _checked_scores(await score_async(self.scorer, conversations), conversations)


def _checked_scores(
    scores: Sequence[float | CriticError], conversations: Sequence[tuple[Message, ...]]
) -> list[float | CriticError]:
    """One finite float (or error) per conversation; anything else the scorer returned is a :class:`ModelError`."""
    if len(scores) != len(conversations):
        raise ModelError(f"the scorer returned {len(scores)} scores for {len(conversations)} conversations")
    checked: list[float | CriticError] = []
    for value in scores:
        if isinstance(value, CriticError):
            checked.append(value)
        elif isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
            checked.append(float(value))
        else:
            checked.append(ModelError(f"the scorer returned {value!r}, not a finite score"))
    return checked


def _scores_or_raise(results: Sequence[float | CriticError]) -> list[float]:
    """The scores, or the first failure raised as an error naming the conversation's index."""
    scores: list[float] = []
    for index, result in enumerate(results):
        if isinstance(result, CriticError):
            raise prefixed(result, f"conversation {index}")
        scores.append(result)
    return scores


def preference_from_scores(score_a: float, score_b: float, *, tie_margin: float = 0.0) -> Preference:
    """A pair's preference from its two reward scores.

    ``p_a = sigmoid(score_a - score_b)``; the label is ``"tie"`` when the margin
    is at most ``tie_margin`` in size, else the side with the higher score. One
    order (``"ab"``), ``consistent=None``: each response was scored alone.
    """
    margin = score_a - score_b
    p_a = _sigmoid(margin)
    label: Label = "tie" if abs(margin) <= tie_margin else ("A" if margin > 0 else "B")
    verdict: Literal["A", "B", "C"] = "C" if label == "tie" else label
    order = OrderJudgment("ab", verdict, p_a, 1.0 - p_a, score_a=score_a, score_b=score_b)
    return Preference(label, p_a, None, (order,))


def _check_tie_margin(tie_margin: float) -> None:
    if not math.isfinite(tie_margin) or tie_margin < 0:
        raise InputError(f"tie_margin must be a finite number >= 0, got {tie_margin}")


def _sigmoid(x: float) -> float:
    # Two branches so that neither overflows for large margins.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)
