"""Length control (AlpacaEval) and style control (Arena-Hard): what each answer's form adds to its win rate.

**Length-controlled win rate.** AlpacaEval 2's ``length_controlled_v1`` GLM without its
instruction-difficulty term (that term is fitted on AlpacaEval's own 805 instructions and
does not exist for other questions; AlpacaEval names this formula
``length_controlled_minimal``): a logistic regression of the model's preference on
``tanh(std_delta_len)`` plus a model term, where ``std_delta_len`` is the baseline's answer
length minus the model's (characters), divided by its standard deviation over the model's
battles; the length-controlled win rate is the prediction at zero length difference,
``sigmoid(model term)``. It answers: how often would the model win if its answers were as
long as the baseline's? The fit is AlpacaEval's ``fit_LogisticRegressionCV`` on its own
construction (each battle twice, as a win weighted by the outcome and a loss weighted by
its complement; no intercept) without the cross-validation: its ``n_splits=0`` path, an L1
penalty with ``C = 100`` (AlpacaEval's default, with five folds, picks C among 1e-4..1e4 by
cross-validation). The penalty matters: when a model's answers are all much longer than
the baseline's, ``tanh`` saturates, the length column is nearly the model column, and the
unpenalised fit is free to put any win rate at zero length difference.

**Style control.** Arena-Hard's features (``show_result.py``,
``print_leaderboard_with_style_features``), for each battle: the length difference
``(len_a - len_b) / (len_a + len_b)``, and for headers, lists and bold text the density
difference ``(d_a - d_b) / (d_a + d_b + 1)`` with ``d = count / (length + 1)``; each column
standardised over the battles. They enter the Bradley-Terry regression beside the
models; the models' coefficients are their scores with length and markdown held equal.
Lengths are Arena-Hard's ``token_len`` and markdown counts its metadata when every answer
carries them (Arena-Hard's answer files do), otherwise characters and the same counts
taken from the text (code blocks removed, Arena-Hard's regular expressions).

Both fits are :func:`critic.judges.ranking.fit_bradley_terry` with feature columns.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from critic.arena.battles import Battle
from critic.arena.ratings import sigmoid
from critic.judges.ranking import fit_bradley_terry

STYLE_FEATURES = ("length", "headers", "lists", "bold")
LC_C = 100.0  # AlpacaEval's fit_LogisticRegressionCV without cross-validation: L1 penalty, C = 100
_CODE_BLOCK = re.compile("```([^`]*)```")


@dataclass(frozen=True)
class LengthControlled:
    """The length-controlled win rate (percent) and the fitted length coefficient."""

    win_rate: float
    length_coefficient: float
    converged: bool


def length_controlled(battles: Sequence[Battle]) -> LengthControlled | None:
    """The LC win rate of ``model_a`` over ``battles`` against one baseline (``None`` without answer texts)."""
    if not battles or any(battle.text_a is None or battle.text_b is None for battle in battles):
        return None
    deltas = [float(len(battle.text_b or "") - len(battle.text_a or "")) for battle in battles]
    spread = _sample_std(deltas)
    feature = [[math.tanh(delta / spread) if spread else 0.0] for delta in deltas]
    fit = fit_bradley_terry(2, [0] * len(battles), [1] * len(battles), [battle.outcome for battle in battles],
                            features=feature, anchor=1, l1=1.0 / LC_C)
    score = fit.scores[0]
    assert score is not None  # model_a fought every battle
    return LengthControlled(100.0 * sigmoid(score), fit.coefficients[0], fit.converged)


def markdown_counts(text: str) -> dict[str, int]:
    """Headers, list items and bold spans outside code blocks (Arena-Hard's ``utils/add_markdown_info.py``)."""
    for block in _CODE_BLOCK.findall(text):  # Arena-Hard's remove_pattern: each block's inner text, replaced
        text = text.replace(block, "")
    headers = sum(len(re.findall(rf"^#{{{level}}}\s", text, re.MULTILINE)) for level in range(1, 7))
    lists = len(re.findall(r"^\s*\d+\.\s", text, re.MULTILINE)) + len(re.findall(r"^\s*[-*+]\s", text, re.MULTILINE))
    bold = len(re.findall(r"\*\*[^*\n]+\*\*", text)) + len(re.findall(r"__[^_\n]+__", text))
    return {"headers": headers, "lists": lists, "bold": bold}


def style_of(text: str | None, metadata: Mapping[str, Any] | None, *, use_metadata: bool) -> tuple[float, ...]:
    """(length, headers, lists, bold) of one answer: from Arena-Hard's metadata, or from its text."""
    if use_metadata and metadata is not None:
        return (float(metadata["token_len"]), *(float(_total(metadata[name]))
                                                for name in ("header_count", "list_count", "bold_count")))
    counts = markdown_counts(text or "")
    return (float(len(text or "")), float(counts["headers"]), float(counts["lists"]), float(counts["bold"]))


def style_features(battles: Sequence[Battle]) -> tuple[list[list[float]], str] | None:
    """The standardised style columns of each battle and the length unit, or ``None`` without answer texts."""
    with_metadata = all(_has_metadata(b.metadata_a) and _has_metadata(b.metadata_b) for b in battles)
    if not battles or (not with_metadata and any(b.text_a is None or b.text_b is None for b in battles)):
        return None
    rows = []
    for battle in battles:
        a = style_of(battle.text_a, battle.metadata_a, use_metadata=with_metadata)
        b = style_of(battle.text_b, battle.metadata_b, use_metadata=with_metadata)
        row = [(a[0] - b[0]) / (a[0] + b[0]) if a[0] + b[0] else 0.0]
        for index in (1, 2, 3):
            density_a, density_b = a[index] / (a[0] + 1.0), b[index] / (b[0] + 1.0)
            row.append((density_a - density_b) / (density_a + density_b + 1.0))
        rows.append(row)
    columns = list(zip(*rows, strict=True))
    means = [math.fsum(column) / len(column) for column in columns]
    spreads = [_sample_std(list(column)) for column in columns]
    standardised = [[(value - mean) / spread if spread else 0.0
                     for value, mean, spread in zip(row, means, spreads, strict=True)] for row in rows]
    return standardised, "tokens (Arena-Hard metadata)" if with_metadata else "characters"


def _has_metadata(metadata: Mapping[str, Any] | None) -> bool:
    return metadata is not None and all(name in metadata for name in ("token_len", "header_count", "list_count",
                                                                      "bold_count"))


def _total(value: Any) -> float:
    return float(sum(value.values())) if isinstance(value, Mapping) else float(value)


def _sample_std(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (len(values) - 1))
