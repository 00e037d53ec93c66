"""CaptureBuffer flush rules (count, age, shutdown), sampling, rejection counts and the columnar
capture objects it writes (read back with `mlops.captures.decode_batch`)."""

from __future__ import annotations

import gc
import weakref
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.captures import Rejected, decode_batch
from mlops.inference.capture import CaptureBuffer
from tests.support.fakes import InMemoryObjectStore

BUCKET = "artifacts"
FEATURES = ("x", "plan")
START = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC).timestamp()


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class FailingStore(InMemoryObjectStore):
    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        raise ConnectionError("S3 unreachable")


def rows(n: int) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    records = [{"x": float(i), "plan": "basic", "client_id": "secret"} for i in range(n)]
    answers = [{"label": "no", "probabilities": {"no": 0.9, "yes": 0.1}, "prediction_id": f"p{i}"} for i in range(n)]
    return records, answers


def buffer(store: InMemoryObjectStore, clock: FakeClock, **kwargs: object) -> CaptureBuffer:
    ids = iter(f"b{i}" for i in range(100))
    return CaptureBuffer(store, BUCKET, clock=clock, batch_id=lambda: next(ids), **kwargs)  # type: ignore[arg-type]


def captured(store: InMemoryObjectStore) -> dict[str, list[dict[str, object]]]:
    """Each capture object's rows, one dict per row (read through the shared decoder)."""
    found = {}
    for (bucket, key), (data, _, _) in store.objects.items():
        if bucket == BUCKET:
            batch = decode_batch(data)
            assert batch.unreadable_rows == 0
            found[key] = [
                {
                    "at": batch.at[i],
                    "version": batch.versions[i],
                    "prediction_id": batch.prediction_ids[i],
                    "input": {name: column[i] for name, column in batch.inputs.items()},
                    "output": {name: column[i] for name, column in batch.outputs.items()},
                }
                for i in range(len(batch))
            ]
    return found


def test_capture_flushes_when_count_reached() -> None:
    store, clock = InMemoryObjectStore(), FakeClock()
    capture = buffer(store, clock, max_records=3, max_age_seconds=60)
    capture.add("churn", 2, FEATURES, *rows(2), sample_rate=1.0)
    assert capture.flush_due() == []
    assert not store.objects
    capture.add("churn", 2, FEATURES, *rows(1), sample_rate=1.0)
    [result] = capture.flush_due()
    assert result.records == 3
    assert result.error is None
    assert result.key == "captures/churn/2026/03/04/05/20260304T050607-b0.json"
    lines = captured(store)[result.key]
    assert len(lines) == 3
    # only the contract's features are kept (a client's extra fields are never stored), with the
    # answer's prediction id and its outputs flattened to columns
    assert lines[0] == {
        "at": START,
        "version": 2,
        "prediction_id": "p0",
        "input": {"x": 0.0, "plan": "basic"},
        "output": {"label": "no", "probability:no": 0.9, "probability:yes": 0.1},
    }
    assert [line["prediction_id"] for line in lines] == ["p0", "p1", "p0"]
    assert len(capture) == 0


def test_capture_flushes_when_oldest_record_is_too_old() -> None:
    store, clock = InMemoryObjectStore(), FakeClock()
    capture = buffer(store, clock, max_records=100, max_age_seconds=60)
    capture.add("churn", 1, FEATURES, *rows(1), sample_rate=1.0)
    clock.now += 59
    capture.add("churn", 1, FEATURES, *rows(1), sample_rate=1.0)
    assert capture.flush_due() == []
    clock.now += 1  # the oldest record is now 60 s old
    [result] = capture.flush_due()
    assert result.records == 2
    # the age restarts with the next record, not with the buffer's creation
    clock.now += 100
    capture.add("churn", 1, FEATURES, *rows(1), sample_rate=1.0)
    assert capture.flush_due() == []


def test_capture_keeps_one_buffer_per_model() -> None:
    store, clock = InMemoryObjectStore(), FakeClock()
    capture = buffer(store, clock, max_records=2)
    capture.add("churn", 1, FEATURES, *rows(2), sample_rate=1.0)
    capture.add("prices", 4, FEATURES, *rows(1), sample_rate=1.0)
    assert [r.model for r in capture.flush_due()] == ["churn"]
    assert [r.model for r in capture.flush()] == ["prices"]
    assert sorted(k.split("/")[1] for k in captured(store)) == ["churn", "prices"]


