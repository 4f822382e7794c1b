"""Streaming readers: ``(row_number, row or RowError)`` for each row of a file or dataset.

A bad row never stops a reader; a file broken as a whole raises :class:`InputError`.
Row numbers count from 1 (JSONL: the line number, blank lines counted; JSON array:
the element; CSV: the data record; Parquet and datasets: the row).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from critic.errors import InputError, MissingDependencyError

FORMATS = ("jsonl", "json", "parquet", "csv", "hf", "hub")


READ_CHUNK = 1 << 20  # characters read at a time from a JSON array


_SURROGATE = re.compile("[\ud800-\udfff]")


class RowError(InputError):
    """One input row that could not be read; ``raw`` is its text, to report as it was."""

    def __init__(self, message: str, raw: Any = None) -> None:
        super().__init__(message)
        self.raw = raw


def read_jsonl(path: str | Path, *, skip: int = 0) -> Iterator[tuple[int, Any]]:
    """Rows of a JSONL file, one per non-blank line; the first ``skip`` rows are passed over unparsed."""
    with _open_binary(path) as stream:
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
        message = f"line {line_number} is not valid JSON ({error.msg} at column {error.colno})"
        return RowError(message, text.rstrip("\r\n"))
    except RecursionError:
        return RowError(f"line {line_number} is nested too deeply to parse", text.rstrip("\r\n"))


def read_json_array(path: str | Path, *, skip: int = 0) -> Iterator[tuple[int, Any]]:
    """Elements of a JSON array file, streamed: memory holds one element (and a read chunk) at a time.

    An element holding invalid UTF-8 becomes a :class:`RowError`; a syntax error
    breaks the array itself (where the next element starts is unknown), so it
    raises :class:`InputError` naming the position.
    """
    decoder = json.JSONDecoder()
    with _open_binary(path) as binary:
        stream = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape")
        buffer, position, eof = "", 0, False
        consumed = 0  # characters dropped from the front of the buffer so far, for error positions

        def fill() -> bool:
            nonlocal buffer, position, eof, consumed
            if eof:
                return False
            chunk = stream.read(READ_CHUNK)
            if not chunk:
                eof = True
                return False
            consumed += position
            buffer = buffer[position:] + chunk
            position = 0
            return True

        def skip_space() -> bool:
            nonlocal position
            while True:
                while position < len(buffer) and buffer[position] in " \t\r\n":
                    position += 1
                if position < len(buffer):
                    return True
                if not fill():
                    return False

        def broken(what: str) -> InputError:
            return InputError(f"'{path}' is not a valid JSON array: {what} at character {consumed + position}")

        if not skip_space() or buffer[position] != "[":
            raise broken("expected '[' to open the array")
        position += 1
        number = 0
        if not skip_space():
            raise broken("unexpected end of file")
        if buffer[position] == "]":
            return
        while True:
            if not skip_space():
                raise broken("unexpected end of file")
            while True:
                try:
                    value, end = decoder.raw_decode(buffer, position)
                except json.JSONDecodeError as error:
                    if fill():
                        continue
                    raise broken(error.msg) from None
                except RecursionError:
                    raise broken("an element nested too deeply to parse") from None
                # A number cut by the end of the chunk parses as a shorter number ("-0.5e" -> -0.5):
                # accept a value only when the chunk holds what follows it.
                cut = end >= len(buffer) or (isinstance(value, (int, float)) and buffer[end] not in " \t\r\n,]")
                if cut and fill():
                    continue
                break
            number += 1
            text = buffer[position:end]
            position = end
            if number > skip:
                if _has_surrogates(value):
                    raw = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                    yield number, RowError(f"row {number} is not valid UTF-8", raw)
                else:
                    yield number, value
            if not skip_space():
                raise broken("unexpected end of file (the array is not closed)")
            if buffer[position] == "]":
                position += 1
                if skip_space():
                    raise broken("extra data after the array")
                return
            if buffer[position] != ",":
                raise broken("expected ',' or ']' after an element")
            position += 1


def read_csv(path: str | Path, *, skip: int = 0, delimiter: str | None = None) -> Iterator[tuple[int, Any]]:
    """Records of a CSV file (TSV for ``.tsv``) as dicts of strings, keyed by the header."""
    if delimiter is None:
        delimiter = "\t" if str(path).lower().endswith(".tsv") else ","
    csv.field_size_limit(2**31 - 1)  # answers are long; the default limit is 128 KiB per field
    with _open_binary(path) as binary:
        stream = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader = csv.reader(stream, delimiter=delimiter)
        try:
            header = next(reader, None)
            if header is None:
                return
            if _has_surrogates(header):
                raise InputError(f"the header of '{path}' is not valid UTF-8")
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
            raise InputError(f"'{path}' is not a readable CSV file: {error} (at line {reader.line_num})") from None


def read_parquet(path: str | Path, *, skip: int = 0, batch_size: int = 1024) -> Iterator[tuple[int, Any]]:
    """Rows of a Parquet file as dicts, read one record batch at a time."""
    pq = _import("pyarrow.parquet", "pyarrow", "data", "reading Parquet files")
    try:
        parquet = pq.ParquetFile(str(path))
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read Parquet file '{path}': {error}") from None
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
        raise InputError(f"'{path}' is not a dataset saved with save_to_disk: {error}") from None
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
            f"datasets.load_dataset({name!r}) or pass a local file"
        )
    saved = (datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        loaded = datasets.load_dataset(name, split=split)
    except Exception as error:  # datasets raises many kinds here; all mean "not usable offline"
        raise InputError(f"could not load the cached hub dataset '{name}' offline: {error}") from None
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved
    return _pick_split(loaded, split, name)


def _pick_split(loaded: Any, split: str | None, where: str) -> Any:
    import datasets

    if isinstance(loaded, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        splits = list(loaded.keys())
        if split is None:
            if len(splits) != 1:
                raise InputError(f"'{where}' has splits {', '.join(splits)}; choose one with --split")
            split = splits[0]
        if split not in loaded:
            raise InputError(f"'{where}' has no split '{split}' (splits: {', '.join(splits)})")
        return loaded[split]
    return loaded


def _open_binary(path: str | Path) -> IO[bytes]:
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by the caller's with-block
    except OSError as error:
        raise InputError(f"cannot read input file '{path}': {error.strerror}") from None


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
