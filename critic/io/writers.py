"""Writing outputs: one JSONL line per record, files replaced atomically, outputs kept apart from inputs.

Every file critic writes goes through :func:`atomic_file`: the bytes go to a
temporary file in the same folder, which is renamed over the output only when
everything was written, so a failed or interrupted run leaves the old file as
it was. :func:`refuse_inputs_as_outputs` is the check every command makes before
it opens anything for writing.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import decimal
import json
import os
import secrets
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal

from critic.errors import InputError, Reason

OutputFormat = Literal["jsonl", "parquet"]
PARQUET_SUFFIXES = (".parquet", ".pq")
# Output names that promise a format critic does not write: JSONL under such a name would mislead whoever
# opens it (a CSV reader, json.load, gunzip). Any other name (.jsonl, .ndjson, .txt, none) gets JSONL.
MISLEADING_SUFFIXES = {
    ".json": "one JSON document", ".csv": "CSV", ".tsv": "TSV", ".xlsx": "an Excel workbook",
    ".xls": "an Excel workbook", ".arrow": "Arrow IPC data", ".feather": "Feather data", ".avro": "Avro data",
    ".orc": "ORC data", ".gz": "gzip-compressed data", ".bz2": "bzip2-compressed data", ".xz": "xz-compressed data",
    ".zst": "zstd-compressed data", ".zip": "a zip archive", ".tar": "a tar archive",
}
TEMPORARY_SUFFIX = ".tmp"


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


# --------------------------------------------------------------------------- outputs are never inputs


def is_same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` are one file: the same inode (through symlinks and hard links), or, when
    either does not exist yet, the same resolved path."""
    try:
        first, second = os.stat(a), os.stat(b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def _inside_folder(path: str | Path, folder: str | Path) -> bool:
    """An existing file under ``folder`` (a dataset saved with ``save_to_disk``: all its files are its data)."""
    if not os.path.isdir(folder) or not os.path.exists(path):
        return False
    resolved, root = os.path.realpath(path), os.path.realpath(folder)
    return resolved == root or resolved.startswith(root.rstrip(os.sep) + os.sep)


def refuse_inputs_as_outputs(outputs: Iterable[str | Path], inputs: Iterable[str | Path | None]) -> None:
    """An :class:`InputError` when an output is one of the inputs (or a file of an input folder).

    Said before anything is opened for writing, whatever ``--force`` says: writing
    there would destroy the data the command reads.
    """
    sources = [Path(source) for source in inputs if source is not None and str(source) != "-"]
    for output in outputs:
        for source in sources:
            if is_same_file(output, source) or _inside_folder(output, source):
                if os.path.isdir(source) and not os.path.isdir(output):
                    same = f" (a file of the input folder '{source}')"
                else:
                    same = "" if str(output) == str(source) else f" (the same file as the input '{source}')"
                raise InputError(f"the output '{output}' is an input of this command{same}; writing it would "
                                 "destroy the input, so choose another output", kind=Reason.BAD_ARGUMENT)


# --------------------------------------------------------------------------- atomic files


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[IO[bytes]]:
    """A binary stream whose bytes replace ``path`` only when the ``with`` block ends without an error.

    They go to a temporary file in the same folder (``.NAME.XXXX.tmp``), synced and
    renamed over ``path``; on an error or an interrupt the temporary file is removed
    and ``path`` is left as it was. A symlink keeps pointing where it did (its target
    is replaced, keeping its permissions); a path that exists but is not a regular
    file (``/dev/null``, a named pipe) is written directly, as there is nothing to
    rename over.
    """
    target = Path(os.path.realpath(path))
    if target.exists() and not target.is_file():
        with target.open("wb") as direct:
            yield direct
        return
    temporary = _temporary_beside(target)
    try:
        with temporary.open("wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(OSError):  # an existing file keeps its permissions
            os.chmod(temporary, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    fsync_directory(target.parent)


def _temporary_beside(target: Path, suffix: str = TEMPORARY_SUFFIX) -> Path:
    """A new, empty file in ``target``'s folder (created with the permissions a plain open would give)."""
    for _ in range(100):
        candidate = target.with_name(f".{target.name[:200]}.{secrets.token_hex(4)}{suffix}")
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate
    raise InputError(f"cannot create a temporary file beside '{target}'", kind=Reason.BAD_ARGUMENT)


@contextlib.contextmanager
def staged_files(folder: str | Path) -> Iterator[Path]:
    """A temporary folder inside ``folder`` whose files replace their namesakes in ``folder`` on success.

    For writers that take a folder (``critic eval``'s reports): each file is moved
    into place with an atomic rename once all were written; on an error or an
    interrupt none is, and the temporary folder is removed.
    """
    import shutil
    import tempfile

    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".critic-staging-", dir=target))
    try:
        yield staging
        for written in sorted(staging.iterdir()):
            if written.is_file():
                with contextlib.suppress(OSError):  # an existing file keeps its permissions
                    os.chmod(written, stat.S_IMODE(os.stat(target / written.name).st_mode))
                os.replace(written, target / written.name)
        fsync_directory(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """``path`` holds ``data``, or (after a failure) what it held before."""
    with atomic_file(path) as handle:
        handle.write(data)


def write_json_atomic(path: str | Path, data: Mapping[str, Any]) -> None:
    """``data`` as indented JSON, replacing ``path`` atomically (checkpoints and summaries)."""
    text = json.dumps(data, ensure_ascii=False, indent=1, default=str) + "\n"
    write_bytes_atomic(path, text.encode("utf-8", "backslashreplace"))


# --------------------------------------------------------------------------- row files: JSONL or Parquet


def output_format(path: str | Path) -> OutputFormat:
    """How rows are written to ``path``, from its name: Parquet for ``.parquet``/``.pq``, else JSONL.

    A name that promises another format (``.csv``, ``.json``, ``.gz``, ...) is an
    :class:`InputError`: JSONL written there would be misread by the tools the name invites.
    """
    suffix = Path(path).suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in MISLEADING_SUFFIXES:
        raise InputError(f"the output '{path}' is named '{Path(path).suffix}', which promises "
                         f"{MISLEADING_SUFFIXES[suffix]}, but critic writes JSON lines or Parquet; name it .jsonl "
                         "or .parquet", kind=Reason.BAD_ARGUMENT)
    return "jsonl"


def check_parquet_writer() -> None:
    """pyarrow is installed (a :class:`MissingDependencyError` with the install hint otherwise)."""
    from critic.io.readers import _import

    _import("pyarrow.parquet", "pyarrow", "data", "writing Parquet files")


class RowFile:
    """Records written to a file as JSONL, or as Parquet when its name says so, replacing it only on success.

    Parquet holds the records exactly as they would be written to JSONL (the same
    JSON values, nested lists and objects as Arrow lists and structs; a field a
    record lacks is null). The rows stream to a temporary JSONL file beside the
    output and are converted at the end; when the values cannot form one Parquet
    table (a column holding numbers in some rows and text in others), the JSONL
    is kept under a free name beside the output and the error names it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.format = output_format(self.path)
        self._stack = contextlib.ExitStack()
        self._handle: IO[bytes] | None = None
        self._rows: Path | None = None

    def __enter__(self) -> RowFile:
        if self.format == "jsonl":
            self._handle = self._stack.enter_context(atomic_file(self.path))
        else:
            check_parquet_writer()
            self._rows = _temporary_beside(Path(os.path.realpath(self.path)), ".jsonl.tmp")
            self._handle = self._stack.enter_context(self._rows.open("wb"))
        return self

    def write(self, record: Mapping[str, Any]) -> None:
        assert self._handle is not None, "RowFile used outside its with block"
        self._handle.write(dumps_row(record))

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: Any) -> None:
        self._stack.__exit__(kind, error, trace)
        if self._rows is None:
            return
        try:
            if kind is None:
                _jsonl_to_parquet(self._rows, self.path)
        finally:
            if self._rows.exists():
                self._rows.unlink()

    def describe(self) -> str:
        return f"{self.path} (Parquet)" if self.format == "parquet" else str(self.path)


def _jsonl_to_parquet(rows: Path, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with rows.open("rb") as stream:
            records = [json.loads(line) for line in stream]
        table = pa.Table.from_struct_array(pa.array(records)) if records else pa.table({})
        with atomic_file(path) as handle:
            pq.write_table(table, handle)
    except (pa.ArrowException, ValueError, TypeError) as error:
        kept = _free_name(path)
        os.replace(rows, kept)
        raise InputError(f"cannot write the rows as Parquet to '{path}' ({error}); they are saved as JSON lines "
                         f"in '{kept}'", kind=Reason.BAD_ARGUMENT) from None


def _free_name(path: Path) -> Path:
    """Where rows that cannot become Parquet are kept: ``NAME.jsonl`` beside it, or a numbered name."""
    for candidate in (path.with_suffix(".jsonl"), path.with_name(path.name + ".jsonl")):
        if not candidate.exists():
            return candidate
    number = 1
    while path.with_name(f"{path.stem}.{number}.jsonl").exists():
        number += 1
    return path.with_name(f"{path.stem}.{number}.jsonl")
