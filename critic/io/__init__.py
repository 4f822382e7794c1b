"""Reading inputs, the same way for every command: sources and formats, row shapes, the label vocabulary, writing."""

from critic.io.checks import check_columns
from critic.io.labels import LABEL_SIGNS, LabelSign, parse_label
from critic.io.readers import FORMATS, RowError
from critic.io.rows import (
    conversation_from_row,
    pair_from_row,
    pairs_from_row,
    prepare_row,
    read_pair,
    read_pairs,
)
from critic.io.shapes import Candidate, Columns, RowPair
from critic.io.source import InputSource, open_source

__all__ = [
    "FORMATS",
    "LABEL_SIGNS",
    "Candidate",
    "Columns",
    "InputSource",
    "LabelSign",
    "RowError",
    "RowPair",
    "check_columns",
    "conversation_from_row",
    "open_source",
    "pair_from_row",
    "pairs_from_row",
    "parse_label",
    "prepare_row",
    "read_pair",
    "read_pairs",
]
