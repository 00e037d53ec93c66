"""mlops.feedback_files: label files through the dataset readers and the label rules, row by row,
with a report, quarantine for what cannot be read, and flat memory (flushes)."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops.errors import ModelNotFoundError
from mlops.feedback import LabelProblem
from mlops.feedback_files import REASONS, FileOutcome, LabelFileIngestor
from mlops.inference.prediction_ids import new_prediction_ids
from mlops.inference.served import ServedArtifact, ServedVersion
from mlops.labels import decode_labels, merge_labels
from mlops.layout import LABELS_PREFIX, feedback_quarantine_key
from mlops.validation.service import UploadedObject
from tests.support.fakes import InMemoryObjectStore

CHURN = json.loads((Path(__file__).parents[2] / "contracts" / "churn.json").read_text())
PRICE = {
    "name": "price",
    "problem_type": "regression",
    "target": {"name": "y"},
    "features": [{"name": "x", "type": "numeric"}],
    "estimator": {"name": "ridge"},
    "metric": {"name": "rmse"},
}
DATA, ARTIFACTS = "data", "artifacts"


class Registry:
    def __init__(self, *contracts: dict[str, Any]) -> None:
        self.contracts = {c["name"]: c for c in contracts}

    def production(self, name: str) -> ServedVersion | None:
        if name not in self.contracts:
            raise ModelNotFoundError(f"no model named {name!r} is registered")
        return ServedVersion(name, 1, ServedArtifact("b", "k", "s", 1), self.contracts[name])


def ids(minutes_ago: float, count: int = 1) -> list[str]:
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return new_prediction_ids(count, clock=lambda: at.timestamp())


def ingest(
    store: InMemoryObjectStore, key: str, data: bytes, *, flush_labels: int = 50_000, registry: Registry | None = None
) -> Any:
    version = store.put_bytes(DATA, key, data)
    ingestor = LabelFileIngestor(
        store=store,
        data_bucket=DATA,
        artifact_bucket=ARTIFACTS,
        contracts=registry or Registry(CHURN, PRICE),
        flush_labels=flush_labels,
    )
    return ingestor.ingest(UploadedObject(bucket=DATA, key=key, version_id=version))


def report(store: InMemoryObjectStore, result: Any) -> dict[str, Any]:
    return json.loads(store.get_bytes(DATA, result.report_key))


def label_batches(store: InMemoryObjectStore) -> list[Any]:
    return [
        decode_labels(data)
        for (bucket, key), (data, _, _) in sorted(store.objects.items())
        if bucket == ARTIFACTS and key.startswith(LABELS_PREFIX)
    ]


def csv_of(rows: list[tuple[Any, ...]], header: str = "prediction_id,label") -> bytes:
    return (header + "\n" + "".join(",".join("" if c is None else str(c) for c in row) + "\n" for row in rows)).encode()


def test_a_csv_file_writes_good_rows_and_reports_bad_ones_by_row_and_reason() -> None:
    # GIVEN a file of good rows, a row of each problem and a repeated id
    good = ids(30, 3)
    old = ids(60 * 24 * 9)[0]
    rows = [
        (good[0], "yes"),
        (good[1], "maybe"),  # row 2: unknown class
        ("not-an-id", "no"),  # row 3
        (old, "no"),  # row 4: past the horizon
        (good[2], None),  # row 5: empty label
        (good[2], "no"),
        (good[0], "yes"),  # a repeat: absorbed
    ]
    store = InMemoryObjectStore()
    # WHEN it is ingested
    result = ingest(
        store, "feedback/churn/2026-12-03.csv", csv_of([(*r, "n") for r in rows], "prediction_id,label,note")
    )
    # THEN the good rows are label objects, the bad rows are in the report, and the file stays
    assert result.outcome is FileOutcome.PARTLY_ACCEPTED
    assert (result.rows, result.accepted, result.refused) == (7, 2, 4)
    merged = merge_labels(label_batches(store))
    assert merged.labels == {good[0]: "yes", good[2]: "no"}
    assert {b.source for b in label_batches(store)} == {"feedback/churn/2026-12-03.csv"}
    document = report(store, result)
    assert [(r["row"], r["reason"]) for r in document["refused_rows"]] == [
        (2, "unknown_class"),
        (3, "malformed_prediction_id"),
        (4, "older_than_horizon"),
        (5, "missing_label"),
    ]
    assert document["absorbed"] == {"duplicates": 1, "conflicts": 0}
    assert document["refused_by_reason"]["unknown_class"] == 1
    assert "maybe" not in json.dumps(document)  # the sender's labels are never quoted
    assert (DATA, "feedback/churn/2026-12-03.csv") in store.objects


def test_every_refusal_reason_of_a_file_row_is_explained() -> None:
    assert set(REASONS) == {r.value for r in LabelProblem} - {LabelProblem.NOT_AN_OBJECT.value}


def test_a_parquet_file_of_values_for_a_regression() -> None:
    good = ids(5, 3)
    table = pa.table(
        {"prediction_id": [*good, ids(5)[0]], "value": [1.5, 2, float("nan"), None], "extra": ["a", "b", "c", "d"]}
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=2)
    store = InMemoryObjectStore()
    result = ingest(store, "feedback/price/labels.parquet", sink.getvalue())
    assert result.outcome is FileOutcome.PARTLY_ACCEPTED
    assert merge_labels(label_batches(store)).labels == {good[0]: 1.5, good[1]: 2.0}
    assert [(r["row"], r["reason"]) for r in report(store, result)["refused_rows"]] == [
        (3, "not_finite"),
        (4, "missing_label"),
    ]


def test_a_gzipped_csv_of_values_parses_numbers_from_text() -> None:
    good = ids(5, 2)
    data = gzip.compress(csv_of([(good[0], "3.25"), (good[1], "abc")], "prediction_id,value"))
    store = InMemoryObjectStore()
    result = ingest(store, "feedback/price/x.csv.gz", data)
    assert merge_labels(label_batches(store)).labels == {good[0]: 3.25}
    assert report(store, result)["refused_rows"] == [{"row": 2, "prediction_id": good[1], "reason": "wrong_label_type"}]


@pytest.mark.parametrize(
    ("key", "data", "error"),
    [
        ("feedback/churn/a.csv", b"prediction_id,value\n" + b"x,1\n", "the file has no column label"),
        ("feedback/churn/a.csv", b"prediction_id,label\n", None),  # header only: read, nothing to write
        ("feedback/churn/a.csv", b"PAR1\x00\x00garbage", "the bytes look like parquet"),
        ("feedback/churn/a.parquet", b"PAR1 truncated", "Parquet magic bytes not found in footer"),
        ("feedback/churn/a.xlsx", b"whatever", "unsupported file type"),
        ("feedback/nosuch/a.csv", b"prediction_id,label\n", "no model named 'nosuch'"),
    ],
)
def test_an_unreadable_file_is_quarantined_with_its_report(key: str, data: bytes, error: str | None) -> None:
    store = InMemoryObjectStore()
    result = ingest(store, key, data)
    if error is None:
        assert result.outcome is FileOutcome.ACCEPTED
        assert result.rows == 0
        return
    assert result.outcome is FileOutcome.QUARANTINED
    assert (DATA, key) not in store.objects
    assert store.get_bytes(DATA, feedback_quarantine_key(key)) == data  # nothing lost
    document = report(store, result)
    assert document["outcome"] == "quarantined"
    assert document["quarantine_key"] == result.quarantine_key == feedback_quarantine_key(key)
    assert error in document["error"]
    assert label_batches(store) == []


def test_quarantined_label_files_never_land_beside_a_models_quarantined_datasets() -> None:
    assert feedback_quarantine_key("feedback/churn/a.csv") == "quarantine/_feedback/churn/a.csv"
    assert feedback_quarantine_key("feedback/../x.csv").startswith("quarantine/_feedback/_unassigned/")


def test_a_large_file_is_written_in_flushes_and_every_label_counts() -> None:
    # GIVEN 2,500 labels of one minute and a flush every 1,000 accepted labels
    labels = ids(10, 2_500)
    store = InMemoryObjectStore()
    result = ingest(store, "feedback/churn/big.csv", csv_of([(i, "no") for i in labels]), flush_labels=1_000)
    # THEN three objects (one per flush, one minute each) hold every label once
    batches = label_batches(store)
    assert result.outcome is FileOutcome.ACCEPTED
    assert len(batches) == 3
    assert len(merge_labels(batches).labels) == 2_500
    assert report(store, result)["label_objects"] == 3


def test_a_file_with_no_acceptable_row_is_refused_and_stays() -> None:
    store = InMemoryObjectStore()
    result = ingest(store, "feedback/churn/bad.csv", csv_of([("x", "yes"), ("y", "no")]))
    assert result.outcome is FileOutcome.REFUSED
    assert (DATA, "feedback/churn/bad.csv") in store.objects
    assert report(store, result)["refused_by_reason"] == {"malformed_prediction_id": 2}


def test_a_version_already_gone_is_missing_and_does_nothing() -> None:
    store = InMemoryObjectStore()
    ingestor = LabelFileIngestor(store=store, data_bucket=DATA, artifact_bucket=ARTIFACTS, contracts=Registry(CHURN))
    result = ingestor.ingest(UploadedObject(bucket=DATA, key="feedback/churn/a.csv", version_id="v9"))
    assert result.outcome is FileOutcome.MISSING
    assert store.objects == {}
