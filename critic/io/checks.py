"""Checks on what the user typed against the input itself, made before any model loads.

:func:`check_columns`: a field flag (``--prompt-field question``) that names a
column the input does not have is an error, whatever row shape is detected.
Without it a known shape (HH-RLHF, PandaLM, ...) would be read with its own
columns and the flag silently ignored.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from critic.errors import InputError, Reason
from critic.io.labels import ONE_HOT_COLUMNS
from critic.io.opening import STDIN
from critic.io.shapes import Columns
from critic.io.source import InputSource

ROWS_LOOKED_AT = 100  # readable rows whose columns count as the input's columns


def check_columns(source: InputSource, columns: Columns, *, rows: int = ROWS_LOOKED_AT) -> None:
    """Every column the user renamed (a field differing from its default) exists in the input; else :class:`InputError`.

    The input's columns are those of its first ``rows`` readable rows (a
    dataset's or Parquet file's are its schema's). Columns left at their
    defaults are not checked (a row shape may not use them), nor is standard
    input (what is read cannot be read again), nor an input with no readable
    row (the job reports its rows). Naming one of Arena's one-hot label columns
    needs all three (they are read together).
    """
    renamed = columns.customized()
    if not renamed or source.location == STDIN:
        return
    present = _columns_of(source, rows)
    if present is None:
        return
    missing = {name: column for name, column in renamed.items() if column not in present}
    if renamed.get("label") in ONE_HOT_COLUMNS:
        absent = [name for name in ONE_HOT_COLUMNS if name not in present]
        if absent:
            missing["label"] = absent[0]
    if not missing:
        return
    shown = ", ".join(sorted(present)[:20]) or "none"
    flags = "; ".join(f"{_flag(name)} names column '{column}'" for name, column in missing.items())
    where = f"the first {rows} readable rows of" if source.format in {"jsonl", "json"} else "the columns of"
    raise InputError(f"{flags}, which is not in {where} '{source.location}' (columns there: {shown}); name a "
                     "column the input has, or leave the flag out", kind=Reason.MISSING_FIELD)


def _columns_of(source: InputSource, rows: int) -> set[str] | None:
    """The input's column names; ``None`` when no row could be read."""
    if source.format in {"hf", "hub"}:
        return set(source.dataset.column_names)
    present: set[str] = set()
    found = False
    read = source.rows()
    try:
        for row in itertools.islice((row for _, row in read if isinstance(row, Mapping)), rows):
            found = True
            present.update(map(str, row))
    finally:
        getattr(read, "close", lambda: None)()
    return present if found else None


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}-field"

