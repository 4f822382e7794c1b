"""The values critic passes around: pairs in, preferences out."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from critic.errors import InputError, Reason

Mode = Literal["score", "constrained", "generate"]
Label = Literal["A", "B", "tie"]
Order = Literal["ab", "ba"]
MODES: tuple[Mode, ...] = ("score", "constrained", "generate")
ROLES = ("system", "user", "assistant")
# A surrogate code point alone is not a character: valid JSON can carry one (an escaped \ud800), no tokenizer takes it.
SURROGATE = re.compile(r"[\ud800-\udfff]")


class Message(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


def check_text(value: str, what: str) -> str:
    """``value`` as given, or :class:`InputError` (kind BAD_TEXT) if it holds a lone UTF-16 surrogate."""
    if value.isascii():
        return value
    found = SURROGATE.search(value)
    if found is not None:
        raise InputError(
            f"{what} holds an unpaired UTF-16 surrogate (invalid Unicode: U+{ord(found.group()):04X} at character "
            f"{found.start()}), which no tokenizer can read; fix the source text (often a '\\ud800'-style escape in "
            "JSON, or an emoji cut in half) or leave the row out",
            kind=Reason.BAD_TEXT,
        )
    return value


def check_messages(messages: Any, what: str) -> tuple[Message, ...]:
    """Validate a chat message list (``[{"role": ..., "content": ...}, ...]``)."""
    if not isinstance(messages, (list, tuple)):
        raise InputError(f"{what} must be a list of messages, got {type(messages).__name__}", kind=Reason.BAD_MESSAGES)
    checked: list[Message] = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            got = type(message).__name__
            raise InputError(f"{what}[{index}] must be an object with 'role' and 'content', got {got}",
                             kind=Reason.BAD_MESSAGES)
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise InputError(f"{what}[{index}] has role {role!r}; expected one of {', '.join(ROLES)}",
                             kind=Reason.BAD_MESSAGES)
        if not isinstance(content, str):
            raise InputError(f"{what}[{index}] content must be a string, got {type(content).__name__}",
                             kind=Reason.BAD_MESSAGES)
        checked.append({"role": role, "content": check_text(content, f"{what}[{index}] content")})
    return tuple(checked)


def check_conversation(messages: Any, what: str = "conversation") -> tuple[Message, ...]:
    """A conversation for a reward model: valid messages, the last one the assistant's response it scores."""
    checked = check_messages(messages, what)
    if not checked or checked[-1]["role"] != "assistant":
        raise InputError(f"{what} must end with an assistant message: a reward model scores the last response",
                         kind=Reason.BAD_MESSAGES)
    return checked


def conversation(prompt: str, response: str, history: Sequence[Message] = ()) -> tuple[Message, ...]:
    """What a reward model scores for one response: the history, the prompt (user), the response (assistant)."""
    return (*history, {"role": "user", "content": prompt}, {"role": "assistant", "content": response})


