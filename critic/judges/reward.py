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
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from critic.backends.base import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_BATCH_TOKENS
from critic.backends.reward import DEFAULT_REWARD_MODEL, RewardScorer
from critic.errors import CriticError, InputError, ModelError
from critic.judges.generative import PairLike, _as_pair, _with_pair_index
from critic.types import Label, Message, OrderJudgment, Pair, Preference, check_messages

if TYPE_CHECKING:
    import torch

logger = logging.getLogger("critic")

__all__ = ["DEFAULT_REWARD_MODEL", "RewardJudge", "conversation_from_row", "preference_from_scores"]


class RewardJudge:
    """A pairwise judge over a reward model (any :class:`~critic.backends.reward.RewardScorer`).

    Same public shape as :class:`critic.Judge` (``compare``, ``compare_batch``,
    ``compare_each``, ``describe``), plus pointwise ``score``/``score_each``.
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
        if not math.isfinite(tie_margin) or tie_margin < 0:
            raise InputError(f"tie_margin must be a finite number >= 0, got {tie_margin}")
        self.scorer = scorer
        self.tie_margin = float(tie_margin)
        self.model_name = model_name
        self._warned_reference = False

    @classmethod
    def from_pretrained(
        cls,
        model: str = DEFAULT_REWARD_MODEL,
        *,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        max_length: int | None = None,
        tie_margin: float = 0.0,
        attn_implementation: str | None = None,
        trust_remote_code: bool = False,
    ) -> RewardJudge:
        """Load a reward model (a one-label sequence classifier) from a hub id or a local folder.

        bf16 on CUDA, fp32 elsewhere; flash_attention_2 when installed, else sdpa,
        except Gemma-2, which gets eager (sdpa skips its attention soft-capping).
        ``max_length`` caps the tokens per conversation below the model's context.
        ``"demo"`` is refused: the demo model is generative and has no reward head.
        """
        from critic.backends.reward import TransformersRewardScorer

        scorer = TransformersRewardScorer.from_pretrained(
            model,
            device=device,
            dtype=dtype,
            attn_implementation=attn_implementation,
            trust_remote_code=trust_remote_code,
            max_batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            max_length=max_length,
        )
        return cls(scorer, tie_margin=tie_margin, model_name=model)

    def describe(self) -> dict[str, Any]:
        """What this judge is, for reports and summaries."""
        return {"kind": "reward", "model": self.model_name, "tie_margin": self.tie_margin}

    def score(self, conversations: Iterable[Sequence[Message]]) -> list[float]:
        """The reward of each conversation (a message list ending with the assistant's response).

        Raises the first failure as an error naming the conversation's index.
        """
        results = self.score_each(conversations)
        for index, result in enumerate(results):
            if isinstance(result, CriticError):
                raise _prefixed(result, f"conversation {index}")
        return results  # type: ignore[return-value]

    def score_each(self, conversations: Iterable[Sequence[Message]]) -> list[float | CriticError]:
        """Like :meth:`score`, but a conversation that fails yields its error in place."""
        results: list[float | CriticError | None] = []
        valid: dict[int, tuple[Message, ...]] = {}
        for index, messages in enumerate(conversations):
            try:
                valid[index] = _check_conversation(messages)
                results.append(None)
            except InputError as error:
                results.append(error)
        for index, value in zip(valid, self._run(list(valid.values())), strict=True):
            results[index] = value
        return results  # type: ignore[return-value]

    def compare(self, prompt: str, response_a: str, response_b: str, *, reference: str | None = None) -> Preference:
        """Judge one pair: is ``response_a`` or ``response_b`` the better answer to ``prompt``?"""
        return self.compare_batch([Pair(prompt, response_a, response_b, reference)])[0]

    def compare_batch(self, pairs: Iterable[PairLike]) -> list[Preference]:
        """Judge many pairs at once; results keep the input order. Raises the first error met."""
        results = self.compare_each(pairs)
        for result in results:
            if isinstance(result, CriticError):
                raise result
        return results  # type: ignore[return-value]

    def compare_each(self, pairs: Iterable[PairLike]) -> list[Preference | CriticError]:
        """Like :meth:`compare_batch`, but a pair that fails yields its error in place.

        Both responses of every pair are scored in one call, so the scorer can
        batch them all. A pair's ``reference`` is not read: reward models score
        the conversation alone.
        """
        checked = [_as_pair(pair, index) for index, pair in enumerate(pairs)]
        if any(pair.reference is not None for pair in checked) and not self._warned_reference:
            logger.warning("reward models read no reference answer; the pairs' references are ignored")
            self._warned_reference = True
        conversations = [_conversation(p, answer) for p in checked for answer in (p.response_a, p.response_b)]
        scores = self._run(conversations)
        results: list[Preference | CriticError] = []
        for index in range(len(checked)):
            score_a, score_b = scores[2 * index], scores[2 * index + 1]
            if isinstance(score_a, CriticError):
                results.append(_with_pair_index(_prefixed(score_a, "response_a"), index))
            elif isinstance(score_b, CriticError):
                results.append(_with_pair_index(_prefixed(score_b, "response_b"), index))
            else:
                results.append(preference_from_scores(score_a, score_b, tie_margin=self.tie_margin))
        return results

    def _run(self, conversations: Sequence[tuple[Message, ...]]) -> list[float | CriticError]:
        if not conversations:
            return []
        scores = self.scorer.score(conversations)
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


def conversation_from_row(
    row: Mapping[str, Any],
    *,
    messages_field: str = "messages",
    prompt_field: str = "prompt",
    response_field: str = "response",
    history_field: str = "history",
) -> tuple[Message, ...]:
    """The conversation of a dataset row: its ``messages`` list, or history + prompt + response."""
    if not isinstance(row, Mapping):
        raise InputError(f"a row must be a JSON object, got {type(row).__name__}")
    if row.get(messages_field) is not None:
        return _check_conversation(row[messages_field], f"field '{messages_field}'")
    missing = [field for field in (prompt_field, response_field) if row.get(field) is None]
    if missing:
        present = ", ".join(sorted(map(str, row))) or "none"
        raise InputError(
            f"a row needs a '{messages_field}' list or both '{prompt_field}' and '{response_field}'; "
            f"missing or null: {', '.join(missing)} (present: {present})"
        )
    pair = Pair(row[prompt_field], row[response_field], "", history=row.get(history_field) or ())
    return _conversation(pair, pair.response_a)


def _conversation(pair: Pair, response: str) -> tuple[Message, ...]:
    return (*pair.history, {"role": "user", "content": pair.prompt}, {"role": "assistant", "content": response})


def _check_conversation(messages: Any, what: str = "conversation") -> tuple[Message, ...]:
    checked = check_messages(messages, what)
    if not checked or checked[-1]["role"] != "assistant":
        raise InputError(f"{what} must end with an assistant message: a reward model scores the last response")
    return checked


def _sigmoid(x: float) -> float:
    # Two branches so that neither overflows for large margins.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _prefixed(error: CriticError, prefix: str) -> CriticError:
    """The same kind of error, its message led by where it happened."""
    try:
        renamed = type(error)(f"{prefix}: {error}")
    except TypeError:  # an error class with another constructor
        renamed = CriticError(f"{prefix}: {error}")
    renamed.__cause__ = error
    return renamed
