"""validate_dataset handler on the moto server: a realistic S3 notification in; report, event and
quarantine out; duplicates and vanished objects handled."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest

from mlops.events import DetailType
from mlops.layout import contract_key, quarantine_key
from mlops.validation import ValidationReport
from mlops_local.handlers import load_handler_module
from tests.support import datasets as ds
from tests.support import resources as test_resources
from tests.support.bus import drain, tap_bus
from tests.support.lambda_context import FakeLambdaContext

CONTRACT = (Path(__file__).resolve().parents[2] / "contracts" / "churn.json").read_bytes()
KEY = "datasets/churn/jan 2026=v1.csv"  # arrives URL-encoded: datasets/churn/jan+2026%3Dv1.csv


@pytest.fixture
def resources(stack: test_resources.TestResources, monkeypatch: pytest.MonkeyPatch) -> test_resources.TestResources:
    names = stack
    monkeypatch.setenv("VALIDATION_BATCH_ROWS", "1000")
    boto3.client("s3").put_object(Bucket=names.data_bucket, Key=contract_key("churn"), Body=CONTRACT)
    return names


@pytest.fixture
def handler(resources: test_resources.TestResources) -> ModuleType:
    return load_handler_module("validate_dataset")


@pytest.fixture
def bus_events(resources: test_resources.TestResources) -> str:
    """An SQS queue that receives the stage's events through a rule on the bus."""
    return tap_bus(resources.event_bus_name, [DetailType.DATASET_VALIDATED, DetailType.DATASET_QUARANTINED])


def received(queue_url: str) -> list[dict[str, Any]]:
    return drain(queue_url)


def put(resources: test_resources.TestResources, key: str, data: bytes) -> dict[str, Any]:
    response = boto3.client("s3").put_object(Bucket=resources.data_bucket, Key=key, Body=data)
    return {"key": key, "size": len(data), "versionId": response["VersionId"], "eTag": response["ETag"].strip('"')}


