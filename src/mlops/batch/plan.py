"""How a batch file is cut into parts that one invocation each can score.

- CSV: byte ranges that start and end at line boundaries. The planner reads the file once,
  counting lines, so every part knows the number of its first data row (reject rows name the
  file's row, not the part's). A quoted field with a line break inside would be cut; batch CSV
  files must keep one record per line (what `pyarrow.csv` and spreadsheets write by default).
- Parquet: whole row groups, from the footer alone (row counts and sizes are in the metadata).
Parts are numbered from 0 and are the same every time the same file version is planned, so a
repeated event or a retried invocation addresses the same part keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, BinaryIO

READ_BYTES = 8 * 1024 * 1024
MAX_HEADER_BYTES = 1024 * 1024
MAX_PARTS = 1_000  # the completion ledger keeps one entry per part in one DynamoDB item (400 KB)


class BatchFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"

    @property
    def suffix(self) -> str:
        return f".{self.value}"

    @classmethod
    def of_key(cls, key: str) -> BatchFormat:
        return cls.PARQUET if key.lower().endswith(".parquet") else cls.CSV


class PlanError(ValueError):
    """The file cannot be planned (no header, too many parts): the message says why."""


@dataclass(frozen=True)
class Part:
    """One invocation's share: bytes [begin, end) of a CSV, or row groups [begin, end) of a Parquet
    file; `first_row` is the file's 1-based data row number of the part's first row."""

    index: int
    begin: int
    end: int
    first_row: int
    rows: int | None = None  # known for Parquet (footer), not needed for CSV

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Part:
        return cls(**{name: data[name] for name in ("index", "begin", "end", "first_row")}, rows=data.get("rows"))


def read_header(stream: BinaryIO) -> bytes:
    """The CSV's first line, with its line break. Raises PlanError when there is none."""
    header = stream.readline(MAX_HEADER_BYTES + 1)
    if not header.strip():
        raise PlanError("the CSV file is empty: expected a header line naming the columns")
    if len(header) > MAX_HEADER_BYTES or not header.endswith(b"\n"):
        raise PlanError(f"the CSV header is longer than {MAX_HEADER_BYTES} bytes or has no rows after it")
    return header


def plan_csv(stream: BinaryIO, size: int, part_bytes: int) -> tuple[bytes, list[Part]]:
    """Read `stream` (the whole file, `size` bytes) once: its header and its parts, each about
    `part_bytes` long and cut after a line break. Raises PlanError."""
    header = read_header(stream)
    if size - len(header) <= part_bytes:  # one part: no need to count lines
        return header, [Part(0, len(header), size, 1)]
    parts: list[Part] = []
    begin = offset = len(header)
    rows_before = 0  # data rows before `offset`
    part_first_row = 1
    cut_at = begin + part_bytes  # the part ends at the first line break at or after this offset
    while block := stream.read(READ_BYTES):
        position = 0
        while offset + len(block) > cut_at:
            newline = block.find(b"\n", max(cut_at - offset, position))
            if newline < 0:
                break
            rows_before += block.count(b"\n", position, newline + 1)
            end = offset + newline + 1
            parts.append(Part(len(parts), begin, end, part_first_row))
            begin, part_first_row, position = end, rows_before + 1, newline + 1
            cut_at = end + part_bytes
        rows_before += block.count(b"\n", position)
        offset += len(block)
        if len(parts) > MAX_PARTS:
            raise PlanError(f"more than {MAX_PARTS} parts of {part_bytes} bytes: raise the part size")
    if begin < offset:
        parts.append(Part(len(parts), begin, offset, part_first_row))
    return header, parts


@dataclass(frozen=True)
class RowGroup:
    rows: int
    bytes: int  # uncompressed, as the footer states


def plan_parquet(row_groups: Sequence[RowGroup], part_bytes: int) -> list[Part]:
    """Consecutive row groups up to `part_bytes` (uncompressed) per part, at least one each."""
    parts: list[Part] = []
    begin, first_row, rows, size = 0, 1, 0, 0
    for index, group in enumerate(row_groups):
        if index > begin and size + group.bytes > part_bytes:
            parts.append(Part(len(parts), begin, index, first_row, rows))
            begin, first_row, rows, size = index, first_row + rows, 0, 0
        rows += group.rows
        size += group.bytes
    if len(row_groups) > begin:
        parts.append(Part(len(parts), begin, len(row_groups), first_row, rows))
    if len(parts) > MAX_PARTS:
        raise PlanError(f"more than {MAX_PARTS} parts of {part_bytes} bytes: raise the part size")
    if not parts:
        raise PlanError("the Parquet file has no row groups")
    return parts


def parquet_row_groups(metadata: Any) -> list[RowGroup]:
    """A `pyarrow.parquet.FileMetaData`'s row groups."""
    return [
        RowGroup(metadata.row_group(i).num_rows, metadata.row_group(i).total_byte_size)
        for i in range(metadata.num_row_groups)
    ]


def covers(parts: Iterable[Part], begin: int, end: int) -> bool:
    """Whether `parts` tile [begin, end) exactly, in order, with no gap or overlap."""
    expected = begin
    for part in parts:
        if part.begin != expected or part.end <= part.begin:
            return False
        expected = part.end
    return expected == end
