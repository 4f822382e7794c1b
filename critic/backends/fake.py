"""A scripted backend for tests and dry runs: no model, exact control.

Users test their pipelines with it; critic's own tests use it wherever a real
model adds nothing::

    from critic import Judge
    from critic.testing import FakeBackend

    judge = Judge(FakeBackend.first_position(0.7))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from critic.backends.base import BackendBase, BackendOutput, VerdictRequest
from critic.errors import CriticError

if TYPE_CHECKING:
    from critic.options import BatchLimits, LoadOptions

Answer = TypeVar("Answer")
Responder = Callable[[VerdictRequest], BackendOutput]


class FakeBackend(BackendBase):
    """Answers each request with ``respond(request)``, and records every request in ``calls``."""

    kind = "fake"

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.calls: list[VerdictRequest] = []

    def run(self, requests: Sequence[VerdictRequest]) -> list[BackendOutput]:
        self.calls.extend(requests)
        return [self.respond(request) for request in requests]

    @classmethod
    def from_pretrained(
        cls, model: str = "", *, load: LoadOptions | None = None, limits: BatchLimits | None = None,
        share_prefix: bool = True,
    ) -> FakeBackend:
        """The ``fake`` backend of the registry (``--backend fake``): no model is read, ``model`` is only a name.

        A dry run for trying a pipeline end to end: the longer answer wins with
        probability 0.75 in either position (0.5 for equal lengths), so labels
        vary with the data and both orders agree. The verdicts mean nothing.
        """
        return cls.prefer_longer()

    @classmethod
    def prefer_longer(cls, p: float = 0.75) -> FakeBackend:
        """Prefer the longer answer (in characters) with probability ``p``; equal lengths are even."""

        def respond(request: VerdictRequest) -> BackendOutput:
            first, second = len(request.pair.response_a), len(request.pair.response_b)
            return _output_for(request, 0.5 if first == second else (p if first > second else 1.0 - p))

        return cls(respond)

    @classmethod
    def scripted(cls, outputs: Iterable[BackendOutput | str | float]) -> FakeBackend:
        """Answer with ``outputs`` in turn; running past the end is an error.

        A ``float`` is P(first-shown answer is better), given as letter
        probabilities; a ``str`` is model text (a generated or forced verdict).
        Requests arrive in pair order, order ``ab`` before ``ba``.
        """
        return cls(script([_as_output(item) for item in outputs], "FakeBackend", "outputs"))

    @classmethod
    def first_position(cls, p_first: float = 1.0) -> FakeBackend:
        """A judge with pure position bias: the answer shown first wins with ``p_first``."""
        return cls(lambda request: _output_for(request, p_first))

    @classmethod
    def prefer(cls, predicate: Callable[[str], bool], p: float = 0.9) -> FakeBackend:
        """Prefer the answer for which ``predicate(answer_text)`` is true, with probability ``p``."""

        def respond(request: VerdictRequest) -> BackendOutput:
            first, second = predicate(request.pair.response_a), predicate(request.pair.response_b)
            p_first = 0.5 if first == second else (p if first else 1.0 - p)
            return _output_for(request, p_first)

        return cls(respond)


def script(answers: Sequence[Answer], owner: str, unit: str) -> Callable[[object], Answer]:
    """A responder that gives ``answers`` in turn, whatever it is asked; running past the end is an error."""
    position = 0

    def respond(_: object) -> Answer:
        nonlocal position
        if position >= len(answers):
            raise CriticError(f"{owner} script ran out after {len(answers)} {unit}")
        position += 1
        return answers[position - 1]

    return respond


def letter_output(p_first: float, *, format_mass: float = 1.0, p_tie: float = 0.0) -> BackendOutput:
    """Score-mode output: the first-shown answer wins with ``p_first`` of the non-tie mass.

    ``C`` (tie) is always given, with ``p_tie``, so the output also fits templates that allow ties.
    """
    if not 0.0 <= p_first <= 1.0 or not 0.0 <= p_tie < 1.0:
        raise CriticError(f"p_first must be in [0, 1] and p_tie in [0, 1), got {p_first} and {p_tie}")
    decided = (1.0 - p_tie) * format_mass
    probs = {"A": p_first * decided, "B": (1.0 - p_first) * decided, "C": p_tie * format_mass}
    return BackendOutput(letter_probs=probs)


def _output_for(request: VerdictRequest, p_first: float) -> BackendOutput:
    if request.mode == "score":
        return letter_output(p_first)
    letter = "A" if p_first >= 0.5 else "B"
    return BackendOutput(text=f"[[{letter}]]")


def _as_output(item: BackendOutput | str | float) -> BackendOutput:
    if isinstance(item, BackendOutput):
        return item
    if isinstance(item, str):
        return BackendOutput(text=item)
    return letter_output(float(item))
