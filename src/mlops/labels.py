"""Ground truth for served predictions, column by column: what the feedback paths write and the
quality join reads. One format, one rule for which label of a prediction counts.

A label object (`labels/<model>/<yyyy>/<mm>/<dd>/<hh>/<yyyymmddThhmm>-<batch id>.json`, see
`mlops.layout.label_key`) holds labels whose predictions were answered in ONE minute (the
minute is in the prediction id), so the join reads a minute of labels beside the captures of
that minute and its memory does not grow with the number of labelled rows. A batch id starts
with its arrival time (`new_label_batch_id`), so within a minute the objects that arrived after
a reader's last key sort after it, even for a prediction minute long past (late labels).

Stdlib only: the feedback route runs beside predict's code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

LABEL_FORMAT = "mlops-labels/columns-1"  # the "format" member of a label object
LABEL_SUFFIX = ".json"
PREDICTION_TIME_HEX = 8  # a prediction id starts with its answer's epoch second, 8 hex digits


@dataclass
class LabelBatch:
    """Labels of predictions answered in one minute; every list has one entry per label."""

    prediction_ids: list[str]
    # the true class (a string, classification) or value (a float, regression)
    labels: list[str | float]
    received_at: list[float]  # epoch seconds the label was accepted
    source: str  # "api" or the dropped file's key: where these labels came from

    def __len__(self) -> int:
        return len(self.prediction_ids)


def prediction_second(prediction_id: str) -> int:
    """The epoch second a prediction was answered, read from its id (`mlops.inference.prediction_ids`)."""
    return int(prediction_id[:PREDICTION_TIME_HEX], 16)


def prediction_minute(prediction_id: str) -> datetime:
    """The UTC minute a prediction was answered: the label object its label goes to."""
    second = prediction_second(prediction_id)
    return datetime.fromtimestamp(second - second % 60, tz=UTC)


def new_label_batch_id(arrived: datetime) -> str:
    """`<arrival, UTC, yyyymmddThhmmssffffff>-<8 random hex>`: sorts by arrival, unique."""
    return f"{arrived.astimezone(UTC):%Y%m%dT%H%M%S%f}-{os.urandom(4).hex()}"


def encode_labels(batch: LabelBatch) -> bytes:
    return json.dumps(
        {
            "format": LABEL_FORMAT,
            "source": batch.source,
            "prediction_ids": batch.prediction_ids,
            "labels": batch.labels,
            "received_at": batch.received_at,
        },
        separators=(",", ":"),
        allow_nan=False,
    ).encode()


def decode_labels(data: bytes) -> LabelBatch:
    """A label object's labels. Raises ValueError for an object that is not one (the writers are
    ours: a broken object is a defect to surface, not a row to skip)."""
    document = json.loads(data)
    if not isinstance(document, dict) or document.get("format") != LABEL_FORMAT:
        raise ValueError(f"not a label object (format {LABEL_FORMAT} expected)")
    batch = LabelBatch(
        prediction_ids=list(document["prediction_ids"]),
        labels=list(document["labels"]),
        received_at=[float(at) for at in document["received_at"]],
        source=str(document.get("source", "")),
    )
    if not len(batch.labels) == len(batch.received_at) == len(batch):
        raise ValueError("label object columns differ in length")
    return batch


def split_by_minute(batch: LabelBatch) -> Iterator[tuple[datetime, LabelBatch]]:
    """One batch per prediction minute (a request's labels may span several), in minute order."""
    minutes: dict[datetime, list[int]] = {}
    for row, prediction_id in enumerate(batch.prediction_ids):
        minutes.setdefault(prediction_minute(prediction_id), []).append(row)
    for minute in sorted(minutes):
        rows = minutes[minute]
        yield (
            minute,
            LabelBatch(
                prediction_ids=[batch.prediction_ids[r] for r in rows],
                labels=[batch.labels[r] for r in rows],
                received_at=[batch.received_at[r] for r in rows],
                source=batch.source,
            ),
        )


@dataclass(frozen=True)
class LabelMerge:
    """Which label counts for each prediction, and what was absorbed on the way."""

    labels: dict[str, str | float]  # prediction id -> the label that counts
    duplicates: int  # the same label again (a retried request or file): absorbed
    conflicts: int  # a different label for a prediction that already had one: the first one counts


def merge_labels(batches: Iterable[LabelBatch]) -> LabelMerge:
    """THE rule for repeated labels: per prediction id, the label received first counts (ties: the
    order given). Idempotent under replay: sending a label again, or an older request again,
    never changes what counts. Callers pass one minute's batches, so this holds one minute."""
    rows = sorted(
        (
            (at, order, row, prediction_id, label)
            for order, batch in enumerate(batches)
            for row, (prediction_id, label, at) in enumerate(
                zip(batch.prediction_ids, batch.labels, batch.received_at, strict=True)
            )
        ),
        key=lambda item: item[:3],
    )
    labels: dict[str, str | float] = {}
    duplicates = conflicts = 0
    for _, _, _, prediction_id, label in rows:
        if prediction_id not in labels:
            labels[prediction_id] = label
        elif labels[prediction_id] == label:
            duplicates += 1
        else:
            conflicts += 1
    return LabelMerge(labels, duplicates, conflicts)
