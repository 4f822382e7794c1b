"""Opening an input's bytes: a file or standard input, decompressed when its first bytes say so.

What a file holds is read from its first bytes, never guessed from its name
alone (:func:`sniff`):

- gzip (``1f 8b``): decompressed on the fly with the standard library, whatever
  the file is called (``rows.jsonl.gz``, or a gzip file named ``rows.jsonl``).
- zstd (``28 b5 2f fd``): decompressed when the ``zstandard`` module is
  installed; otherwise an :class:`~critic.errors.InputError` that says how to
  decompress the file first.
- zip, bzip2, xz: refused with the command that decompresses them.
- Parquet (``PAR1``): a Parquet file is read by its footer, so it cannot come
  through standard input (refused there with a sentence); a file named otherwise
  is detected as Parquet by :func:`critic.io.source.detect_format`.
- Any other bytes with a NUL in the first :data:`SNIFF_BYTES`: not UTF-8 text
  (a binary file, or UTF-16 text), refused in one sentence instead of being
  rejected line by line.

Everything here streams: a decompressed input is never held in memory.
"""

from __future__ import annotations

import gzip
import importlib
import io
import sys
import zlib
from pathlib import Path
from typing import IO, Any

from critic.errors import InputError, Reason

STDIN = "-"  # the location that reads standard input
SNIFF_BYTES = 8192  # how much of the start of an input is looked at to tell what it holds

GZIP, ZSTD, PARQUET = "gzip", "zstd", "parquet"
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", GZIP),
    (b"\x28\xb5\x2f\xfd", ZSTD),
    (b"PAR1", PARQUET),
    (b"PK\x03\x04", "zip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)
COMPRESSED = frozenset({GZIP, ZSTD})  # read as they are
_DECOMPRESS_FIRST = {"zip": "unzip FILE", "bzip2": "bunzip2 -k FILE", "xz": "unxz -k FILE",
                     ZSTD: "zstd -d FILE (or pip install zstandard, and critic reads it as it is)"}
COMPRESSED_SUFFIXES = frozenset({".gz", ".gzip", ".zst", ".zstd"})


def sniff(head: bytes) -> str | None:
    """What the first bytes of an input say it is (``"gzip"``, ``"zstd"``, ``"parquet"``, ...), else ``None``."""
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)


def raw_head(path: str | Path, size: int = 8) -> bytes:
    """The first ``size`` bytes of a file, as stored (no decompression)."""
    try:
        with open(path, "rb") as stream:
            return stream.read(size)
    except OSError as error:
        raise InputError(f"cannot read input file '{path}': {error.strerror}", kind=Reason.BAD_ARGUMENT) from None


def is_compressed(path: str | Path) -> bool:
    """Whether a file is stored gzip- or zstd-compressed (by its first bytes)."""
    return str(path) != STDIN and sniff(raw_head(path)) in COMPRESSED


def inner_name(path: str | Path) -> str:
    """A compressed file's name without its compression suffix (``rows.jsonl.gz`` -> ``rows.jsonl``)."""
    name = Path(path).name
    suffix = Path(name).suffix.lower()
    return name[: -len(suffix)] if suffix in COMPRESSED_SUFFIXES else name


def open_binary(path: str | Path) -> io.BufferedIOBase:
    """The input's bytes, decompressed when they are gzip or zstd; ``-`` is standard input (left open on close).

    Raises :class:`InputError` for an input that cannot be opened, a compression
    critic does not read, Parquet on standard input, and bytes that are not text
    (a NUL in the first :data:`SNIFF_BYTES`).
    """
    where = "standard input" if str(path) == STDIN else f"'{path}'"
    raw = _open_raw(path)
    try:
        kind = sniff(raw.peek(8)[:8])
        stream: io.BufferedIOBase = raw
        if kind == GZIP:
            stream = _Closing(gzip.GzipFile(fileobj=raw, mode="rb"), raw, f"{where} is not a valid gzip file")
        elif kind == ZSTD:
            stream = _zstd_reader(raw, where, path)
        elif kind == PARQUET:
            raise InputError(_parquet_message(where, path), kind=Reason.BAD_ARGUMENT)
        elif kind is not None:
            raise InputError(f"{where} is {kind}-compressed, which critic does not read; decompress it first "
                             f"({_DECOMPRESS_FIRST[kind].replace('FILE', _shown(path))})", kind=Reason.BAD_ARGUMENT)
        _refuse_binary(stream, where, kind)
        return stream
    except BaseException:
        raw.close()
        raise


