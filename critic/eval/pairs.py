"""Labelled pairs and other judges' predictions, read for an evaluation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from critic.errors import CriticError, InputError
from critic.types import Label, Pair

if TYPE_CHECKING:
    pass
from critic.io.labels import majority_label, normalize_label

logger = logging.getLogger("critic")


PREDICTION_FIELDS = ("gpt_result", "pandalm_result", "prediction", "predicted", "winner", "preference",
                     "verdict", "label", "result")


@dataclass(frozen=True)
class LabelledPair:
    """A pair and its gold label. ``flipped``: shown with the chosen response second (see loader)."""

    key: str
    pair: Pair
    label: Label
    subset: str | None = None
    flipped: bool = False


@dataclass(frozen=True)
class LoadedPairs:
    pairs: tuple[LabelledPair, ...]
    skipped: tuple[str, ...]  # one reason per row that could not be used


def load_labelled_pairs(
    location: str | Path, *, limit: int | None = None, format: str | None = None, split: str | None = None
) -> LoadedPairs:
    """Read labelled pairs from the first ``limit`` rows of a file or dataset (formats: :mod:`critic.data`).

    - PandaLM rows (``instruction``, ``input``, ``response1``, ``response2``,
      ``annotator1..3``): response1 is A; gold is the annotators' majority, and
      ties stay ties.
    - ``prompt``/``response_a``/``response_b`` with a ``label`` (A/B/tie and
      the spellings :func:`normalize_label` reads): kept in their order.
    - chosen/rejected rows (strings or message lists, e.g. RewardBench with its
      ``subset``): the chosen response is shown first on even pairs and second
      on odd ones, so that a judge that always answers "A" scores 50%, not 100%.
    A row without a usable label is skipped with its reason.
    """
    from critic.io.rows import prepare_row
    from critic.io.source import open_source

    pairs: list[LabelledPair] = []
    skipped: list[str] = []
    for seen, (number, row) in enumerate(open_source(location, format=format, split=split).rows(), start=1):
        if limit is not None and seen > limit:
            break
        try:
            if isinstance(row, CriticError):
                raise row
            if not isinstance(row, Mapping):
                raise InputError(f"a row must be an object, got {type(row).__name__}")
            key = str(row.get("id", row.get("idx", number)))
            subset = row.get("subset") if isinstance(row.get("subset"), str) else None
            if "annotator1" in row and "response1" in row:
                pairs.append(_pandalm_pair(row, key))
            elif "label" in row and "response_a" in row:
                pairs.append(_labelled_ab_pair(row, key, subset))
            else:
                candidate = prepare_row(row)
                if candidate.shape == "ab":
                    raise InputError("no 'label' saying which response is better")
                flipped = len(pairs) % 2 == 1
                pair = candidate.pair.swapped() if flipped else candidate.pair
                pairs.append(LabelledPair(key, pair, "B" if flipped else "A", subset, flipped))
        except CriticError as error:
            skipped.append(f"row {number}: {error}")
    if skipped:
        logger.warning("%d row(s) skipped; first: %s", len(skipped), skipped[0])
    return LoadedPairs(tuple(pairs), tuple(skipped))


def _pandalm_pair(row: Mapping[str, Any], key: str) -> LabelledPair:
    votes = [row.get(f"annotator{i}") for i in (1, 2, 3)]
    if any(isinstance(v, bool) or v not in (0, 1, 2) for v in votes):
        raise InputError(f"annotators must say 0 (tie), 1 or 2, got {votes}")
    extra = row.get("input") or ""
    prompt = row.get("instruction", "") + (f"\n\n{extra}" if extra else "")  # the input belongs to the prompt
    # PandaLM's testset-v1.json stores six answers "True" as JSON true (idx 157-164): read them back as text.
    responses = [str(value) if isinstance(value, bool) else value
                 for value in (row.get("response1"), row.get("response2"))]
    return LabelledPair(key, Pair(prompt, *responses), majority_label(votes))  # type: ignore[arg-type]


def _labelled_ab_pair(row: Mapping[str, Any], key: str, subset: str | None) -> LabelledPair:
    label = normalize_label(row["label"])
    if label is None:
        raise InputError(f"label {row['label']!r} is not A, B or tie")
    return LabelledPair(key, Pair.from_mapping(row), label, subset)


@dataclass(frozen=True)
class Predictions:
    """Another judge's labels by pair key; ``None`` where its answer was unusable."""

    name: str
    source: str
    field: str
    labels: Mapping[str, Label | None]


def load_predictions(
    name: str, location: str | Path, *, field: str | None = None, key: str | None = None
) -> Predictions:
    """Read another judge's predictions: rows with a key (``idx``, ``id``, else the row number) and a label field.

    ``field`` defaults to the first of :data:`PREDICTION_FIELDS` present. Labels
    are read with :func:`normalize_label`: PandaLM's 0/1/2 and GPT's "1"/"2"/"Tie"
    work as they are; anything else (GPT's "garbage") is a failed prediction.
    """
    from critic.io.source import open_source

    labels: dict[str, Label | None] = {}
    for number, row in open_source(location).rows():
        if not isinstance(row, Mapping):
            raise InputError(f"'{location}' row {number}: not an object")
        if field is None:
            field = next((f for f in PREDICTION_FIELDS if f in row), None)
            if field is None:
                raise InputError(f"'{location}' has none of the prediction fields {', '.join(PREDICTION_FIELDS)}; "
                                 f"name one with NAME=PATH#FIELD (present: {', '.join(sorted(map(str, row)))})")
        pair_key = row.get(key) if key else row.get("idx", row.get("id", number))
        labels[str(pair_key)] = normalize_label(row.get(field))
    return Predictions(name, str(location), field or "", labels)


def companion_files(location: str | Path) -> dict[str, Path]:
    """Other judges' prediction files beside an input: ``<judge>-<input name>`` (PandaLM's layout).

    Beside PandaLM's ``testset-v1.json`` these are ``gpt-3.5-turbo-testset-v1.json``
    and ``pandalm-7b-testset-v1.json``, named ``gpt-3.5-turbo`` and ``pandalm-7b``.
    """
    path = Path(location)
    if not path.is_file():
        return {}
    suffix = f"-{path.name}"
    return {p.name[: -len(suffix)]: p for p in sorted(path.parent.glob(f"*{suffix}")) if p != path}
