"""Captured inference traffic, column by column: what predict writes and drift reads. One format.

A capture object (`captures/<model>/YYYY/MM/DD/HH/<flush time>-<batch id>.json`) holds one
container's buffered rows for one model as columns, so the drift function parses a whole object
in one `json.loads` and turns each column into an array without a per-row Python loop.
`encode_batch` / `decode_batch` live here (and read the earlier row-per-line JSONL objects too).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

CAPTURE_FORMAT = "mlops-captures/columns-1"  # the "format" member of a columnar capture object
CAPTURE_SUFFIX = ".json"  # columnar objects; the earlier row-per-line objects end in ".jsonl"
PROBABILITY_PREFIX = "probability:"  # output column of one class's probability
NO_PREDICTION_ID = ""  # rows of the earlier format carry none


@dataclass(frozen=True)
class Rejected:
    """Records predict refused (a 400) for one field and reason since the last flush."""

    field: str
    reason: str  # unseen_category | out_of_range | wrong_type | missing | other
    count: int


@dataclass
class CaptureBatch:
    """The rows of one capture object; every list has one entry per row."""

    at: list[float]  # epoch seconds the prediction was answered
    versions: list[int]
    prediction_ids: list[str]
    inputs: dict[str, list[object]]  # contract feature -> values (None when missing)
    # "label" (classification), "value" (regression), "probability:<class>" per class
    outputs: dict[str, list[object]]
    rejected: list[Rejected] = field(default_factory=list)
    unreadable_rows: int = 0  # rows of an earlier-format object that could not be read

    def __len__(self) -> int:
        return len(self.versions)


def encode_batch(batch: CaptureBatch) -> tuple[bytes, int]:
    """One capture object's bytes (one JSON object of columns), and how many rows were left out
    because JSON cannot carry one of their values (NaN, infinity, an object): a bad row skips only
    itself. Rejection counts are kept whatever happens to the rows."""
    try:
        return _dumps(batch), 0
    except (ValueError, TypeError, RecursionError):
        pass
    keep = [row for row in range(len(batch)) if _row_carried(batch, row)]
    return _dumps(_rows_of(batch, keep)), len(batch) - len(keep)


def decode_batch(data: bytes) -> CaptureBatch:
    """The rows of a capture object: a columnar one, or the earlier one-JSON-row-per-line kind.

    Never raises for bad content: rows that cannot be read (a broken line, columns of different
    lengths) are counted in `unreadable_rows`.
    """
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        document = None  # several lines (the earlier format), or a broken object
    if isinstance(document, dict) and document.get("format") == CAPTURE_FORMAT:
        return _from_columns(document)
    return _from_lines(data)


def flatten_output(output: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """An answer's output columns: "label", "value", "probability:<class>" (an answer's
    `prediction_id` is its own column, not an output)."""
    for name, value in output.items():
        if name == "probabilities" and isinstance(value, dict):
            for label, probability in value.items():
                yield f"{PROBABILITY_PREFIX}{label}", probability
        elif name != "prediction_id":
            yield name, value


def _dumps(batch: CaptureBatch) -> bytes:
    document = {
        "format": CAPTURE_FORMAT,
        "rows": len(batch),
        "at": batch.at,
        "versions": batch.versions,
        "prediction_ids": batch.prediction_ids,
        "inputs": batch.inputs,
        "outputs": batch.outputs,
        "rejected": [{"field": r.field, "reason": r.reason, "count": r.count} for r in batch.rejected],
    }
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()


def _row_carried(batch: CaptureBatch, row: int) -> bool:
    values = [batch.at[row], batch.versions[row], batch.prediction_ids[row]]
    values.extend(column[row] for column in batch.inputs.values())
    values.extend(column[row] for column in batch.outputs.values())
    try:
        json.dumps(values, allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        return False
    return True


def _rows_of(batch: CaptureBatch, rows: Sequence[int]) -> CaptureBatch:
    def pick(column: list[Any]) -> list[Any]:
        return [column[row] for row in rows]

    return CaptureBatch(
        at=pick(batch.at),
        versions=pick(batch.versions),
        prediction_ids=pick(batch.prediction_ids),
        inputs={name: pick(column) for name, column in batch.inputs.items()},
        outputs={name: pick(column) for name, column in batch.outputs.items()},
        rejected=list(batch.rejected),
        unreadable_rows=batch.unreadable_rows,
    )


def _from_columns(document: dict[str, Any]) -> CaptureBatch:
    rejected = _rejected(document.get("rejected"))
    versions = document.get("versions")
    inputs = document.get("inputs")
    outputs = document.get("outputs")
    rows = len(versions) if isinstance(versions, list) else 0
    columns = [document.get("at"), document.get("prediction_ids")]
    if isinstance(inputs, dict) and isinstance(outputs, dict):
        columns.extend(inputs.values())
        columns.extend(outputs.values())
    if not (
        isinstance(versions, list)
        and isinstance(inputs, dict)
        and isinstance(outputs, dict)
        and all(isinstance(column, list) and len(column) == rows for column in columns)
    ):
        declared = document.get("rows")
        unreadable = declared if type(declared) is int and declared > 0 else max(rows, 1)
        return CaptureBatch([], [], [], {}, {}, rejected, unreadable_rows=unreadable)
    return CaptureBatch(document["at"], versions, document["prediction_ids"], inputs, outputs, rejected)


def _rejected(entries: object) -> list[Rejected]:
    if not isinstance(entries, list):
        return []
    return [
        Rejected(str(entry["field"]), str(entry["reason"]), entry["count"])
        for entry in entries
        if isinstance(entry, dict) and type(entry.get("count")) is int and entry["count"] > 0
    ]


def _from_lines(data: bytes) -> CaptureBatch:
    """The earlier format: one JSON object per line, {"at": ISO time, "version", "input", "output"}."""
    at: list[float] = []
    versions: list[int] = []
    inputs: dict[str, list[Any]] = {}
    outputs: dict[str, list[Any]] = {}
    unreadable = 0
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            when = datetime.fromisoformat(row["at"]).timestamp()
            version, features, output = row["version"], row["input"], row["output"]
            if type(version) is not int or not isinstance(features, dict) or not isinstance(output, dict):
                raise TypeError("not a capture row")
        except (ValueError, TypeError, KeyError, RecursionError):
            unreadable += 1
            continue
        index = len(versions)
        at.append(when)
        versions.append(version)
        _put_row(inputs, index, features.items())
        _put_row(outputs, index, flatten_output(output))
    rows = len(versions)
    for column in (*inputs.values(), *outputs.values()):
        column.extend([None] * (rows - len(column)))
    return CaptureBatch(at, versions, [NO_PREDICTION_ID] * rows, inputs, outputs, unreadable_rows=unreadable)


def _put_row(columns: dict[str, list[Any]], index: int, values: Iterable[tuple[str, Any]]) -> None:
    """Set row `index` of `columns` (a column first seen here is None for the rows before it)."""
    for name, value in values:
        column = columns.get(name)
        if column is None:
            column = columns[name] = []
        elif len(column) > index:  # a name given twice in one row: the last value holds
            column[index] = value
            continue
        column.extend([None] * (index - len(column)))
        column.append(value)
