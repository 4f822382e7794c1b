"""Preference datasets in and out: streaming readers, row shapes, JSONL rows.

Readers are generators of ``(row_number, row)`` where ``row`` is the parsed row
(usually a dict) or a :class:`RowError` for a row that could not be read at all
(invalid JSON, invalid UTF-8, a CSV line with the wrong number of values). A
bad row never stops a reader; a file that is broken as a whole (a JSON array
with a syntax error, an unreadable Parquet file) raises :class:`InputError`.

Row numbers count from 1: the line number for JSONL (blank lines are skipped
but counted), the element for a JSON array, the data record for CSV (the header
is not a row), the row for Parquet and Hugging Face datasets.

Supported inputs (see :func:`detect_format`):

``jsonl``    one JSON object per line (``.jsonl``, ``.ndjson``, or a ``.json``
             file whose first character is not ``[``), streamed line by line.
``json``     a JSON array of objects (``.json`` starting with ``[``), streamed
             element by element without loading the whole file.
``parquet``  streamed by record batches with pyarrow.
``csv``      ``.csv`` (``.tsv`` with tabs); every value is a string, so only
             the string shapes work.
``hf``       a folder written by ``Dataset.save_to_disk`` (memory-mapped).
``hub``      a Hugging Face hub dataset name, only when already in the local
             cache: critic never downloads a dataset.

Row shapes (see :func:`prepare_row`), detected row by row:

(a) ``prompt``, ``chosen``, ``rejected`` as strings.
(b) ``chosen`` and ``rejected`` as message lists ending in the assistant
    answer; the messages they share before it are the conversation: its last
    user message is the prompt, earlier turns are the pair's history. When the
    lists hold only the answer, a ``prompt`` column (string or message list)
    supplies the conversation.
(c) ``prompt``, ``response_a``, ``response_b`` with an optional ``label``
    (``A``/``B``, ``response_a``/``response_b``, ``model_a``/``model_b``) naming
    the better one; without a label, ``response_a`` is taken as the claimed
    better answer.
(pandalm) PandaLM's native rows (``instruction``, ``input``, ``response1``,
    ``response2``, ``annotator1..3``), converted to shape (a) by the
    annotators' majority; a row without a majority is rejected as a tie.

Column names are remapped with :class:`Columns`.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import csv
import dataclasses
import datetime
import decimal
import io
import itertools
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from critic.errors import CriticError, InputError, MissingDependencyError
from critic.types import Message, Pair, check_messages

FORMATS = ("jsonl", "json", "parquet", "csv", "hf", "hub")
READ_CHUNK = 1 << 20  # characters read at a time from a JSON array
JSON_COUNT_LIMIT = 512 << 20  # count the rows of JSON arrays and CSV files up to this size (bytes)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SURROGATE = re.compile("[\ud800-\udfff]")

__all__ = [
    "FORMATS",
    "Candidate",
    "Columns",
    "InputSource",
    "RowError",
    "count_rows",
    "detect_format",
    "dumps_row",
    "open_source",
    "pandalm_row",
    "prepare_row",
    "read_csv",
    "read_json_array",
    "read_jsonl",
    "read_parquet",
]


class RowError(InputError):
    """One input row that could not be read; ``raw`` is its text, to report as it was."""

    def __init__(self, message: str, raw: Any = None) -> None:
        super().__init__(message)
        self.raw = raw


# --------------------------------------------------------------------------- readers


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


# --------------------------------------------------------------------------- row shapes


@dataclass(frozen=True)
class Columns:
    """Which input columns hold what (``--prompt-field`` and friends)."""

    prompt: str = "prompt"
    chosen: str = "chosen"
    rejected: str = "rejected"
    response_a: str = "response_a"
    response_b: str = "response_b"
    label: str = "label"
    reference: str = "reference"
    history: str = "history"

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Candidate:
    """A row ready for the judge.

    ``pair`` shows the claimed better answer as ``response_a`` (the judge's
    ``p_a`` is then P(chosen is better)). ``row`` is what the outputs carry (the
    row as it came in, or PandaLM's row converted to chosen/rejected).
    ``relabel`` says how to swap the claim: ``("swap", key1, key2)`` exchanges
    two columns, ``("set", key, value)`` rewrites a label.
    """

    pair: Pair
    row: dict[str, Any]
    shape: str
    relabel: tuple[str, str, Any]

    def relabelled(self) -> dict[str, Any]:
        """The output row with chosen and rejected exchanged."""
        row = dict(self.row)
        action, key, other = self.relabel
        if action == "swap":
            row[key], row[other] = row[other], row[key]
        else:
            row[key] = other
        return row


_LABELS_A = {"a": "b", "response_a": "response_b", "model_a": "model_b"}
_LABELS_B = {value: key for key, value in _LABELS_A.items()}
_TIE_LABELS = {"tie", "c", "tie (bothbad)", "both", "neither", "none"}
_PANDALM_FIELDS = {"instruction", "input", "response1", "response2", "annotator1", "annotator2", "annotator3"}


def prepare_row(row: Any, columns: Columns = Columns()) -> Candidate:
    """Turn one input row into a :class:`Candidate`, or raise :class:`InputError` saying why not (one line)."""
    if isinstance(row, RowError):
        raise row
    if not isinstance(row, Mapping):
        raise InputError(f"a row must be a JSON object, got {_type_name(row)}")
    if "instruction" in row and "response1" in row and "response2" in row and "annotator1" in row:
        row, columns = pandalm_row(row), Columns()
    c = columns
    reference = _optional_string(row, c.reference)
    if c.chosen in row or c.rejected in row:
        chosen, rejected = _required(row, c.chosen), _required(row, c.rejected)
        lists = isinstance(chosen, list), isinstance(rejected, list)
        if lists == (True, True):
            prompt, history = _conversation(row, c, chosen, rejected)
            pair = _pair(prompt, chosen[-1]["content"], rejected[-1]["content"], reference, history)
            return Candidate(pair, dict(row), "messages", ("swap", c.chosen, c.rejected))
        if any(lists):
            raise InputError(f"fields '{c.chosen}' and '{c.rejected}' must both be strings or both message lists, "
                             f"got {_type_name(chosen)} and {_type_name(rejected)}")
        for name, value in ((c.chosen, chosen), (c.rejected, rejected)):
            if not isinstance(value, str):
                raise InputError(f"field '{name}' must be a string or a message list, got {_type_name(value)}")
        prompt = _required(row, c.prompt)
        if not isinstance(prompt, str):
            raise InputError(f"field '{c.prompt}' must be a string, got {_type_name(prompt)}")
        pair = _pair(prompt, chosen, rejected, reference, _history(row, c))
        return Candidate(pair, dict(row), "pairs", ("swap", c.chosen, c.rejected))
    if c.response_a in row or c.response_b in row:
        values = {}
        for name in (c.prompt, c.response_a, c.response_b):
            value = _required(row, name)
            if not isinstance(value, str):
                raise InputError(f"field '{name}' must be a string, got {_type_name(value)}")
            values[name] = value
        prompt, a, b = values[c.prompt], values[c.response_a], values[c.response_b]
        label = row.get(c.label)
        earlier = _history(row, c)
        if label is None:
            return Candidate(_pair(prompt, a, b, reference, earlier), dict(row), "ab",
                             ("swap", c.response_a, c.response_b))
        if not isinstance(label, str):
            raise InputError(f"field '{c.label}' must be a string such as 'A' or 'B', "
                             f"got {_type_name(label)} {label!r}")
        key = label.strip().lower()
        if key in _TIE_LABELS:
            raise InputError(f"tie: label {label!r} prefers neither response")
        if key in _LABELS_A:
            return Candidate(_pair(prompt, a, b, reference, earlier), dict(row), "ab",
                             ("set", c.label, _same_case(label, _LABELS_A[key])))
        if key in _LABELS_B:
            return Candidate(_pair(prompt, b, a, reference, earlier), dict(row), "ab",
                             ("set", c.label, _same_case(label, _LABELS_B[key])))
        raise InputError(f"field '{c.label}' is {label!r}; "
                         "expected A, B, response_a, response_b, model_a, model_b or tie")
    present = ", ".join(sorted(map(str, row))[:12]) or "none"
    raise InputError(
        f"no known row shape (expected '{c.chosen}'/'{c.rejected}', '{c.response_a}'/'{c.response_b}' "
        f"or PandaLM fields; present: {present})"
    )


def pandalm_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """PandaLM's three-annotator row as prompt/chosen/rejected, by the annotators' majority.

    ``input`` (when not empty) belongs to the prompt, after the instruction. The
    other fields (``idx``, ``motivation_app``, ``cmp_key``, ...) are kept, and
    ``annotators`` and ``chosen_from`` record where the label came from. A row
    whose annotators have no majority for one response raises ``InputError``
    ("tie: ...").
    """
    for name in ("instruction", "response1", "response2"):
        value = _required(row, name)
        if not isinstance(value, str):
            raise InputError(f"field '{name}' must be a string, got {_type_name(value)}")
    extra = row.get("input")
    if extra is not None and not isinstance(extra, str):
        raise InputError(f"field 'input' must be a string, got {_type_name(extra)}")
    votes = []
    for index in (1, 2, 3):
        vote = _required(row, f"annotator{index}")
        if isinstance(vote, bool) or vote not in (0, 1, 2):
            raise InputError(f"field 'annotator{index}' must be 0, 1 or 2 (0 is a tie), got {vote!r}")
        votes.append(int(vote))
    if votes.count(1) >= 2:
        winner = 1
    elif votes.count(2) >= 2:
        winner = 2
    else:
        raise InputError("tie: annotators have no majority preference")
    loser = 3 - winner
    converted = {key: value for key, value in row.items() if key not in _PANDALM_FIELDS}
    converted["prompt"] = row["instruction"] + (f"\n\n{extra}" if extra else "")
    converted["chosen"] = row[f"response{winner}"]
    converted["rejected"] = row[f"response{loser}"]
    converted["chosen_from"] = f"response{winner}"
    converted["annotators"] = votes
    return converted


def _required(row: Mapping[str, Any], name: str) -> Any:
    if name not in row:
        present = ", ".join(sorted(map(str, row))[:12]) or "none"
        raise InputError(f"missing field '{name}' (present: {present})")
    value = row[name]
    if value is None:
        raise InputError(f"field '{name}' is null")
    return value


def _optional_string(row: Mapping[str, Any], name: str) -> str | None:
    value = row.get(name)
    if value is not None and not isinstance(value, str):
        raise InputError(f"field '{name}' must be a string or null, got {_type_name(value)}")
    return value


def _history(row: Mapping[str, Any], c: Columns) -> tuple[Message, ...]:
    value = row.get(c.history)
    return () if value is None else check_messages(value, f"field '{c.history}'")


def _conversation(row: Mapping[str, Any], c: Columns, chosen: list, rejected: list) -> tuple[str, list[Message]]:
    checked_chosen = check_messages(chosen, f"field '{c.chosen}'")
    checked_rejected = check_messages(rejected, f"field '{c.rejected}'")
    for name, messages in ((c.chosen, checked_chosen), (c.rejected, checked_rejected)):
        if not messages or messages[-1]["role"] != "assistant":
            raise InputError(f"field '{name}' must end with an assistant message (the answer)")
    shared, other = list(checked_chosen[:-1]), list(checked_rejected[:-1])
    if shared != other:
        at = next((i for i, (x, y) in enumerate(zip(shared, other, strict=False)) if x != y),
                  min(len(shared), len(other)))
        raise InputError(
            f"fields '{c.chosen}' and '{c.rejected}' do not share the conversation before the answer "
            f"(they differ at message {at})"
        )
    if not shared:
        prompt = row.get(c.prompt)
        if isinstance(prompt, str):
            return prompt, []
        if isinstance(prompt, list):
            shared = list(check_messages(prompt, f"field '{c.prompt}'"))
        else:
            raise InputError(
                f"fields '{c.chosen}' and '{c.rejected}' hold only the answer and there is no '{c.prompt}' "
                "string or message list to give the question"
            )
    if shared[-1]["role"] != "user":
        raise InputError(f"the conversation before the answer must end with a user message, not {shared[-1]['role']!r}")
    return shared[-1]["content"], shared[:-1]


def _pair(prompt: str, a: str, b: str, reference: str | None, history: Sequence[Message]) -> Pair:
    return Pair(prompt, a, b, reference=reference, history=tuple(history))


def _same_case(original: str, replacement: str) -> str:
    return replacement.upper() if original.strip().isupper() else replacement


def _type_name(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------- writing rows


def dumps_row(record: Mapping[str, Any]) -> bytes:
    """One JSONL line (UTF-8, newline included) for an output record."""
    return (json.dumps(record, ensure_ascii=False, default=_json_default) + "\n").encode("utf-8", "backslashreplace")


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(data).decode("ascii")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        with contextlib.suppress(Exception):
            return item()
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return tolist()
    return str(value)


def fsync_directory(path: str | Path) -> None:
    """Make a rename inside ``path`` durable (no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(str(path), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
