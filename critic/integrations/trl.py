"""Plugging a judge into other tools: TRL reward functions and pairwise judges.

:class:`JudgeReward` is a reward function in the shape TRL's ``GRPOTrainer``
calls (``reward_funcs=[...]``): ``f(prompts, completions, **kwargs) -> list``.
TRL passes every dataset column other than ``prompt`` as a keyword argument,
one value per completion (repeated across a prompt's generations), so a
``reference`` column arrives as ``kwargs["reference"]``. For conversational
datasets the prompts are message lists and each completion is a list holding
one assistant message; both shapes are accepted here. :class:`AsyncJudgeReward`
is the same reward as a coroutine: GRPOTrainer awaits async reward functions
together (``asyncio.gather`` on its own event loop), and this one runs the
judge in a worker thread, so it overlaps with the other async rewards.
:class:`AsyncRemoteJudgeReward` is that reward against a judge served by
``critic serve`` (a :class:`critic.client.RemoteJudge`): it awaits the server
over HTTP, and the server batches concurrent calls.

:class:`PairwiseJudgeHook` follows TRL's pairwise-judge contract
(``judge(prompts, completions, shuffle_order=True, return_scores=False)``: the
index of the better completion, ``-1`` when there is none, or with
``return_scores=True`` the probability that the first is better). It
duck-types ``BasePairwiseJudge`` rather than subclassing it, so critic does not
import TRL. That contract serves TRL <= 1.0 (``trl.trainer.judges``, later
``trl.experimental.judges``; ``NashMDTrainer``, ``XPOTrainer``,
``OnlineDPOTrainer(judge=...)`` and ``WinRateCallback``): TRL removed its
judges module in 1.1.

A failed judgment stays a failure where the consumer can tell: ``None`` (TRL
turns a reward into NaN and leaves it out of the sum) or ``-1``, never a
made-up reward or choice. A score has no such slot; see
:meth:`PairwiseJudgeHook.judge`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict, overload

from critic.errors import CriticError, InputError, ModelError
from critic.judges import PairwiseJudge
from critic.types import Message, Pair, Preference, check_messages

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from critic.client import RemoteJudge

logger = logging.getLogger("critic")

__all__ = [
    "AsyncJudgeReward", "AsyncRemoteJudgeReward", "JudgeReward", "PairwiseJudgeHook", "as_conversation",
    "completion_text",
]

TiesTo = Literal["probability", "none"]


class _RewardOptions(TypedDict, total=False):
    reference_column: str
    on_failure: float | None
    name: str


class _RewardFunction:
    """What the sync and the async reward functions share: their arguments, the pairs a call judges, its rewards."""

    def __init__(
        self,
        judge: PairwiseJudge,
        *,
        reference_column: str = "reference",
        on_failure: float | None = None,
        name: str = "critic_judge",
    ) -> None:
        self.judge = judge
        self.reference_column = reference_column
        self.on_failure = on_failure
        self.__name__ = name  # TRL names reward functions by __name__
        self.failures = 0

    def pairs(self, prompts: Sequence[Any], completions: Sequence[Any], kwargs: Mapping[str, Any]) -> list[Pair]:
        """One pair per completion: (its prompt, the completion, the row's reference completion)."""
        if self.reference_column not in kwargs:
            columns = ", ".join(sorted(k for k in kwargs if k not in {"trainer_state", "log_extra", "log_metric"}))
            raise InputError(
                f"the reward function needs the dataset column '{self.reference_column}' (TRL passes extra dataset "
                f"columns as keyword arguments; got: {columns or 'none'})"
            )
        references = kwargs[self.reference_column]
        if not len(prompts) == len(completions) == len(references):
            raise InputError(f"got {len(prompts)} prompts, {len(completions)} completions and "
                             f"{len(references)} references; expected one of each per completion")
        pairs = []
        for prompt, completion, reference in zip(prompts, completions, references, strict=True):
            history, question = as_conversation(prompt)
            pairs.append(Pair(question, completion_text(completion), completion_text(reference), history=history))
        return pairs

    def rewards(self, results: Sequence[Preference | CriticError], expected: int) -> list[float | None]:
        """Each judged pair's ``p_a``; a failed one gets ``on_failure`` (counted in ``failures``)."""
        if len(results) != expected:
            raise ModelError(f"the judge returned {len(results)} results for {expected} pairs")
        rewards: list[float | None] = []
        for result in results:
            if isinstance(result, Preference):
                rewards.append(result.p_a)
            else:
                self.failures += 1
                logger.warning("reward: a completion could not be judged (%s); reward %s", result, self.on_failure)
                rewards.append(self.on_failure)
        return rewards


class JudgeReward(_RewardFunction):
    """Reward = the judge's probability that the completion beats the row's reference completion.

    Args:
        judge: any :class:`~critic.judges.PairwiseJudge` (``Judge``, ``RewardJudge``).
        reference_column: the dataset column with the reference completion
            (a string, or messages whose last one is the answer).
        on_failure: the reward of a completion the judge could not judge.
            ``None`` (default) tells TRL "no reward" (it becomes NaN and is left
            out of the sum); a number substitutes it, knowingly.
        name: the name TRL logs the reward under.
    """

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        pairs = self.pairs(prompts, completions, kwargs)
        return self.rewards(self.judge.compare_each(pairs), len(pairs))


class AsyncJudgeReward(_RewardFunction):
    """:class:`JudgeReward` as an async reward function for TRL's ``GRPOTrainer``.

    TRL (>= 0.2x; ``is_async_callable`` in ``trl/trainer/utils.py`` since it
    looks at ``__call__`` too) awaits every async reward function of a step
    together. ``__call__`` runs the judge in a worker thread
    (:func:`asyncio.to_thread`), so a slow judge does not hold up the other
    async rewards. Two of these over the same backend then judge at the same
    time: fine for inference, but it is the backend's memory that pays.

    Takes the arguments of :class:`JudgeReward`; ``failures`` counts the same way.
    """

    async def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        pairs = self.pairs(prompts, completions, kwargs)
        return self.rewards(await self._judged(pairs), len(pairs))

    async def _judged(self, pairs: list[Pair]) -> list[Preference | CriticError]:
        return await asyncio.to_thread(self.judge.compare_each, pairs)


class AsyncRemoteJudgeReward(AsyncJudgeReward):
    """:class:`AsyncJudgeReward` against a judge served by ``critic serve`` (a :class:`critic.client.RemoteJudge`).

    The same call and rewards as :class:`JudgeReward`; ``__call__`` is a coroutine
    that awaits the server over HTTP (``RemoteJudge.acompare_each``), so no thread
    waits and GRPOTrainer's other async rewards run meanwhile; the server merges
    concurrent calls into one batch. ``judge`` may be a URL; the other arguments
    are those of :class:`JudgeReward`.
    """

    def __init__(self, judge: RemoteJudge | str, **options: Unpack[_RewardOptions]) -> None:
        from critic.client import RemoteJudge

        if isinstance(judge, str):
            judge = RemoteJudge(judge)
        # Every judge has acompare_each now (a local one runs in a worker thread): ask for the remote kind itself.
        if not isinstance(judge, RemoteJudge):
            raise InputError(f"the judge must be a critic.client.RemoteJudge (or its URL), got {type(judge).__name__}")
        super().__init__(judge, **options)
        self.remote = judge

    async def _judged(self, pairs: list[Pair]) -> list[Preference | CriticError]:
        return await self.remote.acompare_each(pairs)


class PairwiseJudgeHook:
    """TRL's pairwise-judge contract over a critic judge (TRL <= 1.0; TRL 1.1 removed its judges).

    ``judge(prompts, completions)`` returns, per prompt, 0 when the first of its
    two completions is better, 1 when the second is, and -1 when the judgment
    failed or the judge has no preference. A tie label (the two presentation
    orders disagreed) is resolved by the debiased ``p_a`` when
    ``ties="probability"`` (default; exactly 0.5 gives -1), or always gives -1
    when ``ties="none"``.

    ``judge(..., return_scores=True)`` returns instead the judge's (debiased)
    probability that the first completion is better, as TRL's soft judges do
    (``PairRMJudge``). A pair that could not be judged scores ``failed_score``.

    ``shuffle_order`` randomly swaps each pair before judging (and maps the
    answer back). A judge with ``swap=True`` already sees both orders, so it
    matters only for single-order judges. ``seed`` makes the shuffle repeatable.
    ``failures`` counts the pairs that could not be judged, over all calls.

    Args:
        failed_score: the score of a failed pair. Default 0.5, "no preference":
            TRL's consumers have no slot for a missing score. ``NashMDTrainer``
            computes ``(probability - 0.5) * logprobs`` into the loss, so NaN
            would turn the whole batch's loss and gradients into NaN, while 0.5
            adds nothing; ``WinRateCallback(use_soft_judge=True)`` averages the
            scores (NaN would blank the logged ``eval_avg_win_prob``). Pass
            ``math.nan`` to see failures in the numbers instead. Every call with
            failures logs a warning with their count either way.
    """

    def __init__(
        self,
        judge: PairwiseJudge,
        *,
        ties: TiesTo = "probability",
        seed: int | None = None,
        failed_score: float = 0.5,
    ) -> None:
        if ties not in ("probability", "none"):
            raise InputError(f"ties must be 'probability' or 'none', got {ties!r}")
        self.critic_judge = judge
        self.ties = ties
        self.failed_score = failed_score
        self.failures = 0
        self._random = random.Random(seed)

    @overload
    def judge(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Sequence[Any]],
        shuffle_order: bool = ...,
        return_scores: Literal[False] = ...,
    ) -> list[int]: ...

    @overload
    def judge(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Sequence[Any]],
        shuffle_order: bool = ...,
        *,
        return_scores: Literal[True],
    ) -> list[float]: ...

    def judge(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Sequence[Any]],
        shuffle_order: bool = True,
        return_scores: bool = False,
    ) -> list[int] | list[float]:
        """Per prompt: the index of the better completion (or -1), or with ``return_scores`` P(first is better)."""
        if len(prompts) != len(completions):
            raise InputError(f"got {len(prompts)} prompts and {len(completions)} completion pairs")
        pairs, flips = [], []
        for index, (prompt, pair) in enumerate(zip(prompts, completions, strict=True)):
            if len(pair) != 2:
                raise InputError(f"completions[{index}] holds {len(pair)} completions; a pairwise judge needs 2")
            flip = shuffle_order and self._random.random() < 0.5
            first, second = (pair[1], pair[0]) if flip else (pair[0], pair[1])
            history, question = as_conversation(prompt)
            pairs.append(Pair(question, completion_text(first), completion_text(second), history=history))
            flips.append(flip)
        results = self.critic_judge.compare_each(pairs)
        if len(results) != len(pairs):
            raise ModelError(f"the judge returned {len(results)} results for {len(pairs)} pairs")
        self._warn_failures(results, return_scores)
        if return_scores:
            return [self._score(result, flip) for result, flip in zip(results, flips, strict=True)]
        return [self._index(result, flip) for result, flip in zip(results, flips, strict=True)]

    def _warn_failures(self, results: Sequence[Preference | CriticError], return_scores: bool) -> None:
        failed = [result for result in results if not isinstance(result, Preference)]
        if not failed:
            return
        self.failures += len(failed)
        given = f"score {self.failed_score}" if return_scores else "-1"
        logger.warning("pairwise judge: %d of %d pairs could not be judged (first: %s); they get %s",
                       len(failed), len(results), failed[0], given)

    def _score(self, result: Preference | CriticError, flip: bool) -> float:
        if not isinstance(result, Preference):
            return self.failed_score
        return 1.0 - result.p_a if flip else result.p_a

    def _index(self, result: Preference | CriticError, flip: bool) -> int:
        if not isinstance(result, Preference):
            return -1
        if result.label == "tie":
            if self.ties == "none" or result.p_a == 0.5:
                return -1
            shown = 0 if result.p_a > 0.5 else 1
        else:
            shown = 0 if result.label == "A" else 1
        return 1 - shown if flip else shown


def as_conversation(prompt: Any) -> tuple[tuple[Message, ...], str]:
    """``(history, question)`` from a prompt string or a message list ending with the user's turn."""
    if isinstance(prompt, str):
        return (), prompt
    messages = check_messages(prompt, "prompt")
    if not messages or messages[-1]["role"] != "user":
        raise InputError("a conversational prompt must end with a user message")
    return messages[:-1], messages[-1]["content"]


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, one message, or a message list (its assistant messages, joined).

    Other roles (``tool`` results in agentic completions) are not the model's answer and are skipped.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    if not isinstance(completion, (list, tuple)) or not all(isinstance(m, Mapping) for m in completion):
        raise InputError(f"a completion must be a string or a list of messages, got {type(completion).__name__}")
    answers = [m["content"] for m in completion if m.get("role") == "assistant" and isinstance(m.get("content"), str)]
    if not answers:
        raise InputError("a conversational completion must contain an assistant message")
    return "".join(answers)
