"""What to read: an input's location and format, detected once, opened by every command.
"""

from __future__ import annotations

import codecs
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critic.errors import CriticError, InputError
from critic.io.readers import (
    FORMATS,
    _import,
    _open_binary,
    load_hf_disk,
    load_hub_cached,
    read_csv,
    read_hf_dataset,
    read_json_array,
    read_jsonl,
    read_parquet,
)

JSON_COUNT_LIMIT = 512 << 20  # count the rows of JSON arrays and CSV files up to this size (bytes)


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class InputSource:
    """A dataset to read: where, in which format. Picklable, so Ray workers can open it too."""

    location: str
    format: str
    split: str | None = None
    limit: int | None = None  # read the first ``limit`` rows only

    def rows(self, *, skip: int = 0) -> Iterator[tuple[int, Any]]:
        """``(row_number, row or RowError)`` for every row after the first ``skip`` (up to ``limit``)."""
        rows = self._rows(skip)
        if self.limit is None:
            return rows
        return itertools.islice(rows, max(self.limit - skip, 0))

    def _rows(self, skip: int) -> Iterator[tuple[int, Any]]:
        if self.format == "jsonl":
            return read_jsonl(self.location, skip=skip)
        if self.format == "json":
            return read_json_array(self.location, skip=skip)
        if self.format == "csv":
            return read_csv(self.location, skip=skip)
        if self.format == "parquet":
            return read_parquet(self.location, skip=skip)
        if self.format == "hf":
            return read_hf_dataset(load_hf_disk(self.location, self.split), skip=skip)
        if self.format == "hub":
            return read_hf_dataset(load_hub_cached(self.location, self.split), skip=skip)
        raise InputError(f"unknown input format '{self.format}'; choose one of {', '.join(FORMATS)}")

    def count(self) -> int | None:
        total = count_rows(self)
        return total if total is None or self.limit is None else min(total, self.limit)

    def check(self) -> None:
        """Open the input and read its first row: a file that cannot be read at all fails here, early."""
        rows = self._rows(0)
        try:
            next(rows, None)
        finally:
            rows.close()  # type: ignore[attr-defined]

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the input for a resume: its location, format and size."""
        path = Path(self.location)
        if not path.exists():  # a hub name
            return {"location": self.location, "format": self.format, "split": self.split, "size": None}
        size = path.stat().st_size if path.is_file() else None
        return {"location": str(path.resolve()), "format": self.format, "split": self.split, "size": size}


def open_source(location: str | Path, *, format: str | None = None, split: str | None = None) -> InputSource:
    """Check ``location`` and pick its format (see :func:`detect_format`)."""
    location = str(location)
    chosen = format or detect_format(location)
    if chosen not in FORMATS:
        raise InputError(f"unknown input format '{chosen}'; choose one of {', '.join(FORMATS)}")
    if chosen != "hub" and not Path(location).exists():
        raise InputError(f"cannot read input file '{location}': no such file or folder")
    return InputSource(location, chosen, split)


def detect_format(location: str | Path) -> str:
    """The format of an input, from its name (and the first character of a ``.json`` file)."""
    path = Path(location)
    if path.is_dir():
        if any((path / name).exists() for name in ("dataset_info.json", "state.json", "dataset_dict.json")):
            return "hf"
        raise InputError(f"'{path}' is a folder but not a dataset saved with save_to_disk")
    suffix = path.suffix.lower()
    if not path.exists():
        if _HUB_ID.match(str(location)) and suffix not in {".json", ".jsonl", ".csv", ".tsv", ".parquet"}:
            return "hub"
        raise InputError(f"cannot read input file '{location}': no such file or folder")
    if suffix in {".jsonl", ".ndjson"}:
        return "jsonl"
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    if suffix in {".csv", ".tsv"}:
        return "csv"
    if suffix == ".json":
        with _open_binary(path) as stream:
            head = stream.read(4096).lstrip(codecs.BOM_UTF8).lstrip()
        return "json" if head.startswith(b"[") else "jsonl"
    raise InputError(
        f"cannot tell the format of '{location}' from its name; pass --format ({', '.join(FORMATS)})"
    )


def count_rows(source: InputSource) -> int | None:
    """The number of rows, when it is cheap to know (``None`` otherwise); used for progress and ETA."""
    try:
        if source.format == "jsonl":
            with _open_binary(source.location) as stream:
                return sum(1 for line in stream if line.strip())
        if source.format == "parquet":
            pq = _import("pyarrow.parquet", "pyarrow", "data", "reading Parquet files")
            return int(pq.ParquetFile(source.location).metadata.num_rows)
        if source.format in {"json", "csv"}:
            if Path(source.location).stat().st_size > JSON_COUNT_LIMIT:
                return None
            return sum(1 for _ in source.rows())
        if source.format in {"hf", "hub"}:
            loader = load_hf_disk if source.format == "hf" else load_hub_cached
            return len(loader(source.location, source.split))
    except (CriticError, OSError, ValueError):  # counting is best effort; reading will say what is wrong
        return None
    return None