def test_capture_flush_writes_everything_at_shutdown() -> None:
    store, clock = InMemoryObjectStore(), FakeClock()
    capture = buffer(store, clock, max_records=100, max_age_seconds=3600)
    capture.add("churn", 1, FEATURES, *rows(5), sample_rate=1.0)
    assert capture.flush_due() == []
    assert [r.records for r in capture.flush()] == [5]
    assert capture.flush() == []


@pytest.mark.parametrize(("rate", "expected"), [(0.0, 0), (1.0, 10), (0.5, 5)])
def test_capture_samples_at_the_contract_rate(rate: float, expected: int) -> None:
    draws = iter([0.1, 0.9] * 5)
    capture = CaptureBuffer(InMemoryObjectStore(), BUCKET, random_source=lambda: next(draws))
    assert capture.add("churn", 1, FEATURES, *rows(10), sample_rate=rate) == expected
    assert len(capture) == expected


def test_capture_failure_never_raises_and_drops_the_batch() -> None:
    capture = buffer(FailingStore(), FakeClock(), max_records=1)
    capture.add("churn", 1, FEATURES, *rows(1), sample_rate=1.0)
    [result] = capture.flush_due()
    assert result.key is None
    assert result.error is not None
    assert "S3 unreachable" in result.error
    assert len(capture) == 0


@pytest.mark.parametrize(
    "bad_output",
    [{"value": float("inf")}, {"value": float("nan")}, {"value": object()}],
    ids=["inf", "nan", "not-json"],
)
def test_capture_skips_a_row_json_cannot_carry_and_writes_the_others(bad_output: dict[str, object]) -> None:
    store, clock = InMemoryObjectStore(), FakeClock()
    capture = buffer(store, clock, max_records=3)
    records, predictions = rows(3)
    predictions[1] = bad_output
    capture.add("churn", 1, FEATURES, records, predictions, sample_rate=1.0)
    [result] = capture.flush_due()
    assert (result.records, result.skipped, result.error) == (2, 1, None)
    assert [line["input"]["x"] for line in captured(store)[result.key]] == [0.0, 2.0]


def test_capture_of_only_unserialisable_rows_writes_nothing() -> None:
    store = InMemoryObjectStore()
    capture = buffer(store, FakeClock())
    records, _ = rows(2)
    capture.add("churn", 1, FEATURES, records, [{"value": float("inf")}] * 2, sample_rate=1.0)
    assert [(r.key, r.records, r.skipped) for r in capture.flush()] == [(None, 0, 2)]
    assert not store.objects


class Record(dict[str, object]):
    """A request record that can be watched with a weak reference (a plain dict cannot)."""


def test_capture_keeps_feature_values_not_the_request_record() -> None:
    # GIVEN a request record with a large field that is not a feature
    store = InMemoryObjectStore()
    capture = buffer(store, FakeClock(), max_records=100)
    record = Record(x=1.5, plan="basic", note="n" * 8_000_000)
    watched = weakref.ref(record)
    capture.add("churn", 1, FEATURES, [record], [{"value": 2.0}], sample_rate=1.0)
    # WHEN the request is over (the caller drops its records)
    del record
    gc.collect()
    # THEN the buffer does not hold the record, so neither its note: memory is bounded by features
    assert watched() is None
    assert len(capture) == 1
    [result] = capture.flush()
    [line] = captured(store)[result.key]
    assert line["input"] == {"x": 1.5, "plan": "basic"}
    assert "note" not in store.objects[(BUCKET, result.key)][0].decode()


def test_capture_writes_each_row_with_its_own_versions_features() -> None:
    # a row's columns are its version's features; a feature its version does not take is None there
    store = InMemoryObjectStore()
    capture = buffer(store, FakeClock(), max_records=100)
    capture.add("churn", 1, ("x", "plan"), [{"x": 1.0, "plan": "basic", "y": 5}], [{"value": 1.0}], sample_rate=1.0)
    capture.add("churn", 2, ("x", "y"), [{"x": 2.0, "plan": "basic", "y": 6}], [{"value": 2.0}], sample_rate=1.0)
    [result] = capture.flush()
    assert [(line["version"], line["input"]) for line in captured(store)[result.key]] == [
        (1, {"x": 1.0, "plan": "basic", "y": None}),
        (2, {"x": 2.0, "plan": None, "y": 6}),
    ]