def _open_raw(path: str | Path) -> io.BufferedReader:
    if str(path) == STDIN:
        return io.BufferedReader(_Unclosed(sys.stdin.buffer), SNIFF_BYTES)  # closing it leaves stdin open
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by the caller's with-block
    except OSError as error:
        raise InputError(f"cannot read input file '{path}': {error.strerror}", kind=Reason.BAD_ARGUMENT) from None


def _zstd_reader(raw: io.BufferedReader, where: str, path: str | Path) -> io.BufferedIOBase:
    try:
        zstandard: Any = importlib.import_module("zstandard")
    except ImportError:
        raise InputError(f"{where} is zstd-compressed and the 'zstandard' module is not installed; decompress it "
                         f"first: {_DECOMPRESS_FIRST[ZSTD].replace('FILE', _shown(path))}",
                         kind=Reason.BAD_ARGUMENT) from None
    reader = zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
    return _Closing(io.BufferedReader(reader, SNIFF_BYTES), raw, f"{where} is not a valid zstd file",
                    (OSError, EOFError, zstandard.ZstdError))


def _refuse_binary(stream: io.BufferedIOBase, where: str, compression: str | None) -> None:
    peek = getattr(stream, "peek", None)
    head = peek(SNIFF_BYTES)[:SNIFF_BYTES] if peek is not None else b""
    if b"\x00" in head:
        what = f"{compression}-compressed data that is" if compression else "bytes that are"
        raise InputError(f"{where} holds {what} not text (a NUL byte in the first {len(head)} bytes: a binary "
                         "file, or text saved as UTF-16); critic reads JSONL, JSON and CSV as UTF-8 text, and "
                         "Parquet files by name or with --format parquet", kind=Reason.UNREADABLE_ROW)


def _parquet_message(where: str, path: str | Path) -> str:
    if str(path) == STDIN or where == "standard input":
        return ("standard input holds a Parquet file, which cannot be read from a stream (Parquet is read from "
                "its footer, at the end); save it to a file and pass its path")
    return f"{where} is a Parquet file; read it with --format parquet (or name it .parquet)"


def _shown(path: str | Path) -> str:
    return "the file" if str(path) == STDIN else str(path)


class _Closing(io.BufferedIOBase):
    """A decompressing stream that also closes the file under it (GzipFile leaves its file object open).

    A corrupt or truncated stream raises :class:`InputError` (``broken`` says
    what), not the decompressor's own exception.
    """

    def __init__(self, stream: Any, under: io.BufferedIOBase, broken: str,
                 errors: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error)) -> None:
        super().__init__()
        self._stream, self._under, self._broken, self._errors = stream, under, broken, errors

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._guarded(self._stream.read, -1 if size is None else size)

    def read1(self, size: int = -1) -> bytes:
        return self._guarded(getattr(self._stream, "read1", self._stream.read), size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._guarded(self._stream.readline, -1 if size is None else size)

    def peek(self, size: int = 0) -> bytes:
        return self._guarded(self._stream.peek, size)  # type: ignore[attr-defined]

    def __iter__(self) -> _Closing:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def _guarded(self, read: Any, size: int) -> bytes:
        try:
            return bytes(read(size))
        except self._errors as error:  # gzip.BadGzipFile, zlib.error, zstandard.ZstdError
            raise InputError(f"{self._broken} ({error or type(error).__name__}); it may be truncated or "
                             "damaged", kind=Reason.UNREADABLE_ROW) from None

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._under.close()
            super().close()


class _Unclosed(io.RawIOBase):
    """A readable view of a binary stream that leaves the stream open when it is closed."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__()
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        read = getattr(self._stream, "read1", self._stream.read)  # read1: what is there, without waiting for more
        data = read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
