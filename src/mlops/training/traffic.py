"""Recent labelled traffic: the newest labelled predictions of a model, for scoring the candidate
and the champion on the same real rows at training time.

A small read, bounded in memory: the features come from the captures (`mlops.captures`), the
label from the label objects (`mlops.labels`, the label that counts by `merge_labels`), joined by
prediction id. Label objects are keyed by the minute their predictions were answered, so the
reader takes one hour of labels at a time, newest hour first, and reads only the captures flushed
from that hour's start to `CAPTURE_FLUSH_HORIZON` after its end; it stops once it holds
`max_rows` rows. Memory: one hour of labels plus at most `max_rows` rows. (The live-quality join
is a separate, complete job; this reader only needs the most recent rows.)

Predictions not captured (sampling) or captured later than the horizon are counted as unmatched.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from mlops.captures import decode_batch
from mlops.labels import decode_labels, merge_labels
from mlops.layout import capture_flushed_at, captures_prefix, captures_time_key, labels_minute_key, labels_prefix
from mlops.ports import ObjectStore

# predict flushes a model's buffer once its oldest row is 60 s old (on the next request) or full;
# a capture flushed later than this after its predictions' hour is not looked for
CAPTURE_FLUSH_HORIZON = timedelta(minutes=15)


@dataclass(frozen=True)
class TrafficWindow:
    """Where and how far back to look, and how many labelled rows are enough / the most to hold."""

    bucket: str  # the artifact bucket (captures/ and labels/)
    hours: float = 168.0
    min_rows: int = 200
    max_rows: int = 20_000

    @classmethod
    def from_settings(cls, settings: Any) -> TrafficWindow | None:
        """The window a training function's settings declare (mlops.settings._TrafficWindowSettings);
        None when TRAFFIC_WINDOW_HOURS is 0 (off)."""
        if settings.traffic_window_hours <= 0:
            return None
        return cls(
            settings.artifact_bucket,
            hours=settings.traffic_window_hours,
            min_rows=settings.traffic_min_rows,
            max_rows=settings.traffic_max_rows,
        )


@dataclass(frozen=True)
class LabelledTraffic:
    frame: pd.DataFrame  # one row per labelled prediction: captured features + the target column
    labels_read: int  # labels that count (after merge_labels), in the hours read
    unmatched: int  # of them, predictions not found in the captures


def recent_labelled_traffic(
    store: ObjectStore, model: str, target: str, window: TrafficWindow, *, now: datetime | None = None
) -> LabelledTraffic:
    """The newest (by prediction time) labelled predictions of `model` within `window.hours` of `now`,
    at most `window.max_rows`, oldest first. `target` names the label column."""
    now = now or datetime.now(UTC)
    start = now - timedelta(hours=window.hours)
    start_minute = start.replace(second=0, microsecond=0)
    hours: dict[str, list[str]] = {}  # hour folder -> its label keys (keys only: a few bytes each)
    for info in store.list(window.bucket, labels_prefix(model), start_after=labels_minute_key(model, start_minute)):
        hours.setdefault(posixpath.dirname(info.key), []).append(info.key)
    kept: list[pd.DataFrame] = []
    rows = labels_read = unmatched = 0
    for folder in sorted(hours, reverse=True):
        if rows >= window.max_rows:
            break
        labels = _labels_of(store, window.bucket, hours[folder])
        labels_read += len(labels)
        hour_start = datetime.strptime(folder.removeprefix(labels_prefix(model)), "%Y/%m/%d/%H").replace(tzinfo=UTC)
        found = _captured(store, window.bucket, model, hour_start, labels, target)
        unmatched += len(labels) - len(found)
        if not found.empty:
            found = found.sort_values("_prediction_id").tail(window.max_rows - rows)
            kept.append(found)
            rows += len(found)
    if not kept:
        return LabelledTraffic(pd.DataFrame(columns=[target]), labels_read, unmatched)
    frame = pd.concat(reversed(kept), ignore_index=True).drop(columns="_prediction_id")
    return LabelledTraffic(frame, labels_read, unmatched)


def _labels_of(store: ObjectStore, bucket: str, keys: list[str]) -> dict[str, str | float]:
    """The labels that count, of one hour's label objects (merged minute by minute, as the rule says)."""
    minutes: dict[str, list[str]] = {}
    for key in keys:
        minutes.setdefault(posixpath.basename(key).split("-", 1)[0], []).append(key)
    labels: dict[str, str | float] = {}
    for minute_keys in minutes.values():
        merged = merge_labels(decode_labels(store.get_bytes(bucket, key)) for key in sorted(minute_keys))
        labels.update(merged.labels)
    return labels


def _captured(
    store: ObjectStore, bucket: str, model: str, hour_start: datetime, labels: dict[str, str | float], target: str
) -> pd.DataFrame:
    """The captured rows of the labelled predictions (features, target, `_prediction_id`)."""
    until = hour_start + timedelta(hours=1) + CAPTURE_FLUSH_HORIZON
    columns: dict[str, list[object]] = {"_prediction_id": [], target: []}
    for info in store.list(bucket, captures_prefix(model), start_after=captures_time_key(model, hour_start)):
        flushed = capture_flushed_at(info.key)
        if flushed is None:
            continue
        if flushed > until:
            break
        batch = decode_batch(store.get_bytes(bucket, info.key))
        for row, prediction_id in enumerate(batch.prediction_ids):
            if prediction_id not in labels:
                continue
            count = len(columns["_prediction_id"])
            columns["_prediction_id"].append(prediction_id)
            columns[target].append(labels[prediction_id])
            for name, values in batch.inputs.items():
                columns.setdefault(name, [None] * count).append(values[row])
            for values in columns.values():  # a feature this batch did not capture
                if len(values) == count:
                    values.append(None)
    return pd.DataFrame(columns)