def s3_event(bucket: str, *objects: dict[str, Any]) -> dict[str, Any]:
    """An S3 ObjectCreated notification as Lambda receives it (keys URL-encoded)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-01-31T12:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLEUPLOADER"},
                "requestParameters": {"sourceIPAddress": "203.0.113.10"},
                "responseElements": {
                    "x-amz-request-id": "C3D13FE58DE4C810",
                    "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "validate-datasets",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A3NL1KOZZKEXAMPLE"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {**item, "key": quote_plus(item["key"]), "sequencer": "0055AED6DCD90281E5"},
                },
            }
            for item in objects
        ]
    }


def report(resources: test_resources.TestResources, key: str) -> ValidationReport:
    body = boto3.client("s3").get_object(Bucket=resources.data_bucket, Key=key)["Body"].read()
    return ValidationReport.model_validate_json(body)


def versions(resources: test_resources.TestResources, key: str) -> list[dict[str, Any]]:
    listed = boto3.client("s3").list_object_versions(Bucket=resources.data_bucket, Prefix=key)
    return [v for v in listed.get("Versions", []) + listed.get("DeleteMarkers", []) if v["Key"] == key]


def test_validate_dataset_clean_upload_is_reported_and_announced(
    resources: test_resources.TestResources, handler: ModuleType, bus_events: str
) -> None:
    # GIVEN a clean CSV uploaded under a key that needs URL-encoding
    data = ds.to_csv(ds.churn_frame(300))
    uploaded = put(resources, KEY, data)

    # WHEN S3 notifies the function
    result = handler.lambda_handler(s3_event(resources.data_bucket, uploaded), FakeLambdaContext())

    # THEN the report is written and DatasetValidated reaches the bus with the exact version
    [outcome] = result["results"]
    assert outcome["disposition"] == "validated"
    written = report(resources, outcome["report_key"])
    assert written.passed
    assert written.dataset.key == KEY
    assert written.dataset.uploader == "AWS:AIDAEXAMPLEUPLOADER"
    [event] = received(bus_events)
    assert event["detail-type"] == DetailType.DATASET_VALIDATED
    assert event["detail"]["dataset"]["key"] == KEY
    assert event["detail"]["dataset"]["version_id"] == uploaded["versionId"]
    assert event["detail"]["dataset"]["sha256"] == written.dataset.sha256
    assert event["detail"]["dataset"]["rows"] == 300
    assert event["detail"]["report_key"] == outcome["report_key"]


def test_validate_dataset_parquet_is_read_with_ranged_gets(
    resources: test_resources.TestResources, handler: ModuleType, bus_events: str
) -> None:
    data = ds.to_parquet(ds.set_cell("churned", 1_500, "perhaps")(ds.churn_frame(2_000)), row_group_size=500)
    uploaded = put(resources, "datasets/churn/feb.parquet", data)

    [outcome] = handler.lambda_handler(s3_event(resources.data_bucket, uploaded), FakeLambdaContext())["results"]

    assert outcome["disposition"] == "quarantined"
    written = report(resources, outcome["report_key"])
    [target] = [c for c in written.checks if c.name == "target"]
    assert target.first_offending[0].row == 1_500
    assert written.dataset.rows == 2_000


def test_validate_dataset_bad_upload_is_moved_to_quarantine_with_a_report(
    resources: test_resources.TestResources, handler: ModuleType, bus_events: str
) -> None:
    # GIVEN a dataset with text in a numeric column
    uploaded = put(resources, KEY, ds.to_csv(ds.set_cell("tenure_months", 3, "abc")(ds.churn_frame(300))))

    # WHEN S3 notifies the function
    [outcome] = handler.lambda_handler(s3_event(resources.data_bucket, uploaded), FakeLambdaContext())["results"]

    # THEN the version moved to quarantine/ (gone from datasets/), the report says why, the bus knows
    assert outcome["disposition"] == "quarantined"
    assert versions(resources, KEY) == []
    assert versions(resources, quarantine_key(KEY))
    written = report(resources, outcome["report_key"])
    assert written.quarantine_key == quarantine_key(KEY)
    assert any("row 3 (text)" in reason for reason in written.reasons)
    assert not any("abc" in reason for reason in written.reasons)  # no cell value
    [event] = received(bus_events)
    assert event["detail-type"] == DetailType.DATASET_QUARANTINED
    assert event["detail"]["quarantine_key"] == quarantine_key(KEY)


@pytest.mark.parametrize("build", [lambda: ds.to_csv(ds.churn_frame(300)), lambda: b"not,a\ndataset"])
def test_validate_dataset_duplicate_delivery_does_the_work_once(
    resources: test_resources.TestResources, handler: ModuleType, bus_events: str, build: Any
) -> None:
    # GIVEN an upload whose notification is delivered twice
    uploaded = put(resources, KEY, build())
    event = s3_event(resources.data_bucket, uploaded)

    # WHEN both deliveries run
    first = handler.lambda_handler(event, FakeLambdaContext())
    second = handler.lambda_handler(event, FakeLambdaContext())

    # THEN the second replays the first's result: one report write, one event
    assert second == first
    assert len(versions(resources, first["results"][0]["report_key"])) == 1
    assert len(received(bus_events)) == 1


def test_validate_dataset_object_deleted_before_processing_is_not_a_crash(
    resources: test_resources.TestResources, handler: ModuleType, bus_events: str
) -> None:
    # GIVEN an upload deleted (that exact version) before the notification is processed
    uploaded = put(resources, KEY, ds.to_csv(ds.churn_frame(300)))
    boto3.client("s3").delete_object(Bucket=resources.data_bucket, Key=KEY, VersionId=uploaded["versionId"])

    # WHEN the notification arrives
    [outcome] = handler.lambda_handler(s3_event(resources.data_bucket, uploaded), FakeLambdaContext())["results"]

    # THEN nothing is written or announced
    assert outcome["disposition"] == "missing"
    assert received(bus_events) == []
    listed = boto3.client("s3").list_objects_v2(Bucket=resources.data_bucket, Prefix="reports/")
    assert listed.get("KeyCount", 0) == 0


def test_validate_dataset_records_of_one_event_are_handled_independently(
    resources: test_resources.TestResources, handler: ModuleType, bus_events: str
) -> None:
    good = put(resources, "datasets/churn/good.csv.gz", ds.to_csv_gz(ds.churn_frame(300)))
    unknown = put(resources, "datasets/fraud/jan.csv", ds.to_csv(ds.churn_frame(300)))

    results = handler.lambda_handler(s3_event(resources.data_bucket, good, unknown), FakeLambdaContext())["results"]

    assert [r["disposition"] for r in results] == ["validated", "quarantined"]
    assert any("no contract for model 'fraud'" in reason for reason in results[1]["reasons"])
    assert sorted(e["detail-type"] for e in received(bus_events)) == [
        DetailType.DATASET_QUARANTINED,
        DetailType.DATASET_VALIDATED,
    ]


def test_validate_dataset_emits_metrics_with_the_model_dimension(
    resources: test_resources.TestResources, handler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    uploaded = put(resources, KEY, ds.to_csv(ds.churn_frame(300)))

    handler.lambda_handler(s3_event(resources.data_bucket, uploaded), FakeLambdaContext())

    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    by_name = {m["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"]: m for m in emf}
    assert by_name["DatasetsValidated"]["model"] == "churn"
    assert by_name["DatasetRows"]["DatasetRows"] in (300.0, [300.0])
    assert by_name["DatasetRows"]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MLOps"


def test_validate_dataset_ignores_the_s3_test_event(
    resources: test_resources.TestResources, handler: ModuleType
) -> None:
    event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": resources.data_bucket}

    assert handler.lambda_handler(event, FakeLambdaContext()) == {"results": []}


def test_s3_ranged_reader_seeks_and_reads_one_version(resources: test_resources.TestResources) -> None:
    from mlops.adapters.s3_ranged import open_ranged

    first = put(resources, "datasets/churn/r.parquet", bytes(range(256)) * 40)
    put(resources, "datasets/churn/r.parquet", b"a newer version")

    with open_ranged(resources.data_bucket, "datasets/churn/r.parquet", first["versionId"], buffer_bytes=1_024) as f:
        assert f.seek(-8, 2) == 256 * 40 - 8
        assert f.read() == bytes(range(248, 256))
        f.seek(300)
        assert f.read(4) == bytes([44, 45, 46, 47])
        assert f.read(0) == b""


def test_validate_dataset_key_at_s3s_limit_is_quarantined_under_a_key_s3_accepts(
    resources: test_resources.TestResources, handler: ModuleType, bus_events: str
) -> None:
    # GIVEN a bad dataset under a key of exactly 1,024 UTF-8 bytes (S3's limit; moto allows more)
    prefix = "datasets/churn/"
    key = prefix + "a" + "é" * ((1024 - len(prefix) - len("a.csv")) // 2) + ".csv"
    assert len(key.encode()) == 1024
    uploaded = put(resources, key, ds.to_csv(ds.set_cell("plan", 2, "gold")(ds.churn_frame(300))))

    # WHEN S3 notifies the function
    [outcome] = handler.lambda_handler(s3_event(resources.data_bucket, uploaded), FakeLambdaContext())["results"]

    # THEN every key it wrote fits the limit, and the quarantined copy is where the report says
    assert outcome["disposition"] == "quarantined"
    written = report(resources, outcome["report_key"])
    for derived in (outcome["report_key"], written.summary_key, outcome["quarantine_key"]):
        assert derived is not None
        assert len(derived.encode()) <= 1024
    assert versions(resources, outcome["quarantine_key"])
    assert versions(resources, key) == []
