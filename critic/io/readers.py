"""Streaming readers: ``(row_number, row or RowError)`` for each row of a file or dataset.

A bad row never stops a reader; a file broken as a whole raises :class:`InputError`.
Row numbers count from 1 (JSONL: the line number, blank lines counted; JSON array:
the element; CSV: the data record; Parquet and datasets: the row). The location
``-`` is standard input (JSONL, JSON array or CSV).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from critic.errors import InputError, MissingDependencyError, Reason
from critic.io.opening import STDIN, inner_name
from critic.io.opening import open_binary as _open_binary

logger = logging.getLogger("critic")

FORMATS = ("jsonl", "json", "parquet", "csv", "hf", "hub")

__all__ = ["FORMATS", "STDIN", "RowError", "read_csv", "read_hf_dataset", "read_json_array", "read_jsonl",
           "read_parquet"]


READ_CHUNK = 1 << 20  # characters read at a time from a JSON array


_SURROGATE = re.compile("[\ud800-\udfff]")


class RowError(InputError):
    """One input row that could not be read; ``raw`` is its text, to report as it was."""

    def __init__(self, message: str, raw: Any = None, *, kind: Reason = Reason.UNREADABLE_ROW) -> None:
        super().__init__(message, kind=kind)
        self.raw = raw


def read_jsonl(path: str | Path, *, skip: int = 0) -> Iterator[tuple[int, Any]]:
    """Rows of a JSONL file, one per non-blank line; the first ``skip`` rows are passed over unparsed.

    A file (or standard input) that opens with ``[`` then ``{`` or ``]`` (spaces
    allowed) holds a JSON array of objects, not JSON lines (a JSONL row is an
    object): it is read as that array, and a warning says so. A first line such
    as ``[[1]]`` stays a JSONL row (and is rejected as one).
    """
    with _open_binary(path) as stream:
        if starts_with_array(stream):
            where = "standard input" if str(path) == STDIN else f"'{path}'"
            logger.warning("%s starts with '[': reading it as a JSON array, not as JSON lines", where)
            yield from _array_elements(stream, str(path), skip, hint=_NOT_LINES)
            return
        seen = 0
        for line_number, raw in enumerate(stream, start=1):
            if line_number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            if not raw.strip():
                continue
            seen += 1
            if seen <= skip:
                continue
            yield line_number, _parse_json_line(raw, line_number)


def _parse_json_line(raw: bytes, line_number: int) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        shown = raw.rstrip(b"\r\n").decode("utf-8", "replace")
        return RowError(f"line {line_number} is not valid UTF-8 (invalid byte at position {error.start})", shown)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        # json's messages may end in "at" ("Invalid control character at"): one "at" before the column
        message = f"line {line_number} is not valid JSON ({error.msg.removesuffix(' at')} at column {error.colno})"
        return RowError(message, text.rstrip("\r\n"))
    except RecursionError:
        return RowError(f"line {line_number} is nested too deeply to parse", text.rstrip("\r\n"))


def read_json_array(path: str | Path, *, skip: int = 0) -> Iterator[tuple[int, Any]]:
    """Elements of a JSON array file, streamed: memory holds one element (and a read chunk) at a time.

    An element holding invalid UTF-8 becomes a :class:`RowError`; a syntax error
    breaks the array itself (where the next element starts is unknown), so it
    raises :class:`InputError` naming the position.
    """
    named_json = str(path) != STDIN and inner_name(path).lower().endswith(".json")
    with _open_binary(path) as binary:
        yield from _array_elements(binary, str(path), skip, hint="" if named_json else _NOT_LINES)


_NOT_LINES = " (read as one JSON array because it opens with '[{'; JSON lines must each be an object)"


def starts_with_array(stream: io.BufferedIOBase) -> bool:
    """Whether a stream opens a JSON array of objects (see :func:`opens_object_array`), looked at, not consumed."""
    peek = getattr(stream, "peek", None)
    return opens_object_array(peek(4096) if peek is not None else b"")


def opens_object_array(head: bytes) -> bool:
    """Whether text starts (after a BOM and spaces) with ``[`` followed by ``{`` or ``]``: an array of objects."""
    text = head.lstrip(codecs.BOM_UTF8).lstrip()
    return text.startswith(b"[") and text[1:].lstrip()[:1] in (b"{", b"]")


def _array_elements(binary: Any, path: str, skip: int, *, hint: str = "") -> Iterator[tuple[int, Any]]:
    scan = _ArrayScanner(io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape"), path, hint)
    if scan.opens_empty():
        return
    number = 0
    while True:
        value, text = scan.element()
        number += 1
        if number > skip:
            # Only undecodable bytes put surrogates in the source text: an escaped one ("\ud800",
            # valid JSON) is six ASCII characters there, and its value is read as it is.
            if _SURROGATE.search(text):
                raw = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                yield number, RowError(f"row {number} is not valid UTF-8", raw)
            else:
                yield number, value
        if scan.closes():
            return


class _ArrayScanner:
    """The reading position in a JSON array file, one chunk of text at a time."""

    def __init__(self, stream: IO[str], path: str, hint: str = "") -> None:
        self.stream, self.path, self.hint = stream, path, hint
        self.decoder = json.JSONDecoder()
        self.buffer, self.position, self.eof = "", 0, False
        self.consumed = 0  # characters dropped from the front of the buffer so far, for error positions

    def fill(self) -> bool:
        """Read one more chunk (keeping what is not consumed yet); False at the end of the file."""
        if self.eof:
            return False
        chunk = self.stream.read(READ_CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.consumed += self.position
        self.buffer = self.buffer[self.position :] + chunk
        self.position = 0
        return True

    def skip_space(self) -> bool:
        """Move to the next non-space character; False when the file ends first."""
        while True:
            while self.position < len(self.buffer) and self.buffer[self.position] in " \t\r\n":
                self.position += 1
            if self.position < len(self.buffer):
                return True
            if not self.fill():
                return False

    def broken(self, what: str) -> InputError:
        where = "standard input" if self.path == STDIN else f"'{self.path}'"
        return InputError(f"{where} is not a valid JSON array: {what} at character "
                          f"{self.consumed + self.position}{self.hint}", kind=Reason.UNREADABLE_ROW)

    def opens_empty(self) -> bool:
        """Read the opening '['; True when the array is empty."""
        if not self.skip_space() or self.buffer[self.position] != "[":
            raise self.broken("expected '[' to open the array")
        self.position += 1
        if not self.skip_space():
            raise self.broken("unexpected end of file")
        return self.buffer[self.position] == "]"

    def element(self) -> tuple[Any, str]:
        """The next element's value and its source text."""
        if not self.skip_space():
            raise self.broken("unexpected end of file")
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buffer, self.position)
            except json.JSONDecodeError as error:
                if self.fill():
                    continue
                raise self.broken(error.msg.removesuffix(" at")) from None
            except RecursionError:
                raise self.broken("an element nested too deeply to parse") from None
            # A number cut by the end of the chunk parses as a shorter number ("-0.5e" -> -0.5):
            # accept a value only when the chunk holds what follows it.
            cut = end >= len(self.buffer) or (isinstance(value, (int, float)) and self.buffer[end] not in " \t\r\n,]")
            if cut and self.fill():
                continue
            text, self.position = self.buffer[self.position : end], end
            return value, text

    def closes(self) -> bool:
        """After an element: True at the closing ']' (and nothing after it), False after a ','."""
        if not self.skip_space():
            raise self.broken("unexpected end of file (the array is not closed)")
        if self.buffer[self.position] == "]":
            self.position += 1
            if self.skip_space():
                raise self.broken("extra data after the array")
            return True
        if self.buffer[self.position] != ",":
            raise self.broken("expected ',' or ']' after an element")
        self.position += 1
        return False


def read_csv(path: str | Path, *, skip: int = 0, delimiter: str | None = None) -> Iterator[tuple[int, Any]]:
    """Records of a CSV file (TSV for ``.tsv``) as dicts of strings, keyed by the header."""
    if delimiter is None:
        delimiter = "\t" if inner_name(path).lower().endswith(".tsv") else ","
    csv.field_size_limit(2**31 - 1)  # answers are long; the default limit is 128 KiB per field
    with _open_binary(path) as binary:
        stream = io.TextIOWrapper(binary,  # type: ignore[type-var]
                                   encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader = csv.reader(stream, delimiter=delimiter)
        try:
            header = next(reader, None)
            if header is None:
                return
            if _has_surrogates(header):
                raise InputError(f"the header of '{path}' is not valid UTF-8", kind=Reason.UNREADABLE_ROW)
            number = 0
            for values in reader:
                if not values:  # a blank line is not a record
                    continue
                number += 1
                if number <= skip:
                    continue
                row: Any = dict(zip(header, values, strict=False))
                if _has_surrogates(values):
                    row = RowError(f"row {number} is not valid UTF-8", _replace_surrogates(row))
                elif len(values) != len(header):
                    message = f"row {number} has {len(values)} value(s) but the header has {len(header)} column(s)"
                    row = RowError(message, delimiter.join(_replace_surrogates(values)))
                yield number, row
        except csv.Error as error:
            raise InputError(f"'{path}' is not a readable CSV file: {error} (at line {reader.line_num})",
                             kind=Reason.UNREADABLE_ROW) from None


def read_parquet(path: str | Path, *, skip: int = 0, batch_size: int = 1024) -> Iterator[tuple[int, Any]]:
    """Rows of a Parquet file as dicts, read one record batch at a time."""
    pq = _import("pyarrow.parquet", "pyarrow", "data", "reading Parquet files")
    try:
        parquet = pq.ParquetFile(str(path))
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read Parquet file '{path}': {error}", kind=Reason.UNREADABLE_ROW) from None
    metadata = parquet.metadata
    start_group, first_row = 0, 0
    for group in range(metadata.num_row_groups):  # skip whole row groups without decoding them
        rows = metadata.row_group(group).num_rows
        if first_row + rows > skip:
            break
        first_row += rows
        start_group += 1
    groups = list(range(start_group, metadata.num_row_groups))
    if not groups:
        return
    number = first_row
    for batch in parquet.iter_batches(batch_size=batch_size, row_groups=groups):
        for row in batch.to_pylist():
            number += 1
            if number > skip:
                yield number, row


def read_hf_dataset(dataset: Any, *, skip: int = 0, batch_size: int = 1024) -> Iterator[tuple[int, Any]]:
    """Rows of a ``datasets.Dataset`` (memory-mapped: read a slice at a time)."""
    total = len(dataset)
    for start in range(skip, total, batch_size):
        columns = dataset[start : min(start + batch_size, total)]
        names = list(columns)
        count = len(columns[names[0]]) if names else 0
        for offset in range(count):
            yield start + offset + 1, {name: columns[name][offset] for name in names}


def load_hf_disk(path: str | Path, split: str | None = None) -> Any:
    """A dataset saved with ``save_to_disk`` (a ``DatasetDict`` needs ``split`` unless it has one split)."""
    datasets = _import("datasets", "datasets", "data", "reading Hugging Face datasets")
    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as error:
        raise InputError(f"'{path}' is not a dataset saved with save_to_disk: {error}",
                         kind=Reason.BAD_ARGUMENT) from None
    return _pick_split(loaded, split, str(path))


def load_hub_cached(name: str, split: str | None = None) -> Any:
    """A hub dataset, only from the local cache: critic never downloads a dataset."""
    datasets = _import("datasets", "datasets", "data", "reading Hugging Face hub datasets")
    import huggingface_hub.constants as hub_constants

    cache = Path(datasets.config.HF_DATASETS_CACHE)
    cached = cache / "___".join(name.split("/"))
    if not cached.is_dir():
        raise InputError(
            f"'{name}' is neither a file nor a hub dataset in the local cache ({cached} not found). "
            "critic filter reads hub datasets only from the cache; load it once with "
            f"datasets.load_dataset({name!r}) or pass a local file",
            kind=Reason.BAD_ARGUMENT,
        )
    saved = (datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        loaded = datasets.load_dataset(name, split=split)
    except Exception as error:  # datasets raises many kinds here; all mean "not usable offline"
        raise InputError(f"could not load the cached hub dataset '{name}' offline: {error}",
                         kind=Reason.BAD_ARGUMENT) from None
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved
    return _pick_split(loaded, split, name)


def _pick_split(loaded: Any, split: str | None, where: str) -> Any:
    import datasets

    if isinstance(loaded, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        splits = list(loaded.keys())
        if split is None:
            if len(splits) != 1:
                raise InputError(f"'{where}' has splits {', '.join(splits)}; choose one with --split",
                                 kind=Reason.BAD_ARGUMENT)
            split = splits[0]
        if split not in loaded:
            raise InputError(f"'{where}' has no split '{split}' (splits: {', '.join(splits)})",
                             kind=Reason.BAD_ARGUMENT)
        return loaded[split]
    return loaded


def _import(module: str, package: str, extra: str, feature: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependencyError(package, extra, feature) from error


def _has_surrogates(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, Mapping):
        return any(_has_surrogates(k) or _has_surrogates(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_surrogates(item) for item in value)
    return False


def _replace_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace") if _has_surrogates(value) else value
    if isinstance(value, Mapping):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_replace_surrogates(item) for item in value]
    return value
