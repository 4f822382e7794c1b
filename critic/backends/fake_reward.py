"""A scripted reward scorer for tests and dry runs: no model, exact control.

    from critic import RewardJudge
    from critic.testing import FakeScorer

    judge = RewardJudge(FakeScorer.by_response({"4": 2.0, "5": -1.0}))
    assert judge.compare("2+2?", "4", "5").label == "A"
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from critic.backends.base import ScorerBase
from critic.backends.fake import script
from critic.errors import CriticError
from critic.types import Message

if TYPE_CHECKING:
    from critic.options import BatchLimits, LoadOptions

ScoreFunction = Callable[[tuple[Message, ...]], "float | CriticError"]


class FakeScorer(ScorerBase):
    """Scores each conversation with ``respond(messages)``, and records every conversation in ``calls``."""

    kind = "fake"

    def __init__(self, respond: ScoreFunction) -> None:
        self.respond = respond
        self.calls: list[tuple[Message, ...]] = []

    def score(self, conversations: Sequence[Sequence[Message]]) -> list[float | CriticError]:
        results: list[float | CriticError] = []
        for messages in conversations:
            self.calls.append(tuple(messages))
            results.append(self.respond(tuple(messages)))
        return results

    @classmethod
    def from_pretrained(
        cls, model: str = "", *, load: LoadOptions | None = None, limits: BatchLimits | None = None
    ) -> FakeScorer:
        """The ``fake`` backend's reward model (``--backend fake``): no model is read, ``model`` is only a name.

        A dry run: a response's score is its length in characters divided by 100,
        so the longer answer wins. The scores mean nothing.
        """
        return cls(lambda messages: len(messages[-1]["content"]) / 100 if messages else 0.0)

    @classmethod
    def scripted(cls, scores: Iterable[float | CriticError]) -> FakeScorer:
        """Answer with ``scores`` in turn (a pair's response_a, then its response_b); running out is an error."""
        return cls(script(list(scores), "FakeScorer", "scores"))

    @classmethod
    def by_response(cls, scores: Mapping[str, float | CriticError], default: float = 0.0) -> FakeScorer:
        """Score a conversation by the text of its last message (the response), ``default`` if unlisted."""
        return cls(lambda messages: scores.get(messages[-1]["content"], default) if messages else default)
