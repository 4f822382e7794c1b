"""Labelled pairs and other judges' predictions, read for an evaluation.

Rows are read by the same layer as every other command (:mod:`critic.io`): the
same formats, the same row shapes and :class:`~critic.io.shapes.Columns`, and the
one label vocabulary (:func:`~critic.io.labels.parse_label`). Only the policy
differs from ``critic filter``: here a tie is a gold label, not a rejection.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critic.errors import CriticError, InputError, Reason
from critic.io.checks import check_columns
from critic.io.labels import label_or_none
from critic.io.readers import RowError
from critic.io.rows import detect, read_pairs, row_label
from critic.io.shapes import CHOSEN_SHAPES, Columns, Detected, RowPair
from critic.io.source import InputSource, open_source
from critic.types import Label, Pair

logger = logging.getLogger("critic")


PREDICTION_FIELDS = ("gpt_result", "pandalm_result", "prediction", "predicted", "winner", "preference",
                     "verdict", "label", "result")


KEY_FIELDS = ("id", "idx")  # a row's key: the first of these it has, else its row number


@dataclass(frozen=True)
class LabelledPair:
    """A pair and its gold label. ``flipped``: shown with the chosen response second (see loader).

    ``row`` is the input row it was read from (``None`` when built in code).
    ``group`` ties together the pairs one input row expands into (RewardBench 2:
    each chosen answer against each of several rejected ones; ``answers`` holds
    the pair's two indices); ``None`` for a row that is one pair.
    """

    key: str
    pair: Pair
    label: Label
    subset: str | None = None
    flipped: bool = False
    row: int | None = None
    group: str | None = None
    answers: tuple[int, int] | None = None  # a group's pair: (index among the chosen answers, among the rejected)


@dataclass(frozen=True)
class LoadedPairs:
    """The pairs read, the rows skipped, and what the first readable row was read as (``detected``).

    ``detected.label_column`` is the column labels came from (``"winner"`` for
    Arena-style rows without a ``label``), for the command line to print.
    """

    pairs: tuple[LabelledPair, ...]
    skipped: tuple[str, ...]  # one reason per row that could not be used ("row 5: ...")
    detected: Detected | None = None

    @property
    def label_column(self) -> str | None:
        return None if self.detected is None else self.detected.label_column

    def __iter__(self) -> Iterator[LabelledPair]:
        """The pairs, so that ``evaluate(judge, load_labelled_pairs(path))`` works as it reads."""
        return iter(self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)


def load_labelled_pairs(
    location: str | Path | InputSource,
    *,
    format: str | None = None,
    split: str | None = None,
    limit: int | None = None,
    columns: Columns | None = None,
) -> LoadedPairs:
    """Read labelled pairs from the first ``limit`` rows of a file or dataset (any format of :mod:`critic.io`).

    - PandaLM rows (``instruction``, ``input``, ``response1``, ``response2``,
      ``annotator1..3``): response1 is A; gold is the annotators' majority, and
      ties stay ties.
    - ``prompt``/``response_a``/``response_b`` with a ``label`` (any spelling
      :func:`~critic.io.labels.parse_label` reads): kept in their order.
    - chosen/rejected rows (strings or message lists, e.g. RewardBench with its
      ``subset``): the chosen response is shown first on even pairs and second
      on odd ones, so that a judge that always answers "A" scores 50%, not 100%.
    ``columns`` renames the fields (LLMBar: ``Columns(prompt="input",
    response_a="output_1", response_b="output_2")``, its labels 1/2 read as
    A/B; ``None``: the default names). A row without a usable label is skipped with its reason.
    """
    if isinstance(location, InputSource):
        source = location if limit is None else dataclasses.replace(location, limit=limit)
    else:
        source = open_source(location, format=format, split=split, limit=limit)
    if columns is not None:
        check_columns(source, columns)
    pairs: list[LabelledPair] = []
    skipped: list[str] = []
    detected: Detected | None = None
    rows_of: dict[str, int] = {}  # the row each key came from: a key twice is an error
    for number, row in source.rows():
        try:
            read = labelled_pairs(number, row, columns, flip=len(pairs) % 2 == 1)
        except CriticError as error:
            skipped.append(f"row {number}: {error}")
            continue
        key = read[0].group or read[0].key
        explicit = isinstance(row, Mapping) and any(row.get(name) is not None for name in KEY_FIELDS)
        if explicit and key in rows_of:
            raise InputError(f"'{source.location}' has the id {key!r} twice (rows {rows_of[key]} and {number}); "
                             "other judges' predictions and the report's pairs are matched by id, so give each "
                             "row its own", kind=Reason.BAD_ARGUMENT)
        if explicit:
            rows_of[key] = number
        pairs.extend(read)
        if detected is None:
            detected = detect(row, columns)
            logger.info("%s: %s", source.location, detected.describe())
    if skipped:
        logger.warning("%d row(s) skipped; first: %s", len(skipped), skipped[0])
    return LoadedPairs(tuple(pairs), tuple(skipped), detected)


def labelled_pair(number: int, row: Any, columns: Columns | None = None, *, flip: bool = False) -> LabelledPair:
    """One input row as a :class:`LabelledPair` (``flip``: show a chosen/rejected row's chosen answer second).

    Raises :class:`InputError` (with its kind) for a row that cannot be read or has no label.
    """
    items = labelled_pairs(number, row, columns, flip=flip)
    if len(items) != 1:
        raise InputError(f"row {number} holds {len(items)} pairs (one per rejected answer); read it with "
                         "labelled_pairs", kind=Reason.WRONG_TYPE)
    return items[0]


def labelled_pairs(number: int, row: Any, columns: Columns | None = None, *,
                   flip: bool = False) -> tuple[LabelledPair, ...]:
    """Every :class:`LabelledPair` one input row holds (``flip``: show the first one's chosen answer second).

    A RewardBench 2 row (one chosen answer, or several in its ``Ties`` subset,
    and a list of rejected ones) gives one pair per (chosen, rejected) answer,
    keyed ``<row key>:<index>`` (from 0) and grouped by the row key,
    alternating the chosen side from pair to pair. Raises
    :class:`InputError` (with its kind) for a row that cannot be read or has no label.
    """
    reads = read_pairs(row, columns)
    key = row_key(reads[0].row, number)
    subset = reads[0].row.get("subset") if isinstance(reads[0].row.get("subset"), str) else None
    if reads[0].shape == "best-of":
        return tuple(_chosen_first(read, f"{key}:{index}", subset, number, flip != (index % 2 == 1), key)
                     for index, read in enumerate(reads))
    read = reads[0]
    if read.shape in CHOSEN_SHAPES:
        return (_chosen_first(read, key, subset, number, flip, None),)
    label = row_label(read)
    if label is None:
        raise InputError(f"no '{read.columns.label}' saying which response is better", kind=Reason.MISSING_FIELD)
    return (LabelledPair(key, read.pair, label, subset, row=number),)


def _chosen_first(read: RowPair, key: str, subset: str | None, number: int, flip: bool,
                  group: str | None) -> LabelledPair:
    pair = read.pair.swapped() if flip else read.pair
    return LabelledPair(key, pair, "B" if flip else "A", subset, flip, row=number, group=group,
                        answers=read.answers if group is not None else None)


def row_key(row: Mapping[str, Any], number: int) -> str:
    """The key that lines a row up with other judges' predictions: its ``id``, else ``idx``, else its row number."""
    value = next((row[name] for name in KEY_FIELDS if row.get(name) is not None), number)
    return str(value)


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
    """Read another judge's predictions: rows with a key (``id``, ``idx``, else the row number) and a label field.

    ``field`` defaults to the first of :data:`PREDICTION_FIELDS` present. Labels
    are read with :func:`~critic.io.labels.parse_label`: PandaLM's 0/1/2 and GPT's
    "1"/"2"/"Tie" work as they are; anything else (GPT's "garbage") is a failed
    prediction. A key that appears twice is an :class:`InputError`: which of
    the two predictions counts would be a guess.
    """
    labels: dict[str, Label | None] = {}
    rows_of: dict[str, int] = {}
    for number, row in open_source(location).rows():
        if isinstance(row, RowError):
            raise InputError(f"'{location}': {row}", kind=row.kind)
        if not isinstance(row, Mapping):
            raise InputError(f"'{location}' row {number}: a prediction must be a JSON object, "
                             f"got {type(row).__name__}", kind=Reason.NOT_AN_OBJECT)
        if field is None:
            field = _prediction_field(row, location)
        pair_key = _prediction_key(row, number, key, location)
        if pair_key in rows_of:
            raise InputError(f"'{location}' has two predictions for the pair {pair_key!r} (rows {rows_of[pair_key]} "
                             f"and {number}); give each pair one row", kind=Reason.BAD_ARGUMENT)
        rows_of[pair_key] = number
        labels[pair_key] = label_or_none(row.get(field))
    return Predictions(name, str(location), field or "", labels)


def _prediction_field(row: Mapping[str, Any], location: str | Path) -> str:
    found = next((name for name in PREDICTION_FIELDS if name in row), None)
    if found is None:
        raise InputError(f"'{location}' has none of the prediction fields {', '.join(PREDICTION_FIELDS)}; "
                         f"name one with NAME=PATH#FIELD (present: {', '.join(sorted(map(str, row)))})",
                         kind=Reason.MISSING_FIELD)
    return found


def _prediction_key(row: Mapping[str, Any], number: int, key: str | None, location: str | Path) -> str:
    if key is None:
        return row_key(row, number)
    if row.get(key) is None:
        raise InputError(f"'{location}' row {number} has no key field '{key}'", kind=Reason.MISSING_FIELD)
    return str(row[key])


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
