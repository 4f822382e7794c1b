"""What to read: an input's location and format, detected once, opened by every command.
"""

from __future__ import annotations

import codecs
import functools
import itertools
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critic.errors import CriticError, InputError, Reason
from critic.io.opening import COMPRESSED, PARQUET, SNIFF_BYTES, inner_name, is_compressed, raw_head, sniff
from critic.io.opening import open_binary as _open_binary
from critic.io.readers import (
    FORMATS,
    STDIN,
    _import,
    load_hf_disk,
    load_hub_cached,
    opens_object_array,
    read_csv,
    read_hf_dataset,
    read_json_array,
    read_jsonl,
    read_parquet,
)

logger = logging.getLogger("critic")

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


COUNT_CHUNK = 1 << 20  # bytes read at a time when counting lines


@dataclass(frozen=True)
class InputSource:
    """A dataset to read: where, in which format. Picklable, so Ray workers can open it too.

    A ``hf`` or ``hub`` dataset is loaded once, on first use, and kept on the
    source (not pickled: a worker loads its own).
    """

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
        if self.format in {"hf", "hub"}:
            return read_hf_dataset(self.dataset, skip=skip)
        raise InputError(f"unknown input format '{self.format}'; choose one of {', '.join(FORMATS)}",
                         kind=Reason.BAD_ARGUMENT)

    @functools.cached_property
    def dataset(self) -> Any:
        """The loaded ``datasets.Dataset`` of a ``hf`` or ``hub`` source (loaded once, then kept)."""
        if self.format == "hf":
            return load_hf_disk(self.location, self.split)
        if self.format == "hub":
            return load_hub_cached(self.location, self.split)
        raise InputError(f"'{self.location}' is a {self.format} file, not a dataset", kind=Reason.BAD_ARGUMENT)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("dataset", None)  # a loaded dataset stays in its process
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def count(self) -> int | None:
        """The number of rows when it is cheap to know (see :func:`count_rows`), else ``None``."""
        total = count_rows(self)
        return total if total is None or self.limit is None else min(total, self.limit)

    def check(self) -> None:
        """Open the input and read its first row: a file that cannot be read at all fails here, early.

        Standard input is not read ahead (what is read cannot be read again).
        """
        if self.location == STDIN:
            return
        rows = self._rows(0)
        try:
            next(rows, None)
        finally:
            rows.close()  # type: ignore[attr-defined]

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the input for a resume: its location, format and size."""
        path = Path(self.location)
        if self.location == STDIN or not path.exists():  # standard input, a hub name
            return {"location": self.location, "format": self.format, "split": self.split, "size": None}
        size = path.stat().st_size if path.is_file() else None
        return {"location": str(path.resolve()), "format": self.format, "split": self.split, "size": size}


def open_source(
    location: str | Path, *, format: str | None = None, split: str | None = None, limit: int | None = None
) -> InputSource:
    """Check ``location`` and pick its format (see :func:`detect_format`); ``-`` is standard input (JSONL by default).

    ``limit`` reads only the first ``limit`` rows. Raises :class:`InputError` for an
    absent file, an unknown format or a negative limit.
    """
    location = str(location)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InputError(f"the row limit must be a whole number, 0 or more, got {limit!r}", kind=Reason.BAD_ARGUMENT)
    if location == STDIN:
        chosen = format or "jsonl"
        if chosen == "parquet":
            raise InputError("Parquet cannot be read from standard input (a Parquet file is read from its footer, "
                             "at the end); save it to a file and pass its path", kind=Reason.BAD_ARGUMENT)
        if chosen not in {"jsonl", "json", "csv"}:
            raise InputError(f"standard input can be read as jsonl, json or csv, not {chosen}",
                             kind=Reason.BAD_ARGUMENT)
        return InputSource(location, chosen, split, limit)
    chosen = format or detect_format(location)
    if chosen not in FORMATS:
        raise InputError(f"unknown input format '{chosen}'; choose one of {', '.join(FORMATS)}",
                         kind=Reason.BAD_ARGUMENT)
    if chosen != "hub" and not Path(location).exists():
        raise InputError(f"cannot read input file '{location}': no such file or folder", kind=Reason.BAD_ARGUMENT)
    return InputSource(location, chosen, split, limit)


def detect_format(location: str | Path) -> str:
    """The format of an input, from what it holds and its name.

    A folder saved with ``save_to_disk`` is ``hf``; a name that is no file but
    looks like ``org/name`` is a cached hub dataset. A file is Parquet when it
    starts with Parquet's magic bytes, whatever its name. Otherwise its name
    (without a ``.gz``/``.zst`` suffix when it is compressed) says JSONL, JSON or
    CSV, and for JSON names the first character decides: ``[`` opens a JSON
    array, anything else is JSON lines (a ``.jsonl`` file holding an array is
    read as the array, with a warning).
    """
    path = Path(location)
    if path.is_dir():
        if any((path / name).exists() for name in ("dataset_info.json", "state.json", "dataset_dict.json")):
            return "hf"
        raise InputError(f"'{path}' is a folder but not a dataset saved with save_to_disk", kind=Reason.BAD_ARGUMENT)
    suffix = path.suffix.lower()
    if not path.exists():
        if _HUB_ID.match(str(location)) and suffix not in {".json", ".jsonl", ".csv", ".tsv", ".parquet"}:
            return "hub"
        raise InputError(f"cannot read input file '{location}': no such file or folder", kind=Reason.BAD_ARGUMENT)
    stored = sniff(raw_head(path))
    if stored == PARQUET:
        if suffix not in {".parquet", ".pq"}:
            logger.warning("'%s' is a Parquet file (it starts with Parquet's magic bytes): reading it as Parquet",
                           location)
        return "parquet"
    if stored in COMPRESSED:
        suffix = Path(inner_name(path)).suffix.lower()
        logger.info("'%s' is %s-compressed: decompressing it as it is read", location, stored)
    if suffix == ".json":
        return "json" if _head(path).startswith(b"[") else "jsonl"
    if suffix in {".jsonl", ".ndjson"}:
        if opens_object_array(_head(path)):
            logger.warning("'%s' starts with '[': reading it as a JSON array, not as JSON lines", location)
            return "json"
        return "jsonl"
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    if suffix in {".csv", ".tsv"}:
        return "csv"
    raise InputError(
        f"cannot tell the format of '{location}' from its name; pass --format ({', '.join(FORMATS)})",
        kind=Reason.BAD_ARGUMENT,
    )


def _head(path: Path) -> bytes:
    """The start of a (possibly compressed) text file, after a BOM and spaces."""
    with _open_binary(path) as stream:
        head = stream.read(SNIFF_BYTES)
    return head.lstrip(codecs.BOM_UTF8).lstrip()


def count_rows(source: InputSource) -> int | None:
    """The number of rows when it is cheap to know, for progress and ETA; ``None`` otherwise.

    JSONL: its non-blank lines; Parquet: its metadata; a dataset: its length
    (the dataset the rows then come from); CSV: its records when no field is
    quoted (a quoted field may hold newlines); JSON arrays, compressed files and
    standard input: ``None`` (counting would mean reading the whole input once more).
    """
    if source.location == STDIN:
        return None
    try:
        if source.format in {"jsonl", "csv"} and is_compressed(source.location):
            return None
        if source.format == "jsonl":
            with _open_binary(source.location) as stream:
                return sum(1 for line in stream if line.strip())
        if source.format == "parquet":
            pq = _import("pyarrow.parquet", "pyarrow", "data", "reading Parquet files")
            return int(pq.ParquetFile(source.location).metadata.num_rows)
        if source.format == "csv":
            return _count_csv_records(source.location)
        if source.format in {"hf", "hub"}:
            return len(source.dataset)
    except (CriticError, OSError, ValueError):  # counting is best effort; reading will say what is wrong
        return None
    return None


def _count_csv_records(location: str) -> int | None:
    """Data records of a CSV file without quotes or bare carriage returns (one per non-empty line), else ``None``."""
    lines, pending = 0, b""
    with _open_binary(location) as stream:
        while chunk := stream.read(COUNT_CHUNK):
            if b'"' in chunk:
                return None
            *complete, pending = (pending + chunk).split(b"\n")
            for line in complete:
                if b"\r" in line[:-1]:
                    return None
                lines += bool(line.rstrip(b"\r"))
    if b"\r" in pending[:-1]:
        return None
    lines += bool(pending.rstrip(b"\r"))
    return max(lines - 1, 0)  # the header is not a record
