"""What reading a row produces: the column mapping, a row's pair(s) and shape, and a job's candidate.

Plain values shared by :mod:`critic.io.rows` (which reads rows) and its callers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from critic.io.labels import ONE_HOT_COLUMNS, LabelSign
from critic.types import Pair


@dataclass(frozen=True)
class Columns:
    """Which input columns hold what (``--prompt-field`` and friends), and how a signed label reads (``--label-sign``).

    ``messages`` and ``response`` are read by :func:`conversation_from_row`
    (rows scored by a reward model). ``label_sign`` says what the sign of a
    numeric label means (see :mod:`critic.io.labels`); ``None``: numbers other
    than 1/2/0 are refused, except in columns whose dataset says it.
    """

    prompt: str = "prompt"
    chosen: str = "chosen"
    rejected: str = "rejected"
    response_a: str = "response_a"
    response_b: str = "response_b"
    label: str = "label"
    reference: str = "reference"
    history: str = "history"
    messages: str = "messages"
    response: str = "response"
    label_sign: LabelSign | None = None

    def to_dict(self) -> dict[str, str]:
        """The mapping as a plain dict (``label_sign`` only when set, so older job checkpoints still match)."""
        data = dataclasses.asdict(self)
        if data["label_sign"] is None:
            del data["label_sign"]
        return data

    def customized(self) -> dict[str, str]:
        """The columns renamed from their defaults (what the user typed), by field: ``{"prompt": "question"}``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "label_sign" and getattr(self, f.name) != f.default}


DEFAULT_COLUMNS = Columns()


@dataclass(frozen=True)
class RowPair:
    """A row read as a pair, in the row's own order, before any policy.

    ``pair.response_a`` is the row's first answer (``chosen``, ``response_a`` or
    ``response1``). ``row`` is the row as read (PandaLM's boolean answers as their
    text, see :func:`read_pair`); ``columns`` the names it was read with
    (PandaLM's own for PandaLM rows).
    """

    pair: Pair
    shape: str  # "pairs", "messages", "hh", "best-of", "ab", "arena", "helpsteer2", "llmbar", "mt-bench" or "pandalm"
    row: dict[str, Any]
    columns: Columns
    label_column: str | None = None  # labelled shapes: the column the label is read from (None: there is none)
    answer_fields: tuple[str, str] = ("chosen", "rejected")  # the two columns holding the answers, in order
    answers: tuple[int, int] | None = None  # best-of rows: (index in the chosen list, index in the rejected list)


CHOSEN_SHAPES = frozenset({"pairs", "messages", "hh", "best-of"})  # the first answer is the chosen one
SHAPE_NAMES = {
    "pairs": "prompt/chosen/rejected", "messages": "chosen/rejected conversations", "hh": "HH-RLHF transcripts",
    "best-of": "chosen answer(s) against several rejected (RewardBench 2)",
    "pandalm": "PandaLM rows", "ab": "prompt/response_a/response_b", "llmbar": "LLMBar rows",
    "mt-bench": "MT-Bench judgments",
    "arena": "Arena conversations (prompt/response_a/response_b as lists of turns, JSON-encoded or not)",
    "helpsteer2": "HelpSteer2 preferences (response_1/response_2)",
}
LABELLED_SHAPES = frozenset({"ab", "arena", "helpsteer2", "llmbar", "mt-bench"})  # a label says which is better
WINNER_COLUMN = "winner"  # Arena / MT-Bench rows: read as the label when there is no label column
ONE_HOT_LABEL = "/".join(ONE_HOT_COLUMNS)  # the label_column of rows labelled by Arena's three one-hot columns
LLMBAR: dict[str, Any] = {"prompt": "input", "response_a": "output_1", "response_b": "output_2"}
HELPSTEER2: dict[str, Any] = {"response_a": "response_1", "response_b": "response_2", "label": "preference_strength"}


@dataclass(frozen=True)
class Detected:
    """What a row is read as: its shape and, for labelled shapes, the column its label comes from."""

    shape: str
    label_column: str | None
    sign: LabelSign | None = None  # the sign rule the label column is read under (signed strengths)

    def describe(self) -> str:
        """One line for the command line ("reading labels from column 'winner'")."""
        name = SHAPE_NAMES.get(self.shape, self.shape)
        if self.shape == "pandalm":
            return f"rows read as {name}: the label is the annotators' majority"
        if self.shape not in LABELLED_SHAPES:
            return f"rows read as {name}: the chosen answer is the better one"
        if self.label_column is None:
            return f"rows read as {name}; no label column: assuming response_a is chosen"
        if self.label_column == ONE_HOT_LABEL:
            return (f"rows read as {name}; reading labels from the one-hot columns "
                    f"{', '.join(ONE_HOT_COLUMNS)} (exactly one set per row)")
        if self.sign is not None:
            meaning = "the first" if self.sign == "negative-is-a" else "the second"
            return (f"rows read as {name}; reading labels from column '{self.label_column}' as signed strengths "
                    f"({self.sign}: negative means {meaning} answer is better, 0 a tie)")
        return f"rows read as {name}; reading labels from column '{self.label_column}'"


@dataclass(frozen=True)
class Candidate:
    """A row ready for the judge.

    ``pair`` shows the claimed better answer as ``response_a`` (the judge's
    ``p_a`` is then P(chosen is better)). ``row`` is what the outputs carry (the
    row as it came in, or PandaLM's row converted to chosen/rejected).
    ``relabel`` says how to swap the claim: ``("swap", key1, key2)`` exchanges
    two columns, ``("set", key, value)`` rewrites a label. A RewardBench 2 row
    holds several pairs: ``pair`` is the first, ``more`` the others, and
    ``answers`` each pair's (chosen index, rejected index).
    """

    pair: Pair
    row: dict[str, Any]
    shape: str
    relabel: tuple[str, str, Any]
    more: tuple[Pair, ...] = ()
    answers: tuple[tuple[int, int], ...] = ()

    @property
    def pairs(self) -> tuple[Pair, ...]:
        """Every pair of the row, the first one first."""
        return (self.pair, *self.more)

    def relabelled(self) -> dict[str, Any]:
        """The output row with chosen and rejected exchanged."""
        row = dict(self.row)
        action, key, other = self.relabel
        if action == "swap":
            row[key], row[other] = row[other], row[key]
        else:
            row[key] = other
        return row
