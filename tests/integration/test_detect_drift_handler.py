"""The detect_drift function on the moto server: captures in the artifact bucket, the registry
table, EMF metrics on stdout with exactly the dimensions the alarm uses."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from mlops.adapters.s3 import S3ObjectStore
from mlops.contract import parse_contract
from mlops.drift.monitor import state_key
from mlops.inference.capture import CaptureBuffer
from mlops.inference.model import ModelCache
from mlops.layout import artifact_key, baseline_key
from mlops.training import TrainedModel, train_model
from mlops_local.handlers import load_handler_module
from mlops_local.sample_data import churn_dataset, churn_features, records
from tests.support.lambda_context import FakeLambdaContext
from tests.support.resources import TestResources, create_resources

CONTRACT = parse_contract((Path(__file__).parents[2] / "contracts" / "churn.json").read_text())


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    return train_model(churn_dataset(2_000), CONTRACT)


def publish_production(resources: TestResources, model: TrainedModel, version: int = 1) -> None:
    """Artifact and baseline in the bucket, registry items as the registry stores them."""
    sha256 = hashlib.sha256(model.onnx_bytes).hexdigest()
    s3 = boto3.client("s3")
    s3.put_object(Bucket=resources.artifact_bucket, Key=artifact_key("churn", sha256), Body=model.onnx_bytes)
    s3.put_object(
        Bucket=resources.artifact_bucket,
        Key=baseline_key("churn", sha256),
        Body=model.profile.model_dump_json().encode(),
    )
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    version_item = {
        "pk": "MODEL#churn",
        "sk": f"VERSION#{version:010d}",
        "model_name": "churn",
        "version": version,
        "status": "production",
        "metric_name": "roc_auc",
        "metrics": {"roc_auc": 0.8},
        "artifact": {
            "bucket": resources.artifact_bucket,
            "key": artifact_key("churn", sha256),
            "sha256": sha256,
            "size_bytes": len(model.onnx_bytes),
            "baseline_key": baseline_key("churn", sha256),
        },
        "contract": CONTRACT.model_dump(mode="json"),
        "lineage": {},
        "created_at": now,
        "updated_at": now,
    }
    table = boto3.resource("dynamodb").Table(resources.registry_table)
    table.put_item(Item=json.loads(json.dumps(version_item), parse_float=Decimal))
    table.put_item(
        Item={
            "pk": "MODEL#churn",
            "sk": "MODEL",
            "gsi1pk": "MODELS",
            "gsi1sk": "churn",
            "name": "churn",
            "latest_version": version,
            "production_version": version,
            "production_history": [version],
            "updated_at": now,
        }
    )


def scheduled_event() -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/mlops-detect-drift"],
        "detail": {},
    }


@pytest.fixture
def drift(aws: str, monkeypatch: pytest.MonkeyPatch, trained: TrainedModel) -> tuple[TestResources, ModuleType]:
    resources = create_resources()
    publish_production(resources, trained)
    for name, value in resources.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "detect-drift")
    return resources, load_handler_module("detect_drift")


def capture_traffic(resources: TestResources, rows: int, *, drift: float = 0.0) -> None:
    """Predictions of the production model captured as the predict function writes them, flushed
    ten minutes ago (older than the settle time)."""
    from mlops.adapters.registry_dynamodb import DynamoRegistry

    store = S3ObjectStore()
    model = ModelCache(DynamoRegistry(resources.registry_table), store).get("churn")
    batch = records(churn_features(rows, seed=21, drift=drift))
    flushed_at = (datetime.now(UTC) - timedelta(minutes=10)).timestamp()
    buffer = CaptureBuffer(store, resources.artifact_bucket, clock=lambda: flushed_at)
    buffer.add("churn", model.version, CONTRACT.feature_names, batch, model.predict(batch), sample_rate=1.0)
    assert [r.error for r in buffer.flush()] == [None]


def run(handler: ModuleType, capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    capsys.readouterr()
    result = handler.lambda_handler(scheduled_event(), FakeLambdaContext(function_name="detect-drift"))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return result, [line for line in lines if "_aws" in line]


def value(line: dict[str, Any], name: str) -> float:
    """A metric's value in an EMF line (Powertools writes a list of values)."""
    raw = line[name]
    [single] = raw if isinstance(raw, list) else [raw]
    return float(single)