@dataclass(frozen=True)
class Pair:
    """A question and two candidate answers.

    ``reference`` feeds reference-guided templates. ``history`` holds earlier
    turns of the conversation (before ``prompt``, the last user turn), which
    templates show to the judge as context. When the two answers come from two
    different conversations (MT-Bench's second turn: each assistant answered
    the first question its own way), ``history_a`` and ``history_b`` hold each
    answer's own earlier turns; swapping the pair swaps them too.
    ``reference_history`` holds the earlier turns of the reference
    conversation (the user's earlier questions and their reference answers),
    for reference-guided templates that show every turn's reference.

    An MT-Bench second-turn pair, as FastChat judges it
    (``run_judge_pair(..., multi_turn=True)``), is::

        Pair(prompt=question_2, response_a=answer_a_2, response_b=answer_b_2,
             history_a=({"role": "user", "content": question_1},
                        {"role": "assistant", "content": answer_a_1}),
             history_b=({"role": "user", "content": question_1},
                        {"role": "assistant", "content": answer_b_1}),
             # reference-guided (math, reasoning, coding) only:
             reference=ref_answer_2,
             reference_history=({"role": "user", "content": question_1},
                                {"role": "assistant", "content": ref_answer_1}))
    """

    prompt: str
    response_a: str
    response_b: str
    reference: str | None = None
    history: tuple[Message, ...] = ()
    history_a: tuple[Message, ...] = ()
    history_b: tuple[Message, ...] = ()
    reference_history: tuple[Message, ...] = ()

    def __post_init__(self) -> None:
        for name in ("prompt", "response_a", "response_b"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise InputError(f"pair field '{name}' must be a string, got {type(value).__name__}",
                                 kind=Reason.WRONG_TYPE)
            check_text(value, f"pair field '{name}'")
        if self.reference is not None:
            if not isinstance(self.reference, str):
                raise InputError(
                    f"pair field 'reference' must be a string or None, got {type(self.reference).__name__}",
                    kind=Reason.WRONG_TYPE,
                )
            check_text(self.reference, "pair field 'reference'")
        for name in ("history", "history_a", "history_b", "reference_history"):
            object.__setattr__(self, name, check_messages(getattr(self, name), f"pair field '{name}'"))

    @classmethod
    def from_mapping(
        cls,
        row: Mapping[str, Any],
        *,
        prompt_field: str = "prompt",
        response_a_field: str = "response_a",
        response_b_field: str = "response_b",
        reference_field: str = "reference",
        history_field: str = "history",
    ) -> Pair:
        """Build a pair from a dict such as a JSONL row; field names can be remapped."""
        if not isinstance(row, Mapping):
            raise InputError(f"a pair must be a JSON object, got {type(row).__name__}", kind=Reason.NOT_AN_OBJECT)
        values: dict[str, Any] = {}
        for name, field in (
            ("prompt", prompt_field),
            ("response_a", response_a_field),
            ("response_b", response_b_field),
        ):
            if field not in row:
                present = ", ".join(sorted(map(str, row))) or "none"
                raise InputError(f"missing field '{field}' (present: {present})", kind=Reason.MISSING_FIELD)
            if row[field] is None:
                raise InputError(f"field '{field}' is null", kind=Reason.MISSING_FIELD)
            values[name] = row[field]
        return cls(**values, reference=row.get(reference_field), history=row.get(history_field) or ())

    def swapped(self) -> Pair:
        """The same pair with the two responses in the other order."""
        return Pair(self.prompt, self.response_b, self.response_a, self.reference, self.history,
                    history_a=self.history_b, history_b=self.history_a, reference_history=self.reference_history)


@dataclass(frozen=True)
class OrderJudgment:
    """The judge's reading of one presentation order of a pair.

    ``order`` is ``"ab"`` when response_a was shown as assistant A and ``"ba"``
    when it was shown as assistant B. ``verdict`` is the letter the model chose,
    as shown. ``p_a``/``p_b``/``p_tie`` are in terms of the original responses
    (``p_a`` is the probability that response_a is better), normalised over the
    verdict letters. ``format_mass`` (score mode only) is the probability the
    model put on any verdict letter at all, over the full vocabulary.
    ``score_a``/``score_b`` (reward judges only) are the reward model's scores
    of the two responses, each scored on its own.
    """

    order: Order
    verdict: Literal["A", "B", "C"]
    p_a: float
    p_b: float
    p_tie: float = 0.0
    format_mass: float | None = None
    text: str | None = None
    forced: bool = False
    score_a: float | None = None
    score_b: float | None = None

    @property
    def outcome(self) -> Label:
        """Which original response this order preferred."""
        if self.verdict == "C":
            return "tie"
        shown_first = self.verdict == "A"
        return "A" if shown_first == (self.order == "ab") else "B"


@dataclass(frozen=True)
class Preference:
    """The merged judgment of a pair.

    ``label`` is ``"A"`` (response_a better), ``"B"`` or ``"tie"``; ``p_a`` is
    the probability that response_a is better, averaged over the orders judged;
    ``consistent`` says whether both orders agreed (``None`` when only one order
    was judged); ``orders`` holds the per-order detail.
    """

    label: Label
    p_a: float
    consistent: bool | None
    orders: tuple[OrderJudgment, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, as written by ``critic judge``."""
        return {
            "label": self.label,
            "p_a": self.p_a,
            "consistent": self.consistent,
            "orders": [
                {key: value for key, value in vars(order).items() if value is not None}
                for order in self.orders
            ],
        }
