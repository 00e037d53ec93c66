"""mlops.labels: the label object format, the minute a label belongs to, and the one merge rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlops.inference.prediction_ids import new_prediction_ids
from mlops.labels import (
    LabelBatch,
    decode_labels,
    encode_labels,
    merge_labels,
    new_label_batch_id,
    prediction_minute,
    split_by_minute,
)
from mlops.layout import label_key

ANSWERED = datetime(2026, 12, 3, 10, 15, 42, tzinfo=UTC)


def ids_at(at: datetime, count: int = 1) -> list[str]:
    return new_prediction_ids(count, clock=lambda: at.timestamp())


def test_a_label_belongs_to_the_minute_its_prediction_was_answered() -> None:
    (prediction_id,) = ids_at(ANSWERED)
    assert prediction_minute(prediction_id) == datetime(2026, 12, 3, 10, 15, tzinfo=UTC)
    assert (
        label_key("churn", prediction_minute(prediction_id), "b1") == "labels/churn/2026/12/03/10/20261203T1015-b1.json"
    )


def test_label_objects_round_trip_and_refuse_what_is_not_one() -> None:
    batch = LabelBatch(ids_at(ANSWERED, 2), ["yes", 0.5], [1.0, 2.0], source="api")
    assert decode_labels(encode_labels(batch)) == batch
    with pytest.raises(ValueError, match="not a label object"):
        decode_labels(b'{"prediction_ids": []}')
    with pytest.raises(ValueError, match="differ in length"):
        decode_labels(encode_labels(LabelBatch(ids_at(ANSWERED), ["a", "b"], [1.0], source="api")))


def test_a_request_spanning_minutes_is_split_by_minute_in_order() -> None:
    late, early = ids_at(datetime(2026, 12, 3, 10, 17, 1, tzinfo=UTC)), ids_at(ANSWERED)
    batch = LabelBatch(late + early, ["b", "a"], [5.0, 5.0], source="api")
    split = list(split_by_minute(batch))
    assert [(minute.minute, part.labels) for minute, part in split] == [(15, ["a"]), (17, ["b"])]


def test_the_first_label_received_counts_and_replays_change_nothing() -> None:
    (prediction_id,) = ids_at(ANSWERED)
    first = LabelBatch([prediction_id], ["yes"], [10.0], source="api")
    correction = LabelBatch([prediction_id], ["no"], [20.0], source="api")
    replay = LabelBatch([prediction_id], ["yes"], [30.0], source="api")
    # whatever order the objects are listed in, arrival time decides
    for batches in ([first, correction, replay], [replay, correction, first]):
        merged = merge_labels(batches)
        assert (merged.labels, merged.duplicates, merged.conflicts) == ({prediction_id: "yes"}, 1, 1)


def test_label_batch_ids_sort_by_arrival_within_a_minute() -> None:
    minute = prediction_minute(ids_at(ANSWERED)[0])
    earlier = label_key("churn", minute, new_label_batch_id(datetime(2026, 12, 9, 8, 0, 0, 5, tzinfo=UTC)))
    later = label_key("churn", minute, new_label_batch_id(datetime(2026, 12, 9, 8, 0, 1, tzinfo=UTC)))
    assert earlier < later
    assert new_label_batch_id(ANSWERED) != new_label_batch_id(ANSWERED)