def metric_lines(emf_lines: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [
        line for line in emf_lines if any(m["Name"] == name for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"])
    ]


DRIFT_METRICS = ("DriftDetected", "DriftedFeatureShare", "PredictionDrift", "DriftScore", "DriftWindowRows")


def test_detect_drift_normal_traffic_is_scored_without_drift(
    drift: tuple[TestResources, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    resources, handler = drift
    capture_traffic(resources, 800)
    result, emf = run(handler, capsys)
    assert result == {"models": {"churn": "scored"}}
    [line] = metric_lines(emf, "DriftDetected")
    assert value(line, "DriftDetected") == 0
    [failures] = metric_lines(emf, "DriftCheckFailures")
    assert value(failures, "DriftCheckFailures") == 0


def test_detect_drift_drifted_traffic_alarms_with_exact_dimensions_and_announces_the_report(
    drift: tuple[TestResources, ModuleType], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    resources, _ = drift
    # GIVEN a notice topic with a queue subscribed, and the models API's address
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="drift-notices")["TopicArn"]
    queue = sqs.create_queue(QueueName="drift-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv("DRIFT_NOTICE_TOPIC_ARN", topic)
    monkeypatch.setenv("REPORT_BASE_URL", "https://api.example/prod")
    handler = load_handler_module("detect_drift", fresh=True)
    capture_traffic(resources, 800, drift=1.0)
    _, emf = run(handler, capsys)
    # THEN every drift metric carries exactly the dimensions the alarms use
    for name in DRIFT_METRICS:
        [line] = metric_lines(emf, name)
        directive = line["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "MLOps"
        assert [sorted(d) for d in directive["Dimensions"]] == [["model", "service"]]
        assert (line["service"], line["model"]) == ("detect-drift", "churn")
    assert value(metric_lines(emf, "DriftDetected")[0], "DriftDetected") == 1
    assert value(metric_lines(emf, "DriftWindowRows")[0], "DriftWindowRows") == 800

    # the stored result names each feature's decision, and its page sits beside it
    s3 = boto3.client("s3")
    listed = s3.list_objects_v2(Bucket=resources.artifact_bucket, Prefix="monitoring/churn/reports/")
    keys = sorted(item["Key"] for item in listed["Contents"])
    assert [key.rsplit(".", 1)[1] for key in keys] == ["html", "json"]
    report = json.loads(s3.get_object(Bucket=resources.artifact_bucket, Key=keys[1])["Body"].read())
    assert {f["name"] for f in report["features"]} == set(CONTRACT.feature_names)
    assert report["drift_detected"] is True
    assert report["report_key"] == keys[0]
    page = s3.get_object(Bucket=resources.artifact_bucket, Key=keys[0])
    assert page["ContentType"].startswith("text/html")

    # and the notice reached the subscribed queue, linking the page
    [message] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    notice = json.loads(message["Body"])
    report_id = keys[1].rsplit("/", 1)[1].removesuffix(".json")
    assert "churn v1" in notice["Subject"]
    assert f"https://api.example/prod/models/churn/drift/{report_id}?format=html" in notice["Message"]


def test_detect_drift_second_run_without_captures_is_insufficient_data(
    drift: tuple[TestResources, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    resources, handler = drift
    capture_traffic(resources, 400)
    run(handler, capsys)
    state = json.loads(
        boto3.client("s3").get_object(Bucket=resources.artifact_bucket, Key=state_key("churn"))["Body"].read()
    )
    assert state["marker"].startswith("captures/churn/")
    assert state["window"]["rows"] == 0  # the 400 rows were judged; a new window begins
    result, emf = run(handler, capsys)
    assert result == {"models": {"churn": "insufficient_data"}}
    assert not [line for name in DRIFT_METRICS for line in metric_lines(emf, name)]


def test_detect_drift_first_run_without_captures_publishes_no_drift_metric(
    drift: tuple[TestResources, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    _, handler = drift
    result, emf = run(handler, capsys)
    assert result == {"models": {"churn": "insufficient_data"}}
    assert not [line for name in DRIFT_METRICS for line in metric_lines(emf, name)]
    # only the run's health: no failure, nothing late
    assert [value(line, "DriftCheckFailures") for line in metric_lines(emf, "DriftCheckFailures")] == [0]
    assert [value(line, "CapturesLate") for line in metric_lines(emf, "CapturesLate")] == [0]
