"""The bounded read of recent labelled traffic: captures joined to the labels that count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from mlops.labels import LabelBatch, encode_labels, new_label_batch_id, prediction_minute
from mlops.layout import label_key
from mlops.training.traffic import TrafficWindow, recent_labelled_traffic
from tests.support.challenger import write_labelled_traffic
from tests.support.fakes import InMemoryObjectStore

BUCKET = "artifacts"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def rows(count: int, offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x0": [float(offset + i) for i in range(count)],
            "plan": ["basic" if i % 2 else None for i in range(count)],
            "label": ["yes" if i % 3 else "no" for i in range(count)],
        }
    )


def test_recent_labelled_traffic_joins_captured_features_to_labels_by_prediction_id() -> None:
    store = InMemoryObjectStore()
    frame = rows(300)
    write_labelled_traffic(store, BUCKET, frame, answered_at=NOW - timedelta(hours=3), labelled=0.5)
    traffic = recent_labelled_traffic(store, "risk", "label", TrafficWindow(BUCKET), now=NOW)
    # only the labelled half, oldest first, with each row's own features and label
    expected = frame.iloc[:150].reset_index(drop=True)
    assert list(traffic.frame["x0"]) == list(expected["x0"])
    assert list(traffic.frame["label"]) == list(expected["label"])
    assert [None if pd.isna(v) else v for v in traffic.frame["plan"]] == [
        None if pd.isna(v) else v for v in expected["plan"]
    ]
    assert (traffic.labels_read, traffic.unmatched) == (150, 0)


def test_recent_labelled_traffic_keeps_the_newest_rows_within_the_window_only() -> None:
    store = InMemoryObjectStore()
    write_labelled_traffic(store, BUCKET, rows(100), answered_at=NOW - timedelta(days=9))  # outside 7 days
    write_labelled_traffic(store, BUCKET, rows(100, offset=1000), answered_at=NOW - timedelta(hours=30))
    write_labelled_traffic(store, BUCKET, rows(100, offset=2000), answered_at=NOW - timedelta(hours=2))
    traffic = recent_labelled_traffic(store, "risk", "label", TrafficWindow(BUCKET, max_rows=150), now=NOW)
    # the 150 newest: the last 50 of the day-old rows, then the 100 of two hours ago
    assert list(traffic.frame["x0"]) == [float(v) for v in [*range(1050, 1100), *range(2000, 2100)]]


def test_recent_labelled_traffic_counts_the_first_label_and_labels_without_a_capture() -> None:
    store = InMemoryObjectStore()
    ids = write_labelled_traffic(store, BUCKET, rows(10), answered_at=NOW - timedelta(hours=1))
    minute = prediction_minute(ids[0])
    later = NOW - timedelta(minutes=1)
    # a conflicting label for row 0 arrives later (the first one counts), and one for a prediction never captured
    orphan = ids[0][:8] + "f" * 24
    late = LabelBatch(
        prediction_ids=[ids[0], orphan], labels=["maybe", "yes"], received_at=[later.timestamp()] * 2, source="api"
    )
    store.put_bytes(BUCKET, label_key("risk", minute, new_label_batch_id(later)), encode_labels(late))
    traffic = recent_labelled_traffic(store, "risk", "label", TrafficWindow(BUCKET), now=NOW)
    assert traffic.frame["label"].iloc[0] == "no"
    assert len(traffic.frame) == 10
    assert (traffic.labels_read, traffic.unmatched) == (11, 1)


def test_recent_labelled_traffic_without_labels_is_empty() -> None:
    traffic = recent_labelled_traffic(InMemoryObjectStore(), "risk", "label", TrafficWindow(BUCKET), now=NOW)
    assert traffic.frame.empty
    assert (traffic.labels_read, traffic.unmatched) == (0, 0)
