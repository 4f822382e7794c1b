"""critic.io.opening and format detection by content: compressed, misnamed and binary inputs (issue 17, item 6).

Before this, a gzip file named ``.jsonl`` and a JSON array named ``.jsonl`` were
read line by line with every line rejected, ``rows.jsonl.gz`` had "no format",
and Parquet on standard input said only "can be read as jsonl, json or csv".
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import logging
import lzma
import sys
import types
import zipfile

import pytest

from critic.errors import InputError, Reason
from critic.io.opening import open_binary, sniff
from critic.io.source import detect_format, open_source

ROWS = [{"prompt": "q1", "chosen": "a", "rejected": "b"}, {"prompt": "q2", "chosen": "c", "rejected": "d"}]
JSONL = "".join(json.dumps(row) + "\n" for row in ROWS).encode()
CSV = b"prompt,chosen,rejected\nq1,a,b\nq2,c,d\n"
TSV = b"prompt\tchosen\trejected\nq1\ta\tb\nq2\tc\td\n"


def rows_of(location, **options):
    return [row for _, row in open_source(location, **options).rows()]


@pytest.mark.parametrize(("name", "content", "fmt"), [
    ("rows.jsonl.gz", gzip.compress(JSONL), "jsonl"),
    ("rows.jsonl", gzip.compress(JSONL), "jsonl"),  # a gzip file under a plain name: read by its magic bytes
    ("rows.json.gz", gzip.compress(json.dumps(ROWS).encode()), "json"),
    ("rows.csv.gz", gzip.compress(CSV), "csv"),
    ("rows.tsv.gz", gzip.compress(TSV), "csv"),  # the tab is known from the name inside the .gz
    ("rows.jsonl", json.dumps(ROWS, indent=2).encode(), "json"),  # a JSON array named .jsonl
    ("rows.jsonl", json.dumps(ROWS).encode(), "json"),  # ... written on one line, as json.dump writes it
    ("rows.ndjson", gzip.compress(json.dumps(ROWS).encode()), "json"),  # both at once
], ids=["jsonl.gz", "gzip-named-jsonl", "json.gz", "csv.gz", "tsv.gz", "array-named-jsonl", "one-line-array",
        "gzip-array-named-ndjson"])
def test_compressed_and_misnamed_inputs_are_read_as_what_they_hold(tmp_path, name, content, fmt):
    path = tmp_path / name
    path.write_bytes(content)
    source = open_source(path)
    source.check()
    assert source.format == fmt
    assert rows_of(path) == ROWS


def test_counting_a_compressed_file_is_left_unknown_not_a_second_decompression(tmp_path):
    (tmp_path / "rows.jsonl.gz").write_bytes(gzip.compress(JSONL))
    (tmp_path / "rows.csv.gz").write_bytes(gzip.compress(CSV))
    assert open_source(tmp_path / "rows.jsonl.gz").count() is None
    assert open_source(tmp_path / "rows.csv.gz").count() is None
    (tmp_path / "plain.jsonl").write_bytes(JSONL)
    assert open_source(tmp_path / "plain.jsonl").count() == 2


def test_a_json_array_named_jsonl_is_said_in_a_warning_and_read_even_as_format_jsonl(tmp_path, caplog):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(ROWS, indent=1), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="critic"):
        assert detect_format(path) == "json"
    assert "reading it as a JSON array" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="critic"):
        assert rows_of(path, format="jsonl") == ROWS  # the user said jsonl; the content says array
    assert "starts with '['" in caplog.text


def test_a_jsonl_row_that_is_a_list_stays_a_row_and_a_broken_array_says_why(tmp_path):
    (tmp_path / "lists.jsonl").write_text('[[1, 2]]\n{"prompt": "q"}\n', encoding="utf-8")
    assert [row for _, row in open_source(tmp_path / "lists.jsonl").rows()] == [[[1, 2]], {"prompt": "q"}]
    (tmp_path / "broken.jsonl").write_text('[{"a": 1}]\n[{"a": 2}]\n', encoding="utf-8")
    with pytest.raises(InputError, match="extra data after the array.*JSON lines must each be an object"):
        rows_of(tmp_path / "broken.jsonl")


def test_parquet_is_known_by_its_magic_bytes_whatever_its_name(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "rows.jsonl"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    assert detect_format(path) == "parquet"
    assert rows_of(path) == ROWS


@pytest.mark.parametrize(("content", "said"), [
    (b"\x28\xb5\x2f\xfd" + b"\x00" * 16, r"zstd-compressed and the 'zstandard' module is not installed; decompress "
                                         r"it first: zstd -d .*rows\.jsonl"),
    (bz2.compress(JSONL), r"bzip2-compressed, which critic does not read; decompress it first \(bunzip2 -k "),
    (lzma.compress(JSONL), r"xz-compressed, which critic does not read; decompress it first \(unxz -k "),
])
def test_compressions_critic_does_not_read_say_how_to_decompress(tmp_path, monkeypatch, content, said):
    monkeypatch.setitem(sys.modules, "zstandard", None)  # importing it fails, as where it is not installed
    path = tmp_path / "rows.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputError, match=said) as caught:
        open_source(path).check()
    assert caught.value.kind == Reason.BAD_ARGUMENT
    assert "\n" not in str(caught.value)


def test_a_zip_archive_is_refused_with_unzip(tmp_path):
    path = tmp_path / "rows.jsonl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("rows.jsonl", JSONL)
    with pytest.raises(InputError, match=r"zip-compressed.*unzip .*rows\.jsonl"):
        open_source(path).check()


def test_zstd_is_read_through_the_zstandard_module_when_it_is_there(tmp_path, monkeypatch):
    """The zstandard API critic uses (ZstdDecompressor().stream_reader(f, closefd=True), ZstdError), stood in
    for by a module that "decompresses" a stored payload: the real module is not installed here."""
    payload = JSONL

    class Decompressor:
        def stream_reader(self, raw, closefd=True):
            raw.read()  # the compressed bytes are consumed

            class Reader(io.RawIOBase):
                def __init__(self):
                    super().__init__()
                    self.data = io.BytesIO(payload)

                def readable(self):
                    return True

                def readinto(self, buffer):
                    chunk = self.data.read(len(buffer))
                    buffer[: len(chunk)] = chunk
                    return len(chunk)

            return Reader()

    module = types.SimpleNamespace(ZstdDecompressor=Decompressor, ZstdError=type("ZstdError", (Exception,), {}))
    monkeypatch.setitem(sys.modules, "zstandard", module)
    path = tmp_path / "rows.jsonl.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd" + b"compressed")
    assert detect_format(path) == "jsonl"
    assert rows_of(path) == ROWS


@pytest.mark.parametrize("content", [
    bytes(range(256)) * 4,  # a binary file
    "{\"prompt\": \"q\"}\n".encode("utf-16"),  # text saved as UTF-16
    gzip.compress(bytes(range(256))),  # binary inside gzip
], ids=["binary", "utf-16", "gzip-of-binary"])
def test_a_binary_input_is_one_sentence_not_every_line_rejected(tmp_path, content):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputError, match="not text .*a NUL byte") as caught:
        open_source(path).check()
    assert caught.value.kind == Reason.UNREADABLE_ROW
    assert "\n" not in str(caught.value)


def test_a_truncated_gzip_file_is_an_input_error_not_a_traceback(tmp_path):
    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(gzip.compress(JSONL * 200)[:-30])
    with pytest.raises(InputError, match="is not a valid gzip file .*truncated or damaged"):
        rows_of(path)


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BufferedReader(io.BytesIO(data))


def test_parquet_on_standard_input_is_refused_with_a_sentence(monkeypatch):
    with pytest.raises(InputError, match="Parquet cannot be read from standard input .*save it to a file"):
        open_source("-", format="parquet")
    monkeypatch.setattr(sys, "stdin", _Stdin(b"PAR1" + b"\x00" * 64))
    with pytest.raises(InputError, match="standard input holds a Parquet file.*save it to a file and pass its path"):
        rows_of("-")


def test_gzip_and_a_json_array_on_standard_input_are_read(monkeypatch):
    monkeypatch.setattr(sys, "stdin", _Stdin(gzip.compress(JSONL)))
    assert rows_of("-") == ROWS
    monkeypatch.setattr(sys, "stdin", _Stdin(json.dumps(ROWS).encode()))
    assert rows_of("-") == ROWS


def test_open_binary_leaves_standard_input_open_and_sniff_names_the_magic(monkeypatch):
    stdin = _Stdin(gzip.compress(b"x\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    with open_binary("-") as stream:
        assert stream.read() == b"x\n"
    assert not stdin.buffer.closed
    assert [sniff(m) for m in (b"\x1f\x8b\x08", b"PAR1", b"{\"a\"")] == ["gzip", "parquet", None]
