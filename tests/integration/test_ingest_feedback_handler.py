"""ingest_feedback on the moto server: a realistic S3 notification for a label file in; label
objects, a report and (for an unreadable file) a quarantined copy out; a repeated delivery of the
same version does no work again."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops.feedback_files import FileOutcome
from mlops.inference.prediction_ids import new_prediction_ids
from mlops.labels import decode_labels, merge_labels
from mlops.layout import feedback_quarantine_key, labels_prefix
from mlops_local.handlers import load_handler_module
from tests.integration.test_record_feedback_handler import CHURN, register
from tests.integration.test_validate_dataset_handler import put, s3_event
from tests.support.lambda_context import FakeLambdaContext
from tests.support.resources import TestResources


@pytest.fixture
def handler(stack: TestResources) -> ModuleType:
    register(stack, CHURN.model_dump(mode="json"))
    return load_handler_module("ingest_feedback")


def ids(minutes_ago: float, count: int) -> list[str]:
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return new_prediction_ids(count, clock=lambda: at.timestamp())


def label_batches(stack: TestResources) -> list[Any]:
    s3 = boto3.client("s3")
    listing = s3.list_objects_v2(Bucket=stack.artifact_bucket, Prefix=labels_prefix("churn"))
    return [
        decode_labels(s3.get_object(Bucket=stack.artifact_bucket, Key=item["Key"])["Body"].read())
        for item in listing.get("Contents", [])
    ]


def invoke(handler: ModuleType, event: dict[str, Any]) -> list[dict[str, Any]]:
    return handler.lambda_handler(event, FakeLambdaContext(function_name="ingest_feedback"))["results"]


def test_a_dropped_parquet_label_file_becomes_label_objects_once(handler: ModuleType, stack: TestResources) -> None:
    # GIVEN a Parquet file of 300 labels (and one bad row) under feedback/churn/, key with a space
    good = ids(20, 300)
    table = pa.table({"prediction_id": [*good, "nope"], "label": ["yes"] * 150 + ["no"] * 151})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=100)
    item = put(stack, "feedback/churn/dec 3.parquet", sink.getvalue())
    # WHEN S3 notifies the function, twice (at-least-once delivery)
    (first,) = invoke(handler, s3_event(stack.data_bucket, item))
    (again,) = invoke(handler, s3_event(stack.data_bucket, item))
    # THEN the good rows are label objects, written once, and the report names the bad row
    assert first["outcome"] == FileOutcome.PARTLY_ACCEPTED.value
    assert (first["rows"], first["accepted"], first["refused"]) == (301, 300, 1)
    assert again == first
    batches = label_batches(stack)
    assert len(batches) == 1
    assert len(merge_labels(batches).labels) == 300
    report = json.loads(boto3.client("s3").get_object(Bucket=stack.data_bucket, Key=first["report_key"])["Body"].read())
    assert first["report_key"].startswith("reports/churn/feedback/dec-3.parquet-")
    assert report["refused_rows"] == [{"row": 301, "prediction_id": "nope", "reason": "malformed_prediction_id"}]


def test_an_unreadable_label_file_is_quarantined_with_its_report(handler: ModuleType, stack: TestResources) -> None:
    item = put(stack, "feedback/churn/broken.csv", b"prediction_id;truth\nabc;yes\n")
    (result,) = invoke(handler, s3_event(stack.data_bucket, item))
    assert result["outcome"] == FileOutcome.QUARANTINED.value
    s3 = boto3.client("s3")
    quarantined = s3.get_object(Bucket=stack.data_bucket, Key=feedback_quarantine_key("feedback/churn/broken.csv"))
    assert quarantined["Body"].read() == b"prediction_id;truth\nabc;yes\n"
    report = json.loads(s3.get_object(Bucket=stack.data_bucket, Key=result["report_key"])["Body"].read())
    assert "the file has no column label" in report["error"]
    listing = s3.list_object_versions(Bucket=stack.data_bucket, Prefix="feedback/churn/broken.csv")
    assert listing.get("Versions", []) == []  # the exact version moved, not hidden behind a marker
    # a late repeated delivery of the moved version finds it gone and does nothing
    handler.idempotency.register_lambda_context(FakeLambdaContext())
    assert (
        handler.ingestor.ingest(
            handler.UploadedObject(bucket=stack.data_bucket, key=item["key"], version_id=item["versionId"])
        ).outcome
        is FileOutcome.MISSING
    )


def test_the_s3_test_event_is_ignored(handler: ModuleType) -> None:
    assert invoke(handler, {"Service": "Amazon S3", "Event": "s3:TestEvent"}) == []
