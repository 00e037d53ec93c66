"""Captured inference traffic, column by column: what predict writes and drift reads. One format.

A capture object (`captures/<model>/YYYY/MM/DD/HH/<flush time>-<batch id>.json`) holds one
container's buffered rows for one model as columns, so the drift function parses a whole object
in one `json.loads` and turns each column into an array without a per-row Python loop.
`encode_batch` / `decode_batch` live here (and read the earlier row-per-line JSONL objects too).
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
