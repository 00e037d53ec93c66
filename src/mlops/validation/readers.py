"""Streaming readers: feed a dataset's record batches to a `DatasetChecker` without holding the
whole object in memory, and hash the exact bytes on the way.

CSV (optionally gzip) is parsed with `pyarrow.csv.open_csv` straight off the object's body, every
column read as text so the checker can name bad cells. Parquet needs random access (the footer
first), so it is read with `ParquetFile.iter_batches` over a seekable reader, and hashed by a
separate sequential pass.

A parser failure (malformed CSV, bad gzip, truncated Parquet) is returned as a message, not
raised; a failure of the underlying stream (the network) is re-raised so the caller retries.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import zlib
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mlops.validation.checks import DatasetChecker

# Cells read as null in CSV (empty, and the usual spellings of "missing"); "NaN" is not one of
# them: it parses as a number and fails the finite check.
NULL_TEXT = ("", "NULL", "null", "NA", "N/A")
CHUNK_BYTES = 1024 * 1024
_HEADER_LIMIT = 1024 * 1024
_PARSE_ERRORS = (pa.ArrowException, OSError, EOFError, ValueError, zlib.error)


class DatasetFormat(StrEnum):
    CSV = "csv"
    CSV_GZ = "csv.gz"
    PARQUET = "parquet"


def format_of(key: str) -> DatasetFormat | None:
    """The dataset format from the key's suffix (case-insensitive); None when unsupported."""
    name = key.lower()
    for suffix, found in (
        (".csv.gz", DatasetFormat.CSV_GZ),
        (".csv", DatasetFormat.CSV),
        (".parquet", DatasetFormat.PARQUET),
    ):
        if name.endswith(suffix):
            return found
    return None


@dataclass(frozen=True)
class ReadResult:
    sha256: str
    bytes_read: int
    error: str | None = None  # the parser's message when the object could not be read to the end

    @property
    def complete(self) -> bool:
        return self.error is None


class HashingReader:
    """A read-only stream over `source` that hashes and counts every byte read through it.

    Remembers an exception raised by `source` itself, so a caller can tell a network failure
    (retry) from a parser failure (bad data) after the parser wrapped or re-raised it.
    """

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._sha256 = hashlib.sha256()
        self.bytes_read = 0
        self.source_error: BaseException | None = None
        self.closed = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        try:
            data = self._source.read() if size is None or size < 0 else self._source.read(size)
        except Exception as error:
            self.source_error = error
            raise
        self._sha256.update(data)
        self.bytes_read += len(data)
        return data

    def drain(self) -> None:
        """Read (and hash) whatever the parser left unread."""
        while self.read(CHUNK_BYTES):
            pass

    def hexdigest(self) -> str:
        return self._sha256.hexdigest()

    def close(self) -> None:
        self.closed = True


class _Replay:
    """A read-only stream that returns `prefix` first, then the rest of `source`.

    Always fills the requested size unless the source is exhausted (pyarrow reads in blocks).
    """

    def __init__(self, prefix: bytes, source: BinaryIO | gzip.GzipFile | HashingReader) -> None:
        self._prefix = prefix
        self._source = source
        self.closed = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            data, self._prefix = self._prefix + self._source.read(), b""
            return data
        parts = [self._prefix[:size]]
        self._prefix = self._prefix[size:]
        missing = size - len(parts[0])
        while missing > 0:
            chunk = self._source.read(missing)
            if not chunk:
                break
            parts.append(chunk)
            missing -= len(chunk)
        return b"".join(parts)

    def close(self) -> None:
        self.closed = True


def read_csv(
    body: BinaryIO, checker: DatasetChecker, *, compressed: bool = False, block_bytes: int = 4 * CHUNK_BYTES
) -> ReadResult:
    """Parse a CSV stream block by block into `checker`; hash the raw (compressed) bytes."""
    hashing = HashingReader(body)
    error: str | None = None
    try:
        stream: HashingReader | gzip.GzipFile = gzip.GzipFile(fileobj=hashing, mode="rb") if compressed else hashing
        prefix, names = _peek_header(stream)
        # the peeked header only forces every column to text; the reader's own schema is authoritative
        if names:
            checker.set_columns(names)
        reader = pacsv.open_csv(
            _Replay(prefix, stream),
            read_options=pacsv.ReadOptions(block_size=block_bytes, use_threads=False),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                strings_can_be_null=True,
                null_values=list(NULL_TEXT),
            ),
        )
        checker.set_columns(reader.schema.names)
        for batch in reader:
            checker.check_batch(batch)
    except _PARSE_ERRORS as parse_error:
        if hashing.source_error is not None:
            raise hashing.source_error from parse_error
        error = _describe(parse_error, checker)
    hashing.drain()
    return ReadResult(sha256=hashing.hexdigest(), bytes_read=hashing.bytes_read, error=error)


def read_parquet(body: BinaryIO, seekable: BinaryIO, checker: DatasetChecker, *, batch_rows: int) -> ReadResult:
    """Hash `body` (one sequential pass), then check `seekable` (the same bytes) batch by batch."""
    hashing = HashingReader(body)
    hashing.drain()
    error: str | None = None
    try:
        parquet = pq.ParquetFile(seekable)
        checker.set_columns(parquet.schema_arrow.names)
        columns = checker.present_columns
        if columns:
            for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
                checker.check_batch(batch)
        else:  # nothing to check cell by cell; the row count still comes from the footer
            checker.count_rows(parquet.metadata.num_rows)
    except _PARSE_ERRORS as parse_error:
        error = _describe(parse_error, checker)
    return ReadResult(sha256=hashing.hexdigest(), bytes_read=hashing.bytes_read, error=error)


def _peek_header(stream: HashingReader | gzip.GzipFile) -> tuple[bytes, list[str]]:
    """Read up to the end of the first line; returns the bytes read and the column names in it."""
    prefix = b""
    while b"\n" not in prefix and len(prefix) < _HEADER_LIMIT:
        chunk = stream.read(64 * 1024)
        if not chunk:
            break
        prefix += chunk
    line = prefix.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")
    names = next(csv.reader([line]), []) if line else []
    return prefix, names


def _describe(error: BaseException, checker: DatasetChecker) -> str:
    message = str(error).strip() or type(error).__name__
    return f"{message} ({checker.rows} data rows were checked before the error)"