class ClockedStore(InMemoryObjectStore):
    """Remembers the clock time each object was written at."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.written_at: dict[str, float] = {}

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        self.written_at[key] = self.clock.now
        return super().put_bytes(bucket, key, data, content_type)


@settings(max_examples=150, deadline=None)
@given(
    max_age=st.integers(min_value=1, max_value=60),
    max_records=st.integers(min_value=1, max_value=20),
    requests=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=30),  # seconds since the previous request
            st.sampled_from(["churn", "prices"]),
            st.integers(min_value=0, max_value=3),  # records in the request
            st.sampled_from([0.0, 0.5, 1.0]),  # the model's sample rate
        ),
        max_size=60,
    ),
)
def test_capture_never_holds_a_record_past_its_age_while_requests_arrive(
    max_age: int, max_records: int, requests: list[tuple[int, str, int, float]]
) -> None:
    # GIVEN requests arriving at any pace, each followed by the handler's flush_due (shutdown aside)
    clock = FakeClock()
    store = ClockedStore(clock)
    draws = iter([0.25, 0.75] * 200)
    capture = buffer(store, clock, max_records=max_records, max_age_seconds=max_age, random_source=lambda: next(draws))
    request_times = []
    for gap, model, count, rate in requests:
        clock.now += gap
        capture.add(model, 1, FEATURES, *rows(count), sample_rate=rate)
        capture.flush_due()
        request_times.append(clock.now)
    last = clock.now
    leftover = {r.key for r in capture.flush()}
    # THEN each record was written at the first request that found it max_age old (or earlier),
    # and what is still buffered after the last request is younger than max_age
    for key, lines in captured(store).items():
        written = store.written_at[key]
        for line in lines:
            added = float(line["at"])  # type: ignore[arg-type]
            assert not [t for t in request_times if added + max_age <= t < written], (key, added, written)
            if key in leftover:
                assert last - added < max_age


def test_capture_counts_refused_records_and_flushes_them_without_rows() -> None:
    # GIVEN only refused records for a model (nobody got an answer)
    store, clock = InMemoryObjectStore(), FakeClock()
    capture = buffer(store, clock, max_records=100, max_age_seconds=60)
    capture.reject("churn", "plan", "unseen_category")
    capture.reject("churn", "plan", "unseen_category")
    capture.reject("churn", "tenure_months", "out_of_range")
    assert capture.flush_due() == []
    # WHEN the oldest count is max_age old
    clock.now += 60
    [result] = capture.flush_due()
    # THEN an object with no rows carries the counts (fields and reasons, never values)
    assert (result.records, result.rejected, result.error) == (0, 3, None)
    written = decode_batch(store.get_bytes(BUCKET, str(result.key)))
    assert len(written) == 0
    assert written.rejected == [Rejected("plan", "unseen_category", 2), Rejected("tenure_months", "out_of_range", 1)]


def test_capture_writes_rejections_with_the_rows_and_only_once() -> None:
    store = InMemoryObjectStore()
    capture = buffer(store, FakeClock(), max_records=2)
    capture.reject("churn", "plan", "wrong_type")
    capture.add("churn", 1, FEATURES, *rows(2), sample_rate=1.0)
    [result] = capture.flush_due()
    assert (result.records, result.rejected) == (2, 1)
    assert decode_batch(store.get_bytes(BUCKET, str(result.key))).rejected == [Rejected("plan", "wrong_type", 1)]
    capture.add("churn", 1, FEATURES, *rows(2), sample_rate=1.0)
    [second] = capture.flush_due()
    assert decode_batch(store.get_bytes(BUCKET, str(second.key))).rejected == []


def test_capture_keeps_rejections_when_every_row_is_skipped() -> None:
    store = InMemoryObjectStore()
    capture = buffer(store, FakeClock())
    records, _ = rows(1)
    capture.add("churn", 1, FEATURES, records, [{"value": float("nan")}], sample_rate=1.0)
    capture.reject("churn", "x", "missing")
    [result] = capture.flush()
    assert (result.records, result.skipped, result.rejected) == (0, 1, 1)
    assert decode_batch(store.get_bytes(BUCKET, str(result.key))).rejected == [Rejected("x", "missing", 1)]


def test_capture_writes_answers_of_different_shapes_in_one_object() -> None:
    # a version that classifies and one that regresses, in one buffer: each row has its own outputs
    store = InMemoryObjectStore()
    capture = buffer(store, FakeClock(), max_records=100)
    records, answers = rows(1)
    capture.add("churn", 1, FEATURES, records, answers, sample_rate=1.0)
    capture.add("churn", 2, FEATURES, records, [{"value": 2.5, "prediction_id": "q0"}], sample_rate=1.0)
    [result] = capture.flush()
    assert [(line["prediction_id"], line["output"]) for line in captured(store)[str(result.key)]] == [
        ("p0", {"label": "no", "probability:no": 0.9, "probability:yes": 0.1, "value": None}),
        ("q0", {"label": None, "probability:no": None, "probability:yes": None, "value": 2.5}),
    ]
